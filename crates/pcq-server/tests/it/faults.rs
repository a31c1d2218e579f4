//! Injected faults: `before` answers without running the handler, `after` loses the answer of
//! a committed write, `reset` closes the connection, delays slow the real answer, partner
//! faults fire only for that verified partner, counts are spent exactly once across nodes, and
//! seeded probabilities repeat.

use std::time::{Duration, Instant};

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use crate::common::{Backend, TestApp, assert_fault, backend, backend_tests, ok, status_json};

/// Adds a fault; answers it as stored.
async fn add(app: &TestApp, body: Value) -> Value {
    let resp = app
        .send_post("/_pcq/admin/faults", &app.admin_token(), &body)
        .await;
    let (status, answer) = status_json(resp).await;
    assert_eq!(status, StatusCode::CREATED, "{body}: {answer}");
    answer
}

/// The faults in force.
async fn list(app: &TestApp) -> Vec<Value> {
    ok(app.fetch("/_pcq/admin/faults", &app.admin_token()).await).await
}

/// The fault that changed an answer, if any.
fn fault_of(resp: &Response) -> Option<String> {
    resp.headers()
        .get("x-pcq-fault")
        .map(|v| v.to_str().unwrap().to_owned())
}

fn customer_body(domain: &str) -> Value {
    json!({"companyProfile": {"domain": domain, "companyName": "Contoso"}})
}

async fn a_before_fault_answers_without_running_the_handler() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let fault = add(
        &app,
        json!({"method": "post", "path": "/v1/customers", "status": 503}),
    )
    .await;
    let id = fault["id"].as_str().unwrap().to_owned();
    assert_eq!(fault["method"], "POST", "{fault}");
    assert_eq!(fault["status"], 503, "{fault}");
    assert_eq!(fault["when"], "before", "{fault}");
    assert_eq!(fault["probability"], 1.0, "{fault}");
    assert_eq!(fault["fired"], 0, "{fault}");
    assert_eq!(fault["remaining"], Value::Null, "{fault}");
    assert_eq!(fault["partner"], Value::Null, "{fault}");

    for n in 0..2 {
        let resp = app
            .send_post(
                "/v1/customers",
                &partner.user,
                &customer_body(&format!("c{n}.example.edu")),
            )
            .await;
        assert_eq!(fault_of(&resp).as_deref(), Some(id.as_str()));
        assert!(resp.headers().get("ms-correlationid").is_some());
        let envelope = assert_fault(resp, 503, 800003).await;
        assert_eq!(envelope.error_name, "ServiceUnavailable");
        assert!(envelope.is_retryable);
        assert_eq!(envelope.parameters["faultId"], id.as_str());
        assert!(
            envelope.description.contains(&id),
            "{}",
            envelope.description
        );
    }
    // Nothing was created; other methods and paths are untouched.
    let resp = app.fetch("/v1/customers", &partner.user).await;
    assert_eq!(fault_of(&resp), None);
    let page: Value = ok(resp).await;
    assert_eq!(page["totalCount"], 0, "{page}");
    let listed = list(&app).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["fired"], 2, "{listed:?}");

    // Removed, the fault no longer fires.
    let resp = app
        .send(
            Method::DELETE,
            &format!("/_pcq/admin/faults/{id}"),
            &app.admin_token(),
            None,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    app.create_customer(&partner, "after.example.edu").await;
    assert_eq!(list(&app).await, Vec::<Value>::new());
}

async fn a_429_always_carries_retry_after() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let fault = add(
        &app,
        json!({"method": "GET", "path": "/v1/customers", "status": 429, "count": 1}),
    )
    .await;
    assert_eq!(fault["count"], 1, "{fault}");
    assert_eq!(fault["remaining"], 1, "{fault}");
    let resp = app.fetch("/v1/customers", &partner.app).await;
    assert_eq!(resp.headers()["retry-after"], "1");
    let envelope = assert_fault(resp, 429, 950429).await;
    assert_eq!(envelope.parameters["retryAfterSeconds"], json!(1));

    add(
        &app,
        json!({"path": "/v1/customers", "status": 503, "retryAfterSeconds": 7, "count": 1}),
    )
    .await;
    let resp = app.fetch("/v1/customers", &partner.app).await;
    assert_eq!(resp.headers()["retry-after"], "7");
    let envelope = assert_fault(resp, 503, 800003).await;
    assert_eq!(envelope.parameters["retryAfterSeconds"], json!(7));
    // Both were spent and are gone.
    assert_eq!(list(&app).await, Vec::<Value>::new());
    let resp = app.fetch("/v1/customers", &partner.app).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

