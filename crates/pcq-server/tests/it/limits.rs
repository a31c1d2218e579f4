//! Throttling and request limits: 429 with Retry-After per partner and route family, body, head
//! and JSON-depth limits, the request timeout, slow and idle connections, the connection limit,
//! HTTP/2 and graceful shutdown.
//!
//! Time: buckets run on pcq's clock, so refills are shown by advancing the sandbox clock, never
//! by sleeping. Connection timeouts are configured in fractions of a second; those tests wait for
//! the server to close a connection (bounded by a generous deadline) and check that it did not
//! close before the configured time.

use std::time::{Duration, Instant};

use crate::common::{Partner, TestApp, assert_fault, status_json};
use pcq_core::fault::Envelope;
use pcq_server::config::{Config, RouteQuota};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest wait for something the server must do within a fraction of a second.
const DEADLINE: Duration = Duration::from_secs(10);

fn quota(requests_per_minute: u32, burst: u32) -> RouteQuota {
    RouteQuota {
        requests_per_minute,
        burst,
    }
}

async fn throttled_app(change: impl FnOnce(&mut Config)) -> TestApp {
    TestApp::spawn_with(|c| {
        c.throttle.enabled = true;
        change(c);
    })
    .await
}

async fn list_customers(app: &TestApp, partner: &Partner) -> reqwest::Response {
    app.fetch("/v1/customers", &partner.user).await
}

/// Lists the partner's customers `times` times, each answered 200 (using up as many tokens).
async fn list_customers_ok(app: &TestApp, partner: &Partner, times: usize) {
    for _ in 0..times {
        assert_eq!(list_customers(app, partner).await.status(), StatusCode::OK);
    }
}

