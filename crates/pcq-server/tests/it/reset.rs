//! The sandbox reset: everything (or one partner's data) removed in one transaction, keys kept,
//! clock and policy back to the configured ones, the seed loaded again.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{Partner, TestApp, assert_fault, backend_tests, ok, status_json};

/// POSTs a reset (of one partner when given) and answers its body.
async fn reset(app: &TestApp, partner: Option<Uuid>) -> Value {
    let path = match partner {
        Some(p) => format!("/_pcq/admin/reset?partner={p}"),
        None => "/_pcq/admin/reset".to_owned(),
    };
    ok(app
        .send(Method::POST, &path, &app.admin_token(), None)
        .await)
    .await
}

/// Gives `partner` one of every kind of data: a validation code, customers with a qualification
/// in review and its history, audit records, a webhook registration and a delivery, and an
/// idempotency record.
async fn populate(app: &TestApp, partner: &Partner, tag: &str) -> Vec<Uuid> {
    app.issue_code(partner, 3).await;
    let first = app
        .request_education(partner, &format!("first-{tag}.example.edu"))
        .await;
    let resp = app
        .post(
            "/v1/customers",
            &partner.user,
            &customer_body(&format!("second-{tag}.example.edu")),
        )
        .header("MS-RequestId", Uuid::new_v4().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let second: Value = resp.json().await.unwrap();
    let second: Uuid = second["id"].as_str().unwrap().parse().unwrap();
    app.register_webhook(
        partner,
        "http://127.0.0.1:9/hook",
        &["test-created", "customer-qualification-updated"],
    )
    .await;
    let resp = app.send_test_event(partner, None).await;
    assert!(resp.status().is_success(), "{}", resp.status());
    vec![first, second]
}

fn customer_body(domain: &str) -> Value {
    json!({"companyProfile": {"domain": domain, "companyName": "Contoso"}})
}

/// What `partner` reads through the API.
async fn reads(app: &TestApp, partner: &Partner, customers: &[Uuid]) -> Vec<(u16, Value)> {
    let mut paths = vec![
        "/v1/customers".to_owned(),
        "/v1/customers/all/validations".to_owned(),
        "/v1/auditrecords?size=1000".to_owned(),
        "/webhooks/v1/registration".to_owned(),
        "/webhooks/v1/registration/deliveries".to_owned(),
    ];
    for c in customers {
        paths.push(format!("/v1/customers/{c}"));
        paths.push(format!("/v1/customers/{c}/qualifications"));
    }
    let mut out = Vec::new();
    for path in paths {
        let (status, body) = status_json(app.fetch(&path, &partner.app).await).await;
        out.push((status.as_u16(), body));
    }
    out
}

async fn a_full_reset_empties_every_kind_and_keeps_the_keys() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let customers = populate(&app, &partner, "full").await;
    app.drain().await;
    for fault in [
        json!({"path": "/v1/customers", "status": 503, "partner": partner.tenant.to_string()}),
        json!({"path": "/sample/*", "status": 503}),
    ] {
        let resp = app
            .send_post("/_pcq/admin/faults", &app.admin_token(), &fault)
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED);
    }

    let answer = reset(&app, None).await;
    assert_eq!(answer["partner"], Value::Null);
    assert_eq!(answer["seeded"], false);
    let removed = &answer["removed"];
    assert_eq!(removed["customers"], 2, "{answer}");
    assert_eq!(removed["validationCodes"], 1, "{answer}");
    assert_eq!(removed["webhookRegistrations"], 1, "{answer}");
    assert_eq!(removed["qualifications"], 1, "{answer}");
    assert_eq!(removed["vettingJobs"], 1, "{answer}");
    assert_eq!(removed["faults"], 2, "{answer}");
    let faults: Value = ok(app.fetch("/_pcq/admin/faults", &app.admin_token()).await).await;
    assert_eq!(faults, json!([]));
    for kind in [
        "qualificationHistory",
        "auditRecords",
        "webhookDeliveries",
        "webhookAttempts",
        "idempotencyRecords",
    ] {
        assert!(removed[kind].as_u64().unwrap() >= 1, "{kind}: {answer}");
    }

    // The tokens minted before still work (the keys stayed), and nothing is left to read.
    assert_eq!(app.customer_count(&partner).await, 0);
    assert_eq!(app.audit(&partner, "").await, Vec::<Value>::new());
    assert_eq!(app.codes(&partner).await, []);
    assert_eq!(app.deliveries(&partner).await, Vec::<Value>::new());
    let resp = app.fetch("/webhooks/v1/registration", &partner.app).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = app
        .fetch(&format!("/v1/customers/{}", customers[0]), &partner.user)
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // A second reset finds nothing, and the sandbox is usable again.
    let again = reset(&app, None).await;
    assert!(
        again["removed"]
            .as_object()
            .unwrap()
            .values()
            .all(|n| n == 0),
        "{again}"
    );
    app.create_customer(&partner, "first-full.example.edu")
        .await;
    assert_eq!(app.customer_count(&partner).await, 1);
}

