//! `/webhooks/v1/registration…`: Partner Center's webhook registration API, and the
//! certificate receivers verify signatures with.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pcq_core::ApiFault;
use pcq_core::input::WebhookRegistrationInput;
use pcq_core::wire::{DeliveryResult, ValidationEventStatus, WebhookRegistration};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::{Caller, Ctx, JsonBody, QueryParams};
use super::fault::{ApiError, ok_json, reply_response};
use crate::AppState;
use crate::service::webhooks::{
    self, DeliveryWithAttempts, EVENTS, FindRegistration, RecentDeliveries, Register,
    SendValidationEvent, Unregister, ValidationDeliveries, dotnet_round_trip,
};
use crate::store::{AttemptRow, DeliveryStatus};

const REGISTRATION: &str = "/webhooks/v1/registration";

async fn register(
    state: &AppState,
    caller: &crate::auth::Principal,
    ctx: &super::context::RequestContext,
    body: &JsonBody,
    replace: bool,
) -> Result<Response, ApiError> {
    let method = if replace { "PUT" } else { "POST" };
    let reply = state
        .write_idempotent(
            ctx,
            caller.tenant_id,
            method,
            REGISTRATION.to_owned(),
            None,
            &body.raw,
            || {
                let input = WebhookRegistrationInput::parse(&body.value, &EVENTS)?;
                if !state.allow_private_targets {
                    if let Some(why) = crate::webhook_targets::refused_literal(&input.url) {
                        return Err(ApiFault::webhook_target_refused(&why));
                    }
                }
                Ok(Register {
                    partner: caller.tenant_id,
                    input,
                    replace,
                    now: state.clock.now(),
                })
            },
        )
        .await?;
    Ok(reply_response(reply))
}

/// Registers the calling partner to receive events at a URL.
#[utoipa::path(
    post,
    path = "/webhooks/v1/registration",
    tag = "webhooks",
    request_body = super::openapi::WebhookRegistrationBody,
    responses((status = 200, description = "The registration", body = WebhookRegistration)),
    security(("bearer" = []))
)]
pub async fn create_registration(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    body: JsonBody,
) -> Result<Response, ApiError> {
    register(&state, &caller, &ctx, &body, false).await
}

/// Changes the calling partner's registration.
#[utoipa::path(
    put,
    path = "/webhooks/v1/registration",
    tag = "webhooks",
    request_body = super::openapi::WebhookRegistrationBody,
    responses((status = 200, description = "The registration", body = WebhookRegistration)),
    security(("bearer" = []))
)]
pub async fn update_registration(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    body: JsonBody,
) -> Result<Response, ApiError> {
    register(&state, &caller, &ctx, &body, true).await
}

/// The calling partner's registration.
#[utoipa::path(
    get,
    path = "/webhooks/v1/registration",
    tag = "webhooks",
    responses((status = 200, description = "The registration", body = WebhookRegistration)),
    security(("bearer" = []))
)]
pub async fn get_registration(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Response, ApiError> {
    let row = state
        .store
        .read(FindRegistration(caller.tenant_id))
        .await?
        .ok_or_else(ApiFault::webhook_registration_not_found)?;
    Ok(ok_json(&webhooks::render_registration(&row)))
}

/// Removes the calling partner's registration. Events already queued are still delivered.
#[utoipa::path(
    delete,
    path = "/webhooks/v1/registration",
    tag = "webhooks",
    responses((status = 204, description = "Removed")),
    security(("bearer" = []))
)]
pub async fn delete_registration(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Response, ApiError> {
    if state.store.write(Unregister(caller.tenant_id)).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiFault::webhook_registration_not_found().into())
    }
}

/// The events a registration can receive.
#[utoipa::path(
    get,
    path = "/webhooks/v1/registration/events",
    tag = "webhooks",
    responses((status = 200, description = "Event names", body = Vec<String>)),
    security(("bearer" = []))
)]
pub async fn list_events(Caller(_caller): Caller) -> Response {
    ok_json(&EVENTS)
}

/// Sends a `test-created` event to the calling partner's registration. Its delivery can be
/// followed under the request's `MS-CorrelationId`.
#[utoipa::path(
    post,
    path = "/webhooks/v1/registration/validationEvents",
    tag = "webhooks",
    responses((status = 200, description = "The event's correlation id", body = CorrelationIdBody)),
    security(("bearer" = []))
)]
pub async fn send_validation_event(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let correlation_id = ctx.correlation_id.clone();
    let reply = state
        .write_idempotent(
            &ctx,
            caller.tenant_id,
            "POST",
            format!("{REGISTRATION}/validationEvents"),
            Some(query.raw()),
            &[],
            || {
                Ok(SendValidationEvent {
                    partner: caller.tenant_id,
                    resource_uri: format!(
                        "{}{REGISTRATION}/validationEvents/{correlation_id}",
                        state.public_url
                    ),
                    correlation_id,
                    now: state.clock.now(),
                })
            },
        )
        .await?;
    state.wake.notify_one();
    Ok(reply_response(reply))
}