async fn an_after_fault_loses_the_answer_of_a_committed_write() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let fault = add(
        &app,
        json!({"method": "POST", "path": "/v1/customers", "status": 500, "when": "after",
               "count": 1}),
    )
    .await;
    let request_id = Uuid::new_v4().to_string();
    let send = || {
        app.post(
            "/v1/customers",
            &partner.user,
            &customer_body("retried.example.edu"),
        )
        .header("MS-RequestId", &request_id)
        .send()
    };
    let lost = send().await.unwrap();
    assert_eq!(fault_of(&lost).as_deref(), fault["id"].as_str());
    let envelope = assert_fault(lost, 500, 800003).await;
    assert!(
        envelope.description.contains("was carried out"),
        "{}",
        envelope.description
    );

    // The write happened once; the retry gets its stored answer.
    let retried = send().await.unwrap();
    assert_eq!(fault_of(&retried), None);
    let (status, first) = status_json(retried).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = status_json(send().await.unwrap()).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again["id"], first["id"]);
    assert_eq!(app.customer_count(&partner).await, 1);
}

/// Sends a GET over a raw HTTP/1.1 connection; what came back before the connection ended.
async fn raw_get(app: &TestApp, path: &str, token: &str) -> (Vec<u8>, Option<std::io::Error>) {
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\r\n",
        app.addr
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut received))
        .await
        .expect("the connection ends");
    (received, read.err())
}

async fn a_reset_fault_closes_the_connection_without_an_answer() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    add(
        &app,
        json!({"method": "GET", "path": "/v1/customers", "status": "reset", "count": 2}),
    )
    .await;
    let (received, error) = raw_get(&app, "/v1/customers", &partner.app).await;
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );
    if let Some(error) = error {
        assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset, "{error}");
    }
    let error = app
        .get("/v1/customers", &partner.app)
        .send()
        .await
        .expect_err("the connection is closed without an answer");
    assert!(error.is_request() || error.is_connect(), "{error:?}");
    // Spent: the next request is answered.
    let resp = app.fetch("/v1/customers", &partner.app).await;
    assert_eq!(resp.status(), StatusCode::OK);

    // After: the write commits, then the connection is closed.
    add(
        &app,
        json!({"method": "POST", "path": "/v1/customers", "status": "reset", "when": "after",
               "count": 1}),
    )
    .await;
    let error = app
        .post(
            "/v1/customers",
            &partner.user,
            &customer_body("lost.example.edu"),
        )
        .send()
        .await
        .expect_err("the answer is lost");
    assert!(!error.is_status(), "{error:?}");
    assert_eq!(app.customer_count(&partner).await, 1);
}

async fn a_delay_fault_slows_the_real_answer() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let fault = add(
        &app,
        json!({"method": "GET", "path": "/v1/customers", "delayMs": 400}),
    )
    .await;
    assert_eq!(fault["status"], Value::Null, "{fault}");
    assert_eq!(fault["delayMs"], 400, "{fault}");
    let started = Instant::now();
    let resp = app.fetch("/v1/customers", &partner.app).await;
    let elapsed = started.elapsed();
    assert_eq!(fault_of(&resp).as_deref(), fault["id"].as_str());
    let page: Value = ok(resp).await;
    assert_eq!(page["totalCount"], 0);
    assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");

    // After the handler, with a status: the write is done, then the answer waits and is lost.
    add(
        &app,
        json!({"method": "POST", "path": "/v1/customers", "delayMs": 300, "status": 503,
               "when": "after", "count": 1}),
    )
    .await;
    let started = Instant::now();
    let resp = app
        .send_post(
            "/v1/customers",
            &partner.user,
            &customer_body("slow.example.edu"),
        )
        .await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_fault(resp, 503, 800003).await;
    assert_eq!(app.customer_count(&partner).await, 1);
}

async fn a_partner_fault_fires_only_for_that_verified_partner() {
    let app = TestApp::spawn().await;
    let (a, b) = (app.partner(), app.partner());
    let fault = add(
        &app,
        json!({"path": "/v1/customers", "status": 503, "partner": a.tenant.to_string()}),
    )
    .await;
    assert_eq!(fault["partner"], a.tenant.to_string());
    let id = fault["id"].as_str().unwrap();

    // Another partner, no credentials, and a token claiming the partner's tenant that pcq does
    // not verify are not faulted.
    let resp = app.fetch("/v1/customers", &b.app).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = app.anon(Method::GET, "/v1/customers").send().await.unwrap();
    assert_eq!(fault_of(&resp), None);
    assert_fault(resp, 401, 800001).await;
    let forged = {
        let mut parts: Vec<String> = a.app.split('.').map(str::to_owned).collect();
        parts[2] = "AAAA".to_owned();
        parts.join(".")
    };
    let resp = app.fetch("/v1/customers", &forged).await;
    assert_eq!(fault_of(&resp), None);
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let resp = app.fetch("/v1/customers", &a.app).await;
    assert_eq!(fault_of(&resp).as_deref(), Some(id));
    assert_fault(resp, 503, 800003).await;
    let resp = app
        .send_post("/v1/customers", &a.user, &customer_body("a.example.edu"))
        .await;
    assert_fault(resp, 503, 800003).await;
    assert_eq!(list(&app).await[0]["fired"], 2);

    // A partner fault that fires after the request, or only delays.
    let _ = app
        .send(
            Method::DELETE,
            "/_pcq/admin/faults",
            &app.admin_token(),
            None,
        )
        .await;
    add(
        &app,
        json!({"method": "POST", "path": "/v1/customers", "status": 502, "when": "after",
               "partner": a.tenant.to_string()}),
    )
    .await;
    let resp = app
        .send_post("/v1/customers", &a.user, &customer_body("a.example.edu"))
        .await;
    assert_fault(resp, 502, 800003).await;
    assert_eq!(app.customer_count(&a).await, 1);
    app.create_customer(&b, "b.example.edu").await;
}

