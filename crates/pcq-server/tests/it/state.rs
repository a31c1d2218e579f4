//! State snapshots: a dump, a reset and a load of the dump leave every API read as it was; a
//! partner's dump and load touch only that partner; a document that is not valid is refused
//! with the JSON path of the problem and changes nothing.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{Partner, TestApp, assert_fault, backend_tests, gcc, ok, status_json};

fn state_path(partner: Option<Uuid>) -> String {
    match partner {
        Some(p) => format!("/_pcq/admin/state?partner={p}"),
        None => "/_pcq/admin/state".to_owned(),
    }
}

/// The state document, as text.
async fn dump(app: &TestApp, partner: Option<Uuid>) -> String {
    let resp = app.fetch(&state_path(partner), &app.admin_token()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.text().await.unwrap()
}

/// PUTs a document; answers the status and body.
async fn load(
    app: &TestApp,
    partner: Option<Uuid>,
    document: impl Into<reqwest::Body>,
) -> (StatusCode, Value) {
    let resp = app
        .req(Method::PUT, &state_path(partner), &app.admin_token())
        .header("Content-Type", "application/json")
        .body(document)
        .send()
        .await
        .unwrap();
    status_json(resp).await
}

async fn reset(app: &TestApp, partner: Option<Uuid>) {
    let path = match partner {
        Some(p) => format!("/_pcq/admin/reset?partner={p}"),
        None => "/_pcq/admin/reset".to_owned(),
    };
    let _: Value = ok(app
        .send(Method::POST, &path, &app.admin_token(), None)
        .await)
    .await;
}

/// What a partner has, for building its reads.
struct Populated {
    partner: Partner,
    customers: Vec<Uuid>,
    correlation: String,
    /// An idempotent request (path, body, request id) and its answer.
    retry: (String, Value, String, Value),
}

/// Gives `partner` every kind of data: qualifications in review, approved, denied and asked for
/// again (two rounds), a GCC code with creates used, audit records, a webhook registration
/// with deliveries and failed attempts, a validation event, and idempotency records.
async fn populate(app: &TestApp, partner: Partner, tag: &str) -> Populated {
    let reviewer = app.reviewer_token();
    let code = app.issue_code(&partner, 3).await;
    app.register_webhook(
        &partner,
        "http://127.0.0.1:9/hook",
        &["test-created", "customer-qualification-updated"],
    )
    .await;
    let in_review = app
        .request_education(&partner, &format!("review-{tag}.example.edu"))
        .await;
    let approved = app
        .request_education(&partner, &format!("approved-{tag}.example.edu"))
        .await;
    let decide = |customer: Uuid, body: Value| {
        let reviewer = reviewer.clone();
        async move {
            let resp = app
                .send_post(
                    &format!("/_pcq/review/customers/{customer}/qualifications/Education/decision"),
                    &reviewer,
                    &body,
                )
                .await;
            assert_eq!(resp.status(), StatusCode::OK);
        }
    };
    decide(approved, json!({"decision": "Approved"})).await;
    let denied = app
        .request_education(&partner, &format!("denied-{tag}.example.edu"))
        .await;
    decide(
        denied,
        json!({"decision": "Denied", "reason": "Not an Academic Domain"}),
    )
    .await;
    let again = app
        .request_education(&partner, &format!("again-{tag}.example.edu"))
        .await;
    decide(
        again,
        json!({"decision": "Denied", "reason": "Not an Education Customer"}),
    )
    .await;
    let resp = app
        .post_qualification(&partner, again, &json!({"qualification": "Education"}))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let gov = app
        .create_customer(&partner, &format!("gov-{tag}.example.gov"))
        .await;
    let request_id = Uuid::new_v4().to_string();
    let path = format!("/v1/customers/{gov}/qualifications");
    let resp = app
        .post(&path, &partner.user, &gcc(&code))
        .header("MS-RequestId", &request_id)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let answer: Value = resp.json().await.unwrap();
    let correlation = Uuid::new_v4().to_string();
    let resp = app.send_test_event(&partner, Some(&correlation)).await;
    assert!(resp.status().is_success(), "{}", resp.status());
    Populated {
        partner,
        customers: vec![in_review, approved, denied, again, gov],
        correlation,
        retry: (path, gcc(&code), request_id, answer),
    }
}

/// Removes what differs between two equal answers: continuation tokens (sealed with a random
/// nonce), the clock's current time and how long a request has been waiting (which grow as the
/// test runs).
fn normalize(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("continuationToken");
            map.remove("links");
            map.remove("now");
            map.remove("waiting");
            map.values_mut().for_each(normalize);
        }
        Value::Array(items) => items.iter_mut().for_each(normalize),
        _ => {}
    }
}

