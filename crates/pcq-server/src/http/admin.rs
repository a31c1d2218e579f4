//! Sandbox controls under `/_pcq/admin` (role `Pcq.Admin`) and the node's own endpoints.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use pcq_core::wire::ValidationCode;
use pcq_core::{ApiFault, NewValidationCode};
use serde_json::json;

use super::extract::{AdminCaller, Ctx, JsonBody};
use super::fault::{ApiError, json_response, reply_response};
use super::openapi::{HealthBody, ValidationCodeIssueBody};
use crate::AppState;
use crate::service::validation_codes::IssueValidationCode;
use crate::store::{Op, StoreResult, Tx};

/// Issues a GCC validation code to a partner (sandbox control).
#[utoipa::path(
    post,
    path = "/_pcq/admin/partners/{partner_tenant_id}/validation-codes",
    tag = "sandbox",
    params(("partner_tenant_id" = String, Path, description = "The partner receiving the code")),
    request_body = ValidationCodeIssueBody,
    responses((status = 201, description = "The new validation code", body = ValidationCode)),
    security(("bearer" = []))
)]
pub async fn issue_validation_code(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Ctx(ctx): Ctx,
    Path(raw_partner): Path<String>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let partner = pcq_core::ids::parse_guid(&raw_partner).ok_or_else(|| {
        ApiFault::invalid_input(format!(
            "The partner tenant id '{}' is not a GUID.",
            raw_partner.chars().take(80).collect::<String>()
        ))
    })?;
    let route = format!("/_pcq/admin/partners/{partner}/validation-codes");
    let reply = state
        .write_idempotent(
            &ctx,
            caller.tenant_id,
            "POST",
            route,
            None,
            &body.raw,
            || {
                Ok(IssueValidationCode {
                    partner,
                    code: NewValidationCode::parse(&body.value)?,
                    now: state.clock.now(),
                })
            },
        )
        .await?;
    Ok(reply_response(reply))
}

/// Liveness: the process serves HTTP.
#[utoipa::path(
    get,
    path = "/_pcq/health",
    tag = "node",
    responses((status = 200, description = "The node is up", body = HealthBody))
)]
pub async fn health(State(state): State<AppState>) -> Response {
    json_response(
        StatusCode::OK,
        serde_json::to_vec(&json!({
            "status": "ok",
            "version": env!("CARGO_PKG_VERSION"),
            "store": state.store.backend_name(),
        }))
        .unwrap_or_default(),
    )
}

/// Readiness: the node can read its store.
#[utoipa::path(
    get,
    path = "/_pcq/ready",
    tag = "node",
    responses(
        (status = 200, description = "The node can serve requests", body = HealthBody),
        (status = 503, description = "The store is not reachable", body = pcq_core::fault::Envelope),
    )
)]
pub async fn ready(State(state): State<AppState>) -> Response {
    match state.store.read(Ping).await {
        Ok(_) => json_response(
            StatusCode::OK,
            serde_json::to_vec(&json!({
                "status": "ready",
                "version": env!("CARGO_PKG_VERSION"),
                "store": state.store.backend_name(),
            }))
            .unwrap_or_default(),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            super::fault::fault_response(&ApiFault::service_unavailable())
        }
    }
}

/// A trivial read, to see that the store answers.
struct Ping;

impl Op for Ping {
    type Output = ();

    async fn run<T: Tx>(self, tx: &mut T) -> StoreResult<()> {
        tx.meta_get("dev_partner_tenant_id").await.map(|_| ())
    }
}
