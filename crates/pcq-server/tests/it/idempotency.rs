//! `MS-RequestId` as the idempotency key of POST and PUT: a retry returns the first answer and
//! changes nothing, sequentially, concurrently and across a restart; the same id with another
//! body is a 409.

use crate::common::{Partner, TestApp, assert_fault, gcc, status_json};
use pcq_core::Qualification;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

async fn send(
    app: &TestApp,
    token: &str,
    path: &str,
    request_id: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let resp = app
        .post(path, token, body)
        .header("MS-RequestId", request_id)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["ms-requestid"], request_id);
    status_json(resp).await
}

/// A validation code allowing `max_creates` for `partner`, a customer at `domain`, and the
/// customer's qualifications path with a GovernmentCommunityCloud request using the code.
async fn gcc_request(
    app: &TestApp,
    partner: &Partner,
    max_creates: i64,
    domain: &str,
) -> (Uuid, String, Value) {
    let code = app.issue_code(partner, max_creates).await;
    let customer = app.create_customer(partner, domain).await;
    let path = format!("/v1/customers/{customer}/qualifications");
    let body = gcc(&code);
    (customer, path, body)
}

/// The legacy PUT of StateOwnedEntity, with the request id `legacy-before-restart`.
async fn legacy_put(app: &TestApp, partner: &Partner, customer: Uuid) -> Response {
    app.req(
        Method::PUT,
        &format!("/v1/customers/{customer}/qualification"),
        &partner.user,
    )
    .header("MS-RequestId", "legacy-before-restart")
    .json(&json!("StateOwnedEntity"))
    .send()
    .await
    .unwrap()
}

async fn a_retried_gcc_request_uses_one_create_and_returns_the_first_answer() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let (customer, path, body) = gcc_request(&app, &partner, 5, "retry.example.gov").await;
    let first = send(
        &app,
        &partner.user,
        &path,
        "5d3c6a5e-0000-4000-8000-000000000001",
        &body,
    )
    .await;
    assert_eq!(first.0, StatusCode::CREATED);
    for _ in 0..3 {
        assert_eq!(
            send(
                &app,
                &partner.user,
                &path,
                "5d3c6a5e-0000-4000-8000-000000000001",
                &body
            )
            .await,
            first
        );
    }
    assert_eq!(app.codes(&partner).await[0].remaining_creates, 4);
    assert_eq!(app.qualifications(&partner, customer).await.len(), 1);

    // Without a request id (or with a new one) the same body is a new request: 409 this time.
    let resp = app.send_post(&path, &partner.user, &body).await;
    assert_fault(resp, 409, 950409).await;
    let (status, _) = send(
        &app,
        &partner.user,
        &path,
        "5d3c6a5e-0000-4000-8000-000000000002",
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(app.codes(&partner).await[0].remaining_creates, 4);
}

async fn a_retried_customer_create_makes_one_customer() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let body = json!({"CompanyProfile": {"Domain": "once.example.com"}});
    let first = send(&app, &partner.app, "/v1/customers", "create-once", &body).await;
    assert_eq!(first.0, StatusCode::CREATED);
    let again = send(&app, &partner.app, "/v1/customers", "create-once", &body).await;
    assert_eq!(again, first, "same id, same body");
    let (_, list) = status_json(app.fetch("/v1/customers", &partner.app).await).await;
    assert_eq!(list["totalCount"], 1);
}

