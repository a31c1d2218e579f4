//! The README's "Using pcq in your tests", in Rust: each test starts its own pcq in memory on a
//! free port (tests run in parallel threads, and pcq starts in well under a second), resets it
//! between scenarios, injects faults to exercise a client's retries, and reads the request
//! journal to check what the client sent. A project of its own needs `tokio`, `reqwest` (with
//! `json`), `serde_json`, `tempfile` and `uuid`, and `pcq` on PATH (or `PCQ_BIN`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A running pcq and the tokens to call it with.
struct Pcq {
    _server: Server,
    url: String,
    partner: String,
    partner_token: String,
    admin_token: String,
    http: reqwest::Client,
    _data_dir: tempfile::TempDir,
}

/// The pcq binary: `PCQ_BIN`, else the one cargo built when this test is part of pcq itself,
/// else `pcq` on PATH.
fn pcq_bin() -> String {
    std::env::var("PCQ_BIN")
        .ok()
        .or(option_env!("CARGO_BIN_EXE_pcq").map(String::from))
        .unwrap_or_else(|| "pcq".to_owned())
}

/// An HTTP client. pcq builds reqwest with rustls and no default crypto provider, so it picks
/// one; with reqwest's default features, `reqwest::Client::new()` alone does.
fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

impl Pcq {
    fn start() -> Pcq {
        let data_dir = tempfile::tempdir().unwrap();
        let mut server = Server(
            Command::new(pcq_bin())
                .args([
                    "serve",
                    "--in-memory",
                    "--listen",
                    "127.0.0.1:0",
                    "--data-dir",
                ])
                .arg(data_dir.path())
                .stdout(Stdio::piped())
                .spawn()
                .expect("pcq starts"),
        );
        // The first lines name the address and the development partner tenant.
        let mut lines = BufReader::new(server.0.stdout.take().unwrap()).lines();
        let (mut url, mut partner) = (None, None);
        while url.is_none() || partner.is_none() {
            let line = lines.next().expect("pcq printed its address").unwrap();
            if let Some(rest) = line.strip_prefix("pcq listening on ") {
                url = Some(rest.trim().to_owned());
            } else if let Some(rest) = line.strip_prefix("development partner tenant: ") {
                partner = Some(rest.trim().to_owned());
            }
        }
        let partner = partner.unwrap();
        let token = |extra: &[&str]| {
            let out = Command::new(pcq_bin())
                .args(["token", "--tenant", &partner, "--data-dir"])
                .arg(data_dir.path())
                .args(extra)
                .output()
                .unwrap();
            assert!(out.status.success(), "pcq token failed");
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        };
        Pcq {
            partner_token: token(&[]),
            admin_token: token(&["--role", "Pcq.Admin"]),
            _server: server,
            url: url.unwrap(),
            partner,
            http: http_client(),
            _data_dir: data_dir,
        }
    }

    /// Calls a sandbox control (`/_pcq/admin/...`) and returns its JSON answer.
    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}/_pcq/admin{path}", self.url))
            .bearer_auth(&self.admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.unwrap().error_for_status().unwrap();
        answer.json().await.unwrap_or(Value::Null)
    }

    async fn reset(&self) {
        self.admin(Method::POST, "/reset", None).await;
    }

    async fn customers(&self) -> Vec<Value> {
        let answer = self
            .http
            .get(format!("{}/v1/customers", self.url))
            .bearer_auth(&self.partner_token)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        let page: Value = answer.json().await.unwrap();
        page["items"].as_array().unwrap().clone()
    }

    /// The requests pcq served to `POST /v1/customers`, newest first.
    async fn customer_posts(&self) -> Vec<Value> {
        let page = self
            .admin(
                Method::GET,
                "/requests?method=POST&path=/v1/customers",
                None,
            )
            .await;
        page["items"].as_array().unwrap().clone()
    }
}

/// The pcq process, stopped when dropped (also when a test fails).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The client under test: on a lost answer or a 5xx it tries again with the same
/// `MS-RequestId`, so a write that already happened is answered, not done twice.
async fn create_customer(pcq: &Pcq, domain: &str) -> reqwest::Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    for _ in 0..3 {
        let sent = pcq
            .http
            .post(format!("{}/v1/customers", pcq.url))
            .bearer_auth(&pcq.partner_token)
            .header("MS-RequestId", &request_id)
            .json(&json!({"companyProfile": {"domain": domain, "companyName": "Contoso"}}))
            .send()
            .await;
        match sent {
            Ok(answer) if !answer.status().is_server_error() => return answer,
            _ => continue,
        }
    }
    panic!("no answer after 3 attempts");
}

#[tokio::test]
async fn a_client_survives_a_503_and_a_lost_answer() {
    let pcq = Pcq::start();

    // A 503 on the first attempt: the retry creates the customer.
    let fault = pcq
        .admin(
            Method::POST,
            "/faults",
            Some(json!({"method": "POST", "path": "/v1/customers", "status": 503, "count": 1})),
        )
        .await;
    let answer = create_customer(&pcq, "retry.example.edu").await;
    assert_eq!(answer.status(), StatusCode::CREATED);
    assert_eq!(pcq.customers().await.len(), 1);
    let sent = pcq.customer_posts().await;
    let statuses: Vec<_> = sent.iter().map(|e| e["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [201, 503]);
    assert_eq!(sent[1]["fault"], fault["id"]);
    assert_eq!(sent[0]["requestId"], sent[1]["requestId"]);

    // Back to empty: no customers, no faults, an empty journal.
    pcq.reset().await;
    assert!(pcq.customers().await.is_empty());
    assert!(pcq.customer_posts().await.is_empty());

    // The customer is created, then the answer is lost: the retry gets the stored answer.
    let lose_the_answer = json!({"method": "POST", "path": "/v1/customers", "status": "reset",
                                 "when": "after", "count": 1});
    let fault = pcq
        .admin(Method::POST, "/faults", Some(lose_the_answer))
        .await;
    let answer = create_customer(&pcq, "lost.example.edu").await;
    assert_eq!(answer.status(), StatusCode::CREATED);
    let created: Value = answer.json().await.unwrap();
    let customers = pcq.customers().await;
    assert_eq!(customers.len(), 1, "the retry created nothing twice");
    assert_eq!(customers[0]["id"], created["id"]);
    let sent = pcq.customer_posts().await;
    assert_eq!(sent.len(), 2);
    // The first attempt got no answer (status 0): the fault closed its connection.
    assert_eq!(sent[1]["status"], 0);
    assert_eq!(sent[1]["fault"], fault["id"]);
    assert_eq!(sent[0]["replayed"], true);
    assert_eq!(sent[1]["replayed"], false);
    assert_eq!(sent[0]["partner"].as_str(), Some(pcq.partner.as_str()));
}
