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

use super::context::RequestContext;
use super::extract::{Caller, Ctx, JsonBody, QueryParams};
use crate::AppState;
use crate::auth::Principal;
use crate::error::Error;
use crate::service::webhooks::{
    self, EVENTS, FindRegistration, RecentDeliveries, Register, SendValidationEvent, Unregister,
    ValidationDelivery,
};
use crate::store::{AttemptRow, DeliveryStatus, DeliveryWithAttempts, Reply};

const REGISTRATION: &str = "/webhooks/v1/registration";

async fn register(
    state: &AppState,
    caller: &Principal,
    ctx: &RequestContext,
    body: &JsonBody,
    replace: bool,
) -> Result<Reply, Error> {
    let method = if replace { "PUT" } else { "POST" };
    let pipeline = &state.pipeline;
    let write = ctx.client_write(
        caller.tenant_id,
        method,
        REGISTRATION.to_owned(),
        "",
        &body.raw,
    );
    let op = WebhookRegistrationInput::parse(&body.value, &EVENTS).and_then(|input| {
        Register::new(
            caller.tenant_id,
            input,
            replace,
            state.allow_private_targets,
            pipeline.now(),
        )
    });
    pipeline.request(write, op).await
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
) -> Result<Reply, Error> {
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
) -> Result<Reply, Error> {
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
) -> Result<Reply, Error> {
    let row = state
        .pipeline
        .read(FindRegistration(caller.tenant_id))
        .await?;
    Reply::ok(&webhooks::render_registration(&row))
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
) -> Result<Reply, Error> {
    state.pipeline.write(Unregister(caller.tenant_id)).await?;
    Ok(Reply::no_content())
}

/// The events a registration can receive.
#[utoipa::path(
    get,
    path = "/webhooks/v1/registration/events",
    tag = "webhooks",
    responses((status = 200, description = "Event names", body = Vec<String>)),
    security(("bearer" = []))
)]
pub async fn list_events(Caller(_caller): Caller) -> Result<Reply, Error> {
    Reply::ok(&EVENTS)
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
) -> Result<Reply, Error> {
    let pipeline = &state.pipeline;
    let correlation_id = ctx.correlation_id.clone();
    let write = ctx.client_write(
        caller.tenant_id,
        "POST",
        format!("{REGISTRATION}/validationEvents"),
        query.raw(),
        &[],
    );
    let op = SendValidationEvent {
        partner: caller.tenant_id,
        resource_uri: format!(
            "{}{REGISTRATION}/validationEvents/{correlation_id}",
            pipeline.links.public_url
        ),
        correlation_id,
        now: pipeline.now(),
    };
    pipeline.request(write, Ok(op)).await
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
    DeliveryResult {
        response_code,
        response_message: attempt.response_message.clone(),
        system_error: attempt.system_error,
        date_time_utc: attempt.at.to_dotnet_round_trip_without_offset(),
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
) -> Result<Reply, Error> {
    let (delivery, attempts) = state
        .pipeline
        .read(ValidationDelivery {
            partner: caller.tenant_id,
            correlation_id: correlation_id.clone(),
        })
        .await?;
    Reply::ok(&ValidationEventStatus {
        correlation_id,
        partner_id: caller.tenant_id,
        status: status_name(delivery.status).to_owned(),
        callback_url: delivery.webhook_url.clone(),
        results: attempts.iter().map(delivery_result).collect(),
    })
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
) -> Result<Reply, Error> {
    let size = super::paging::page_size(&query, &state.config.paging)?;
    let deliveries = state
        .pipeline
        .read(RecentDeliveries {
            partner: caller.tenant_id,
            limit: i64::from(size),
        })
        .await?;
    let entries: Vec<DeliveryLogEntry> = deliveries.iter().map(log_entry).collect();
    Reply::ok(&entries)
}

/// The certificate (DER) webhook signatures verify with; `X-MS-Certificate-Url` points here.
#[utoipa::path(
    get,
    path = "/_pcq/webhooks/certificate",
    tag = "webhooks",
    responses((status = 200, description = "X.509 certificate, DER", content_type = "application/pkix-cert"))
)]
pub async fn certificate(State(state): State<AppState>) -> Result<Response, Error> {
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
