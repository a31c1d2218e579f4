//! Asynchronous vetting through HTTP: every policy, run-time policy changes and the sandbox
//! clock. The worker is drained explicitly; nothing waits on wall-clock time.

use crate::common::{Partner, TestApp, assert_fault, gcc, redact_dates, status_json};
use pcq_core::{Qualification, VettingStatus, wire};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

async fn education(
    app: &TestApp,
    partner: &Partner,
    customer: Uuid,
) -> wire::CustomerQualification {
    serde_json::from_value(education_json(app, partner, customer).await).unwrap()
}

async fn education_json(app: &TestApp, partner: &Partner, customer: Uuid) -> Value {
    let quals = app.qualifications_json(partner, customer).await;
    quals
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["qualification"] == "Education")
        .cloned()
        .expect("an Education qualification")
}

async fn manual_policy_waits_for_a_reviewer_whatever_the_time() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let customer = app.request_education(&partner, "waits.example.edu").await;
    assert_eq!(app.drain().await["vettingDecisions"], 0);
    app.advance("3650d").await;
    assert_eq!(app.drain().await["vettingDecisions"], 0);
    let q = education_json(&app, &partner, customer).await;
    assert_eq!(q["vettingStatus"], "InReview");
    assert!(q.get("vettingReason").is_none());
}

async fn immediate_policy_decides_on_the_next_worker_step() {
    let app = TestApp::spawn_with(|c| c.vetting.policy = pcq_core::vetting::Mode::Immediate).await;
    let partner = app.partner();
    let customer = app.request_education(&partner, "now.example.com").await;
    app.assert_education_status(&partner, customer, VettingStatus::InReview)
        .await;
    assert_eq!(app.drain().await["vettingDecisions"], 1);
    assert_eq!(
        redact_dates(json!([education_json(&app, &partner, customer).await])),
        json!([{"qualification": "Education", "vettingStatus": "Approved", "vettingCreateDate": "<date>"}])
    );
    // Decided once: draining again changes nothing.
    assert_eq!(app.drain().await["vettingDecisions"], 0);
}

async fn after_policy_decides_when_the_sandbox_clock_passes_the_delay() {
    let app = TestApp::spawn().await;
    app.set_policy(json!({"policy": "after", "after": "72h"}))
        .await;
    let partner = app.partner();
    let customer = app.request_education(&partner, "later.example.edu").await;
    app.advance("71h").await;
    assert_eq!(app.drain().await["vettingDecisions"], 0);
    app.assert_education_status(&partner, customer, VettingStatus::InReview)
        .await;
    app.advance("1h").await;
    assert_eq!(app.drain().await["vettingDecisions"], 1);
    let q = education(&app, &partner, customer).await;
    assert_eq!(q.vetting_status, Some(VettingStatus::Approved));
    // The round started when it was requested, not when it was decided.
    let started =
        pcq_core::time::Timestamp::parse_rfc3339(q.vetting_create_date.as_deref().unwrap())
            .unwrap();
    let now = app.state.pipeline.now();
    assert!(now.as_micros() - started.as_micros() >= 72 * 3_600_000_000);
}

async fn after_reads_policy_decides_on_the_nth_get() {
    let app = TestApp::spawn().await;
    app.set_policy(json!({"policy": "after_reads", "afterReads": 3, "outcome": "deny", "denyReason": "Not an Education Customer"})).await;
    let partner = app.partner();
    let customer = app.request_education(&partner, "reads.example.com").await;
    app.assert_education_status(&partner, customer, VettingStatus::InReview)
        .await;
    app.assert_education_status(&partner, customer, VettingStatus::InReview)
        .await;
    let third = education(&app, &partner, customer).await;
    assert_eq!(
        third.vetting_status,
        Some(VettingStatus::Denied),
        "the third read returns the decision"
    );
    assert_eq!(
        third.vetting_reason.as_deref(),
        Some("Not an Education Customer")
    );
    assert_eq!(
        app.drain().await["vettingDecisions"],
        0,
        "nothing was left for the worker"
    );
    // Reads of another partner's customer are refused and count for nothing.
    let other = app.partner();
    let second_customer = app.request_education(&partner, "reads2.example.com").await;
    for _ in 0..5 {
        let resp = app
            .fetch(
                &format!("/v1/customers/{second_customer}/qualifications"),
                &other.user,
            )
            .await;
        assert_fault(resp, 403, 20002).await;
    }
    app.assert_education_status(&partner, second_customer, VettingStatus::InReview)
        .await;
}

