//! `/v1/customers`: create, list, get.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pcq_core::wire::{Attributes, Collection, Customer, Link, LinkHeader, Links};
use pcq_core::{ApiFault, NewCustomer};

use super::extract::{Caller, Ctx, CustomerId, JsonBody, QueryParams};
use super::fault::{ApiError, json_response, reply_response};
use super::openapi::CustomerCreateBody;
use crate::AppState;
use crate::service::customers::{CreateCustomer, CustomerPage, FindCustomer};
use crate::service::owned_customer;
use crate::service::render::{self, CustomerView};

/// Header carrying the continuation token of a customer list.
pub const CONTINUATION_HEADER: &str = "MS-ContinuationToken";

/// Creates a customer of the calling partner.
///
/// Accepts the documented body with PascalCase or camelCase keys and explicit nulls;
/// `companyProfile.domain` is required and unique among the partner's customers.
#[utoipa::path(
    post,
    path = "/v1/customers",
    tag = "customers",
    request_body = CustomerCreateBody,
    responses((status = 201, description = "The new customer", body = Customer)),
    security(("bearer" = []))
)]
pub async fn create_customer(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    query: axum::extract::RawQuery,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let reply = state
        .write_idempotent(
            &ctx,
            caller.tenant_id,
            "POST",
            "/v1/customers".to_owned(),
            query.0.as_deref(),
            &body.raw,
            || {
                Ok(CreateCustomer {
                    partner: caller.tenant_id,
                    customer: NewCustomer::parse(&body.value)?,
                    now: state.clock.now(),
                })
            },
        )
        .await?;
    Ok(reply_response(reply))
}

fn encode_continuation(seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("pcq1:{seq}"))
}

fn decode_continuation(token: &str) -> Result<i64, ApiFault> {
    URL_SAFE_NO_PAD
        .decode(token.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("pcq1:").and_then(|n| n.parse::<i64>().ok()))
        .filter(|n| *n >= 0)
        .ok_or_else(ApiFault::invalid_continuation_token)
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
        ("size" = Option<u32>, Query, description = "Page size (1 to the configured maximum, default 100)"),
        ("seekOperation" = Option<String>, Query, description = "`Next` when following a continuation token"),
        ("MS-ContinuationToken" = Option<String>, Header, description = "Continuation token from the previous page"),
    ),
    responses((status = 200, description = "A page of customers", body = Collection<Customer>)),
    security(("bearer" = []))
)]
pub async fn list_customers(
    State(state): State<AppState>,
    Caller(caller): Caller,
    query: QueryParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let paging = &state.config.paging;
    let size = match query.get("size") {
        None => paging.default_size,
        Some(raw) => raw
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=paging.max_size).contains(n))
            .ok_or_else(|| {
                ApiFault::invalid_input(format!(
                    "The size '{}' is not valid; use an integer from 1 to {}.",
                    raw.chars().take(40).collect::<String>(),
                    paging.max_size
                ))
                .with_param("field", "size")
            })?,
    };
    let after_seq = match headers.get(CONTINUATION_HEADER).map(|v| v.to_str()) {
        None => 0,
        Some(Ok(token)) if token.trim().is_empty() => 0,
        Some(Ok(token)) => decode_continuation(token)?,
        Some(Err(_)) => return Err(ApiFault::invalid_continuation_token().into()),
    };

    let (rows, more) = state
        .store
        .read(CustomerPage {
            partner: caller.tenant_id,
            after_seq,
            size: i64::from(size),
        })
        .await?;
    let continuation = more
        .then(|| rows.last().map(|r| encode_continuation(r.seq)))
        .flatten();
    let self_uri = format!("/v1/customers?size={size}");
    let collection = Collection {
        total_count: rows.len() as u64,
        items: rows
            .iter()
            .map(|r| render::customer(r, CustomerView::ListItem))
            .collect(),
        links: Links {
            next: continuation.as_ref().map(|token| Link {
                uri: format!("{self_uri}&seekOperation=Next"),
                method: "GET".to_owned(),
                headers: vec![LinkHeader {
                    key: CONTINUATION_HEADER.to_owned(),
                    value: token.clone(),
                }],
            }),
            self_link: Link::get(self_uri),
        },
        continuation_token: continuation,
        attributes: Attributes::of("Collection"),
    };
    Ok(json_response(
        axum::http::StatusCode::OK,
        serde_json::to_vec(&collection).unwrap_or_default(),
    ))
}

/// Gets one of the calling partner's customers.
#[utoipa::path(
    get,
    path = "/v1/customers/{customer_tenant_id}",
    tag = "customers",
    params(("customer_tenant_id" = String, Path, description = "The customer's tenant id (GUID, braces allowed)")),
    responses((status = 200, description = "The customer", body = Customer)),
    security(("bearer" = []))
)]
pub async fn get_customer(
    State(state): State<AppState>,
    Caller(caller): Caller,
    CustomerId(id): CustomerId,
) -> Result<Response, ApiError> {
    let row = state.store.read(FindCustomer(id)).await?;
    let customer = owned_customer(row, caller.tenant_id, id)?;
    Ok(json_response(
        axum::http::StatusCode::OK,
        serde_json::to_vec(&render::customer(&customer, CustomerView::Detail)).unwrap_or_default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_tokens_round_trip_and_reject_junk() {
        assert_eq!(decode_continuation(&encode_continuation(42)).unwrap(), 42);
        for junk in ["", "abc", "cGNxMTotMQ", "!!!"] {
            assert!(decode_continuation(junk).is_err(), "{junk}");
        }
    }
}
