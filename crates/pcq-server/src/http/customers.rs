//! `/v1/customers`: create, list, get.

use axum::extract::State;
use axum::http::HeaderMap;
use pcq_core::NewCustomer;
use pcq_core::wire::{Collection, Customer};

use super::extract::{Caller, Ctx, CustomerId, JsonBody, QueryParams};
use super::paging::{self, ContinuationToken, List, page_size};
use crate::AppState;
use crate::error::Error;
use crate::service::Actor;
use crate::service::customers::{CreateCustomer, CustomerPage, FindCustomer};
use crate::service::render::{self, CustomerView};
use crate::store::Reply;

/// Creates a customer of the calling partner.
///
/// Accepts the documented body with PascalCase or camelCase keys and explicit nulls;
/// `companyProfile.domain` is required and unique among the partner's customers.
#[utoipa::path(
    post,
    path = "/v1/customers",
    tag = "customers",
    request_body = NewCustomer,
    responses((status = 201, description = "The new customer", body = Customer)),
    security(("bearer" = []))
)]
pub async fn create_customer(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    query: axum::extract::RawQuery,
    body: JsonBody,
) -> Result<Reply, Error> {
    let pipeline = &state.pipeline;
    let write = ctx.client_write(
        caller.tenant_id,
        "POST",
        "/v1/customers".to_owned(),
        query.0.as_deref().unwrap_or(""),
        &body.raw,
    );
    let op = NewCustomer::parse(&body.value).map(|customer| CreateCustomer {
        partner: caller.tenant_id,
        customer,
        now: pipeline.now(),
        actor: Actor::caller(&caller),
    });
    pipeline.request(write, op).await
}

/// Lists the calling partner's customers, a page at a time.
///
/// The next page is fetched with the `MS-ContinuationToken` header given in `links.next`
/// (also in `continuationToken`).
#[utoipa::path(
    get,
    path = "/v1/customers",
    tag = "customers",
    params(
        ("size" = Option<u32>, Query, minimum = 1, description = "Page size (1 to the configured maximum, default 100)"),
        ("seekOperation" = Option<String>, Query, description = "`Next` when following a continuation token"),
        ContinuationToken,
    ),
    responses((status = 200, description = "A page of customers", body = Collection<Customer>)),
    security(("bearer" = []))
)]
pub async fn list_customers(
    State(state): State<AppState>,
    Caller(caller): Caller,
    query: QueryParams,
    headers: HeaderMap,
) -> Result<Reply, Error> {
    let size = page_size(&query, &state.config.paging)?;
    let lister = state.pager.lister(List::Customers, caller.tenant_id);
    let rows = state
        .pipeline
        .read(CustomerPage {
            partner: caller.tenant_id,
            after_seq: lister.seq_position(&headers)?,
            limit: paging::limit(size),
        })
        .await?;
    Reply::ok(&lister.page(
        rows,
        size,
        format!("/v1/customers?size={size}"),
        |r| r.seq.to_string(),
        |r| render::customer(r, CustomerView::ListItem),
    ))
}

/// Gets one of the calling partner's customers.
#[utoipa::path(
    get,
    path = "/v1/customers/{customer_tenant_id}",
    tag = "customers",
    params(CustomerId),
    responses((status = 200, description = "The customer", body = Customer)),
    security(("bearer" = []))
)]
pub async fn get_customer(
    State(state): State<AppState>,
    Caller(caller): Caller,
    CustomerId(id): CustomerId,
) -> Result<Reply, Error> {
    let customer = state
        .pipeline
        .read(FindCustomer {
            partner: caller.tenant_id,
            id,
        })
        .await?;
    Reply::ok(&render::customer(&customer, CustomerView::Detail))
}
