//! Webhooks: registration, signed delivery from the outbox, retries with backoff through
//! receiver downtime, restarts in the middle of retries, and giving up.

use crate::common::{TestApp, assert_fault, status_json};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pcq_core::VettingStatus;
use pcq_test_support::{Received, Receiver};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

const EVENTS: [&str; 2] = ["test-created", "customer-qualification-updated"];

/// Verifies a delivery the way a Partner Center receiver does: fetch the certificate from
/// `X-MS-Certificate-Url` and check the RSA-SHA256 signature in `Authorization: Signature …`
/// over the exact body.
async fn verify(received: &Received) -> bool {
    use rsa::pkcs8::DecodePublicKey;
    use rsa::signature::Verifier;
    use x509_cert::der::{Decode, Encode};

    assert_eq!(received.header("x-ms-signature-algorithm"), "rsa-sha256");
    assert_eq!(received.header("content-type"), "application/json");
    let Some(signature) = received.header("authorization").strip_prefix("Signature ") else {
        return false;
    };
    let Ok(signature) = STANDARD.decode(signature) else {
        return false;
    };
    let url = received.header("x-ms-certificate-url");
    let certificate = reqwest::get(url).await.unwrap();
    assert_eq!(
        certificate.headers()["content-type"],
        "application/pkix-cert"
    );
    let der = certificate.bytes().await.unwrap();
    let certificate = x509_cert::Certificate::from_der(&der).unwrap();
    let spki = certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .unwrap();
    let key = rsa::RsaPublicKey::from_public_key_der(&spki).unwrap();
    let verifier = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key);
    let Ok(signature) = rsa::pkcs1v15::Signature::try_from(signature.as_slice()) else {
        return false;
    };
    verifier.verify(&received.body, &signature).is_ok()
}

