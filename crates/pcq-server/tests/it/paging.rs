//! Paging: continuation tokens are opaque and good only for the caller and the list that got
//! them, and pages of large items are cut by bytes and continue exactly where they stopped.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestApp, assert_fault, status_json};
use crate::customer_limits::largest_customer;

/// The default bound of a page's items, in bytes of JSON.
const MAX_PAGE_BYTES: usize = 1 << 20;

/// GETs `path` with `token` and, when given, a continuation token.
async fn page(
    app: &TestApp,
    path: &str,
    token: &str,
    continuation: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = app.get(path, token);
    if let Some(c) = continuation {
        req = req.header("MS-ContinuationToken", c);
    }
    status_json(req.send().await.unwrap()).await
}

/// Asserts that `continuation` is refused on `path` for `token`, with the documented envelope.
async fn refused(app: &TestApp, path: &str, token: &str, continuation: &str) {
    let resp = app
        .get(path, token)
        .header("MS-ContinuationToken", continuation)
        .send()
        .await
        .unwrap();
    let fault = assert_fault(resp, 400, 800002).await;
    assert_eq!(
        fault.error_name, "InvalidContinuationToken",
        "{continuation}"
    );
}

fn ids(page: &Value, key: &str) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i[key].as_str().unwrap().to_owned())
        .collect()
}

async fn continuation_tokens_are_opaque_and_bound_to_the_caller() {
    let app = TestApp::spawn().await;
    let (a, b) = (app.partner(), app.partner());
    let mut created = Vec::new();
    for i in 0..3 {
        created.push(
            app.create_customer(&a, &format!("a{i}.example.com"))
                .await
                .to_string(),
        );
    }
    app.create_customer(&b, "b0.example.com").await;

    // The same page twice: two different tokens, both continuing at the second customer, and
    // neither showing a position.
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let (status, first) = page(&app, "/v1/customers?size=1", &a.app, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ids(&first, "id"), created[..1]);
        tokens.push(first["continuationToken"].as_str().unwrap().to_owned());
    }
    assert_ne!(
        tokens[0], tokens[1],
        "tokens are sealed under a fresh nonce"
    );
    for token in &tokens {
        let raw = URL_SAFE_NO_PAD.decode(token).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&raw).contains("pcq"),
            "{token} reads as {}",
            String::from_utf8_lossy(&raw)
        );
        let (status, next) = page(&app, "/v1/customers?size=1", &a.app, Some(token)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ids(&next, "id"), created[1..2]);
    }
    let token = &tokens[0];

    // Another partner cannot use it, nor can it continue another list.
    refused(&app, "/v1/customers?size=1", &b.app, token).await;
    refused(&app, "/v1/customers?size=1", &b.user, token).await;
    refused(&app, "/v1/auditrecords?size=1", &a.app, token).await;
    // A token of the former format (base64 of the position) is refused.
    for position in ["0", "1", "2"] {
        let old = URL_SAFE_NO_PAD.encode(format!("pcq1:{position}"));
        refused(&app, "/v1/customers?size=1", &a.app, &old).await;
    }
    // Altered and truncated tokens are refused: every byte flipped, every length cut.
    let raw = URL_SAFE_NO_PAD.decode(token).unwrap();
    for at in 0..raw.len() {
        for mask in [0x01u8, 0x80] {
            let mut altered = raw.clone();
            altered[at] ^= mask;
            refused(
                &app,
                "/v1/customers?size=1",
                &a.app,
                &URL_SAFE_NO_PAD.encode(&altered),
            )
            .await;
        }
    }
    for len in 0..raw.len() {
        let cut = URL_SAFE_NO_PAD.encode(&raw[..len]);
        if cut.is_empty() {
            continue;
        }
        refused(&app, "/v1/customers?size=1", &a.app, &cut).await;
    }
    refused(
        &app,
        "/v1/customers?size=1",
        &a.app,
        &token[..token.len() - 1],
    )
    .await;
    refused(&app, "/v1/customers?size=1", &a.app, &format!("{token}A")).await;

    // Audit record tokens are bound to the partner too.
    let (status, audit) = page(&app, "/v1/auditrecords?size=1", &a.app, None).await;
    assert_eq!(status, StatusCode::OK);
    let audit_token = audit["continuationToken"].as_str().unwrap();
    let (status, _) = page(&app, "/v1/auditrecords?size=1", &a.user, Some(audit_token)).await;
    assert_eq!(status, StatusCode::OK, "the same partner's user continues");
    refused(&app, "/v1/auditrecords?size=1", &b.app, audit_token).await;
    refused(&app, "/v1/customers?size=1", &a.app, audit_token).await;
}