async fn a_full_reset_returns_the_clock_and_the_policy_to_the_configured_ones() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    app.advance("3d").await;
    app.set_policy(json!({"policy": "immediate"})).await;
    reset(&app, None).await;

    let clock: Value = ok(app.fetch("/_pcq/admin/clock", &admin).await).await;
    assert_eq!(clock["offsetSeconds"], 0, "{clock}");
    let policy: Value = ok(app.fetch("/_pcq/admin/vetting-policy", &admin).await).await;
    assert_eq!(policy["source"], "configured", "{policy}");
    assert_eq!(policy["policy"], "manual", "{policy}");

    // What the store holds agrees, so a restarted node (or another node) sees the same.
    let app = app.restart().await;
    let clock: Value = ok(app.fetch("/_pcq/admin/clock", &admin).await).await;
    assert_eq!(clock["offsetSeconds"], 0, "{clock}");
    let policy: Value = ok(app.fetch("/_pcq/admin/vetting-policy", &admin).await).await;
    assert_eq!(policy["source"], "configured", "{policy}");
    // The clock moves forward again from there.
    app.advance("1h").await;
    let clock: Value = ok(app.fetch("/_pcq/admin/clock", &admin).await).await;
    assert_eq!(clock["offsetSeconds"], 3600, "{clock}");
}

