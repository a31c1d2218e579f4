//! Customer qualifications (current and legacy contracts) and GCC validation codes.

use axum::extract::State;
use axum::response::Response;
use pcq_core::rules::{self, Held};
use pcq_core::wire::{CustomerQualification, ValidationCode};
use pcq_core::{ApiFault, Qualification, QualificationRequest};
use uuid::Uuid;

use super::extract::{Caller, Ctx, CustomerId, JsonBody, QueryParams, UserCaller};
use super::fault::{ApiError, ok_json, reply_response};
use super::openapi::{LegacyQualificationBody, QualificationRequestBody};
use crate::AppState;
use crate::service::qualifications::{CreateQualification, CustomerQualifications, Endpoint};
use crate::service::render;
use crate::service::validation_codes::PartnerValidationCodes;
use crate::service::vetting::ReadQualifications;
use crate::service::{Actor, check_owner};
use crate::store::QualificationRow;

/// Reads a customer's current qualifications, checking the caller's relationship. Under the
/// `after_reads` vetting policy a read counts towards the decision, and may make it (the
/// operation checks the policy in its transaction; the node's copy only picks the path).
async fn current_qualifications(
    state: &AppState,
    partner: Uuid,
    customer: Uuid,
) -> Result<Vec<QualificationRow>, ApiError> {
    if state.policy.get().policy == pcq_core::vetting::Mode::AfterReads {
        let read = ReadQualifications {
            partner,
            customer,
            configured: state.policy.configured().clone(),
            now: state.clock.now(),
            effects: state.effects(),
        };
        let rows = state.store.write(read).await??;
        state.wake.notify_one();
        return Ok(rows);
    }
    let found = state.store.read(CustomerQualifications(customer)).await?;
    let (owner, qualifications) = match found {
        Some((owner, q)) => (Some(owner), q),
        None => (None, Vec::new()),
    };
    check_owner(owner, partner, customer)?;
    Ok(qualifications)
}

async fn create(
    state: &AppState,
    caller: &crate::auth::Principal,
    ctx: &super::context::RequestContext,
    customer: Uuid,
    query: &QueryParams,
    body: &JsonBody,
    endpoint: Endpoint,
) -> Result<Response, ApiError> {
    let (method, route) = match endpoint {
        Endpoint::Post => ("POST", format!("/v1/customers/{customer}/qualifications")),
        Endpoint::LegacyPut => ("PUT", format!("/v1/customers/{customer}/qualification")),
    };
    let reply = state
        .write_idempotent(
            ctx,
            caller.tenant_id,
            method,
            route,
            Some(query.raw()),
            &body.raw,
            || {
                let request = QualificationRequest::parse(
                    &body.value,
                    query.get("code"),
                    state.config.contract,
                )?;
                // Partner Center asks a GDAP role of GCC requests on the current endpoint only.
                let auth = &state.config.auth;
                if endpoint == Endpoint::Post
                    && request.qualification == Qualification::GovernmentCommunityCloud
                    && auth.gcc_requires_gdap_role
                    && !caller.has_any_directory_role(&auth.gdap_roles)
                {
                    return Err(ApiFault::gdap_role_required());
                }
                Ok(CreateQualification {
                    partner: caller.tenant_id,
                    customer,
                    request,
                    endpoint,
                    actor: Actor::caller(caller),
                    request_id: ctx.request_id.clone(),
                    now: state.clock.now(),
                    configured: state.policy.configured().clone(),
                    effects: state.effects(),
                })
            },
        )
        .await?;
    state.wake.notify_one();
    Ok(reply_response(reply))
}

/// Requests a qualification for a customer (App+User credentials only).
///
/// Education starts `InReview`; GovernmentCommunityCloud needs a validation code (body
/// `validationCode` or the older `?code=`) and is `Approved` at once; StateOwnedEntity carries no
/// vetting. The body may also be a bare enum string or integer.
#[utoipa::path(
    post,
    path = "/v1/customers/{customer_tenant_id}/qualifications",
    tag = "qualifications",
    params(
        ("customer_tenant_id" = uuid::Uuid, Path, description = "The customer's tenant id (GUID; braces are accepted too)"),
        ("code" = Option<String>, Query, description = "GCC validation code (older contract; the body's validationCode is preferred)"),
    ),
    request_body = QualificationRequestBody,
    responses((status = 201, description = "The new qualification", body = CustomerQualification)),
    security(("bearer" = []))
)]
pub async fn create_qualification(
    State(state): State<AppState>,
    UserCaller(caller): UserCaller,
    Ctx(ctx): Ctx,
    CustomerId(customer): CustomerId,
    query: QueryParams,
    body: JsonBody,
) -> Result<Response, ApiError> {
    create(
        &state,
        &caller,
        &ctx,
        customer,
        &query,
        &body,
        Endpoint::Post,
    )
    .await
}

