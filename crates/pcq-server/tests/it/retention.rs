//! `[retention]`: records older than their kind is kept are pruned by the worker (here through
//! the drain, after advancing pcq's clock), younger ones and the API's current state are kept,
//! `off` keeps everything, and the pruned rows are counted in `/_pcq/metrics`.

use crate::common::{Partner, TestApp, status_json};
use pcq_server::config::Retention;
use pcq_test_support::Receiver;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// POSTs a customer at `domain` with the idempotency key `request_id`.
async fn create(
    app: &TestApp,
    partner: &Partner,
    request_id: &str,
    domain: &str,
) -> (StatusCode, Value) {
    let body = json!({"companyProfile": {"domain": domain, "companyName": "Kept Co"}});
    let resp = app
        .post("/v1/customers", &partner.user, &body)
        .header("MS-RequestId", request_id)
        .send()
        .await
        .unwrap();
    status_json(resp).await
}

/// Sends a test event to `partner`'s receiver and delivers it.
async fn deliver_test_event(app: &TestApp, partner: &Partner) {
    let resp = app.send_test_event(partner, None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(app.drain().await["webhooksDelivered"], 1);
}

/// `pcq_retention_pruned_total{kind}`, 0 when not exposed.
async fn pruned(app: &TestApp, kind: &str) -> u64 {
    let resp = app.anon(Method::GET, "/_pcq/metrics").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    let series = format!("pcq_retention_pruned_total{{kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |n| n.parse().unwrap())
}

async fn all_audit(app: &TestApp, partner: &Partner) -> usize {
    app.audit(partner, "startDate=2000-01-01").await.len()
}

/// What a client reads of its current state: customers, each one, and its qualifications.
async fn live_state(app: &TestApp, partner: &Partner) -> Value {
    let (status, customers) = status_json(app.fetch("/v1/customers", &partner.user).await).await;
    assert_eq!(status, StatusCode::OK);
    let mut each = Vec::new();
    for item in customers["items"].as_array().unwrap() {
        let id = item["id"].as_str().unwrap();
        let one = status_json(
            app.fetch(&format!("/v1/customers/{id}"), &partner.user)
                .await,
        )
        .await;
        each.push(one.1);
        each.push(app.qualifications_json(partner, id.parse().unwrap()).await);
    }
    json!({"customers": customers, "each": each})
}

async fn records_older_than_their_retention_are_pruned_and_younger_ones_kept() {
    // Batches of two: three expired idempotency records take two.
    let app = TestApp::spawn_with(|c| c.retention.batch_size = 2).await;
    let partner = app.partner();
    let receiver = Receiver::start().await;
    app.register_webhook(&partner, &receiver.url, &["test-created"])
        .await;

    let mut old = Vec::new();
    for n in 1..=3 {
        let answer = create(
            &app,
            &partner,
            &format!("old-{n}"),
            &format!("old{n}.example"),
        )
        .await;
        assert_eq!(answer.0, StatusCode::CREATED);
        old.push(answer);
    }
    deliver_test_event(&app, &partner).await;
    let old_audit = all_audit(&app, &partner).await;
    assert!(old_audit >= 3, "each create is audited");

    app.advance("6d").await;
    let young = create(&app, &partner, "young-1", "young.example").await;
    assert_eq!(young.0, StatusCode::CREATED);
    let audit_total = all_audit(&app, &partner).await;
    let state = live_state(&app, &partner).await;
    assert_eq!(
        app.drain().await["rowsPruned"],
        0,
        "nothing is 7 days old yet"
    );
    assert_eq!(pruned(&app, "idempotency").await, 0);

    // The old requests are 8 days old, the young one 2.
    app.advance("2d").await;
    assert_eq!(app.drain().await["rowsPruned"], 3);
    assert_eq!(pruned(&app, "idempotency").await, 3);
    assert_eq!(
        app.drain().await["rowsPruned"],
        0,
        "a second prune finds nothing"
    );
    // Within the retention a retry replays the first answer; after it, it is a new request
    // (here refused: the customer it would create exists).
    assert_eq!(
        create(&app, &partner, "young-1", "young.example").await,
        young
    );
    let again = create(&app, &partner, "old-1", "old1.example").await;
    assert_ne!(again, old[0], "an expired key no longer replays");
    assert_ne!(again.0, StatusCode::CREATED);
    assert_eq!(live_state(&app, &partner).await, state);

    // The delivery finished 31 days ago: it goes, with its attempt.
    app.advance("23d").await;
    assert_eq!(app.deliveries(&partner).await.len(), 1);
    app.drain().await;
    assert_eq!(pruned(&app, "webhook_deliveries").await, 1);
    assert_eq!(pruned(&app, "webhook_attempts").await, 1);
    assert_eq!(app.deliveries(&partner).await, Vec::<Value>::new());
    assert_eq!(
        all_audit(&app, &partner).await,
        audit_total,
        "audit records are kept 90 days"
    );
    assert_eq!(pruned(&app, "audit_records").await, 0);

    // The old records are 91 days old, the young ones 85.
    app.advance("60d").await;
    app.drain().await;
    assert_eq!(pruned(&app, "audit_records").await, old_audit as u64);
    assert_eq!(all_audit(&app, &partner).await, audit_total - old_audit);
    assert_eq!(
        live_state(&app, &partner).await,
        state,
        "current state is never pruned"
    );
}

async fn off_keeps_everything() {
    let app = TestApp::spawn_with(|c| {
        c.retention.idempotency = Retention(None);
        c.retention.webhook_deliveries = Retention(None);
        c.retention.audit_records = Retention(None);
    })
    .await;
    let partner = app.partner();
    let receiver = Receiver::start().await;
    app.register_webhook(&partner, &receiver.url, &["test-created"])
        .await;
    let first = create(&app, &partner, "kept", "kept.example").await;
    assert_eq!(first.0, StatusCode::CREATED);
    deliver_test_event(&app, &partner).await;
    let audit = all_audit(&app, &partner).await;

    app.advance("400d").await;
    assert_eq!(app.drain().await["rowsPruned"], 0);
    assert_eq!(create(&app, &partner, "kept", "kept.example").await, first);
    assert_eq!(app.deliveries(&partner).await.len(), 1);
    assert_eq!(all_audit(&app, &partner).await, audit);
    for kind in [
        "idempotency",
        "webhook_deliveries",
        "webhook_attempts",
        "audit_records",
    ] {
        assert_eq!(pruned(&app, kind).await, 0, "{kind}");
    }
}

/// Two prunes at once (two drains; on PostgreSQL two transactions in parallel, as two nodes'
/// workers) delete each expired row once between them.
async fn concurrent_prunes_delete_each_row_once() {
    let app = TestApp::spawn_with(|c| c.retention.batch_size = 3).await;
    let partner = app.partner();
    let receiver = Receiver::start().await;
    app.register_webhook(&partner, &receiver.url, &["test-created"])
        .await;
    for n in 0..10 {
        let answer = create(&app, &partner, &format!("r-{n}"), &format!("c{n}.example")).await;
        assert_eq!(answer.0, StatusCode::CREATED);
    }
    deliver_test_event(&app, &partner).await;
    deliver_test_event(&app, &partner).await;

    // Idempotency records and deliveries have expired, audit records not yet.
    app.advance("31d").await;
    let (a, b) = tokio::join!(app.drain(), app.drain());
    let total = a["rowsPruned"].as_u64().unwrap() + b["rowsPruned"].as_u64().unwrap();
    assert_eq!(total, 10 + 2 + 2, "{a} {b}");
    assert_eq!(pruned(&app, "idempotency").await, 10);
    assert_eq!(pruned(&app, "webhook_deliveries").await, 2);
    assert_eq!(pruned(&app, "webhook_attempts").await, 2);
    assert_eq!(app.drain().await["rowsPruned"], 0);
}

crate::common::backend_tests!(
    records_older_than_their_retention_are_pruned_and_younger_ones_kept,
    off_keeps_everything,
    concurrent_prunes_delete_each_row_once,
);