async fn sandbox_controls_are_never_faulted() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let everything = add(&app, json!({"path": "/**", "status": 500})).await;
    for path in [
        "/_pcq/admin/faults",
        "/_pcq/health",
        "/_pcq/ready",
        "/_pcq/openapi.json",
    ] {
        let resp = app.fetch(path, &admin).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert_eq!(fault_of(&resp), None, "{path}");
    }
    let resp = app.fetch("/v1/customers", &admin).await;
    assert_eq!(fault_of(&resp).as_deref(), everything["id"].as_str());
    // A fault that could only match them is refused.
    let resp = app
        .send_post(
            "/_pcq/admin/faults",
            &admin,
            &json!({"path": "/_pcq/admin/**", "status": 500}),
        )
        .await;
    let envelope = assert_fault(resp, 400, 800002).await;
    assert_eq!(envelope.parameters["field"], "path");
    // Clearing answers how many were removed.
    let cleared: Value = ok(app
        .send(Method::DELETE, "/_pcq/admin/faults", &admin, None)
        .await)
    .await;
    assert_eq!(cleared, json!({"removed": 1}));
    let resp = app.fetch("/v1/customers", &admin).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

async fn faults_are_checked_and_need_the_admin_role() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let partner = app.partner();
    let good = json!({"path": "/v1/customers", "status": 503});
    for token in [&partner.user, &app.reviewer_token()] {
        let resp = app.send_post("/_pcq/admin/faults", token, &good).await;
        assert_fault(resp, 403, 900150).await;
        let resp = app.fetch("/_pcq/admin/faults", token).await;
        assert_fault(resp, 403, 900150).await;
    }
    let bad = [
        (
            json!({"path": "/v1/customers", "status": 503, "method": "BREW"}),
            "method",
            "BREW",
        ),
        (
            json!({"path": "/v1/customers", "status": 302}),
            "status",
            "400 to 599",
        ),
        (
            json!({"path": "/v1/customers", "status": 503, "probability": 2}),
            "probability",
            "0 to 1",
        ),
        (
            json!({"path": "/v1/customers"}),
            "status",
            "would change nothing",
        ),
        (
            json!({"path": "/v1/customers", "delayMs": 3_600_000}),
            "delayMs",
            "60000",
        ),
        (
            json!({"path": "/v1/{customers", "status": 503}),
            "path",
            "not a valid glob",
        ),
        (
            json!({"path": "/v1/customers", "status": 503, "retries": 3}),
            "retries",
            "Unknown property",
        ),
        (json!({"status": 503}), "path", "required"),
    ];
    for (body, field, says) in bad {
        let resp = app.send_post("/_pcq/admin/faults", &admin, &body).await;
        let envelope = assert_fault(resp, 400, 800002).await;
        assert_eq!(envelope.parameters["field"], field, "{body}");
        assert!(
            envelope.description.contains(says),
            "{body}: {}",
            envelope.description
        );
    }
    let resp = app
        .send(Method::DELETE, "/_pcq/admin/faults/nope", &admin, None)
        .await;
    assert_fault(resp, 400, 800002).await;
    let resp = app
        .send(
            Method::DELETE,
            &format!("/_pcq/admin/faults/{}", Uuid::new_v4()),
            &admin,
            None,
        )
        .await;
    let envelope = assert_fault(resp, 404, 1000).await;
    assert_eq!(envelope.error_name, "FaultNotFound");
    assert_eq!(list(&app).await, Vec::<Value>::new());
}

/// Which of `n` requests to a path no route serves were faulted (a 503 rather than a 404).
async fn faulted(app: &TestApp, n: usize) -> Vec<usize> {
    let mut fired = Vec::new();
    for i in 0..n {
        let resp = app.anon(Method::GET, "/sample/path").send().await.unwrap();
        match resp.status() {
            StatusCode::SERVICE_UNAVAILABLE => fired.push(i),
            StatusCode::NOT_FOUND => {}
            other => panic!("request {i}: {other}"),
        }
    }
    fired
}