async fn a_partner_reset_leaves_other_partners_and_the_settings_alone() {
    let app = TestApp::spawn().await;
    let (a, b) = (app.partner(), app.partner());
    populate(&app, &a, "a").await;
    let b_customers = populate(&app, &b, "b").await;
    app.drain().await;
    app.advance("1d").await;
    app.set_policy(json!({"policy": "immediate"})).await;
    let before = reads(&app, &b, &b_customers).await;
    let admin = app.admin_token();
    for fault in [
        json!({"path": "/sample/a", "status": 503, "partner": a.tenant.to_string()}),
        json!({"path": "/sample/b", "status": 503, "partner": b.tenant.to_string()}),
        json!({"path": "/sample/*", "status": 503}),
    ] {
        let resp = app.send_post("/_pcq/admin/faults", &admin, &fault).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
    }

    let answer = reset(&app, Some(a.tenant)).await;
    assert_eq!(answer["partner"], a.tenant.to_string());
    assert_eq!(answer["removed"]["customers"], 2, "{answer}");
    assert_eq!(answer["removed"]["faults"], 1, "{answer}");
    let faults: Vec<Value> = ok(app.fetch("/_pcq/admin/faults", &admin).await).await;
    let paths: Vec<&str> = faults.iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/sample/b", "/sample/*"]);
    assert_eq!(answer["removed"]["webhookRegistrations"], 1, "{answer}");

    assert_eq!(reads(&app, &b, &b_customers).await, before);
    assert_eq!(app.customer_count(&a).await, 0);
    assert_eq!(app.codes(&a).await, []);
    assert_eq!(app.audit(&a, "").await, Vec::<Value>::new());
    let resp = app.fetch("/webhooks/v1/registration", &a.app).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    let admin = app.admin_token();
    let clock: Value = ok(app.fetch("/_pcq/admin/clock", &admin).await).await;
    assert_eq!(clock["offsetSeconds"], 86_400, "{clock}");
    let policy: Value = ok(app.fetch("/_pcq/admin/vetting-policy", &admin).await).await;
    assert_eq!(policy["source"], "runtime", "{policy}");
}

async fn a_reset_needs_the_admin_role_and_a_guid() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    app.create_customer(&partner, "kept.example.edu").await;
    for token in [&partner.user, &partner.app, &app.reviewer_token()] {
        let resp = app
            .send(Method::POST, "/_pcq/admin/reset", token, None)
            .await;
        let fault = assert_fault(resp, 403, 900150).await;
        assert!(fault.description.contains("Pcq.Admin"));
    }
    let resp = app
        .send(
            Method::POST,
            "/_pcq/admin/reset?partner=not-a-guid",
            &app.admin_token(),
            None,
        )
        .await;
    let fault = assert_fault(resp, 400, 800002).await;
    assert!(
        fault.description.contains("not-a-guid"),
        "{}",
        fault.description
    );
    assert_eq!(app.customer_count(&partner).await, 1);
}

async fn a_reset_loads_the_seed_again() {
    let app = TestApp::spawn().await;
    let other = app.partner();
    let seed = format!(
        r#"{{"partners": [
            {{"tenantId": "dev", "customers": [
                {{"companyProfile": {{"domain": "seeded.example.edu", "companyName": "Seeded"}},
                  "qualifications": [{{"qualification": "Education", "educationSegment": "K12"}}]}}
            ], "validationCodes": [
                {{"validationId": "700001", "organizationName": "Seeded", "maxCreates": 2}}
            ]}},
            {{"tenantId": "{}", "customers": [
                {{"companyProfile": {{"domain": "other.example.edu", "companyName": "Other"}}}}
            ]}}
        ]}}"#,
        other.tenant
    );
    app.seed_as_started(&seed).await;
    let dev = app.dev_partner();
    let seeded = reads(&app, &dev, &[]).await;
    app.create_customer(&dev, "added.example.edu").await;
    app.create_customer(&other, "added.example.edu").await;
    assert_eq!(app.customer_count(&dev).await, 2);

    let answer = reset(&app, None).await;
    assert_eq!(answer["seeded"], true, "{answer}");
    assert_eq!(answer["removed"]["customers"], 4, "{answer}");
    assert_eq!(app.customer_count(&dev).await, 1);
    assert_eq!(app.customer_count(&other).await, 1);
    let codes = app.codes(&dev).await;
    assert_eq!(codes.len(), 1);
    let again = reads(&app, &dev, &[]).await;
    // The same customers and codes, loaded again (audit records and dates are new).
    assert_eq!(again[0].1["items"][0]["id"], seeded[0].1["items"][0]["id"]);
    assert_eq!(
        again[1].1[0]["validationId"],
        seeded[1].1[0]["validationId"]
    );

    // One partner's reset loads only that partner's part of the seed.
    app.create_customer(&other, "added.example.edu").await;
    let answer = reset(&app, Some(other.tenant)).await;
    assert_eq!(answer["seeded"], true, "{answer}");
    assert_eq!(answer["removed"]["customers"], 2, "{answer}");
    assert_eq!(app.customer_count(&other).await, 1);
    assert_eq!(app.customer_count(&dev).await, 1);
    // A partner the seed has nothing for is reset without it.
    let answer = reset(&app, Some(Uuid::new_v4())).await;
    assert_eq!(answer["seeded"], false, "{answer}");
}

/// On PostgreSQL, where nodes share the store: another node takes up the reset clock and policy
/// on its next refresh, although the offset went back.
async fn other_nodes_take_up_a_reset_clock_and_policy() {
    if crate::common::backend() != crate::common::Backend::Postgres {
        return;
    }
    let app = TestApp::spawn().await;
    let mut config = app.state.config.clone();
    config.listen = "127.0.0.1:0".parse().unwrap();
    let other = TestApp::start(config).await;
    app.advance("2d").await;
    app.set_policy(json!({"policy": "immediate"})).await;
    let refresh = || pcq_server::settings::refresh(&other.state.pipeline);
    refresh().await.unwrap();
    assert_eq!(other.state.pipeline.clock.offset_micros(), 172_800_000_000);
    assert!(other.state.pipeline.policy.is_overridden());

    reset(&app, None).await;
    refresh().await.unwrap();
    assert_eq!(other.state.pipeline.clock.offset_micros(), 0);
    assert!(!other.state.pipeline.policy.is_overridden());
    // The clock moves forward from there on both nodes.
    other.advance("1h").await;
    pcq_server::settings::refresh(&app.state.pipeline)
        .await
        .unwrap();
    assert_eq!(app.state.pipeline.clock.offset_micros(), 3_600_000_000);
}

/// One generated step: which partner, what it does, and a number that picks the customer.
type Step = (usize, u8, u8);

/// Plays `steps` by two partners on a fresh node, then resets the first: the second reads the
/// same answers as before, and the first reads nothing.
async fn play(steps: Vec<Step>) -> Result<(), proptest::test_runner::TestCaseError> {
    use proptest::prop_assert_eq;
    let app = TestApp::spawn().await;
    let partners = [app.partner(), app.partner()];
    let mut customers: [Vec<Uuid>; 2] = [Vec::new(), Vec::new()];
    for (who, kind, n) in steps {
        let partner = &partners[who];
        match kind {
            0 => {
                let domain = format!("c{n}-p{who}.example.edu");
                let (status, body) = status_json(
                    app.send_post("/v1/customers", &partner.user, &customer_body(&domain))
                        .await,
                )
                .await;
                if status == StatusCode::CREATED {
                    customers[who].push(body["id"].as_str().unwrap().parse().unwrap());
                }
            }
            1 if !customers[who].is_empty() => {
                let customer = customers[who][usize::from(n) % customers[who].len()];
                app.post_qualification(partner, customer, &json!({"qualification": "Education"}))
                    .await;
            }
            2 => {
                app.issue_code(partner, i64::from(n) + 1).await;
            }
            3 => {
                app.post_registration(
                    partner,
                    &format!("http://127.0.0.1:9/hook-{n}"),
                    &["test-created", "customer-qualification-updated"],
                )
                .await;
            }
            4 => {
                app.send_test_event(partner, None).await;
            }
            _ => {
                app.drain().await;
            }
        }
    }
    let before = reads(&app, &partners[1], &customers[1]).await;
    let answer = reset(&app, Some(partners[0].tenant)).await;
    prop_assert_eq!(
        answer["removed"]["customers"].as_u64(),
        Some(customers[0].len() as u64)
    );
    prop_assert_eq!(reads(&app, &partners[1], &customers[1]).await, before);
    prop_assert_eq!(app.customer_count(&partners[0]).await, 0);
    prop_assert_eq!(app.codes(&partners[0]).await, vec![]);
    prop_assert_eq!(app.audit(&partners[0], "").await, Vec::<Value>::new());
    Ok(())
}

/// Random operations by two partners, then a reset of one (proptest's runner is synchronous: it
/// runs on a blocking thread and drives each case on the test's runtime).
async fn a_partner_reset_never_changes_what_another_partner_reads() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config as ProptestConfig, TestRunner};
    let backend = crate::common::backend();
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(match backend {
            crate::common::Backend::Sqlite => 12,
            crate::common::Backend::Postgres => 6,
        });
    let handle = tokio::runtime::Handle::current();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut runner = TestRunner::new(ProptestConfig {
            cases,
            max_shrink_iters: 100,
            failure_persistence: None,
            ..ProptestConfig::default()
        });
        let step = (0usize..2, 0u8..6, 0u8..4);
        runner
            .run(&prop::collection::vec(step, 1..24), |steps| {
                handle.block_on(crate::common::with_backend(backend, play(steps)))
            })
            .map_err(|e| e.to_string())
    })
    .await
    .expect("the property runs");
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

backend_tests!(
    other_nodes_take_up_a_reset_clock_and_policy,
    a_partner_reset_never_changes_what_another_partner_reads,
    a_full_reset_empties_every_kind_and_keeps_the_keys,
    a_full_reset_returns_the_clock_and_the_policy_to_the_configured_ones,
    a_partner_reset_leaves_other_partners_and_the_settings_alone,
    a_reset_needs_the_admin_role_and_a_guid,
    a_reset_loads_the_seed_again,
);
