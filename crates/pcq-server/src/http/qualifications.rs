//! Customer qualifications (current and legacy contracts) and GCC validation codes.

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use pcq_core::wire::{CustomerQualification, ValidationCode};
use pcq_core::{Qualification, QualificationRequest};
use uuid::Uuid;

use super::context::RequestContext;
use super::extract::{Caller, Ctx, CustomerId, JsonBody, QueryParams, UserCaller};
use crate::AppState;
use crate::auth::Principal;
use crate::error::Error;
use crate::service::qualifications::{self, CreateQualification, Endpoint};
use crate::service::render;
use crate::service::validation_codes::PartnerValidationCodes;
use crate::store::Reply;

/// A qualification request of either endpoint, extracted as axum would extract the handler's
/// own arguments, in this order: App+User credentials, request ids, the customer id, the query
/// (`?code=`), the body.
pub struct QualificationWrite {
    caller: Principal,
    ctx: RequestContext,
    customer: Uuid,
    query: QueryParams,
    body: JsonBody,
}

impl FromRequest<AppState> for QualificationWrite {
    type Rejection = Error;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Error> {
        let (mut parts, body) = request.into_parts();
        let UserCaller(caller) = UserCaller::from_request_parts(&mut parts, state).await?;
        let Ctx(ctx) = Ctx::from_request_parts(&mut parts, state).await?;
        let CustomerId(customer) = CustomerId::from_request_parts(&mut parts, state).await?;
        let query = QueryParams::from_request_parts(&mut parts, state).await?;
        let body = JsonBody::from_request(Request::from_parts(parts, body), state).await?;
        Ok(QualificationWrite {
            caller,
            ctx,
            customer,
            query,
            body,
        })
    }
}

impl QualificationWrite {
    /// Runs the request as `endpoint` asks.
    async fn run(self, state: &AppState, endpoint: Endpoint) -> Result<Reply, Error> {
        let QualificationWrite {
            caller,
            ctx,
            customer,
            query,
            body,
        } = self;
        let (method, route) = endpoint.route(customer);
        let write = ctx.client_write(caller.tenant_id, method, route, query.raw(), &body.raw);
        let op = QualificationRequest::parse(&body.value, query.get("code"), state.config.contract)
            .and_then(|request| {
                CreateQualification::new(
                    &state.pipeline,
                    &state.config.auth,
                    &caller,
                    &ctx.request_id,
                    customer,
                    endpoint,
                    request,
                )
            });
        state.pipeline.request(write, op).await
    }
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
        CustomerId,
        ("code" = Option<String>, Query, description = "GCC validation code (older contract; the body's validationCode is preferred)"),
    ),
    request_body = QualificationRequest,
    responses((status = 201, description = "The new qualification", body = CustomerQualification)),
    security(("bearer" = []))
)]
pub async fn create_qualification(
    State(state): State<AppState>,
    request: QualificationWrite,
) -> Result<Reply, Error> {
    request.run(&state, Endpoint::Post).await
}

/// Gets a customer's qualifications: a bare array, `[]` when there are none.
#[utoipa::path(
    get,
    path = "/v1/customers/{customer_tenant_id}/qualifications",
    tag = "qualifications",
    params(CustomerId),
    responses((status = 200, description = "The customer's qualifications", body = Vec<CustomerQualification>)),
    security(("bearer" = []))
)]
pub async fn get_qualifications(
    State(state): State<AppState>,
    Caller(caller): Caller,
    CustomerId(customer): CustomerId,
) -> Result<Reply, Error> {
    let rows = qualifications::current(&state.pipeline, caller.tenant_id, customer).await?;
    let items: Vec<CustomerQualification> = rows.iter().map(render::qualification).collect();
    Reply::ok(&items)
}

/// Legacy: gets the customer's qualification as one bare JSON string (`"None"` when none).
#[utoipa::path(
    get,
    path = "/v1/customers/{customer_tenant_id}/qualification",
    tag = "qualifications (legacy)",
    params(CustomerId),
    responses((status = 200, description = "The qualification", body = Qualification)),
    security(("bearer" = []))
)]
pub async fn get_legacy_qualification(
    State(state): State<AppState>,
    Caller(caller): Caller,
    CustomerId(customer): CustomerId,
) -> Result<Reply, Error> {
    let rows = qualifications::current(&state.pipeline, caller.tenant_id, customer).await?;
    Reply::ok(&qualifications::legacy_qualification(&rows))
}

/// Legacy: sets the customer's qualification (App+User credentials only). The body is the
/// enum as a string in any case or as its integer 0–4; GCC takes its code as `?code=`.
/// Setting a qualification the customer already holds succeeds and changes nothing.
#[utoipa::path(
    put,
    path = "/v1/customers/{customer_tenant_id}/qualification",
    tag = "qualifications (legacy)",
    params(
        CustomerId,
        ("code" = Option<String>, Query, description = "GCC validation code"),
    ),
    request_body = pcq_core::schema::LegacyQualificationBody,
    responses((status = 200, description = "The qualification now set", body = Qualification)),
    security(("bearer" = []))
)]
pub async fn put_legacy_qualification(
    State(state): State<AppState>,
    request: QualificationWrite,
) -> Result<Reply, Error> {
    request.run(&state, Endpoint::LegacyPut).await
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
) -> Result<Reply, Error> {
    let rows = state
        .pipeline
        .read(PartnerValidationCodes(caller.tenant_id))
        .await?;
    let items: Vec<ValidationCode> = rows.iter().map(render::validation_code).collect();
    Reply::ok(&items)
}
