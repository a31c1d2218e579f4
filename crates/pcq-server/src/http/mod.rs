//! The HTTP API: routes, middleware and the OpenAPI document.

pub mod admin;
pub mod audit;
pub mod context;
pub mod customers;
pub mod extract;
pub mod fault;
pub mod faults;
pub mod journal;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod paging;
pub mod qualifications;
pub mod review;
pub mod state;
pub mod throttle;
pub mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// The OpenAPI document of every route pcq serves, with the default configuration's limits.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes_and_document(crate::config::Config::defaults().paging.max_size).1
}

fn api_routes_and_document(max_page_size: u32) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, mut api) = api_routes().split_for_parts();
    utoipa::Modify::modify(&openapi::CommonParts, &mut api);
    utoipa::Modify::modify(&openapi::PageSizeLimit(max_page_size), &mut api);
    (routes, api)
}

fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(
            customers::create_customer,
            customers::list_customers
        ))
        .routes(routes!(customers::get_customer))
        .routes(routes!(
            qualifications::create_qualification,
            qualifications::get_qualifications
        ))
        .routes(routes!(
            qualifications::get_legacy_qualification,
            qualifications::put_legacy_qualification
        ))
        .routes(routes!(qualifications::get_validation_codes))
        .routes(routes!(admin::issue_validation_code))
        .routes(routes!(admin::get_clock, admin::advance_clock))
        .routes(routes!(
            admin::get_policy,
            admin::put_policy,
            admin::delete_policy
        ))
        .routes(routes!(admin::drain_worker))
        .routes(routes!(admin::reset))
        .routes(routes!(
            faults::add_fault,
            faults::list_faults,
            faults::clear_faults
        ))
        .routes(routes!(faults::remove_fault))
        .routes(routes!(state::get_state, state::put_state))
        .routes(routes!(journal::list_requests, journal::clear_requests))
        .routes(routes!(audit::list_audit_records))
        .routes(routes!(audit::get_audit_record))
        .routes(routes!(review::queue))
        .routes(routes!(review::decide))
        .routes(routes!(review::history))
        .routes(routes!(
            webhooks::create_registration,
            webhooks::get_registration,
            webhooks::update_registration,
            webhooks::delete_registration
        ))
        .routes(routes!(webhooks::list_events))
        .routes(routes!(webhooks::send_validation_event))
        .routes(routes!(webhooks::validation_event_status))
        .routes(routes!(webhooks::delivery_log))
        .routes(routes!(webhooks::certificate))
        .routes(routes!(admin::health))
        .routes(routes!(admin::ready))
        .routes(routes!(metrics::scrape))
}

/// Puts the route template that answered a request on its response, for the metrics and the
/// access log of [`context::request_context`] (outside the router, which sees only the path).
pub(crate) async fn note_route(
    route: axum::extract::MatchedPath,
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let mut response = next.run(request).await;
    response.extensions_mut().insert(route);
    response
}

/// The whole application: routes plus the middleware stack, outermost first:
/// request ids, logging and the request journal (which records the answer every layer below
/// gives), the envelope safety net, the request head size limit, injected faults
/// ([`faults::InjectLayer`]; those scoped to a partner fire in the authenticating extractors),
/// panic catching, the request timeout and the body limit. Throttling happens in the
/// authenticating extractors (see [`throttle`]), once the partner is known.
///
/// The first two wrap the finished router (as the fallback service of an empty one), so they see
/// responses exactly as axum completes them, `Allow` header of a 405 included.
pub fn router(state: AppState) -> Router {
    let (routes, api) = api_routes_and_document(state.config.paging.max_size);
    let document: Arc<[u8]> = openapi::document_json(&api).into_bytes().into();
    let limits = &state.config.limits;
    let inner = routes
        .route(
            "/_pcq/openapi.json",
            get(move || {
                let document = document.clone();
                async move { fault::json_response(StatusCode::OK, document.to_vec()) }
            }),
        )
        .fallback(fault::route_not_found)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            limits.request_timeout(),
            limits::request_timeout,
        ))
        .layer(CatchPanicLayer::new())
        .route_layer(middleware::from_fn(note_route))
        .with_state(state.clone());
    Router::new()
        .merge(crate::console::router(state.clone()))
        .fallback_service(inner)
        .layer(faults::InjectLayer(state.clone()))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limits::check_head_size,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            fault::ensure_envelope,
        ))
        .layer(middleware::from_fn_with_state(
            state,
            context::request_context,
        ))
}
