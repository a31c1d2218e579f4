//! `GET /_pcq/metrics` and the JSON logs: exact counts after known traffic, the store's gauges
//! after draining the worker, who may scrape, and that no token or body reaches a log line.

use std::sync::{Arc, Mutex};

use crate::common::{Backend, TestApp, assert_fault, backend, status_json};
use pcq_server::config::{LogFormat, MetricsAccess, RouteQuota};
use pcq_test_support::Receiver;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Scrapes the node (from loopback, without a token).
async fn scrape(app: &TestApp) -> String {
    let resp = app.anon(Method::GET, "/_pcq/metrics").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    resp.text().await.unwrap()
}

/// The value of the series `name` with exactly `labels` (in any order), if it is exposed.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    wanted.sort();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, number) = line.rsplit_once(' ')?;
            let (series_name, mut found) = match series.split_once('{') {
                Some((n, rest)) => (
                    n,
                    rest.trim_end_matches('}')
                        .split(',')
                        .map(str::to_owned)
                        .collect::<Vec<_>>(),
                ),
                None => (series, Vec::new()),
            };
            found.sort();
            (series_name == name && found == wanted).then(|| number.parse().unwrap())
        })
}

fn requests(text: &str, route: &str, method: &str, status: &str) -> Option<f64> {
    value(
        text,
        "pcq_http_requests_total",
        &[("route", route), ("method", method), ("status", status)],
    )
}

