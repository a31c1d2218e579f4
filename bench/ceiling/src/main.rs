//! `pcq-ceiling`: what the machine can do at most for the routes `bench/run` measures.
//!
//! A minimal axum server on the same runtime as pcq (tokio's multi-threaded scheduler, one worker
//! per CPU) that answers the benchmarked routes with fixed JSON: no authentication, no parsing of
//! the body beyond reading it, no storage. The answers are the ones pcq gives in the benchmark
//! (`bench/fixtures/`), so both send the same bytes of body. Driven by the same wrk command as
//! pcq, its throughput is the ceiling pcq's figures are compared with.
//!
//! Usage: `pcq-ceiling [ADDRESS]` (default `127.0.0.1:0`); it prints
//! `pcq-ceiling listening on http://ADDRESS` once it accepts connections.

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};

/// `GET /v1/customers/{id}/qualifications`: a customer's qualifications.
const QUALIFICATIONS: &str = include_str!("../../fixtures/qualifications.json");
/// `POST /v1/customers/{id}/qualifications`: the new qualification.
const QUALIFICATION_CREATED: &str = include_str!("../../fixtures/qualification-created.json");
/// `POST /v1/customers`: the new customer.
const CUSTOMER_CREATED: &str = include_str!("../../fixtures/customer-created.json");

/// A fixed JSON answer.
fn json(status: StatusCode, body: &'static str) -> impl IntoResponse {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.trim_end(),
    )
}

/// The routes `bench/run` drives, answered with fixed JSON. POST handlers take the body so that
/// it is read, as a real service must.
fn router() -> Router {
    Router::new()
        .route(
            "/v1/customers/{customer}/qualifications",
            get(|| async { json(StatusCode::OK, QUALIFICATIONS) })
                .post(|_body: Bytes| async { json(StatusCode::CREATED, QUALIFICATION_CREATED) }),
        )
        .route(
            "/v1/customers",
            post(|_body: Bytes| async { json(StatusCode::CREATED, CUSTOMER_CREATED) }),
        )
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    pcq_ceiling::serve("pcq-ceiling", runtime, router())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    async fn call(method: &str, uri: &str) -> (StatusCode, String) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"qualification":"StateOwnedEntity"}"#))
            .expect("a valid request");
        let response = router().oneshot(request).await.expect("an answer");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn answers_the_benchmarked_routes_with_the_fixtures() {
        let customer = "/v1/customers/b0000000-0000-4000-8000-000000000000/qualifications";
        assert_eq!(
            call("GET", customer).await,
            (StatusCode::OK, QUALIFICATIONS.trim_end().to_owned())
        );
        assert_eq!(
            call("POST", customer).await,
            (
                StatusCode::CREATED,
                QUALIFICATION_CREATED.trim_end().to_owned()
            )
        );
        assert_eq!(
            call("POST", "/v1/customers").await,
            (StatusCode::CREATED, CUSTOMER_CREATED.trim_end().to_owned())
        );
        assert_eq!(call("GET", "/v1/other").await.0, StatusCode::NOT_FOUND);
    }

    #[test]
    fn the_fixtures_are_json() {
        for fixture in [QUALIFICATIONS, QUALIFICATION_CREATED, CUSTOMER_CREATED] {
            let parsed: Result<serde_json::Value, _> = serde_json::from_str(fixture);
            assert!(parsed.is_ok(), "{fixture}: {parsed:?}");
        }
    }
}