async fn the_same_id_with_another_body_is_409_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let customer = app.create_customer(&partner, "reuse.example.edu").await;
    let path = format!("/v1/customers/{customer}/qualifications");
    let (status, _) = send(
        &app,
        &partner.user,
        &path,
        "reused-id",
        &json!({"qualification": "Education"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, fault) = send(
        &app,
        &partner.user,
        &path,
        "reused-id",
        &json!({"qualification": "StateOwnedEntity"}),
    )
    .await;
    assert_eq!(
        (status, fault["code"].as_u64()),
        (StatusCode::CONFLICT, Some(950409))
    );
    assert_eq!(fault["errorName"], "RequestIdReused");
    let quals = app.qualifications(&partner, customer).await;
    assert_eq!(quals.len(), 1);
    assert_eq!(quals[0].qualification, Qualification::Education);
    // The ?code= query is part of the request too.
    let (status, _) = send(
        &app,
        &partner.user,
        &format!("{path}?code=1"),
        "reused-id",
        &json!({"qualification": "Education"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

async fn business_failures_are_replayed_too() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let customer = app
        .create_customer(&partner, "fail-replay.example.gov")
        .await;
    let path = format!("/v1/customers/{customer}/qualifications");
    let body = gcc("424242");
    let first = send(&app, &partner.user, &path, "fails-once", &body).await;
    assert_eq!(first.0, StatusCode::BAD_REQUEST);
    // The code appears afterwards; the retry still gets the stored answer.
    app.send_post(
        &format!("/_pcq/admin/partners/{}/validation-codes", partner.tenant),
        &app.admin_token(),
        &json!({"organizationName": "Late", "validationId": "424242"}),
    )
    .await;
    assert_eq!(
        send(&app, &partner.user, &path, "fails-once", &body).await,
        first
    );
    assert_eq!(app.qualifications(&partner, customer).await, []);
}

async fn keys_are_per_partner_and_per_route() {
    let app = TestApp::spawn().await;
    let a = app.partner();
    let b = app.partner();
    let body_a = json!({"companyProfile": {"domain": "a.example.com"}});
    let body_b = json!({"companyProfile": {"domain": "b.example.com"}});
    let (sa, ca) = send(&app, &a.user, "/v1/customers", "shared-id", &body_a).await;
    let (sb, cb) = send(&app, &b.user, "/v1/customers", "shared-id", &body_b).await;
    assert_eq!((sa, sb), (StatusCode::CREATED, StatusCode::CREATED));
    assert_ne!(ca["id"], cb["id"]);
    // The same id on another route is another request.
    let customer = ca["id"].as_str().unwrap();
    let (status, _) = send(
        &app,
        &a.user,
        &format!("/v1/customers/{customer}/qualifications"),
        "shared-id",
        &json!({"qualification": "StateOwnedEntity"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
}

async fn sixteen_concurrent_retries_have_one_effect_and_one_answer() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let (_, path, body) = gcc_request(&app, &partner, 10, "storm.example.gov").await;
    let answers = futures_util::future::join_all(
        (0..16).map(|_| send(&app, &partner.user, &path, "storm-id", &body)),
    )
    .await;
    assert_eq!(answers[0].0, StatusCode::CREATED);
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    assert_eq!(app.codes(&partner).await[0].remaining_creates, 9);

    let create = json!({"companyProfile": {"domain": "storm2.example.com"}});
    let creates = futures_util::future::join_all((0..16).map(|_| {
        send(
            &app,
            &partner.user,
            "/v1/customers",
            "storm-create",
            &create,
        )
    }))
    .await;
    assert!(
        creates
            .iter()
            .all(|a| *a == creates[0] && a.0 == StatusCode::CREATED)
    );
    assert_eq!(app.customer_count(&partner).await, 2);
}

async fn retries_after_a_restart_return_the_first_answer() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let (customer, path, body) = gcc_request(&app, &partner, 3, "restart.example.gov").await;
    let first = send(&app, &partner.user, &path, "before-restart", &body).await;
    assert_eq!(first.0, StatusCode::CREATED);
    let legacy = legacy_put(&app, &partner, customer).await;
    assert_eq!(legacy.status(), StatusCode::OK);

    let app = app.restart().await;
    assert_eq!(
        send(&app, &partner.user, &path, "before-restart", &body).await,
        first
    );
    let replay = legacy_put(&app, &partner, customer).await;
    assert_eq!(
        status_json(replay).await,
        (StatusCode::OK, json!("StateOwnedEntity"))
    );
    assert_eq!(app.codes(&partner).await[0].remaining_creates, 2);
    assert_eq!(app.qualifications(&partner, customer).await.len(), 2);
    // The data itself survived the restart, of course.
    let (status, got) = status_json(
        app.fetch(&format!("/v1/customers/{customer}"), &partner.user)
            .await,
    )
    .await;
    assert_eq!(
        (status, got["companyProfile"]["domain"].as_str()),
        (StatusCode::OK, Some("restart.example.gov"))
    );
}

/// The answer is replayed even when the retry would now be rejected before reaching the store
/// (here because the node restarted with the 2023 contract).
async fn retries_get_the_first_answer_even_after_a_configuration_change() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let customer = app
        .create_customer(&partner, "config-change.example.edu")
        .await;
    let path = format!("/v1/customers/{customer}/qualifications");
    let body = json!({"qualification": "Education"});
    let first = send(&app, &partner.user, &path, "before-2023", &body).await;
    assert_eq!(first.0, StatusCode::CREATED);

    let app = app
        .restart_with(|c| c.contract = pcq_core::Contract::V2023)
        .await;
    assert_eq!(
        send(&app, &partner.user, &path, "before-2023", &body).await,
        first
    );
    // A new request is judged by the new contract, and a reused id with another body is a 409.
    let (status, fault) = send(&app, &partner.user, &path, "after-2023", &body).await;
    assert_eq!(
        (status, fault["errorName"].as_str()),
        (StatusCode::BAD_REQUEST, Some("EducationSegmentRequired"))
    );
    let (status, _) = send(
        &app,
        &partner.user,
        &path,
        "before-2023",
        &json!({"qualification": "Nonprofit"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

crate::common::backend_tests!(
    a_retried_gcc_request_uses_one_create_and_returns_the_first_answer,
    a_retried_customer_create_makes_one_customer,
    the_same_id_with_another_body_is_409_and_changes_nothing,
    business_failures_are_replayed_too,
    keys_are_per_partner_and_per_route,
    sixteen_concurrent_retries_have_one_effect_and_one_answer,
    retries_after_a_restart_return_the_first_answer,
    retries_get_the_first_answer_even_after_a_configuration_change,
);
