//! The reviewer workflow: the queue, decisions, conflicts, re-requests and histories.

use crate::common::{Partner, TestApp, assert_fault, status_json};
use pcq_core::VettingStatus;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

/// A K-12 Education request for a new customer at `domain`, which is also its website.
async fn request(app: &TestApp, partner: &Partner, domain: &str) -> Uuid {
    let body = json!({"qualification": "Education", "educationSegment": "K12", "website": domain});
    app.request_education_with(partner, domain, &body).await
}

/// Decides on the customer's Education request.
async fn decide(app: &TestApp, token: &str, customer: Uuid, body: Value) -> reqwest::Response {
    decide_on(app, token, customer, "Education", body).await
}

/// Decides on the customer's request for `qualification`.
async fn decide_on(
    app: &TestApp,
    token: &str,
    customer: Uuid,
    qualification: &str,
    body: Value,
) -> reqwest::Response {
    app.send_post(
        &format!("/_pcq/review/customers/{customer}/qualifications/{qualification}/decision"),
        token,
        &body,
    )
    .await
}

async fn queue(app: &TestApp, query: &str) -> Value {
    let resp = app
        .fetch(&format!("/_pcq/review/queue{query}"), &app.reviewer_token())
        .await;
    let (status, page) = status_json(resp).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page
}

async fn history(app: &TestApp, token: &str, customer: Uuid) -> (StatusCode, Value) {
    let resp = app
        .fetch(
            &format!("/_pcq/customers/{customer}/qualifications/history"),
            token,
        )
        .await;
    status_json(resp).await
}

async fn the_queue_lists_pending_requests_oldest_first_with_filters_and_pages() {
    let app = TestApp::spawn().await;
    let a = app.partner();
    let b = app.partner();
    let first = request(&app, &a, "first.example.edu").await;
    app.advance("1h").await;
    let second = request(&app, &b, "second.example.edu").await;
    app.advance("1h").await;
    let third = request(&app, &a, "third.example.edu").await;
    // Not pending: decided, or never vetted.
    let soe = app.create_customer(&a, "soe.example.com").await;
    app.post_qualification(&a, soe, &json!({"qualification": "StateOwnedEntity"}))
        .await;

    let page = queue(&app, "").await;
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["customerId"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [first.to_string(), second.to_string(), third.to_string()]
    );
    let item = &page["items"][0];
    assert_eq!(item["partnerId"], a.tenant.to_string());
    assert_eq!(item["domain"], "first.example.edu");
    assert_eq!(item["qualification"], "Education");
    assert_eq!(item["educationSegment"], "K12");
    assert_eq!(item["website"], "first.example.edu");
    assert_eq!(item["round"], 1);
    assert_eq!(item["waiting"], "2h");

    let only_b = queue(&app, &format!("?partnerId={}", b.tenant)).await;
    assert_eq!(only_b["totalCount"], 1);
    assert_eq!(only_b["items"][0]["customerId"], second.to_string());
    assert_eq!(queue(&app, "?olderThan=90m").await["totalCount"], 1);
    assert_eq!(
        queue(&app, "?qualification=GovernmentCommunityCloud").await["totalCount"],
        0
    );

    // Pages of one, following the continuation token (good for the reviewer's tenant only).
    let reviewer = app.reviewer_token();
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = app.get("/_pcq/review/queue?size=1", &reviewer);
        if let Some(t) = &token {
            req = req.header("MS-ContinuationToken", t);
        }
        let (_, page) = status_json(req.send().await.unwrap()).await;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["customerId"].as_str().unwrap().to_owned()),
        );
        match page.get("continuationToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    for bad in [
        "?partnerId=x",
        "?qualification=Bogus",
        "?qualification=None",
        "?qualification=StateOwnedEntity",
        "?olderThan=soon",
        "?size=0",
    ] {
        let resp = app
            .fetch(&format!("/_pcq/review/queue{bad}"), &app.reviewer_token())
            .await;
        assert_fault(
            resp,
            400,
            if bad.contains("qualification") {
                900126
            } else {
                800002
            },
        )
        .await;
    }
}