async fn domain_rules_approve_academic_domains_and_websites() {
    let app = TestApp::spawn().await;
    app.set_policy(json!({"policy": "domain_rules"})).await;
    let partner = app.partner();
    let by_domain = app.request_education(&partner, "school.example.edu").await;
    let by_website = app
        .request_education_with(
            &partner,
            "contoso.onmicrosoft.com",
            &json!({"qualification": "Education", "educationSegment": "HigherEducation", "website": "https://www.contoso.ac.uk/about"}),
        )
        .await;
    let neither = app
        .request_education_with(
            &partner,
            "fabrikam.com",
            &json!({"qualification": "Education", "website": "fabrikam.com"}),
        )
        .await;
    let polish = app.request_education(&partner, "szkola.edu.pl").await;
    assert_eq!(app.drain().await["vettingDecisions"], 4);
    app.assert_education_status(&partner, by_domain, VettingStatus::Approved)
        .await;
    app.assert_education_status(&partner, by_website, VettingStatus::Approved)
        .await;
    app.assert_education_status(&partner, polish, VettingStatus::Approved)
        .await;
    let denied = education(&app, &partner, neither).await;
    assert_eq!(denied.vetting_status, Some(VettingStatus::Denied));
    assert_eq!(
        denied.vetting_reason.as_deref(),
        Some("Not an Academic Domain")
    );
}

async fn configured_suffixes_replace_the_defaults() {
    let app = TestApp::spawn_with(|c| {
        c.vetting.policy = pcq_core::vetting::Mode::DomainRules;
        c.vetting.academic_suffixes = vec![".school".into()];
    })
    .await;
    let partner = app.partner();
    let edu = app.request_education(&partner, "old.example.edu").await;
    let school = app.request_education(&partner, "new.example.school").await;
    app.drain().await;
    app.assert_education_status(&partner, edu, VettingStatus::Denied)
        .await;
    app.assert_education_status(&partner, school, VettingStatus::Approved)
        .await;
}

async fn a_policy_change_applies_to_pending_decisions() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let customer = app.request_education(&partner, "switch.example.com").await;
    assert_eq!(app.drain().await["vettingDecisions"], 0);
    app.set_policy(json!({"policy": "after", "after": "1h"}))
        .await;
    assert_eq!(
        app.drain().await["vettingDecisions"],
        0,
        "requested less than an hour ago"
    );
    app.set_policy(
        json!({"policy": "immediate", "outcome": "deny", "deny_reason": "not an eligible library"}),
    )
    .await;
    assert_eq!(app.drain().await["vettingDecisions"], 1);
    let q = education(&app, &partner, customer).await;
    assert_eq!(
        (q.vetting_status, q.vetting_reason.as_deref()),
        (Some(VettingStatus::Denied), Some("Not an eligible Library"))
    );

    // DELETE returns to the configured (manual) policy.
    let resp = app
        .send(
            Method::DELETE,
            "/_pcq/admin/vetting-policy",
            &app.admin_token(),
            None,
        )
        .await;
    let (status, policy) = status_json(resp).await;
    assert_eq!(
        (status, policy["policy"].as_str(), policy["source"].as_str()),
        (StatusCode::OK, Some("manual"), Some("configured"))
    );
    let again = app.request_education(&partner, "switch2.example.com").await;
    assert_eq!(app.drain().await["vettingDecisions"], 0);
    app.assert_education_status(&partner, again, VettingStatus::InReview)
        .await;
}