async fn registration_lifecycle_in_the_partner_center_shape() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let resp = app
        .fetch("/webhooks/v1/registration/events", &partner.app)
        .await;
    assert_eq!(status_json(resp).await, (StatusCode::OK, json!(EVENTS)));

    let resp = app.fetch("/webhooks/v1/registration", &partner.app).await;
    assert_fault(resp, 404, 1000).await;
    let resp = app
        .post_registration(&partner, "https://hooks.example.com/a", &["test-created"])
        .await;
    let (status, created) = status_json(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert!(Uuid::parse_str(created["SubscriberId"].as_str().unwrap()).is_ok());
    assert_eq!(created["WebhookUrl"], "https://hooks.example.com/a");
    assert_eq!(created["WebhookEvents"], json!(["test-created"]));

    let resp = app
        .post_registration(&partner, "https://hooks.example.com/b", &["test-created"])
        .await;
    assert_eq!(
        assert_fault(resp, 409, 950409).await.error_name,
        "WebhookRegistrationExists"
    );

    let resp = app
        .send(
            Method::PUT,
            "/webhooks/v1/registration",
            &partner.user,
            Some(&json!({"webhookUrl": "https://hooks.example.com/b", "webhookEvents": EVENTS})),
        )
        .await;
    let (status, updated) = status_json(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(updated["SubscriberId"], created["SubscriberId"]);
    let resp = app.fetch("/webhooks/v1/registration", &partner.app).await;
    assert_eq!(status_json(resp).await, (StatusCode::OK, updated.clone()));

    // Another partner sees nothing of it.
    let other = app.partner();
    let resp = app.fetch("/webhooks/v1/registration", &other.app).await;
    assert_fault(resp, 404, 1000).await;

    for bad in [
        json!({"WebhookUrl": "hooks.example.com", "WebhookEvents": ["test-created"]}),
        json!({"WebhookUrl": "https://hooks.example.com", "WebhookEvents": ["subscription-updated"]}),
        json!({"WebhookUrl": "https://hooks.example.com", "WebhookEvents": []}),
        json!({"WebhookEvents": ["test-created"]}),
    ] {
        let resp = app
            .send(
                Method::PUT,
                "/webhooks/v1/registration",
                &partner.app,
                Some(&bad),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
    }

    let resp = app
        .send(
            Method::DELETE,
            "/webhooks/v1/registration",
            &partner.app,
            None,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(resp.headers().contains_key("ms-requestid"));
    let resp = app
        .send(
            Method::DELETE,
            "/webhooks/v1/registration",
            &partner.app,
            None,
        )
        .await;
    assert_fault(resp, 404, 1000).await;
    let resp = app
        .send(
            Method::PUT,
            "/webhooks/v1/registration",
            &partner.app,
            Some(&updated),
        )
        .await;
    assert_fault(resp, 404, 1000).await;
}

async fn a_validation_event_arrives_signed_and_its_status_is_reported() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let receiver = Receiver::start().await;

    // Without a registration for test-created there is nothing to send.
    let resp = app.send_test_event(&partner, None).await;
    assert_fault(resp, 404, 1000).await;
    app.register_webhook(&partner, &receiver.url, &["customer-qualification-updated"])
        .await;
    let resp = app.send_test_event(&partner, None).await;
    assert_eq!(
        assert_fault(resp, 400, 800002).await.error_name,
        "NotRegisteredForTestEvents"
    );
    let resp = app
        .send(
            Method::DELETE,
            "/webhooks/v1/registration",
            &partner.app,
            None,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    app.register_webhook(&partner, &receiver.url, &EVENTS).await;

    let correlation = "3ef0202b-9d00-4f75-9cff-15420f7612b3";
    let resp = app.send_test_event(&partner, Some(correlation)).await;
    assert_eq!(
        status_json(resp).await,
        (StatusCode::OK, json!({"correlationId": correlation}))
    );
    let status_path = format!("/webhooks/v1/registration/validationEvents/{correlation}");
    let (_, pending) = status_json(app.fetch(&status_path, &partner.app).await).await;
    assert_eq!(
        (
            pending["status"].as_str(),
            pending["results"].as_array().map(Vec::len)
        ),
        (Some("pending"), Some(0))
    );

    let progress = app.drain().await;
    assert_eq!(
        (
            progress["webhookAttempts"].as_u64(),
            progress["webhooksDelivered"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert!(
        verify(&received[0]).await,
        "the signature verifies with the served certificate"
    );
    let body = received[0].json();
    assert_eq!(body["EventName"], "test-created");
    assert_eq!(body["ResourceName"], "test");
    assert_eq!(body["ResourceUri"], format!("{}{status_path}", app.base));
    assert_eq!(body["AuditUri"], Value::Null);
    assert!(
        body["ResourceChangeUtcDate"]
            .as_str()
            .unwrap()
            .ends_with("+00:00")
    );

    let (status, done) = status_json(app.fetch(&status_path, &partner.app).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(done["correlationId"], correlation);
    assert_eq!(done["partnerId"], partner.tenant.to_string());
    assert_eq!(done["status"], "completed");
    assert_eq!(done["callbackUrl"], receiver.url);
    assert_eq!(done["results"][0]["responseCode"], "OK");
    assert_eq!(done["results"][0]["systemError"], false);

    // Unknown correlation ids, and other partners' ones, are not found.
    let resp = app
        .fetch(
            "/webhooks/v1/registration/validationEvents/nope",
            &partner.app,
        )
        .await;
    assert_fault(resp, 404, 1000).await;
    let resp = app.fetch(&status_path, &app.partner().app).await;
    assert_fault(resp, 404, 1000).await;

    // A tampered body does not verify.
    let mut tampered = received[0].clone();
    tampered.body = br#"{"EventName":"test-created","ResourceUri":"http://evil"}"#.to_vec();
    assert!(!verify(&tampered).await);
}

async fn qualification_changes_are_announced_with_their_audit_record() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let receiver = Receiver::start().await;
    app.register_webhook(&partner, &receiver.url, &["customer-qualification-updated"])
        .await;
    app.set_policy(json!({"policy": "immediate"})).await;
    let customer = app
        .request_education(&partner, "announced.example.edu")
        .await;
    // A rejected request changes nothing and announces nothing.
    let resp = app
        .post_qualification(&partner, customer, &json!({"qualification": "Education"}))
        .await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    app.drain().await;
    let received = receiver.received();
    assert_eq!(received.len(), 2, "the request and the decision");
    for r in &received {
        assert!(verify(r).await);
        let body = r.json();
        assert_eq!(body["EventName"], "customer-qualification-updated");
        assert_eq!(body["ResourceName"], "customer-qualification");
        assert_eq!(
            body["ResourceUri"],
            format!("{}/v1/customers/{customer}/qualifications", app.base)
        );
        // The audit record the event points at is the partner's.
        let audit_uri = body["AuditUri"].as_str().unwrap();
        let path = audit_uri.strip_prefix(&app.base).unwrap();
        let (status, record) = status_json(app.fetch(path, &partner.app).await).await;
        assert_eq!(
            (status, record["operationType"].as_str()),
            (StatusCode::OK, Some("update_customer_qualification"))
        );
    }
    assert_ne!(
        received[0].json()["AuditUri"],
        received[1].json()["AuditUri"]
    );
    // The receiver reads the new state from the ResourceUri.
    app.assert_education_status(&partner, customer, VettingStatus::Approved)
        .await;
    // Nobody else's registration got anything.
    let log = app.deliveries(&app.partner()).await;
    assert!(log.is_empty());
}

async fn failed_deliveries_are_retried_with_backoff_through_downtime_and_a_restart() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let mut receiver = Receiver::start().await;
    app.register_webhook(&partner, &receiver.url, &["customer-qualification-updated"])
        .await;
    receiver.respond_with(503);
    app.request_education(&partner, "flaky.example.edu").await;

    // Attempt 1: the receiver answers 503.
    assert_eq!(app.drain().await["webhookAttempts"], 1);
    assert_eq!(
        app.drain().await["webhookAttempts"],
        0,
        "not due again before its backoff"
    );
    let log = app.deliveries(&partner).await;
    assert_eq!(log[0]["status"], "pending");
    assert_eq!(log[0]["results"][0]["responseCode"], "ServiceUnavailable");
    let first_next =
        pcq_core::time::Timestamp::parse_rfc3339(log[0]["nextAttemptAt"].as_str().unwrap())
            .unwrap();
    let first_at =
        pcq_core::time::Timestamp::parse_rfc3339(log[0]["createdAt"].as_str().unwrap()).unwrap();
    assert!(
        (first_next.as_micros() - first_at.as_micros()) / 1_000_000 >= 10,
        "the first backoff is 10 s"
    );

    // Attempt 2: the receiver is down (connection refused).
    receiver.down().await;
    app.advance("10s").await;
    assert_eq!(app.drain().await["webhookAttempts"], 1);
    let log = app.deliveries(&partner).await;
    assert_eq!(log[0]["results"][1]["systemError"], true);
    assert_eq!(log[0]["results"][1]["responseCode"], "");
    // The backoff doubles: 20 s now.
    app.advance("19s").await;
    assert_eq!(app.drain().await["webhookAttempts"], 0);

    // pcq restarts in the middle of the retries; the outbox is on disk.
    let app = app.restart().await;
    receiver.up().await;
    receiver.respond_with(200);
    app.advance("1s").await;
    let progress = app.drain().await;
    assert_eq!(
        (
            progress["webhookAttempts"].as_u64(),
            progress["webhooksDelivered"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let log = app.deliveries(&partner).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status"], "completed");
    let codes: Vec<&str> = log[0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["responseCode"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["ServiceUnavailable", "", "OK"]);
    let received = receiver.received();
    assert_eq!(
        received.len(),
        2,
        "one 503 and one success; the refused attempt never arrived"
    );
    assert_eq!(
        received[0].body, received[1].body,
        "every attempt posts the same event"
    );
    assert!(verify(&received[1]).await);
    // Delivered means done: nothing more goes out.
    app.advance("1d").await;
    assert_eq!(app.drain().await["webhookAttempts"], 0);
}

async fn deliveries_are_given_up_after_the_last_attempt() {
    let app = TestApp::spawn_with(|c| c.webhooks.max_attempts = 3).await;
    let partner = app.partner();
    let receiver = Receiver::start().await;
    receiver.respond_with(500);
    app.register_webhook(&partner, &receiver.url, &EVENTS).await;
    let resp = app.send_test_event(&partner, Some("give-up")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    for _ in 0..5 {
        app.drain().await;
        app.advance("1h").await;
    }
    assert_eq!(receiver.received().len(), 3);
    let (_, status) = status_json(
        app.fetch(
            "/webhooks/v1/registration/validationEvents/give-up",
            &partner.app,
        )
        .await,
    )
    .await;
    assert_eq!(status["status"], "failed");
    assert_eq!(status["results"].as_array().unwrap().len(), 3);
    assert_eq!(status["results"][2]["responseCode"], "InternalServerError");
}

async fn the_background_worker_delivers_without_being_asked() {
    let app = TestApp::spawn_with(|c| {
        c.worker.enabled = true;
        c.worker.poll_interval_ms = 20;
    })
    .await;
    let partner = app.partner();
    let receiver = Receiver::start().await;
    app.register_webhook(&partner, &receiver.url, &EVENTS).await;
    let resp = app.send_test_event(&partner, None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    // The request wakes the worker, which delivers in the background.
    receiver
        .wait_for(1, std::time::Duration::from_secs(20))
        .await;
    assert_eq!(receiver.received().len(), 1);
}

async fn a_slow_receiver_gets_one_post_however_far_the_sandbox_clock_moves() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let receiver = Receiver::start().await;
    app.register_webhook(&partner, &receiver.url, &EVENTS).await;
    let resp = app.send_test_event(&partner, Some("slow")).await;
    assert_eq!(resp.status(), StatusCode::OK);

    // The first drain's attempt is in flight while the receiver takes its time.
    receiver.hold();
    let first = tokio::spawn(
        app.req(Method::POST, "/_pcq/admin/worker/drain", &app.admin_token())
            .send(),
    );
    receiver
        .wait_for(1, std::time::Duration::from_secs(10))
        .await;
    // Leases run in real time: moving the sandbox clock does not hand the delivery to another
    // drain while the first still holds it.
    app.advance("2d").await;
    assert_eq!(app.drain().await["webhookAttempts"], 0);
    assert_eq!(receiver.received().len(), 1);

    receiver.release();
    let (status, progress) = status_json(first.await.unwrap().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            progress["webhookAttempts"].as_u64(),
            progress["webhooksDelivered"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let log = app.deliveries(&partner).await;
    assert_eq!(log[0]["status"], "completed");
    assert_eq!(log[0]["results"].as_array().unwrap().len(), 1);
    assert_eq!(app.drain().await["webhookAttempts"], 0);
    assert_eq!(receiver.received().len(), 1);
}

async fn a_result_that_arrives_after_its_lease_was_taken_over_is_dropped() {
    use pcq_core::time::Timestamp;
    use pcq_server::service::webhooks::{ClaimDeliveries, FinishAttempts};
    use pcq_server::store::ClaimQuery;
    use pcq_server::store::{AttemptOutcome, AttemptRow, DeliveryStatus};

    let app = TestApp::spawn().await;
    let partner = app.partner();
    app.register_webhook(&partner, "https://hooks.example.com/pc", &EVENTS)
        .await;
    let resp = app.send_test_event(&partner, Some("late")).await;
    assert_eq!(resp.status(), StatusCode::OK);

    let now = app.state.pipeline.now();
    let real = Timestamp::from_datetime(time::OffsetDateTime::now_utc());
    let claim = |token: &str, real_now: Timestamp| {
        ClaimDeliveries(ClaimQuery {
            now,
            real_now,
            lease_until: real_now.plus_micros(60_000_000),
            token: token.to_owned(),
            limit: 10,
            per_partner: 4,
            after: None,
        })
    };
    let store = &app.state.pipeline;
    let first = store.write(claim("first", real)).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        store
            .write(claim("second", real.plus_micros(1_000_000)))
            .await
            .unwrap()
            .is_empty(),
        "the first claim's lease holds"
    );
    // The first claim's lease runs out (its attempt hangs); a second claim takes over.
    let later = real.plus_micros(61_000_000);
    let second = store.write(claim("second", later)).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].id, first[0].id);

    let outcome = |token: &str, message: &str, code: Option<i64>, status| AttemptOutcome {
        token: token.to_owned(),
        attempt: AttemptRow {
            delivery_id: first[0].id,
            attempt: 1,
            at: now,
            response_code: code,
            response_message: message.to_owned(),
            system_error: code.is_none(),
        },
        status,
        next_attempt_at: now.plus_micros(10_000_000),
    };
    let recorded = store
        .write(FinishAttempts(vec![outcome(
            "second",
            "receiver timed out",
            None,
            DeliveryStatus::Pending,
        )]))
        .await
        .unwrap();
    assert_eq!(recorded, 1);
    let late = store
        .write(FinishAttempts(vec![outcome(
            "first",
            "OK",
            Some(200),
            DeliveryStatus::Delivered,
        )]))
        .await
        .unwrap();
    assert_eq!(late, 0, "the late result is not recorded");

    let log = app.deliveries(&partner).await;
    assert_eq!(log[0]["status"], "pending");
    let results = log[0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["systemError"], true);
}

async fn private_targets_are_refused_when_not_allowed() {
    let app = TestApp::spawn_with(|c| {
        c.webhooks.allow_private_targets = pcq_server::config::AutoBool::Set(false);
    })
    .await;
    let partner = app.partner();
    for url in [
        "http://127.0.0.1:9/hooks",
        "http://localhost/hooks",
        "http://[::1]/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.7/hooks",
        "http://2130706433/hooks",
        // IPv6 forms that carry a non-public IPv4 address, and special IPv6 blocks.
        "http://[::127.0.0.1]/hooks",
        "http://[::7f00:1]/hooks",
        "http://[::ffff:0:127.0.0.1]/hooks",
        "http://[64:ff9b:1::7f00:1]/hooks",
        "http://[2002:7f00:1::]/hooks",
        "http://[2001::7f00:1]/hooks",
        "http://[fec0::1]/hooks",
        "http://[100::1]/hooks",
    ] {
        let resp = app.post_registration(&partner, url, &EVENTS).await;
        let fault = assert_fault(resp, 400, 800002).await;
        assert_eq!(fault.error_name, "WebhookTargetNotAllowed", "{url}");
        assert!(
            fault.description.contains("allow_private_targets"),
            "{fault:?}"
        );
    }
    let resp = app.fetch("/webhooks/v1/registration", &partner.app).await;
    assert_fault(resp, 404, 1000).await;

    // A public target is accepted.
    app.register_webhook(&partner, "https://hooks.example.com/pc", &EVENTS)
        .await;
    // And a delivery whose URL was stored while private targets were allowed is not sent.
    let allowed = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let other = allowed.partner();
    allowed
        .register_webhook(&other, &receiver.url, &EVENTS)
        .await;
    let resp = allowed.send_test_event(&other, None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let refusing = allowed
        .restart_with(|c| {
            c.webhooks.allow_private_targets = pcq_server::config::AutoBool::Set(false)
        })
        .await;
    let progress = refusing.drain().await;
    assert_eq!(
        (
            progress["webhookAttempts"].as_u64(),
            progress["webhooksDelivered"].as_u64()
        ),
        (Some(1), Some(0))
    );
    assert!(receiver.received().is_empty());
    let log = refusing.deliveries(&other).await;
    let message = log[0]["results"][0]["responseMessage"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("not allowed"), "{log:?}");
}

/// Claims due deliveries directly, as a node's worker does, under the claim `token` (a lease of
/// a minute of real time): at most `limit`, at most `per_partner` of one partner in flight.
async fn claim(
    app: &TestApp,
    token: &str,
    limit: i64,
    per_partner: i64,
) -> Vec<pcq_server::store::DeliveryRow> {
    use pcq_core::time::Timestamp;
    use pcq_server::service::webhooks::ClaimDeliveries;
    use pcq_server::store::ClaimQuery;
    let real = Timestamp::from_datetime(time::OffsetDateTime::now_utc());
    app.state
        .pipeline
        .write(ClaimDeliveries(ClaimQuery {
            now: app.state.pipeline.now(),
            real_now: real,
            lease_until: real.plus_micros(60_000_000),
            token: token.to_owned(),
            limit,
            per_partner,
            after: None,
        }))
        .await
        .unwrap()
}

async fn a_claim_takes_a_few_of_each_partners_deliveries_in_order() {
    let app = TestApp::spawn().await;
    let busy = app.partner();
    let quiet = app.partner();
    for partner in [&busy, &quiet] {
        app.register_webhook(partner, "https://hooks.example.com/pc", &EVENTS)
            .await;
    }
    for i in 0..6 {
        let correlation = format!("busy-{i}");
        assert_eq!(
            app.send_test_event(&busy, Some(&correlation))
                .await
                .status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        app.send_test_event(&quiet, Some("quiet")).await.status(),
        StatusCode::OK
    );

    let claimed = claim(&app, "claim", 10, 4).await;
    let busy_ids: Vec<_> = claimed
        .iter()
        .filter(|d| d.partner_tenant_id == busy.tenant)
        .map(|d| d.correlation_id.clone().unwrap())
        .collect();
    assert_eq!(busy_ids, ["busy-0", "busy-1", "busy-2", "busy-3"]);
    assert_eq!(claimed.len(), 5, "and the other partner's one");

    // While that claim holds them, another claim (another node) takes nothing more of the
    // busy partner's, which has as many in flight as one partner may have.
    let other = claim(&app, "other", 10, 4).await;
    assert!(other.is_empty(), "{other:?}");
}

async fn one_partners_deliveries_are_in_flight_several_at_a_time() {
    // Long enough that posting one after another cannot pass for posting together.
    let app = TestApp::spawn_with(|c| c.webhooks.timeout_seconds = 300).await;
    let partner = app.partner();
    let receiver = Receiver::start().await;
    app.register_webhook(&partner, &receiver.url, &EVENTS).await;
    for i in 0..3 {
        let correlation = format!("together-{i}");
        let resp = app.send_test_event(&partner, Some(&correlation)).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    // The receiver holds every answer: the three posts arrive only if pcq does not wait for
    // one answer before it sends the next.
    receiver.hold();
    let drain = tokio::spawn(
        app.req(Method::POST, "/_pcq/admin/worker/drain", &app.admin_token())
            .send(),
    );
    receiver
        .wait_for(3, std::time::Duration::from_secs(30))
        .await;
    receiver.release();
    let (status, progress) = status_json(drain.await.unwrap().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            progress["webhookAttempts"].as_u64(),
            progress["webhooksDelivered"].as_u64()
        ),
        (Some(3), Some(3))
    );
    let log = app.deliveries(&partner).await;
    assert!(log.iter().all(|d| d["status"] == "completed"), "{log:?}");
}

async fn a_slow_receiver_does_not_hold_back_other_partners_deliveries() {
    let app = TestApp::spawn_with(|c| {
        c.worker.enabled = true;
        c.worker.poll_interval_ms = 20;
        // Long enough that waiting for the slow receiver cannot pass unnoticed.
        c.webhooks.timeout_seconds = 300;
    })
    .await;
    let (slow, quick) = (app.partner(), app.partner());
    let slow_receiver = Receiver::start().await;
    let quick_receiver = Receiver::start().await;
    app.register_webhook(&slow, &slow_receiver.url, &EVENTS)
        .await;
    app.register_webhook(&quick, &quick_receiver.url, &EVENTS)
        .await;

    slow_receiver.hold();
    let resp = app.send_test_event(&slow, Some("slow")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    slow_receiver
        .wait_for(1, std::time::Duration::from_secs(30))
        .await;
    // While pcq waits for the slow receiver's answer, another partner's events go out.
    for i in 0..2 {
        let correlation = format!("quick-{i}");
        let resp = app.send_test_event(&quick, Some(&correlation)).await;
        assert_eq!(resp.status(), StatusCode::OK);
        quick_receiver
            .wait_for(i + 1, std::time::Duration::from_secs(60))
            .await;
    }
    assert_eq!(slow_receiver.received().len(), 1);
    slow_receiver.release();
}

/// Queues `n` test events of `partner` in one transaction.
#[derive(Clone)]
struct QueueTestEvents {
    partner: Uuid,
    n: usize,
}

impl pcq_server::store::Op for QueueTestEvents {
    type Output = ();

    async fn run(self, tx: &mut pcq_server::store::Tx<'_>) -> Result<(), pcq_server::error::Error> {
        use pcq_server::service::webhooks::{Event, TEST_CREATED, enqueue};
        let at = pcq_core::time::Timestamp::from_datetime(time::OffsetDateTime::now_utc());
        for i in 0..self.n {
            let correlation = format!("backlog-{i}");
            let queued = enqueue(
                tx,
                Event {
                    partner: self.partner,
                    name: TEST_CREATED,
                    resource_uri: "https://pcq.example/x",
                    audit_uri: None,
                    correlation_id: Some(&correlation),
                    at: at.plus_micros(-1_000_000),
                },
            )
            .await?;
            assert!(queued);
        }
        Ok(())
    }
}

async fn a_claim_takes_every_partners_earliest_delivery_before_more_of_a_backlog() {
    let app = TestApp::spawn().await;
    let (busy, quiet) = (app.partner(), app.partner());
    for partner in [&busy, &quiet] {
        app.register_webhook(partner, "https://hooks.example.com/pc", &EVENTS)
            .await;
    }
    // The busy partner's backlog was queued before the quiet partner's one event.
    app.state
        .pipeline
        .write(QueueTestEvents {
            partner: busy.tenant,
            n: 300,
        })
        .await
        .unwrap();
    assert_eq!(
        app.send_test_event(&quiet, Some("quiet")).await.status(),
        StatusCode::OK
    );

    let claimed = claim(&app, "small", 4, 4).await;
    let claimed: Vec<_> = claimed
        .iter()
        .map(|d| d.correlation_id.clone().unwrap_or_default())
        .collect();
    assert_eq!(claimed.len(), 4);
    assert!(
        claimed.iter().any(|c| c == "quiet"),
        "the quiet partner's event is in the first claim: {claimed:?}"
    );
}

crate::common::backend_tests!(
    registration_lifecycle_in_the_partner_center_shape,
    a_validation_event_arrives_signed_and_its_status_is_reported,
    qualification_changes_are_announced_with_their_audit_record,
    failed_deliveries_are_retried_with_backoff_through_downtime_and_a_restart,
    deliveries_are_given_up_after_the_last_attempt,
    the_background_worker_delivers_without_being_asked,
    a_slow_receiver_gets_one_post_however_far_the_sandbox_clock_moves,
    a_result_that_arrives_after_its_lease_was_taken_over_is_dropped,
    private_targets_are_refused_when_not_allowed,
    a_claim_takes_a_few_of_each_partners_deliveries_in_order,
    one_partners_deliveries_are_in_flight_several_at_a_time,
    a_slow_receiver_does_not_hold_back_other_partners_deliveries,
    a_claim_takes_every_partners_earliest_delivery_before_more_of_a_backlog,
);