/// Gets a customer's qualifications: a bare array, `[]` when there are none.
#[utoipa::path(
    get,
    path = "/v1/customers/{customer_tenant_id}/qualifications",
    tag = "qualifications",
    params(("customer_tenant_id" = uuid::Uuid, Path, description = "The customer's tenant id (GUID; braces are accepted too)")),
    responses((status = 200, description = "The customer's qualifications", body = Vec<CustomerQualification>)),
    security(("bearer" = []))
)]
pub async fn get_qualifications(
    State(state): State<AppState>,
    Caller(caller): Caller,
    CustomerId(customer): CustomerId,
) -> Result<Response, ApiError> {
    let rows = current_qualifications(&state, caller.tenant_id, customer).await?;
    let items: Vec<CustomerQualification> = rows.iter().map(render::qualification).collect();
    Ok(ok_json(&items))
}

/// Legacy: gets the customer's qualification as one bare JSON string (`"None"` when none).
#[utoipa::path(
    get,
    path = "/v1/customers/{customer_tenant_id}/qualification",
    tag = "qualifications (legacy)",
    params(("customer_tenant_id" = uuid::Uuid, Path, description = "The customer's tenant id (GUID; braces are accepted too)")),
    responses((status = 200, description = "The qualification", body = Qualification)),
    security(("bearer" = []))
)]
pub async fn get_legacy_qualification(
    State(state): State<AppState>,
    Caller(caller): Caller,
    CustomerId(customer): CustomerId,
) -> Result<Response, ApiError> {
    let rows = current_qualifications(&state, caller.tenant_id, customer).await?;
    let held: Vec<Held> = rows
        .iter()
        .map(|q| Held {
            qualification: q.qualification,
            status: q.vetting_status,
        })
        .collect();
    Ok(ok_json(&rules::legacy_qualification(&held)))
}

/// Legacy: sets the customer's qualification (App+User credentials only). The body is the
/// enum as a string in any case or as its integer 0–4; GCC takes its code as `?code=`.
/// Setting a qualification the customer already holds succeeds and changes nothing.
#[utoipa::path(
    put,
    path = "/v1/customers/{customer_tenant_id}/qualification",
    tag = "qualifications (legacy)",
    params(
        ("customer_tenant_id" = uuid::Uuid, Path, description = "The customer's tenant id (GUID; braces are accepted too)"),
        ("code" = Option<String>, Query, description = "GCC validation code"),
    ),
    request_body = LegacyQualificationBody,
    responses((status = 200, description = "The qualification now set", body = Qualification)),
    security(("bearer" = []))
)]
pub async fn put_legacy_qualification(
    State(state): State<AppState>,
    UserCaller(caller): UserCaller,
    Ctx(ctx): Ctx,
    CustomerId(customer): CustomerId,
    query: QueryParams,
    body: JsonBody,
) -> Result<Response, ApiError> {
    create(
        &state,
        &caller,
        &ctx,
        customer,
        &query,
        &body,
        Endpoint::LegacyPut,
    )
    .await
}

/// Gets the calling partner's GCC validation codes.
#[utoipa::path(
    get,
    path = "/v1/customers/all/validations",
    tag = "validation codes",
    responses((status = 200, description = "The partner's validation codes", body = Vec<ValidationCode>)),
    security(("bearer" = []))
)]
pub async fn get_validation_codes(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Response, ApiError> {
    let rows = state
        .store
        .read(PartnerValidationCodes(caller.tenant_id))
        .await?;
    let items: Vec<ValidationCode> = rows.iter().map(render::validation_code).collect();
    Ok(ok_json(&items))
}