async fn http_requests_are_counted_by_route_method_and_status() {
    let app = TestApp::spawn_with(|c| {
        c.throttle.enabled = true;
        // Five requests to customer routes, then 429 (refilling one a minute).
        c.throttle.customers = RouteQuota {
            requests_per_minute: 1,
            burst: 5,
        };
    })
    .await;
    let partner = app.partner();
    let customer = app.create_customer(&partner, "one.example.com").await;
    app.create_customer(&partner, "two.example.com").await;
    for _ in 0..3 {
        let resp = app.fetch("/v1/customers", &partner.user).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let resp = app.fetch("/v1/customers", &partner.user).await;
    assert_fault(resp, 429, 950429).await;
    let resp = app.fetch("/v1/nowhere", &partner.user).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = app
        .send_post(
            "/_pcq/admin/faults",
            &app.admin_token(),
            &json!({"method": "GET", "path": "/v1/customers/*", "status": 503, "count": 1}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = app
        .fetch(&format!("/v1/customers/{customer}"), &partner.user)
        .await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);

    let text = scrape(&app).await;
    assert_eq!(requests(&text, "/v1/customers", "POST", "201"), Some(2.0));
    assert_eq!(requests(&text, "/v1/customers", "GET", "200"), Some(3.0));
    assert_eq!(requests(&text, "/v1/customers", "GET", "429"), Some(1.0));
    assert_eq!(requests(&text, "unmatched", "GET", "404"), Some(1.0));
    // Faults open to every partner fire before routing.
    assert_eq!(requests(&text, "unmatched", "GET", "503"), Some(1.0));
    assert_eq!(
        requests(&text, "/_pcq/admin/faults", "POST", "201"),
        Some(1.0)
    );
    assert_eq!(
        requests(&text, "/v1/customers/{customer_tenant_id}", "GET", "200"),
        None
    );
    assert_eq!(
        value(
            &text,
            "pcq_http_request_duration_seconds_count",
            &[
                ("route", "/v1/customers"),
                ("method", "GET"),
                ("status", "200")
            ]
        ),
        Some(3.0)
    );
    assert_eq!(
        value(
            &text,
            "pcq_throttle_rejections_total",
            &[("family", "customers")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "pcq_faults_fired_total", &[("action", "503")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "pcq_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    // The scrape itself is the one request in flight.
    assert_eq!(value(&text, "pcq_http_requests_in_flight", &[]), Some(1.0));
    assert!(value(&text, "pcq_store_read_duration_seconds_count", &[]).unwrap() >= 1.0);
    assert!(value(&text, "pcq_store_write_batch_size_count", &[]).unwrap() >= 2.0);
    assert!(value(&text, "pcq_store_commit_duration_seconds_count", &[]).unwrap() >= 2.0);
    assert!(value(&text, "pcq_store_write_queued_seconds_count", &[]).unwrap() >= 2.0);
    let pool = value(&text, "pcq_store_pool_connections", &[("state", "idle")]);
    assert_eq!(pool.is_some(), backend() == Backend::Postgres);

    // Scrapes count like any request (and are not journalled).
    let text = scrape(&app).await;
    assert_eq!(requests(&text, "/_pcq/metrics", "GET", "200"), Some(1.0));
    let (_, journal) = status_json(
        app.fetch(
            "/_pcq/admin/requests?path=/_pcq/metrics",
            &app.admin_token(),
        )
        .await,
    )
    .await;
    assert!(!journal.to_string().contains("/_pcq/metrics"), "{journal}");
}

async fn vetting_gauges_and_counts_follow_the_worker() {
    let app = TestApp::spawn().await;
    app.set_policy(json!({"policy": "after", "after": "72h"}))
        .await;
    let partner = app.partner();
    app.request_education(&partner, "a.example.edu").await;
    // Denied: not an academic domain.
    app.request_education(&partner, "b.example.com").await;
    app.advance("1h").await;
    app.drain().await;
    let text = scrape(&app).await;
    assert_eq!(value(&text, "pcq_vetting_jobs_pending", &[]), Some(2.0));
    let age = value(&text, "pcq_vetting_oldest_pending_age_seconds", &[]).unwrap();
    assert!((3600.0..3700.0).contains(&age), "{age}");
    let decided = |text: &str, outcome: &str| {
        value(
            text,
            "pcq_vetting_jobs_decided_total",
            &[("outcome", outcome)],
        )
    };
    assert_eq!(decided(&text, "approved"), Some(0.0));

    // Domain rules decide at once: the academic domain is approved, the other denied.
    app.set_policy(json!({"policy": "domain_rules"})).await;
    assert_eq!(app.drain().await["vettingDecisions"], 2);
    let text = scrape(&app).await;
    assert_eq!(value(&text, "pcq_vetting_jobs_pending", &[]), Some(0.0));
    assert_eq!(
        value(&text, "pcq_vetting_oldest_pending_age_seconds", &[]),
        Some(0.0)
    );
    assert_eq!(decided(&text, "approved"), Some(1.0));
    assert_eq!(decided(&text, "denied"), Some(1.0));
    assert_eq!(
        value(&text, "pcq_vetting_jobs_claimed_total", &[]),
        Some(2.0)
    );
}

async fn webhook_outbox_and_deliveries_follow_the_worker() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let receiver = Receiver::start().await;
    app.register_webhook(&partner, &receiver.url, &["test-created"])
        .await;
    let resp = app.send_test_event(&partner, None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let text = scrape(&app).await;
    assert_eq!(value(&text, "pcq_webhook_outbox_depth", &[]), Some(1.0));

    assert_eq!(app.drain().await["webhooksDelivered"], 1);
    receiver.respond_with(503);
    let resp = app.send_test_event(&partner, None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(app.drain().await["webhookAttempts"], 1);

    let text = scrape(&app).await;
    let result = |name: &str, result: &str| value(&text, name, &[("result", result)]);
    assert_eq!(result("pcq_webhook_attempts_total", "delivered"), Some(1.0));
    assert_eq!(result("pcq_webhook_attempts_total", "retry"), Some(1.0));
    assert_eq!(result("pcq_webhook_attempts_total", "failed"), Some(0.0));
    assert_eq!(
        result("pcq_webhook_deliveries_total", "delivered"),
        Some(1.0)
    );
    assert_eq!(result("pcq_webhook_deliveries_total", "failed"), Some(0.0));
    // The second event waits for its next attempt.
    assert_eq!(value(&text, "pcq_webhook_outbox_depth", &[]), Some(1.0));
}

async fn who_may_scrape_follows_metrics_access() {
    // loopback (the default): the tests connect from 127.0.0.1.
    let app = TestApp::spawn().await;
    scrape(&app).await;

    let app = TestApp::spawn_with(|c| c.metrics.access = MetricsAccess::Role).await;
    let resp = app.anon(Method::GET, "/_pcq/metrics").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let (_, envelope) = status_json(resp).await;
    assert!(envelope["code"].is_number(), "{envelope}");
    let partner = app.partner();
    let resp = app.fetch("/_pcq/metrics", &partner.user).await;
    assert_fault(
        resp,
        403,
        u64::from(pcq_core::fault::codes::ROLE_NOT_PERMITTED),
    )
    .await;
    let resp = app.fetch("/_pcq/metrics", &app.admin_token()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("pcq_build_info"));

    let app = TestApp::spawn_with(|c| c.metrics.access = MetricsAccess::Off).await;
    let resp = app.fetch("/_pcq/metrics", &app.admin_token()).await;
    assert_fault(resp, 404, 1000).await;

    let app = TestApp::spawn_with(|c| c.metrics.enabled = false).await;
    let resp = app.anon(Method::GET, "/_pcq/metrics").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    let app = TestApp::spawn_with(|c| c.metrics.access = MetricsAccess::Open).await;
    scrape(&app).await;
    loopback_is_decided_by_the_peer_address().await;
}

/// An address of this machine other than loopback, if it has one (a UDP "connection" sends
/// nothing; it only picks the source address a route would use).
fn outside_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// With `loopback`, a client connecting from another address of the machine is refused, and one
/// connecting from 127.0.0.1 to the same node is served.
async fn loopback_is_decided_by_the_peer_address() {
    let Some(ip) = outside_address() else {
        eprintln!("no address besides loopback: the refusal of other peers is not checked");
        return;
    };
    let app = TestApp::spawn_with(|c| c.listen = "0.0.0.0:0".parse().unwrap()).await;
    let port = app.addr.port();
    let client = pcq_test_support::client();
    let resp = client
        .get(format!("http://{ip}:{port}/_pcq/metrics"))
        .send()
        .await
        .unwrap();
    assert_fault(
        resp,
        403,
        u64::from(pcq_core::fault::codes::ROLE_NOT_PERMITTED),
    )
    .await;
    let resp = client
        .get(format!("http://127.0.0.1:{port}/_pcq/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

/// A writer into a shared buffer, for capturing log lines.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Captured {
    type Writer = Captured;

    fn make_writer(&'w self) -> Captured {
        self.clone()
    }
}

async fn json_logs_carry_the_ids_and_never_a_token_or_a_body() {
    let captured = Captured::default();
    // The test's runtime runs on this one thread, the node's request tasks included.
    let _logging = tracing::subscriber::set_default(pcq_server::telemetry::json_subscriber(
        "info",
        captured.clone(),
    ));
    let app = TestApp::spawn_with(|c| c.log.format = LogFormat::Json).await;
    let partner = app.partner();
    let marker = "Marker-7f3c9b1e-body-text";
    let correlation = "5b1d0e1a-2f6c-4a57-9d3e-0c8f4b2a6e71";
    let resp = app
        .post(
            "/v1/customers",
            &partner.user,
            &json!({"companyProfile": {"domain": "logs.example.com", "companyName": marker}}),
        )
        .header("MS-CorrelationId", correlation)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let request_id = resp.headers()["ms-requestid"].to_str().unwrap().to_owned();
    let resp = app
        .fetch(&format!("/v1/customers?secret={marker}"), &partner.user)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(!text.contains(&partner.user), "a token was logged:\n{text}");
    assert!(
        !text.contains(marker),
        "a body or query was logged:\n{text}"
    );
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for line in &lines {
        for field in ["timestamp", "level", "message", "target"] {
            assert!(line.get(field).is_some(), "no {field}: {line}");
        }
    }
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "pcq::access")
        .collect();
    assert_eq!(access.len(), 2, "{text}");
    let created = access[0];
    assert_eq!(created["level"], "INFO");
    assert_eq!(created["message"], "request served");
    assert_eq!(created["method"], "POST");
    assert_eq!(created["route"], "/v1/customers");
    assert_eq!(created["status"], 201);
    assert!(created["elapsed_us"].is_u64(), "{created}");
    assert_eq!(created["correlation_id"], correlation);
    assert_eq!(created["request_id"], request_id.as_str());
    assert_eq!(created["partner_tenant"], partner.tenant.to_string());
    assert_eq!(access[1]["route"], "/v1/customers");
    assert_eq!(access[1]["status"], 200);
}

/// Round trips to PostgreSQL a write transaction took, as counted so far.
async fn round_trips(app: &TestApp) -> f64 {
    value(&scrape(app).await, "pcq_store_write_round_trips_total", &[]).unwrap()
}

/// A durable write costs few round trips to PostgreSQL: BEGIN, its reads, one for all its
/// inserts together, and COMMIT (SQLite has none to count).
async fn writes_take_few_round_trips() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    app.create_customer(&partner, "warm.example.com").await;

    let before = round_trips(&app).await;
    let resp = app
        .post(
            "/v1/customers",
            &partner.user,
            &json!({"companyProfile": {"domain": "trips.example.com", "companyName": "Trips"}}),
        )
        .header("MS-RequestId", "9d1c6a8e-0000-4000-8000-000000000001")
        .send()
        .await
        .unwrap();
    let (status, customer) = status_json(resp).await;
    assert_eq!(status, StatusCode::CREATED, "{customer}");
    let created = round_trips(&app).await - before;

    let before = round_trips(&app).await;
    let path = format!(
        "/v1/customers/{}/qualifications",
        customer["id"].as_str().unwrap()
    );
    let resp = app
        .post(
            &path,
            &partner.user,
            &json!({"qualification": "StateOwnedEntity"}),
        )
        .header("MS-RequestId", "9d1c6a8e-0000-4000-8000-000000000002")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let qualified = round_trips(&app).await - before;

    match backend() {
        // BEGIN; the key; the insert of the customer (its domain decides 409); the audit
        // record and the key's answer together; COMMIT.
        Backend::Postgres => {
            assert_eq!(created, 5.0, "a customer create");
            // BEGIN; the key, the customer (locked), its qualifications, the policy, the
            // webhook registration; the qualification, its history step, the audit record
            // and the key's answer together; COMMIT.
            assert_eq!(qualified, 8.0, "a qualification request");
        }
        Backend::Sqlite => assert_eq!((created, qualified), (0.0, 0.0)),
    }
}

crate::common::backend_tests!(
    http_requests_are_counted_by_route_method_and_status,
    vetting_gauges_and_counts_follow_the_worker,
    webhook_outbox_and_deliveries_follow_the_worker,
    who_may_scrape_follows_metrics_access,
    json_logs_carry_the_ids_and_never_a_token_or_a_body,
    writes_take_few_round_trips,
);