async fn a_seeded_probability_repeats() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let body = json!({"path": "/sample/*", "status": 503, "probability": 0.3, "seed": 42});
    let first = add(&app, body.clone()).await;
    let fired = faulted(&app, 1000).await;
    assert!(
        (240..=360).contains(&fired.len()),
        "{} of 1000 fired at 0.3",
        fired.len()
    );
    assert_eq!(list(&app).await[0]["fired"], fired.len() as u64);
    let resp = app
        .send(
            Method::DELETE,
            &format!("/_pcq/admin/faults/{}", first["id"].as_str().unwrap()),
            &admin,
            None,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    // The same seed again picks the same requests; another seed, others.
    add(&app, body).await;
    assert_eq!(faulted(&app, 1000).await, fired);
    let _ = app
        .send(Method::DELETE, "/_pcq/admin/faults", &admin, None)
        .await;
    add(
        &app,
        json!({"path": "/sample/*", "status": 503, "probability": 0.3, "seed": 43}),
    )
    .await;
    assert_ne!(faulted(&app, 1000).await, fired);
}

async fn a_count_is_spent_exactly_under_concurrent_requests() {
    let app = TestApp::spawn().await;
    add(
        &app,
        json!({"path": "/sample/*", "status": 503, "count": 5}),
    )
    .await;
    let statuses = futures_util::future::join_all((0..40).map(|_| async {
        app.anon(Method::GET, "/sample/path")
            .send()
            .await
            .unwrap()
            .status()
    }))
    .await;
    let fired = statuses
        .iter()
        .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert_eq!(fired, 5, "{statuses:?}");
    assert_eq!(list(&app).await, Vec::<Value>::new());
}

/// Faults persist in the store: a restarted node applies them.
async fn a_restarted_node_keeps_its_faults() {
    let app = TestApp::spawn().await;
    add(&app, json!({"path": "/sample/*", "status": 418})).await;
    let app = app.restart().await;
    let resp = app.anon(Method::GET, "/sample/x").send().await.unwrap();
    assert_fault(resp, 418, 800002).await;
}

/// On PostgreSQL, nodes share the faults: one added on a node fires on another, and a count is
/// spent exactly across both.
async fn nodes_share_faults_and_their_counts() {
    if backend() != Backend::Postgres {
        return;
    }
    let app = TestApp::spawn().await;
    let mut config = app.state.config.clone();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.worker.poll_interval_ms = 50;
    let other = TestApp::start(config).await;

    let fault = add(&app, json!({"path": "/sample/*", "status": 503})).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let resp = other.anon(Method::GET, "/sample/x").send().await.unwrap();
        if resp.status() == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(fault_of(&resp).as_deref(), fault["id"].as_str());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the other node never applied the fault"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Removed on the other node, it stops firing on the first at once: firing needs the row.
    let cleared: Value = ok(other
        .send(
            Method::DELETE,
            "/_pcq/admin/faults",
            &other.admin_token(),
            None,
        )
        .await)
    .await;
    assert_eq!(cleared["removed"], 1);
    let resp = app.anon(Method::GET, "/sample/x").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    let limited = add(
        &app,
        json!({"path": "/sample/*", "status": 503, "count": 5}),
    )
    .await;
    let id = Uuid::parse_str(limited["id"].as_str().unwrap()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while other
        .state
        .pipeline
        .faults
        .candidates(&Method::GET, "/sample/x")
        .iter()
        .all(|rule| rule.id != id)
    {
        assert!(
            Instant::now() < deadline,
            "the other node never took the fault up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let nodes = [&app, &other];
    let statuses = futures_util::future::join_all((0..40).map(|i| async move {
        nodes[i % 2]
            .anon(Method::GET, "/sample/path")
            .send()
            .await
            .unwrap()
            .status()
    }))
    .await;
    let fired = statuses
        .iter()
        .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert_eq!(fired, 5, "{statuses:?}");
    assert_eq!(list(&other).await, Vec::<Value>::new());
}

backend_tests!(
    a_before_fault_answers_without_running_the_handler,
    a_429_always_carries_retry_after,
    an_after_fault_loses_the_answer_of_a_committed_write,
    a_reset_fault_closes_the_connection_without_an_answer,
    a_delay_fault_slows_the_real_answer,
    a_partner_fault_fires_only_for_that_verified_partner,
    sandbox_controls_are_never_faulted,
    faults_are_checked_and_need_the_admin_role,
    a_seeded_probability_repeats,
    a_count_is_spent_exactly_under_concurrent_requests,
    a_restarted_node_keeps_its_faults,
    nodes_share_faults_and_their_counts,
);