async fn review_queue_tokens_are_bound_to_the_reviewer_tenant() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    for domain in ["one.example.edu", "two.example.edu"] {
        app.request_education_with(
            &partner,
            domain,
            &json!({"qualification": "Education", "educationSegment": "K12"}),
        )
        .await;
    }
    let (reviewer, other_reviewer) = (app.reviewer_token(), app.reviewer_token());
    let (status, first) = page(&app, "/_pcq/review/queue?size=1", &reviewer, None).await;
    assert_eq!(status, StatusCode::OK);
    let token = first["continuationToken"].as_str().unwrap();
    let (status, next) = page(&app, "/_pcq/review/queue?size=1", &reviewer, Some(token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(next["totalCount"], 1);
    assert_ne!(next["items"][0]["domain"], first["items"][0]["domain"]);
    refused(&app, "/_pcq/review/queue?size=1", &other_reviewer, token).await;
    refused(&app, "/_pcq/review/queue?size=1", &app.admin_token(), token).await;
    refused(&app, "/v1/customers?size=1", &partner.app, token).await;
}

/// Follows a list from its first page to its last with `size=1000`; returns the pages.
async fn every_page(app: &TestApp, path: &str, token: &str) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut continuation: Option<String> = None;
    loop {
        let (status, body) = page(app, path, token, continuation.as_deref()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        continuation = body["continuationToken"].as_str().map(str::to_owned);
        pages.push(body);
        if continuation.is_none() {
            return pages;
        }
    }
}

async fn pages_of_large_items_are_cut_by_bytes_and_continue_exactly() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let one = serde_json::to_vec(&largest_customer("probe.example.com"))
        .unwrap()
        .len();
    // Enough customers for more than two pages' worth of bytes.
    let count = 2 * MAX_PAGE_BYTES / one + 10;
    let mut created = Vec::new();
    for i in 0..count {
        let resp = app
            .send_post(
                "/v1/customers",
                &partner.user,
                &largest_customer(&format!("large{i}.example.com")),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        let body: Value = resp.json().await.unwrap();
        created.push(body["id"].as_str().unwrap().to_owned());
    }

    for (path, key) in [
        ("/v1/customers?size=1000", "id"),
        (
            "/v1/auditrecords?size=1000&startDate=2000-01-01",
            "customerId",
        ),
    ] {
        let pages = every_page(&app, path, &partner.app).await;
        assert!(pages.len() >= 3, "{path}: {} pages", pages.len());
        let mut seen = Vec::new();
        for (n, body) in pages.iter().enumerate() {
            let items = body["items"].as_array().unwrap();
            assert!(!items.is_empty(), "{path}: page {n} is empty");
            assert_eq!(body["totalCount"], items.len());
            let bytes: usize = items
                .iter()
                .map(|i| serde_json::to_vec(i).unwrap().len())
                .sum();
            assert!(
                bytes <= MAX_PAGE_BYTES,
                "{path}: page {n} holds {bytes} bytes"
            );
            if let Some(following) = pages.get(n + 1) {
                // Cut by bytes: the next page's first item would not have fit in this one.
                let next_item = serde_json::to_vec(&following["items"][0]).unwrap().len();
                assert!(
                    bytes + next_item > MAX_PAGE_BYTES,
                    "{path}: page {n} stopped early"
                );
                assert!(items.len() < 1000);
            }
            seen.extend(ids(body, key));
        }
        // Nothing skipped, nothing repeated, in creation order.
        assert_eq!(seen, created, "{path}");
    }
}

/// The key the review queue is ordered by: (round start, customer, qualification).
fn queue_key(item: &Value) -> (String, String, String) {
    (
        item["vettingCreateDate"].as_str().unwrap().to_owned(),
        item["customerId"].as_str().unwrap().to_owned(),
        item["qualification"].as_str().unwrap().to_owned(),
    )
}

/// The keys of the whole review queue, read as one page.
async fn whole_queue(app: &TestApp, reviewer: &str) -> Vec<(String, String, String)> {
    let (status, body) = page(app, "/_pcq/review/queue?size=1000", reviewer, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["continuationToken"].is_null());
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(queue_key)
        .collect()
}

/// The ids of all a partner's audit records, read as one page.
async fn whole_audit(app: &TestApp, token: &str) -> Vec<String> {
    let (status, body) = page(app, "/v1/auditrecords?size=1000", token, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["continuationToken"].is_null());
    ids(&body, "id")
}

/// Pages through the review queue and the audit records two at a time while requests keep
/// coming between pages: every page continues right after the last item of the one before,
/// in the lists' order, with no item twice and none left out; a request made while paging
/// shows up exactly when its key comes after the position already reached.
async fn lists_continue_by_key_while_rows_are_added() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let reviewer = app.reviewer_token();
    let mut domains = 0;
    let mut request = || {
        domains += 1;
        format!("paging{domains}.example.edu")
    };
    for _ in 0..5 {
        app.request_education(&partner, &request()).await;
    }

    // The review queue: keys rise strictly from page to page.
    let before = whole_queue(&app, &reviewer).await;
    assert_eq!(before.len(), 5);
    let mut seen = Vec::new();
    let mut continuation: Option<String> = None;
    let mut added = Vec::new();
    loop {
        let (status, body) = page(
            &app,
            "/_pcq/review/queue?size=2",
            &reviewer,
            continuation.as_deref(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let items: Vec<_> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(queue_key)
            .collect();
        assert!(items.len() <= 2);
        seen.extend(items);
        continuation = body["continuationToken"].as_str().map(str::to_owned);
        if continuation.is_none() {
            break;
        }
        // A request arriving between pages, after the position reached: it is listed.
        let position = seen.last().unwrap().clone();
        let customer = app
            .request_education(&partner, &request())
            .await
            .to_string();
        let key = whole_queue(&app, &reviewer)
            .await
            .into_iter()
            .find(|k| k.1 == customer)
            .unwrap();
        assert!(
            key > position,
            "a new request sorts after {position:?}: {key:?}"
        );
        added.push(key);
    }
    for pair in seen.windows(2) {
        assert!(pair[0] < pair[1], "out of order or repeated: {pair:?}");
    }
    let mut expected = before.clone();
    expected.extend(added.iter().cloned());
    expected.sort();
    assert_eq!(seen, expected, "every request, once, in order");
    assert!(!added.is_empty());

    // The audit records: oldest first, each once, including those written between pages.
    let before = whole_audit(&app, &partner.app).await.len();
    let mut seen: Vec<Value> = Vec::new();
    let mut continuation: Option<String> = None;
    let mut written = 0;
    loop {
        let (status, body) = page(
            &app,
            "/v1/auditrecords?size=2",
            &partner.app,
            continuation.as_deref(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        seen.extend(body["items"].as_array().unwrap().iter().cloned());
        continuation = body["continuationToken"].as_str().map(str::to_owned);
        if continuation.is_none() {
            break;
        }
        if written < 3 {
            app.advance("1s").await;
            app.request_education(&partner, &request()).await;
            written += 1;
        }
    }
    let seen_ids: Vec<String> = seen
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    let all = whole_audit(&app, &partner.app).await;
    assert!(
        all.len() > before,
        "requests made while paging wrote records"
    );
    assert_eq!(
        seen_ids, all,
        "every record, once, in the order of a single page"
    );
    let dates: Vec<&str> = seen
        .iter()
        .map(|r| r["operationDate"].as_str().unwrap())
        .collect();
    for pair in dates.windows(2) {
        assert!(pair[0] <= pair[1], "oldest first: {pair:?}");
    }
}

crate::common::backend_tests!(
    continuation_tokens_are_opaque_and_bound_to_the_caller,
    review_queue_tokens_are_bound_to_the_reviewer_tenant,
    pages_of_large_items_are_cut_by_bytes_and_continue_exactly,
    lists_continue_by_key_while_rows_are_added,
);