/// Every GET route of the API, read by whoever may: (route template, path, status, body).
async fn reads(app: &TestApp, partners: &[&Populated]) -> Vec<(String, String, u16, Value)> {
    let admin = app.admin_token();
    let reviewer = app.reviewer_token();
    let mut requests: Vec<(&str, String, String)> = vec![
        (
            "/_pcq/admin/clock",
            "/_pcq/admin/clock".into(),
            admin.clone(),
        ),
        (
            "/_pcq/admin/vetting-policy",
            "/_pcq/admin/vetting-policy".into(),
            admin.clone(),
        ),
        (
            "/_pcq/review/queue",
            "/_pcq/review/queue".into(),
            reviewer.clone(),
        ),
        (
            "/_pcq/review/queue",
            "/_pcq/review/queue?size=1".into(),
            reviewer.clone(),
        ),
        (
            "/_pcq/webhooks/certificate",
            "/_pcq/webhooks/certificate".into(),
            admin.clone(),
        ),
    ];
    for p in partners {
        let token = p.partner.user.clone();
        requests.extend([
            ("/v1/customers", "/v1/customers".into(), token.clone()),
            (
                "/v1/customers",
                "/v1/customers?size=2".into(),
                token.clone(),
            ),
            (
                "/v1/customers/all/validations",
                "/v1/customers/all/validations".into(),
                token.clone(),
            ),
            (
                "/v1/auditrecords",
                "/v1/auditrecords?size=1000".into(),
                token.clone(),
            ),
            (
                "/webhooks/v1/registration",
                "/webhooks/v1/registration".into(),
                token.clone(),
            ),
            (
                "/webhooks/v1/registration/deliveries",
                "/webhooks/v1/registration/deliveries".into(),
                token.clone(),
            ),
            (
                "/webhooks/v1/registration/events",
                "/webhooks/v1/registration/events".into(),
                token.clone(),
            ),
            (
                "/webhooks/v1/registration/validationEvents/{correlation_id}",
                format!(
                    "/webhooks/v1/registration/validationEvents/{}",
                    p.correlation
                ),
                token.clone(),
            ),
        ]);
        for c in &p.customers {
            requests.extend([
                (
                    "/v1/customers/{customer_tenant_id}",
                    format!("/v1/customers/{c}"),
                    token.clone(),
                ),
                (
                    "/v1/customers/{customer_tenant_id}/qualification",
                    format!("/v1/customers/{c}/qualification"),
                    token.clone(),
                ),
                (
                    "/v1/customers/{customer_tenant_id}/qualifications",
                    format!("/v1/customers/{c}/qualifications"),
                    token.clone(),
                ),
                (
                    "/_pcq/customers/{customer_tenant_id}/qualifications/history",
                    format!("/_pcq/customers/{c}/qualifications/history"),
                    reviewer.clone(),
                ),
            ]);
        }
        let records = app.audit(&p.partner, "").await;
        for record in records.iter().take(3) {
            let id = record["id"].as_str().unwrap();
            requests.push((
                "/v1/auditrecords/{audit_record_id}",
                format!("/v1/auditrecords/{id}"),
                token.clone(),
            ));
        }
    }
    let mut out = Vec::new();
    for (route, path, token) in requests {
        let resp = app.fetch(&path, &token).await;
        let status = resp.status();
        let bytes = resp.bytes().await.unwrap();
        let mut body =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(format!("{bytes:?}")));
        normalize(&mut body);
        out.push((route.to_owned(), path, status.as_u16(), body));
    }
    out
}