/// The body answering a validation event request.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CorrelationIdBody {
    /// The correlation id to follow the event by.
    pub correlation_id: String,
}

fn delivery_result(attempt: &AttemptRow) -> DeliveryResult {
    let response_code = attempt
        .response_code
        .and_then(|c| u16::try_from(c).ok())
        .and_then(|c| StatusCode::from_u16(c).ok())
        .map(|c| {
            c.canonical_reason()
                .map(|r| r.replace([' ', '-'], ""))
                .unwrap_or_else(|| c.as_u16().to_string())
        })
        .unwrap_or_default();
    let at = dotnet_round_trip(attempt.at);
    DeliveryResult {
        response_code,
        response_message: attempt.response_message.clone(),
        system_error: attempt.system_error,
        date_time_utc: at.trim_end_matches("+00:00").to_owned(),
    }
}

fn status_name(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Delivered => "completed",
        DeliveryStatus::Failed => "failed",
    }
}

/// The delivery state of a validation event, with every attempt.
#[utoipa::path(
    get,
    path = "/webhooks/v1/registration/validationEvents/{correlation_id}",
    tag = "webhooks",
    params(("correlation_id" = String, Path, description = "The correlation id of the validation request")),
    responses((status = 200, description = "The event's delivery", body = ValidationEventStatus)),
    security(("bearer" = []))
)]
pub async fn validation_event_status(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(correlation_id): Path<String>,
) -> Result<Response, ApiError> {
    let deliveries = state
        .store
        .read(ValidationDeliveries {
            partner: caller.tenant_id,
            correlation_id: correlation_id.clone(),
        })
        .await?;
    let Some((delivery, attempts)) = deliveries.into_iter().last() else {
        return Err(ApiFault::validation_event_not_found(&correlation_id).into());
    };
    Ok(ok_json(&ValidationEventStatus {
        correlation_id,
        partner_id: caller.tenant_id,
        status: status_name(delivery.status).to_owned(),
        callback_url: delivery.webhook_url.clone(),
        results: attempts.iter().map(delivery_result).collect(),
    }))
}

/// A delivery in the delivery log.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryLogEntry {
    /// Delivery id.
    pub id: Uuid,
    /// The event.
    pub event_name: String,
    /// `pending`, `completed` or `failed`.
    pub status: String,
    /// Where it is posted.
    pub callback_url: String,
    /// The exact body posted.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// When the event was written (RFC 3339).
    pub created_at: String,
    /// When the next attempt is due, while pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    /// When it was delivered or given up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Every attempt so far.
    pub results: Vec<DeliveryResult>,
}

fn log_entry((delivery, attempts): &DeliveryWithAttempts) -> DeliveryLogEntry {
    DeliveryLogEntry {
        id: delivery.id,
        event_name: delivery.event_name.clone(),
        status: status_name(delivery.status).to_owned(),
        callback_url: delivery.webhook_url.clone(),
        payload: serde_json::from_slice(&delivery.payload).unwrap_or_default(),
        created_at: delivery.created_at.to_rfc3339(),
        next_attempt_at: (delivery.status == DeliveryStatus::Pending)
            .then(|| delivery.next_attempt_at.to_rfc3339()),
        finished_at: delivery.finished_at.map(|t| t.to_rfc3339()),
        results: attempts.iter().map(delivery_result).collect(),
    }
}

/// The calling partner's most recent deliveries, newest first (a pcq extension).
#[utoipa::path(
    get,
    path = "/webhooks/v1/registration/deliveries",
    tag = "webhooks",
    params(("size" = Option<u32>, Query, minimum = 1, description = "How many (default 100)")),
    responses((status = 200, description = "The delivery log", body = Vec<DeliveryLogEntry>)),
    security(("bearer" = []))
)]
pub async fn delivery_log(
    State(state): State<AppState>,
    Caller(caller): Caller,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let size = super::paging::page_size(&query, &state.config.paging)?;
    let deliveries = state
        .store
        .read(RecentDeliveries {
            partner: caller.tenant_id,
            limit: i64::from(size),
        })
        .await?;
    let entries: Vec<DeliveryLogEntry> = deliveries.iter().map(log_entry).collect();
    Ok(ok_json(&entries))
}

/// The certificate (DER) webhook signatures verify with; `X-MS-Certificate-Url` points here.
#[utoipa::path(
    get,
    path = "/_pcq/webhooks/certificate",
    tag = "webhooks",
    responses((status = 200, description = "X.509 certificate, DER", content_type = "application/pkix-cert"))
)]
pub async fn certificate(State(state): State<AppState>) -> Result<Response, ApiError> {
    let signer = state.webhook_signer().await.map_err(|e| {
        tracing::error!(error = %format!("{e:#}"), "webhook signing key unavailable");
        ApiFault::service_unavailable("the webhook signing key could not be loaded")
    })?;
    let mut response = signer.certificate_der().to_vec().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pkix-cert"),
    );
    response.extensions_mut().insert(super::fault::Rendered);
    Ok(response)
}