async fn approving_and_conflicting_decisions() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let customer = request(&app, &partner, "approve.example.edu").await;
    let reviewer = app.reviewer_token();
    let resp = decide(&app, &reviewer, customer, json!({"decision": "Approved"})).await;
    let (status, body) = status_json(resp).await;
    assert_eq!(
        (status, body["vettingStatus"].as_str()),
        (StatusCode::OK, Some("Approved"))
    );
    app.assert_education_status(&partner, customer, VettingStatus::Approved)
        .await;
    assert_eq!(queue(&app, "").await["totalCount"], 0);

    // Deciding again is a conflict, and changes nothing.
    let resp = decide_on(
        &app,
        &reviewer,
        customer,
        "education",
        json!({"decision": "Denied", "reason": "Not an Academic Domain"}),
    )
    .await;
    let fault = assert_fault(resp, 409, 950409).await;
    assert_eq!(fault.error_name, "NotInReview");
    app.assert_education_status(&partner, customer, VettingStatus::Approved)
        .await;

    // A qualification without vetting, or one the customer lacks.
    let soe = app.create_customer(&partner, "soe.example.com").await;
    app.post_qualification(&partner, soe, &json!({"qualification": "StateOwnedEntity"}))
        .await;
    assert_fault(
        decide_on(
            &app,
            &reviewer,
            soe,
            "StateOwnedEntity",
            json!({"decision": "Approved"}),
        )
        .await,
        409,
        950409,
    )
    .await;
    assert_fault(
        decide(&app, &reviewer, soe, json!({"decision": "Approved"})).await,
        404,
        1000,
    )
    .await;
    assert_fault(
        decide(
            &app,
            &reviewer,
            Uuid::new_v4(),
            json!({"decision": "Approved"}),
        )
        .await,
        404,
        60003,
    )
    .await;
    assert_fault(
        decide_on(
            &app,
            &reviewer,
            customer,
            "Bogus",
            json!({"decision": "Approved"}),
        )
        .await,
        400,
        900126,
    )
    .await;
    let resp = app
        .send_post(
            "/_pcq/review/customers/not-a-guid/qualifications/Education/decision",
            &reviewer,
            &json!({"decision": "Approved"}),
        )
        .await;
    assert_fault(resp, 400, 900118).await;
}

async fn a_denial_needs_a_documented_reason_and_can_be_requested_again() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let customer = request(&app, &partner, "deny.example.com").await;
    let reviewer = app.reviewer_token();
    for body in [
        json!({"decision": "Denied"}),
        json!({"decision": "Denied", "reason": "no reason"}),
        json!({"decision": "InReview"}),
        json!({"decision": "Approved", "reason": "Not an Academic Domain"}),
    ] {
        let resp = decide(&app, &reviewer, customer, body.clone()).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    app.assert_education_status(&partner, customer, VettingStatus::InReview)
        .await;

    let resp = decide(
        &app,
        &reviewer,
        customer,
        json!({"decision": "denied", "reason": "not an education customer"}),
    )
    .await;
    let (status, body) = status_json(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            body["vettingStatus"].as_str(),
            body["vettingReason"].as_str()
        ),
        (Some("Denied"), Some("Not an Education Customer"))
    );
    let got = app.qualifications(&partner, customer).await;
    assert_eq!(
        got[0].vetting_reason.as_deref(),
        Some("Not an Education Customer")
    );

    // The partner asks again: a new round, back in the queue.
    app.advance("1d").await;
    let resp = app
        .post_qualification(&partner, customer, &json!({"qualification": "Education"}))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let got = app.qualifications_json(&partner, customer).await;
    assert_eq!(got[0]["vettingStatus"], "InReview");
    assert!(got[0].get("vettingReason").is_none());
    let page = queue(&app, "").await;
    assert_eq!(page["items"][0]["round"], 2);
    // A decision made while looking at the first round does not land on the second.
    let resp = decide(
        &app,
        &reviewer,
        customer,
        json!({"decision": "Approved", "round": 1}),
    )
    .await;
    let fault = assert_fault(resp, 409, 950409).await;
    assert_eq!(
        (
            fault.error_name.as_str(),
            fault.parameters["round"].as_str()
        ),
        ("VettingRoundChanged", Some("2"))
    );
    app.assert_education_status(&partner, customer, VettingStatus::InReview)
        .await;
    let resp = decide(
        &app,
        &reviewer,
        customer,
        json!({"decision": "Approved", "round": 2}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);

    let (status, steps) = history(&app, &partner.user, customer).await;
    assert_eq!(status, StatusCode::OK);
    let steps: Vec<(i64, Option<&str>, Option<&str>)> = steps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["round"].as_i64().unwrap(),
                s["fromStatus"].as_str(),
                s["toStatus"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (1, None, Some("InReview")),
            (1, Some("InReview"), Some("Denied")),
            (2, Some("Denied"), Some("InReview")),
            (2, Some("InReview"), Some("Approved")),
        ]
    );
    let (_, full) = history(&app, &reviewer, customer).await;
    assert_eq!(full[1]["reason"], "Not an Education Customer");
    assert_eq!(full[0]["actor"], "agent@partner.onmicrosoft.com");
    assert!(full[1]["requestId"].is_string());
}

