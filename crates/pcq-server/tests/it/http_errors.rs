//! HTTP-level failures and headers: every error is the envelope with the right status, the
//! Partner Center headers are echoed or generated, and no input produces a 500.

use crate::common::{Backend, TestApp, assert_fault, backend, status_json};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn unknown_routes_are_404_envelopes() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    // `GET /` leads to the web console (tests in `console`).
    for path in [
        "/v1",
        "/v2/customers",
        "/v1/customers/x/y/z",
        "/v1/orders",
        "/_pcq/nope",
    ] {
        let resp = app.fetch(path, &partner.user).await;
        assert!(resp.headers().contains_key("ms-requestid"));
        let fault = assert_fault(resp, 404, 1000).await;
        assert_eq!(fault.source, "pcq");
    }
}

async fn wrong_methods_are_405_with_allow() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let customer = app.create_customer(&partner, "methods.example.com").await;
    let cases = [
        (Method::DELETE, "/v1/customers".to_owned(), "POST"),
        (Method::PUT, format!("/v1/customers/{customer}"), "GET"),
        (
            Method::DELETE,
            format!("/v1/customers/{customer}/qualifications"),
            "POST",
        ),
        (
            Method::PATCH,
            format!("/v1/customers/{customer}/qualification"),
            "PUT",
        ),
        (
            Method::POST,
            "/v1/customers/all/validations".to_owned(),
            "GET",
        ),
    ];
    for (method, path, expected) in cases {
        let resp = app.send(method.clone(), &path, &partner.user, None).await;
        let allow = resp.headers()["allow"].to_str().unwrap().to_owned();
        assert!(allow.contains(expected), "{method} {path}: allow {allow}");
        let fault = assert_fault(resp, 405, 950405).await;
        assert!(fault.description.contains(expected), "{fault:?}");
    }
}

async fn bodies_that_are_not_json_are_400() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let customer = app.create_customer(&partner, "bodies.example.com").await;
    for body in [
        "{",
        "qualification=Education",
        "{\"qualification\": }",
        "[1,2",
        "\u{0}",
    ] {
        let path = format!("/v1/customers/{customer}/qualifications");
        assert_fault(app.send_raw(&path, &partner.user, body).await, 400, 800002).await;
    }
    let resp = app
        .send_raw("/v1/customers", &partner.user, vec![0xffu8, 0xfe, 0x00])
        .await;
    assert_fault(resp, 400, 800002).await;
    assert_eq!(app.qualifications(&partner, customer).await, []);
}

async fn other_media_types_are_415_missing_content_type_is_accepted() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let customer = app.create_customer(&partner, "media.example.com").await;
    let path = format!("/v1/customers/{customer}/qualifications");
    for content_type in [
        "application/x-www-form-urlencoded",
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
    ] {
        let resp = app
            .req(Method::POST, &path, &partner.user)
            .header("Content-Type", content_type)
            .body("{\"qualification\": \"Education\"}")
            .send()
            .await
            .unwrap();
        assert_fault(resp, 415, 950415).await;
    }
    for content_type in ["text/json", "application/json; charset=utf-8"] {
        let customer = app
            .create_customer(&partner, &format!("m{}.example.com", content_type.len()))
            .await;
        let resp = app
            .req(
                Method::POST,
                &format!("/v1/customers/{customer}/qualifications"),
                &partner.user,
            )
            .header("Content-Type", content_type)
            .body("{\"qualification\": \"StateOwnedEntity\"}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED, "{content_type}");
    }
    let resp = app
        .req(Method::POST, &path, &partner.user)
        .body("{\"qualification\": \"StateOwnedEntity\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
}

async fn oversized_bodies_are_413() {
    let app = TestApp::spawn_with(|c| c.limits.max_body_bytes = 4096).await;
    let partner = app.partner();
    let big = json!({"companyProfile": {"domain": "big.example.com"}, "billingProfile": {"note": "x".repeat(10_000)}});
    let resp = app.send_post("/v1/customers", &partner.user, &big).await;
    let fault = assert_fault(resp, 413, 950413).await;
    assert!(fault.description.contains("4096"));
    assert_eq!(app.customer_count(&partner).await, 0);
}

async fn correlation_and_request_ids_are_echoed_or_generated() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let resp = app
        .get("/v1/customers", &partner.user)
        .header("MS-CorrelationId", "b12260fb-82de-4701-a25f-dcd367690645")
        .header("MS-RequestId", "3705fc6d-4127-4a87-bdba-9658f73fe019")
        .header("MS-CV", "ObwhuhD2tUKJoM+Z.1")
        .header("MS-Contract-Version", "v1")
        .header("X-Locale", "en-US")
        .header("MS-PartnerCenter-Application", "pcq tests")
        .header("MS-PartnerCenter-Client", "Partner Center .NET SDK")
        .header("MS-SdkVersion", "3.4.0")
        .header(
            "x-ms-client-request-id",
            "e0a5d5b8-0bd5-4a8b-9d0c-9c1f1a0b6a7e",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["ms-correlationid"],
        "b12260fb-82de-4701-a25f-dcd367690645"
    );
    assert_eq!(
        resp.headers()["ms-requestid"],
        "3705fc6d-4127-4a87-bdba-9658f73fe019"
    );
    assert_eq!(resp.headers()["ms-cv"], "ObwhuhD2tUKJoM+Z.1.0");

    // Generated on success and on errors alike, and fresh each time.
    let mut seen = std::collections::HashSet::new();
    for path in ["/v1/customers", "/nope", "/_pcq/health"] {
        let resp = app.fetch(path, &partner.user).await;
        for name in ["ms-correlationid", "ms-requestid"] {
            let value = resp.headers()[name].to_str().unwrap().to_owned();
            assert!(uuid::Uuid::parse_str(&value).is_ok(), "{name}: {value}");
            assert!(seen.insert(value));
        }
        assert!(resp.headers()["ms-cv"].to_str().unwrap().ends_with(".0"));
    }

    // An unusable request id is refused with the envelope, before anything happens.
    let resp = app
        .post(
            "/v1/customers",
            &partner.user,
            &json!({"companyProfile": {"domain": "ids.example.com"}}),
        )
        .header("MS-RequestId", "x".repeat(200))
        .send()
        .await
        .unwrap();
    assert_fault(resp, 400, 800002).await;
    assert_eq!(app.customer_count(&partner).await, 0);
}