async fn the_run_time_policy_survives_a_restart() {
    let app = TestApp::spawn().await;
    app.set_policy(json!({"policy": "after", "after": "2h"}))
        .await;
    app.advance("5h").await;
    let app = app.restart().await;
    let resp = app
        .fetch("/_pcq/admin/vetting-policy", &app.admin_token())
        .await;
    let (_, policy) = status_json(resp).await;
    assert_eq!(
        (
            policy["policy"].as_str(),
            policy["after"].as_str(),
            policy["source"].as_str()
        ),
        (Some("after"), Some("2h"), Some("runtime"))
    );
    let resp = app.fetch("/_pcq/admin/clock", &app.admin_token()).await;
    let (_, clock) = status_json(resp).await;
    assert_eq!(
        clock["offsetSeconds"],
        5 * 3600,
        "the clock offset survives too"
    );
}

async fn gcc_can_be_routed_to_review() {
    let app = TestApp::spawn().await;
    app.set_policy(json!({"gccReview": true})).await;
    let partner = app.partner();
    let code = app.issue_code(&partner, 2).await;
    let customer = app.create_customer(&partner, "agency.example.gov").await;
    let resp = app
        .post_qualification(&partner, customer, &gcc(&code))
        .await;
    let (status, body) = status_json(resp).await;
    assert_eq!(
        (status, body["vettingStatus"].as_str()),
        (StatusCode::CREATED, Some("InReview"))
    );
    assert_eq!(
        app.codes(&partner).await[0].remaining_creates,
        1,
        "the code is used at request time"
    );
    app.set_policy(json!({"gccReview": true, "policy": "domain_rules"}))
        .await;
    app.drain().await;
    // The academic rules do not apply to GCC.
    app.assert_vetting_status(
        &partner,
        customer,
        Qualification::GovernmentCommunityCloud,
        VettingStatus::Approved,
    )
    .await;
}

async fn policy_and_clock_controls_need_the_admin_role_and_valid_input() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    for (method, path, body) in [
        (Method::GET, "/_pcq/admin/vetting-policy", json!(null)),
        (
            Method::PUT,
            "/_pcq/admin/vetting-policy",
            json!({"policy": "immediate"}),
        ),
        (Method::DELETE, "/_pcq/admin/vetting-policy", json!(null)),
        (Method::GET, "/_pcq/admin/clock", json!(null)),
        (Method::POST, "/_pcq/admin/clock", json!({"advance": "1h"})),
        (Method::POST, "/_pcq/admin/worker/drain", json!(null)),
    ] {
        for token in [partner.user.clone(), app.reviewer_token()] {
            let resp = app.send(method.clone(), path, &token, Some(&body)).await;
            assert_fault(resp, 403, 900150).await;
        }
    }
    let admin = app.admin_token();
    for body in [
        json!({"policy": "sometimes"}),
        json!({"policy": "after", "after": "soon"}),
        json!({"colour": "blue"}),
        json!({"policy": "immediate", "outcome": "deny", "denyReason": "we said so"}),
        json!("immediate"),
    ] {
        let resp = app
            .send(
                Method::PUT,
                "/_pcq/admin/vetting-policy",
                &admin,
                Some(&body),
            )
            .await;
        assert_fault(resp, 400, 800002).await;
    }
    for body in [
        json!({"advance": "-1h"}),
        json!({"advance": "later"}),
        json!({}),
        json!({"advance": 5}),
    ] {
        let resp = app.send_post("/_pcq/admin/clock", &admin, &body).await;
        assert_fault(resp, 400, 800002).await;
    }
    let resp = app.fetch("/_pcq/admin/clock", &admin).await;
    let (_, clock) = status_json(resp).await;
    assert_eq!(clock["offsetSeconds"], 0, "rejected moves changed nothing");
    let resp = app.fetch("/_pcq/admin/vetting-policy", &admin).await;
    assert_eq!(status_json(resp).await.1["policy"], "manual");
}