async fn only_reviewers_and_admins_review_and_only_owners_read_histories() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let other = app.partner();
    let customer = request(&app, &partner, "roles.example.edu").await;
    for token in [partner.user.clone(), partner.app.clone()] {
        let resp = app.fetch("/_pcq/review/queue", &token).await;
        assert!(
            assert_fault(resp, 403, 900150)
                .await
                .description
                .contains("Pcq.Reviewer")
        );
        assert_fault(
            decide(&app, &token, customer, json!({"decision": "Approved"})).await,
            403,
            900150,
        )
        .await;
    }
    app.assert_education_status(&partner, customer, VettingStatus::InReview)
        .await;

    // A reviewer token gives no access to partners' data through the partner API.
    let reviewer = app.reviewer_token();
    let resp = app
        .fetch(&format!("/v1/customers/{customer}"), &reviewer)
        .await;
    assert_fault(resp, 403, 20002).await;

    // Histories: the owner and reviewers; nobody else.
    assert_eq!(
        history(&app, &partner.app, customer).await.0,
        StatusCode::OK
    );
    assert_eq!(
        history(&app, &app.admin_token(), customer).await.0,
        StatusCode::OK
    );
    let (status, fault) = history(&app, &other.user, customer).await;
    assert_eq!(
        (status, fault["code"].as_u64()),
        (StatusCode::FORBIDDEN, Some(20002))
    );
    assert_eq!(
        history(&app, &reviewer, Uuid::new_v4()).await.0,
        StatusCode::NOT_FOUND
    );

    // Admins may decide too.
    let resp = decide(
        &app,
        &app.admin_token(),
        customer,
        json!({"decision": "Approved"}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

async fn a_retried_decision_is_answered_once() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let customer = request(&app, &partner, "retry.example.edu").await;
    let reviewer = app.reviewer_token();
    let send = || {
        app.post(
            &format!("/_pcq/review/customers/{customer}/qualifications/Education/decision"),
            &reviewer,
            &json!({"decision": "Approved"}),
        )
        .header("MS-RequestId", "decide-once")
        .send()
    };
    let first = status_json(send().await.unwrap()).await;
    let second = status_json(send().await.unwrap()).await;
    assert_eq!(first.0, StatusCode::OK);
    assert_eq!(first, second);
    let (_, steps) = history(&app, &reviewer, customer).await;
    assert_eq!(steps.as_array().unwrap().len(), 2);
}

crate::common::backend_tests!(
    the_queue_lists_pending_requests_oldest_first_with_filters_and_pages,
    approving_and_conflicting_decisions,
    a_denial_needs_a_documented_reason_and_can_be_requested_again,
    only_reviewers_and_admins_review_and_only_owners_read_histories,
    a_retried_decision_is_answered_once,
);