/// The GET routes of the OpenAPI document that read the store's state. Injected faults are
/// sandbox settings and the request journal a record of traffic, not state: a reset removes
/// them and a document does not hold them.
async fn documented_reads(app: &TestApp) -> BTreeSet<String> {
    let document: Value = ok(app.fetch("/_pcq/openapi.json", "").await).await;
    document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, ops)| ops.get("get").is_some())
        .map(|(path, _)| path.clone())
        .filter(|path| {
            !matches!(
                path.as_str(),
                "/_pcq/health"
                    | "/_pcq/ready"
                    | "/_pcq/metrics"
                    | "/_pcq/admin/state"
                    | "/_pcq/admin/faults"
                    | "/_pcq/admin/requests"
            )
        })
        .collect()
}

async fn a_dump_reset_and_load_leave_every_read_as_it_was() {
    let app = TestApp::spawn().await;
    let a = populate(&app, app.partner(), "a").await;
    let b = populate(&app, app.partner(), "b").await;
    app.advance("2d").await;
    app.set_policy(json!({"policy": "manual"})).await;
    app.drain().await;
    let before = reads(&app, &[&a, &b]).await;
    let covered: BTreeSet<String> = before.iter().map(|r| r.0.clone()).collect();
    assert_eq!(covered, documented_reads(&app).await);
    // The reads saw the state: deliveries with failed attempts, both rounds, a code used.
    let text = serde_json::to_string(&before).unwrap();
    for seen in ["InReview", "Approved", "Denied", "\"round\":2"] {
        assert!(text.contains(seen), "{seen} in {text}");
    }

    let document = dump(&app, None).await;
    let parsed: Value = serde_json::from_str(&document).unwrap();
    assert_eq!(parsed["format"], "pcq-state/1");
    assert_eq!(parsed["clock"]["offsetMicros"], 172_800_000_000i64);
    assert_eq!(
        parsed["vettingPolicy"]["policy"], "manual",
        "{}",
        parsed["vettingPolicy"]
    );
    assert!(!parsed["webhookAttempts"].as_array().unwrap().is_empty());
    assert!(!parsed["idempotencyRecords"].as_array().unwrap().is_empty());
    assert!(!parsed["vettingJobs"].as_array().unwrap().is_empty());
    for key in [
        "dev_issuer",
        "signing_key",
        "continuation_token",
        "PRIVATE KEY",
    ] {
        assert!(!document.contains(key), "{key} in the dump");
    }

    reset(&app, None).await;
    assert_eq!(app.customer_count(&a.partner).await, 0);
    let (status, answer) = load(&app, None, document.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["format"], "pcq-state/1");
    assert_eq!(answer["loaded"]["customers"], 10, "{answer}");
    assert_eq!(
        answer["loaded"]["webhookAttempts"],
        parsed["webhookAttempts"].as_array().unwrap().len(),
        "{answer}"
    );
    assert_eq!(reads(&app, &[&a, &b]).await, before);
    // Dumped again, the document is the same.
    assert_eq!(dump(&app, None).await, document);

    // A retry of a request answered before the load is answered from its stored record (a
    // new request would be refused: the customer has GCC already).
    let (path, body, request_id, answer) = &a.retry;
    let resp = app
        .post(path, &a.partner.user, body)
        .header("MS-RequestId", request_id)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(&resp.json::<Value>().await.unwrap(), answer);
    assert_eq!(dump(&app, None).await, document);

    // The restored state goes on: a decision on a restored request in review.
    let resp = app
        .send_post(
            &format!(
                "/_pcq/review/customers/{}/qualifications/Education/decision",
                a.customers[0]
            ),
            &app.reviewer_token(),
            &json!({"decision": "Approved"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

async fn a_partner_dump_and_load_leave_other_partners_alone() {
    let app = TestApp::spawn().await;
    let a = populate(&app, app.partner(), "a").await;
    let b = populate(&app, app.partner(), "b").await;
    app.advance("1d").await;
    app.drain().await;
    let before_a = reads(&app, &[&a]).await;
    let before_b = reads(&app, &[&b]).await;

    let document = dump(&app, Some(a.partner.tenant)).await;
    let parsed: Value = serde_json::from_str(&document).unwrap();
    assert_eq!(parsed["partner"], a.partner.tenant.to_string());
    assert!(parsed.get("clock").is_none() && parsed.get("vettingPolicy").is_none());
    assert!(!document.contains(&b.partner.tenant.to_string()));
    assert_eq!(parsed["customers"].as_array().unwrap().len(), 5);

    // Another partner's rows are refused in a partner's load, and nothing changes.
    let (status, answer) = load(&app, Some(b.partner.tenant), document.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let description = answer["description"].as_str().unwrap();
    assert!(
        description.contains("customers[0].partnerTenantId"),
        "{description}"
    );
    assert_eq!(reads(&app, &[&b]).await, before_b);

    reset(&app, Some(a.partner.tenant)).await;
    app.create_customer(&a.partner, "added-after.example.edu")
        .await;
    let (status, answer) = load(&app, Some(a.partner.tenant), document.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["removed"]["customers"], 1, "{answer}");
    assert_eq!(answer["loaded"]["customers"], 5, "{answer}");
    assert_eq!(reads(&app, &[&a]).await, before_a);
    assert_eq!(reads(&app, &[&b]).await, before_b);
    assert_eq!(dump(&app, Some(a.partner.tenant)).await, document);
    // The clock stayed where it was.
    let clock: Value = ok(app.fetch("/_pcq/admin/clock", &app.admin_token()).await).await;
    assert_eq!(clock["offsetSeconds"], 86_400, "{clock}");
}

async fn documents_that_are_not_valid_are_refused_with_their_path() {
    let app = TestApp::spawn().await;
    let a = populate(&app, app.partner(), "a").await;
    let b = app.partner();
    app.drain().await;
    let document = dump(&app, None).await;
    let good: Value = serde_json::from_str(&document).unwrap();
    let customer_id = good["customers"][0]["id"].clone();

    let changed = |change: &dyn Fn(&mut Value)| {
        let mut doc = good.clone();
        change(&mut doc);
        doc.to_string()
    };
    let cases: Vec<(Option<Uuid>, String, &str)> = vec![
        (
            None,
            "{\"format\": \"pcq-state/1\", \"customers\": [".into(),
            "line 1",
        ),
        (None, "not json".into(), "not valid JSON"),
        (
            None,
            changed(&|d| d["format"] = json!("pcq-state/9")),
            "format: pcq does not know the format \"pcq-state/9\"",
        ),
        (
            None,
            changed(&|d| d["customers"][1]["companyProfile"] = json!("school")),
            "customers[1].companyProfile: invalid type",
        ),
        (
            None,
            changed(&|d| {
                d["customers"][2].as_object_mut().unwrap().remove("domain");
            }),
            "customers[2]: missing field `domain`",
        ),
        (
            None,
            changed(&|d| d["customers"][1]["id"] = customer_id.clone()),
            "customers[1].id: the customer",
        ),
        (
            None,
            changed(&|d| d["qualifications"][0]["customerId"] = json!(Uuid::new_v4())),
            "qualifications[0].customerId: the customer",
        ),
        (
            None,
            changed(&|d| d["qualifications"][0]["vettingStatus"] = json!("Maybe")),
            "qualifications[0].vettingStatus",
        ),
        (
            None,
            changed(&|d| d["webhookAttempts"][0]["deliveryId"] = json!(Uuid::new_v4())),
            "webhookAttempts[0].deliveryId",
        ),
        (
            None,
            changed(&|d| {
                d.as_object_mut().unwrap().remove("format");
            }),
            "format: missing",
        ),
        (
            Some(b.tenant),
            changed(&|d| {
                let o = d.as_object_mut().unwrap();
                o.remove("clock");
                o.remove("vettingPolicy");
            }),
            // (Keys in the order serde_json's map sorts them.)
            "auditRecords[0].partnerTenantId",
        ),
        (
            None,
            dump(&app, Some(a.partner.tenant)).await,
            "partner: the document holds the data of the partner",
        ),
        (
            None,
            "{\"partners\": [{\"tenantId\": \"nope\"}]}".into(),
            "partners[0].tenantId",
        ),
    ];
    for (partner, body, expected) in cases {
        let (status, answer) = load(&app, partner, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{expected}: {answer}");
        let description = answer["description"].as_str().unwrap_or_default();
        assert!(
            description.contains(expected),
            "{expected:?} not in {description:?}"
        );
        assert_eq!(dump(&app, None).await, document, "after {expected}");
    }
    assert_eq!(app.customer_count(&a.partner).await, 5);
}

async fn the_state_controls_need_the_admin_role_and_a_guid() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    app.create_customer(&partner, "kept.example.edu").await;
    for token in [&partner.user, &app.reviewer_token()] {
        let resp = app.fetch("/_pcq/admin/state", token).await;
        assert_fault(resp, 403, 900150).await;
        let resp = app
            .req(Method::PUT, "/_pcq/admin/state", token)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_fault(resp, 403, 900150).await;
    }
    let resp = app
        .fetch("/_pcq/admin/state?partner=nope", &app.admin_token())
        .await;
    let fault = assert_fault(resp, 400, 800002).await;
    assert!(fault.description.contains("nope"), "{}", fault.description);
    assert_eq!(app.customer_count(&partner).await, 1);
}

async fn a_seed_file_is_loaded_in_place_of_the_state() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    app.create_customer(&partner, "gone.example.edu").await;
    app.advance("1d").await;
    let seed = json!({"partners": [{"tenantId": partner.tenant.to_string(), "customers": [
        {"companyProfile": {"domain": "seeded.example.edu"},
         "qualifications": [{"qualification": "Education", "vettingStatus": "Approved"}]}
    ], "validationCodes": [{"validationId": "700001", "organizationName": "Seeded", "maxCreates": 2}]}]});
    let (status, answer) = load(&app, None, seed.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["format"], "seed");
    assert_eq!(answer["loaded"]["customers"], 1, "{answer}");
    assert_eq!(answer["removed"]["customers"], 1, "{answer}");
    let page: Value = ok(app.fetch("/v1/customers", &partner.user).await).await;
    assert_eq!(
        page["items"][0]["companyProfile"]["domain"],
        "seeded.example.edu"
    );
    let clock: Value = ok(app.fetch("/_pcq/admin/clock", &app.admin_token()).await).await;
    assert_eq!(clock["offsetSeconds"], 0, "{clock}");
}

async fn a_load_larger_than_the_limit_is_refused() {
    let app = TestApp::spawn_with(|c| c.limits.max_state_bytes = 4096).await;
    let partner = app.partner();
    app.create_customer(&partner, "kept.example.edu").await;
    let big = format!(
        "{{\"format\": \"pcq-state/1\", \"customers\": [], \"pad\": \"{}\"}}",
        "x".repeat(8192)
    );
    let (status, answer) = load(&app, None, big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(app.customer_count(&partner).await, 1);
    // A document larger than the usual body limit is accepted under the state limit.
    let app = TestApp::spawn_with(|c| c.limits.max_body_bytes = 1024).await;
    let document = dump(&app, None).await;
    let padded = format!("{}{}", document.trim_end(), " ".repeat(4096));
    let (status, answer) = load(&app, None, padded).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

/// On PostgreSQL, where nodes share the store: another node takes up the loaded clock and
/// policy on its next refresh, although the offset went back.
async fn other_nodes_take_up_a_loaded_clock_and_policy() {
    if crate::common::backend() != crate::common::Backend::Postgres {
        return;
    }
    let app = TestApp::spawn().await;
    let mut config = app.state.config.clone();
    config.listen = "127.0.0.1:0".parse().unwrap();
    let other = TestApp::start(config).await;
    app.advance("2d").await;
    let document = dump(&app, None).await;
    app.advance("3d").await;
    app.set_policy(json!({"policy": "immediate"})).await;
    let refresh = || pcq_server::settings::refresh(&other.state.pipeline);
    refresh().await.unwrap();
    assert_eq!(other.state.pipeline.clock.offset_micros(), 432_000_000_000);
    assert!(other.state.pipeline.policy.is_overridden());

    let (status, answer) = load(&other, None, document).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(other.state.pipeline.clock.offset_micros(), 172_800_000_000);
    pcq_server::settings::refresh(&app.state.pipeline)
        .await
        .unwrap();
    assert_eq!(app.state.pipeline.clock.offset_micros(), 172_800_000_000);
    assert!(!app.state.pipeline.policy.is_overridden());
}

/// A document with more rows of each kind than a dump reads at once (1,000): every kind pages
/// through its keys (single, pairs, the idempotency key's four columns) without losing,
/// repeating or looping over a row.
async fn large_documents_page_through_every_kind() {
    let app = TestApp::spawn().await;
    let partner = Uuid::new_v4();
    let delivery = Uuid::new_v4();
    let n = 2_500;
    let mut customers = Vec::new();
    let mut jobs = Vec::new();
    let mut codes = Vec::new();
    let mut attempts = Vec::new();
    let mut idempotency = Vec::new();
    for i in 0..n {
        let id = Uuid::new_v4();
        customers.push(json!({"id": id, "partnerTenantId": partner, "commerceId": Uuid::new_v4(),
            "domain": format!("c{i}.example.edu"), "companyName": null, "companyProfile": {},
            "billingProfile": null, "billingProfileId": Uuid::new_v4(), "createdAt": 1_700_000_000_000_000i64 + i}));
        jobs.push(
            json!({"customerId": id, "qualification": "Education", "round": 1,
            "partnerTenantId": partner, "createdAt": 1_700_000_000_000_000i64, "reads": 0}),
        );
        codes.push(
            json!({"validationId": format!("{}", 100_000 + i), "partnerTenantId": partner,
            "organizationName": "Org", "maxCreates": 2, "remainingCreates": 1, "etag": "e",
            "createdAt": 1, "updatedAt": 1}),
        );
        attempts.push(
            json!({"deliveryId": delivery, "attempt": i + 1, "at": 1, "responseCode": 500,
            "responseMessage": "no", "systemError": false}),
        );
        idempotency.push(json!({"partnerTenantId": partner, "requestId": format!("r{}", i % 7),
            "method": if i % 2 == 0 { "POST" } else { "PUT" }, "route": format!("/v1/customers/{i}"),
            "fingerprint": "f", "status": 201, "body": "{}", "createdAt": 1}));
    }
    let document = json!({
        "format": "pcq-state/1",
        "customers": customers,
        "validationCodes": codes,
        "vettingJobs": jobs,
        "webhookDeliveries": [{"id": delivery, "partnerTenantId": partner, "eventName": "test-created",
            "payload": "{}", "webhookUrl": "http://127.0.0.1:9/hook", "correlationId": null,
            "status": "failed", "attempts": n, "nextAttemptAt": 1, "createdAt": 1, "finishedAt": 2}],
        "webhookAttempts": attempts,
        "idempotencyRecords": idempotency,
    });
    let (status, answer) = load(&app, None, document.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let first = dump(&app, None).await;
    let parsed: Value = serde_json::from_str(&first).unwrap();
    for kind in [
        "customers",
        "validationCodes",
        "vettingJobs",
        "webhookAttempts",
        "idempotencyRecords",
    ] {
        let rows = parsed[kind].as_array().unwrap();
        assert_eq!(rows.len(), n as usize, "{kind}");
        let distinct: BTreeSet<String> = rows.iter().map(Value::to_string).collect();
        assert_eq!(distinct.len(), n as usize, "{kind}");
    }
    reset(&app, None).await;
    let (status, answer) = load(&app, None, first.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(dump(&app, None).await, first);
}

backend_tests!(
    large_documents_page_through_every_kind,
    other_nodes_take_up_a_loaded_clock_and_policy,
    a_dump_reset_and_load_leave_every_read_as_it_was,
    a_partner_dump_and_load_leave_other_partners_alone,
    documents_that_are_not_valid_are_refused_with_their_path,
    the_state_controls_need_the_admin_role_and_a_guid,
    a_seed_file_is_loaded_in_place_of_the_state,
    a_load_larger_than_the_limit_is_refused,
);