/// The clock moves every time pcq stamps: dates of new requests follow it.
async fn the_sandbox_clock_stamps_new_requests() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    app.advance("400d").await;
    let customer = app.request_education(&partner, "future.example.edu").await;
    let q = education(&app, &partner, customer).await;
    let stamped =
        pcq_core::time::Timestamp::parse_rfc3339(q.vetting_create_date.as_deref().unwrap())
            .unwrap();
    let system = pcq_core::time::Timestamp::from_datetime(time::OffsetDateTime::now_utc());
    assert!(stamped.as_micros() - system.as_micros() > 399 * 86_400_000_000);
}

/// Requests made while the policy changes are decided by the policy in force when the worker
/// looks, whichever policy the node had in mind when it answered the request: none is left
/// waiting.
async fn requests_racing_a_policy_change_are_not_stranded() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let mut customers = Vec::new();
    for i in 0..16 {
        customers.push(
            app.create_customer(&partner, &format!("race{i}.example.com"))
                .await,
        );
    }
    let body = json!({"qualification": "Education"});
    let requests = customers
        .iter()
        .map(|customer| app.post_qualification(&partner, *customer, &body));
    let change = app.set_policy(json!({"policy": "immediate"}));
    let (answers, ()) = tokio::join!(futures_util::future::join_all(requests), change);
    for resp in answers {
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    assert_eq!(app.drain().await["vettingDecisions"], 16);
    for customer in customers {
        app.assert_education_status(&partner, customer, VettingStatus::Approved)
            .await;
    }
}

async fn the_clock_stops_at_the_last_writable_date() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let clock = || async {
        let resp = app.fetch("/_pcq/admin/clock", &admin).await;
        status_json(resp).await.1
    };
    // A century at a time (the longest single advance) until pcq refuses.
    let mut refused = None;
    for _ in 0..100 {
        let resp = app
            .send_post("/_pcq/admin/clock", &admin, &json!({"advance": "36500d"}))
            .await;
        if resp.status() != StatusCode::OK {
            refused = Some(resp);
            break;
        }
    }
    let before = clock().await;
    let fault = assert_fault(refused.expect("pcq refuses at some point"), 400, 800002).await;
    assert!(fault.description.contains("9999-12-31"), "{fault:?}");
    let now = before["now"].as_str().unwrap();
    assert!(now.starts_with("99"), "refused only near the end: {now}");
    assert_eq!(
        clock().await["offsetSeconds"],
        before["offsetSeconds"],
        "the refused move changed nothing"
    );
    // Dates pcq stamps there are still well formed.
    let partner = app.partner();
    let customer = app.request_education(&partner, "late.example.edu").await;
    let q = education(&app, &partner, customer).await;
    assert!(
        q.vetting_create_date.as_deref().unwrap().starts_with("99"),
        "{q:?}"
    );
}

crate::common::backend_tests!(
    manual_policy_waits_for_a_reviewer_whatever_the_time,
    immediate_policy_decides_on_the_next_worker_step,
    after_policy_decides_when_the_sandbox_clock_passes_the_delay,
    after_reads_policy_decides_on_the_nth_get,
    domain_rules_approve_academic_domains_and_websites,
    configured_suffixes_replace_the_defaults,
    a_policy_change_applies_to_pending_decisions,
    the_run_time_policy_survives_a_restart,
    gcc_can_be_routed_to_review,
    policy_and_clock_controls_need_the_admin_role_and_valid_input,
    the_sandbox_clock_stamps_new_requests,
    requests_racing_a_policy_change_are_not_stranded,
    the_clock_stops_at_the_last_writable_date,
);