/// Checks a 429: the envelope, and Retry-After in whole seconds within `1..=max_seconds`.
async fn assert_throttled(resp: reqwest::Response, family: &str, max_seconds: u64) -> Envelope {
    assert!(resp.headers().contains_key("ms-correlationid"));
    let retry_after: u64 = resp
        .headers()
        .get("retry-after")
        .expect("a 429 always has Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After is whole seconds");
    assert!(
        (1..=max_seconds).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    let fault = assert_fault(resp, 429, 950429).await;
    assert_eq!(fault.error_name, "TooManyRequests");
    assert!(fault.is_retryable);
    assert_eq!(fault.parameters["routeFamily"], family);
    // A number on the wire, as Partner Center clients read it.
    assert_eq!(fault.parameters["retryAfterSeconds"], retry_after);
    let description = fault.description.as_str();
    assert!(
        description.contains(&format!("Try again in {retry_after} seconds")),
        "{description}"
    );
    fault
}

#[tokio::test]
async fn a_partner_over_its_limit_gets_429_with_retry_after_and_the_envelope() {
    let app = throttled_app(|c| c.throttle.customers = quota(3, 0)).await;
    let partner = app.partner();
    list_customers_ok(&app, &partner, 3).await;
    // One token every 20 seconds.
    let fault = assert_throttled(list_customers(&app, &partner).await, "customers", 20).await;
    let description = fault.description.as_str();
    assert!(
        description.contains(&partner.tenant.to_string())
            && description.contains("3 requests per minute for customer resources"),
        "{description}"
    );
    // A throttled write does nothing.
    let resp = app
        .send_post(
            "/v1/customers",
            &partner.user,
            &json!({"companyProfile": {"domain": "throttled.example.com"}}),
        )
        .await;
    assert_throttled(resp, "customers", 20).await;
    app.advance("1m").await;
    assert_eq!(app.customer_count(&partner).await, 0);
}

#[tokio::test]
async fn other_partners_and_other_route_families_are_unaffected() {
    let app = throttled_app(|c| {
        c.throttle.customers = quota(1, 0);
        c.throttle.validation_codes = quota(1, 0);
    })
    .await;
    let (first, second) = (app.partner(), app.partner());
    assert_eq!(list_customers(&app, &first).await.status(), StatusCode::OK);
    assert_throttled(list_customers(&app, &first).await, "customers", 60).await;
    assert_eq!(list_customers(&app, &second).await.status(), StatusCode::OK);
    // The same partner in other families: validation codes, audit records, webhooks.
    assert_eq!(app.codes(&first).await, []);
    let resp = app
        .fetch("/v1/auditrecords?startDate=2020-01-01", &first.user)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = app.fetch("/webhooks/v1/registration", &first.app).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // Validation codes are a family of their own, though under /v1/customers.
    let resp = app.fetch("/v1/customers/all/validations", &first.app).await;
    assert_throttled(resp, "validation_codes", 60).await;
    // Customer routes below /v1/customers share the customers bucket.
    let resp = app
        .fetch(
            &format!("/v1/customers/{}/qualifications", uuid::Uuid::new_v4()),
            &first.user,
        )
        .await;
    assert_throttled(resp, "customers", 60).await;
}

#[tokio::test]
async fn unauthenticated_requests_get_401_and_take_no_token() {
    let app = throttled_app(|c| c.throttle.customers = quota(1, 0)).await;
    let partner = app.partner();
    for _ in 0..5 {
        let resp = app.anon(Method::GET, "/v1/customers").send().await.unwrap();
        assert_fault(resp, 401, 800001).await;
    }
    list_customers_ok(&app, &partner, 1).await;
    // Once throttled, a request without a valid token still gets its 401 first.
    assert_throttled(list_customers(&app, &partner).await, "customers", 60).await;
    let resp = app.fetch("/v1/customers", "not-a-token").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn buckets_refill_as_pcq_time_passes() {
    // Two at once, then one every 30 seconds.
    let app = throttled_app(|c| c.throttle.customers = quota(2, 0)).await;
    let partner = app.partner();
    list_customers_ok(&app, &partner, 2).await;
    assert_throttled(list_customers(&app, &partner).await, "customers", 30).await;
    // Thirty seconds later there is exactly one token.
    app.advance("30s").await;
    list_customers_ok(&app, &partner, 1).await;
    assert_throttled(list_customers(&app, &partner).await, "customers", 30).await;
    // A minute later the bucket is full again: two, and no more.
    app.advance("1m").await;
    list_customers_ok(&app, &partner, 2).await;
    assert_throttled(list_customers(&app, &partner).await, "customers", 30).await;
}

#[tokio::test]
async fn burst_sets_how_many_requests_may_come_at_once() {
    // 60 per minute, but at most 2 at once: after 2, the next token comes within a second.
    let app = throttled_app(|c| c.throttle.customers = quota(60, 2)).await;
    let partner = app.partner();
    list_customers_ok(&app, &partner, 2).await;
    let fault = assert_throttled(list_customers(&app, &partner).await, "customers", 1).await;
    assert!(fault.description.contains("at most 2 at once"));
}

#[tokio::test]
async fn test_webhook_events_are_limited_to_two_per_minute_by_default() {
    let app = throttled_app(|_| {}).await;
    let partner = app.partner();
    app.register_webhook(&partner, "http://127.0.0.1:9/hook", &["test-created"])
        .await;
    for _ in 0..2 {
        assert_eq!(
            app.send_test_event(&partner, None).await.status(),
            StatusCode::OK
        );
    }
    assert_throttled(
        app.send_test_event(&partner, None).await,
        "webhook_test_events",
        30,
    )
    .await;
    // The rest of the webhook routes are another family.
    let resp = app.fetch("/webhooks/v1/registration", &partner.app).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn with_throttling_off_nothing_is_ever_429() {
    let app = TestApp::spawn_with(|c| {
        c.throttle.enabled = false;
        c.throttle.customers = quota(1, 0);
        c.throttle.webhook_test_events = quota(1, 0);
    })
    .await;
    let partner = app.partner();
    app.register_webhook(&partner, "http://127.0.0.1:9/hook", &["test-created"])
        .await;
    for _ in 0..20 {
        list_customers_ok(&app, &partner, 1).await;
        let resp = app.send_test_event(&partner, None).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
}

// ---- raw HTTP/1.1 ------------------------------------------------------------------------

/// A response read off a raw connection.
struct RawResponse {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl RawResponse {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Reads one response (with Content-Length) from `stream`; `None` when the connection closes
/// first.
async fn read_response(stream: &mut TcpStream) -> Option<RawResponse> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Some(RawResponse {
        status,
        head,
        body: buf[head_end..head_end + length].to_vec(),
    })
}

/// Waits until the server closes `stream` (reading and discarding anything it sends); the time
/// that took.
async fn closed_after(stream: &mut TcpStream, since: Instant) -> Duration {
    let mut chunk = [0u8; 1024];
    tokio::time::timeout(DEADLINE, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return since.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the server closes the connection")
}

/// Whether the server has neither answered on nor closed `stream` yet.
fn still_waiting(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.addr).await.unwrap()
}

/// The HTTP/2 connection preface.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The preface and an empty SETTINGS frame: what an HTTP/2 client sends first.
const H2_START: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// A server that gives request heads 2 seconds and idle connections a minute.
async fn two_second_heads() -> TestApp {
    TestApp::spawn_with(|c| {
        c.limits.header_read_timeout_seconds = 2.0;
        c.limits.idle_timeout_seconds = 60.0;
    })
    .await
}

fn health_request() -> &'static [u8] {
    b"GET /_pcq/health HTTP/1.1\r\nHost: pcq\r\n\r\n"
}

#[tokio::test]
async fn chunked_bodies_over_the_limit_are_413() {
    let app = TestApp::spawn_with(|c| c.limits.max_body_bytes = 4096).await;
    let partner = app.partner();
    let body =
        json!({"companyProfile": {"domain": "chunked.example.com"}, "note": "x".repeat(10_000)})
            .to_string();
    let mut request = format!(
        "POST /v1/customers HTTP/1.1\r\nHost: pcq\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        partner.user
    )
    .into_bytes();
    for piece in body.as_bytes().chunks(1000) {
        request.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        request.extend_from_slice(piece);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let mut stream = connect(&app).await;
    stream.write_all(&request).await.unwrap();
    let resp = read_response(&mut stream).await.expect("an answer");
    assert_eq!(resp.status, 413, "{}", resp.head);
    let fault = resp.json();
    assert_eq!(fault["code"], 950413);
    assert!(fault["description"].as_str().unwrap().contains("4096"));
    assert_eq!(app.customer_count(&partner).await, 0);

    // A chunked body within the limit is read as usual.
    let small = json!({"companyProfile": {"domain": "chunked.example.com"}}).to_string();
    let request = format!(
        "POST /v1/customers HTTP/1.1\r\nHost: pcq\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {:x}\r\n{small}\r\n0\r\n\r\n",
        partner.user,
        small.len()
    );
    let mut stream = connect(&app).await;
    stream.write_all(request.as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut stream).await.unwrap().status, 201);
}

#[tokio::test]
async fn request_heads_over_the_limit_are_431() {
    let app = TestApp::spawn_with(|c| c.limits.max_header_bytes = 4096).await;
    let partner = app.partner();
    let resp = app
        .get("/v1/customers", &partner.user)
        .header("X-Padding", "p".repeat(5000))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().contains_key("ms-correlationid"));
    let fault = assert_fault(resp, 431, 950431).await;
    assert_eq!(fault.error_name, "RequestHeaderFieldsTooLarge");
    assert!(fault.description.contains("4096"));
    // Just under the limit is fine.
    let resp = app
        .get("/v1/customers", &partner.user)
        .header("X-Padding", "p".repeat(1500))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // Far over it (past twice the limit) the connection layer stops reading: a 431 with the
    // envelope, and the connection closed once the client stops sending.
    let mut stream = connect(&app).await;
    let huge = format!(
        "GET /v1/customers HTTP/1.1\r\nHost: pcq\r\nX-Padding: {}\r\n\r\n",
        "p".repeat(64 * 1024)
    );
    stream.write_all(huge.as_bytes()).await.unwrap();
    let resp = read_response(&mut stream)
        .await
        .expect("the answer arrives");
    assert_eq!(resp.status, 431, "{}", resp.head);
    assert_eq!(resp.json()["code"], 950431, "{}", resp.head);
    assert_eq!(resp.json()["errorName"], "RequestHeaderFieldsTooLarge");
    closed_after(&mut stream, Instant::now()).await;
    // The server is unharmed.
    list_customers_ok(&app, &partner, 1).await;
}

/// Request heads the HTTP layer cannot read are answered with the envelope too (and the
/// connection closed), whether the first request on a connection or a later one.
#[tokio::test]
async fn malformed_request_heads_get_the_envelope() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let post = |headers: &str| {
        format!(
            "POST /v1/customers HTTP/1.1\r\nHost: pcq\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\n{headers}\r\n{{}}",
            partner.user
        )
    };
    let cases = [
        (
            "obs-fold",
            b"GET /_pcq/health HTTP/1.1\r\nHost: pcq\r\nX-A: a\r\n b\r\n\r\n".to_vec(),
        ),
        (
            "bare CR",
            b"GET /_pcq/health HTTP/1.1\r\nHost: pcq\r\nX-A: a\rb\r\n\r\n".to_vec(),
        ),
        (
            "NUL",
            b"GET /_pcq/health HTTP/1.1\r\nHost: pcq\r\nX-A: a\x00b\r\n\r\n".to_vec(),
        ),
        (
            "two lengths",
            post("Content-Length: 2\r\nContent-Length: 3\r\n").into_bytes(),
        ),
        (
            "xchunked",
            post("Transfer-Encoding: xchunked\r\n").into_bytes(),
        ),
        (
            "bad method",
            b"G@T /_pcq/health HTTP/1.1\r\nHost: pcq\r\n\r\n".to_vec(),
        ),
    ];
    for (name, request) in cases {
        for after_a_good_one in [false, true] {
            let mut stream = connect(&app).await;
            if after_a_good_one {
                stream.write_all(health_request()).await.unwrap();
                assert_eq!(read_response(&mut stream).await.unwrap().status, 200);
            }
            stream.write_all(&request).await.unwrap();
            let resp = read_response(&mut stream)
                .await
                .unwrap_or_else(|| panic!("{name}: no answer"));
            assert_eq!(resp.status, 400, "{name}: {}", resp.head);
            assert!(
                resp.head
                    .to_ascii_lowercase()
                    .contains("content-type: application/json"),
                "{name}: {}",
                resp.head
            );
            let fault: Envelope = serde_json::from_slice(&resp.body)
                .unwrap_or_else(|e| panic!("{name}: {e}: {:?}", resp.body));
            assert_eq!(
                (fault.code, fault.error_name.as_str()),
                (800002, "MalformedRequest"),
                "{name}"
            );
            closed_after(&mut stream, Instant::now()).await;
        }
    }
    assert_eq!(app.customer_count(&partner).await, 0);
}

#[tokio::test]
async fn json_nested_too_deep_is_400_before_parsing() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let post = |body: String| app.send_raw("/v1/customers", &partner.user, body);
    // Default 64: 65 levels are refused, also when the body is not even complete JSON.
    for body in [
        format!(
            "{{\"companyProfile\": {{\"domain\": \"deep.example.com\"}}, \"x\": {}{}}}",
            "[".repeat(64),
            "]".repeat(64)
        ),
        "[".repeat(500_000),
        "{\"a\":".repeat(100_000),
    ] {
        let fault = assert_fault(post(body).await, 400, 800002).await;
        assert_eq!(fault.error_name, "JsonNestingTooDeep");
        assert!(fault.description.contains("64 levels"), "{fault:?}");
    }
    // 64 levels are accepted (the extra property is ignored).
    let body = format!(
        "{{\"companyProfile\": {{\"domain\": \"deep.example.com\"}}, \"x\": {}{}}}",
        "[".repeat(63),
        "]".repeat(63)
    );
    assert_eq!(post(body).await.status(), StatusCode::CREATED);
    // Brackets inside strings do not count.
    let body = json!({"companyProfile": {"domain": "strings.example.com", "companyName": "[".repeat(200)}})
        .to_string();
    assert_eq!(post(body).await.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn the_depth_limit_is_configurable() {
    let app = TestApp::spawn_with(|c| c.limits.max_json_depth = 2).await;
    let partner = app.partner();
    // A create-customer body is two levels deep.
    app.create_customer(&partner, "shallow.example.com").await;
    let resp = app
        .send_post(
            "/v1/customers",
            &partner.user,
            &json!({"companyProfile": {"domain": "deeper.example.com"}, "billingProfile": {"address": {}}}),
        ).await;
    let fault = assert_fault(resp, 400, 800002).await;
    assert_eq!(fault.parameters["maxDepth"], "2");
    assert_eq!(app.customer_count(&partner).await, 1);
}

#[tokio::test]
async fn a_request_that_takes_too_long_gets_408() {
    let app = TestApp::spawn_with(|c| c.limits.request_timeout_seconds = 0.3).await;
    let partner = app.partner();
    // The body never arrives in full: the handler waits for it until the timeout.
    let mut stream = connect(&app).await;
    let request = format!(
        "POST /v1/customers HTTP/1.1\r\nHost: pcq\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"companyProfile\":",
        partner.user
    );
    let started = Instant::now();
    stream.write_all(request.as_bytes()).await.unwrap();
    let resp = tokio::time::timeout(DEADLINE, read_response(&mut stream))
        .await
        .expect("answered within the deadline")
        .expect("an answer");
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(resp.status, 408, "{}", resp.head);
    let fault = resp.json();
    assert_eq!(fault["code"], 950408);
    assert_eq!(fault["isRetryable"], true);
    assert!(
        fault["description"]
            .as_str()
            .unwrap()
            .contains("longer than 0.3 seconds"),
        "{fault}"
    );
    assert_eq!(app.customer_count(&partner).await, 0);
}

#[tokio::test]
async fn slow_header_clients_are_cut_off_while_others_are_served() {
    let app = two_second_heads().await;
    // One client never finishes its head; another sends it a byte at a time, forever.
    let mut silent = connect(&app).await;
    silent
        .write_all(b"GET /_pcq/health HTTP/1.1\r\nHost: pcq\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut dripping = connect(&app).await;
    let drip = async {
        for byte in b"GET /_pcq/health HTTP/1.1\r\nX-Slow: "
            .iter()
            .chain([b'a'; 1000].iter())
        {
            if dripping.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut rest = [0u8; 64];
        let _closed = tokio::time::timeout(DEADLINE, dripping.read(&mut rest))
            .await
            .expect("the server closes the dripping connection");
        started.elapsed()
    };
    let others = async {
        // Meanwhile other clients are served, and the slow ones are still connected.
        for _ in 0..5 {
            let mut stream = connect(&app).await;
            stream.write_all(health_request()).await.unwrap();
            assert_eq!(read_response(&mut stream).await.unwrap().status, 200);
        }
        assert!(started.elapsed() < Duration::from_millis(1800));
        assert!(
            still_waiting(&silent),
            "the silent client was cut off early"
        );
        closed_after(&mut silent, started).await
    };
    let (dripped, silent_for) = tokio::join!(drip, others);
    for elapsed in [dripped, silent_for] {
        assert!(
            (Duration::from_millis(1800)..DEADLINE).contains(&elapsed),
            "closed after {elapsed:?}"
        );
    }
}

/// Every new connection must deliver a request head (HTTP/1) or the preface and its SETTINGS
/// frame (HTTP/2) within the header timeout, whether it sends nothing, trickles the HTTP/2
/// preface, stops after it, or starts its HTTP/1 head late and slowly.
#[tokio::test]
async fn every_protocol_must_start_within_the_header_timeout() {
    let app = two_second_heads().await;
    let started = Instant::now();
    let mut silent = connect(&app).await;
    let mut preface_only = connect(&app).await;
    preface_only.write_all(H2_PREFACE).await.unwrap();
    // Writes `bytes` one at a time, 100 ms apart, until the server closes the connection;
    // then how long after `started` it closed.
    async fn trickle(mut stream: TcpStream, bytes: Vec<u8>, started: Instant) -> Duration {
        for byte in bytes {
            if stream.write_all(&[byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        closed_after(&mut stream, started).await
    }
    // The HTTP/2 preface and a SETTINGS frame, a byte at a time: 33 bytes take 3.3 s.
    let h2_trickle = trickle(connect(&app).await, H2_START.to_vec(), started);
    // An HTTP/1 head that starts after 1.5 s and then arrives a byte at a time.
    let late = connect(&app).await;
    let h1_late = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        trickle(late, health_request().to_vec(), started).await
    };
    let quiet = async {
        let silent_for = closed_after(&mut silent, started).await;
        let preface_for = closed_after(&mut preface_only, started).await;
        (silent_for, preface_for)
    };
    let others = async {
        // Meanwhile other clients are served, on both protocols.
        let mut stream = connect(&app).await;
        stream.write_all(health_request()).await.unwrap();
        assert_eq!(read_response(&mut stream).await.unwrap().status, 200);
        let mut stream = connect(&app).await;
        stream.write_all(H2_START).await.unwrap();
        let mut frame = [0u8; 9];
        stream.read_exact(&mut frame).await.unwrap();
        assert_eq!(frame[3], 0x04, "an HTTP/2 SETTINGS frame: {frame:?}");
    };
    let ((silent_for, preface_for), h2_for, h1_for, ()) =
        tokio::join!(quiet, h2_trickle, h1_late, others);
    // The late HTTP/1 head would get until 3.5 s if its time started with its first byte.
    for (name, elapsed) in [
        ("silent", silent_for),
        ("preface only", preface_for),
        ("trickled HTTP/2 preface", h2_for),
        ("late HTTP/1 head", h1_for),
    ] {
        assert!(
            (Duration::from_millis(1800)..Duration::from_millis(3400)).contains(&elapsed),
            "the {name} connection closed after {elapsed:?}"
        );
    }
}

/// A client that writes its whole oversized body before reading (as many SDKs do) reads the
/// 413 envelope, not a reset connection: pcq reads and discards the rest before closing.
#[tokio::test]
async fn an_oversized_body_sent_in_full_still_gets_its_413() {
    let app = TestApp::spawn_with(|c| c.limits.max_body_bytes = 4096).await;
    let partner = app.partner();
    let body = vec![b' '; 32 * 1024 * 1024];
    let head = format!(
        "POST /v1/customers HTTP/1.1\r\nHost: pcq\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        partner.user,
        body.len()
    );
    let mut stream = connect(&app).await;
    stream.write_all(head.as_bytes()).await.unwrap();
    tokio::time::timeout(DEADLINE, stream.write_all(&body))
        .await
        .expect("pcq reads what is sent")
        .expect("the whole body is written without a reset");
    let resp = read_response(&mut stream)
        .await
        .expect("the answer arrives");
    assert_eq!(resp.status, 413, "{}", resp.head);
    assert_eq!(resp.json()["code"], 950413);
    assert_eq!(app.customer_count(&partner).await, 0);
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let app = TestApp::spawn_with(|c| {
        c.limits.header_read_timeout_seconds = 60.0;
        c.limits.idle_timeout_seconds = 0.5;
    })
    .await;
    let mut stream = connect(&app).await;
    stream.write_all(health_request()).await.unwrap();
    assert_eq!(read_response(&mut stream).await.unwrap().status, 200);
    let answered = Instant::now();
    // Kept alive, but idle: closed after the idle timeout.
    let idle = closed_after(&mut stream, answered).await;
    assert!(idle >= Duration::from_millis(400), "closed after {idle:?}");
    // A connection that never sends anything is idle too.
    let mut silent = connect(&app).await;
    let opened = Instant::now();
    let idle = closed_after(&mut silent, opened).await;
    assert!(idle >= Duration::from_millis(400), "closed after {idle:?}");
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let app = TestApp::spawn_with(|c| c.limits.max_connections = 1).await;
    let mut first = connect(&app).await;
    first.write_all(health_request()).await.unwrap();
    assert_eq!(read_response(&mut first).await.unwrap().status, 200);
    // The first connection is kept alive: the second waits in the accept queue, unanswered.
    let mut second = connect(&app).await;
    second.write_all(health_request()).await.unwrap();
    let waited = tokio::time::timeout(Duration::from_millis(500), read_response(&mut second)).await;
    assert!(waited.is_err(), "answered while the only slot was taken");
    // The first is still served on its connection.
    first.write_all(health_request()).await.unwrap();
    assert_eq!(read_response(&mut first).await.unwrap().status, 200);
    // Once it closes, the second gets its answer.
    drop(first);
    let resp = tokio::time::timeout(DEADLINE, read_response(&mut second))
        .await
        .expect("answered once a slot is free")
        .unwrap();
    assert_eq!(resp.status, 200);
}

#[tokio::test]
async fn http2_with_prior_knowledge_is_spoken() {
    let app = TestApp::spawn().await;
    let mut stream = connect(&app).await;
    // The connection preface and an empty SETTINGS frame.
    stream.write_all(H2_START).await.unwrap();
    let mut frame = [0u8; 9];
    tokio::time::timeout(DEADLINE, stream.read_exact(&mut frame))
        .await
        .expect("the server answers")
        .unwrap();
    assert_eq!(
        frame[3], 0x04,
        "the server's first frame is SETTINGS: {frame:?}"
    );
}

#[tokio::test]
async fn shutdown_waits_for_requests_in_flight() {
    let mut app = TestApp::spawn().await;
    let partner = app.partner();
    let body = json!({"companyProfile": {"domain": "inflight.example.com"}}).to_string();
    let mut idle = connect(&app).await;
    idle.write_all(health_request()).await.unwrap();
    assert_eq!(read_response(&mut idle).await.unwrap().status, 200);
    // The server asks for the body (100 Continue) once the handler reads it: the request is
    // then in flight.
    let mut stream = connect(&app).await;
    stream
        .write_all(
            format!(
                "POST /v1/customers HTTP/1.1\r\nHost: pcq\r\nAuthorization: Bearer {}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\
                 Expect: 100-continue\r\n\r\n",
                partner.user,
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(read_response(&mut stream).await.unwrap().status, 100);
    let addr = app.addr;
    let finish = async {
        // Sent once the shutdown has begun.
        tokio::task::yield_now().await;
        stream.write_all(body.as_bytes()).await.unwrap();
        read_response(&mut stream).await.expect("answered")
    };
    let (_, resp) = tokio::join!(app.stop(), finish);
    assert_eq!(resp.status, 201, "{}", resp.head);
    assert_eq!(
        resp.json()["companyProfile"]["domain"],
        "inflight.example.com"
    );
    // The idle keep-alive connection was closed, and nothing new is accepted.
    closed_after(&mut idle, Instant::now()).await;
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn the_defaults_throttle_customers_at_500_per_minute() {
    let config = Config::defaults();
    assert!(config.throttle.enabled);
    assert_eq!(config.throttle.customers, quota(500, 0));
    assert_eq!(config.throttle.customers.capacity(), 500);
    assert_eq!(config.throttle.webhook_test_events, quota(2, 0));
    assert_eq!(config.throttle.admin.requests_per_minute, 0);
    assert_eq!(config.limits.request_timeout_seconds, 30.0);
    let (status, _) = status_json(
        TestApp::spawn()
            .await
            .anon(Method::GET, "/_pcq/health")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}