async fn node_endpoints_need_no_token() {
    let app = TestApp::spawn().await;
    let (status, health) =
        status_json(app.anon(Method::GET, "/_pcq/health").send().await.unwrap()).await;
    assert_eq!(
        (status, health["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    assert_eq!(
        health["store"],
        match backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    );
    let (status, ready) =
        status_json(app.anon(Method::GET, "/_pcq/ready").send().await.unwrap()).await;
    assert_eq!(
        (status, ready["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );
    let (status, doc) = status_json(
        app.anon(Method::GET, "/_pcq/openapi.json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["paths"]["/v1/customers/{customer_tenant_id}/qualifications"]["post"].is_object());
}

/// Hostile input of many kinds: never a 500, always an envelope.
async fn hostile_inputs_never_cause_a_server_error() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let customer = app.create_customer(&partner, "hostile.example.com").await;
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let bodies = [
        deep,
        format!("{{\"qualification\": \"{}\"}}", "é".repeat(5000)),
        "{\"qualification\": 1e400}".to_owned(),
        "{\"qualification\": 18446744073709551616}".to_owned(),
        "{\"qualification\": [\"Education\"]}".to_owned(),
        "{\"qualification\": {\"$ne\": 1}}".to_owned(),
        "{\"qualification\": \"Education\\u0000\"}".to_owned(),
        "{\"qualification\": \"Education\", \"website\": {}}".to_owned(),
        "{\"qualification\": \"GovernmentCommunityCloud\", \"validationCode\": \"'; DROP TABLE customers; --\"}".to_owned(),
        "\"\"".to_owned(),
        "null".to_owned(),
        "true".to_owned(),
        "-1".to_owned(),
        "/* comment */ {}".to_owned(),
    ];
    for body in &bodies {
        for path in [
            format!("/v1/customers/{customer}/qualifications"),
            "/v1/customers".to_owned(),
        ] {
            let resp = app.send_raw(&path, &partner.user, body.clone()).await;
            let status = resp.status();
            assert!(
                status.is_client_error(),
                "{path} {}: {status}",
                &body[..body.len().min(60)]
            );
            let (_, envelope) = status_json(resp).await;
            assert!(envelope["code"].is_u64());
        }
    }
    let resp = app
        .send(
            Method::PUT,
            &format!("/v1/customers/{customer}/qualification?code=%FF%FE"),
            &partner.user,
            Some(&json!("GovernmentCommunityCloud")),
        )
        .await;
    assert!(resp.status().is_client_error());
    assert_eq!(app.qualifications(&partner, customer).await, []);
}

crate::common::backend_tests!(
    unknown_routes_are_404_envelopes,
    wrong_methods_are_405_with_allow,
    bodies_that_are_not_json_are_400,
    other_media_types_are_415_missing_content_type_is_accepted,
    oversized_bodies_are_413,
    correlation_and_request_ids_are_echoed_or_generated,
    node_endpoints_need_no_token,
    hostile_inputs_never_cause_a_server_error,
);
