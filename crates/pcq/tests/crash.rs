//! Crash durability on the embedded SQLite store: `pcq serve` under write load is killed with
//! SIGKILL at random moments and started again on the same data directory, several times.
//! Afterwards every write that was answered 2xx is there, every request id replays its first
//! answer byte for byte, a request that got no answer takes effect exactly once when retried,
//! and the database passes SQLite's integrity check.
//!
//! The load is far above a partner's request rate, so throttling is off.
//!
//! `PCQ_CRASH_ROUNDS` sets the number of kills (default 5); a longer run by hand:
//! `PCQ_CRASH_ROUNDS=50 cargo test -p pcq --test crash -- --nocapture`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use pcq_test_support::{Key, Pcq, Server, count_customers};
use serde_json::{Value, json};
use sqlx::Connection;
use tokio::sync::Notify;
use uuid::Uuid;

/// The binary under test.
const PCQ: Pcq = Pcq::new(env!("CARGO_BIN_EXE_pcq"));

/// Concurrent clients during each round.
const CLIENTS: usize = 8;

/// One write a client sent: where, what, and the answer if one came.
#[derive(Clone, Debug)]
struct Sent {
    path: String,
    body: Value,
    /// Status and raw body of the answer; `None` when the connection died first.
    answer: Option<(u16, String)>,
}

/// `pcq serve` on `data`, throttling off (the load is far above a partner's rate).
fn start(data: &Path) -> Server {
    let mut command = PCQ.serve_command(&["--no-throttle", "--data-dir"]);
    command.arg(data).env("RUST_LOG", "error");
    Server::start(command)
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    request_id: &str,
    sent: &Sent,
) -> Result<(u16, String), reqwest::Error> {
    let resp = http
        .post(format!("{url}{}", sent.path))
        .bearer_auth(token)
        .header("MS-RequestId", request_id)
        .json(&sent.body)
        .send()
        .await?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await?))
}

/// Creates customers and requests Education for each, until the connection dies.
async fn client(
    http: reqwest::Client,
    url: String,
    token: String,
    tag: String,
    log: Arc<Mutex<BTreeMap<String, Sent>>>,
    round: Arc<Round>,
) {
    let Round {
        acknowledged,
        progress,
        dead,
    } = &*round;
    for i in 0.. {
        if dead.load(Ordering::SeqCst) {
            return;
        }
        let mut steps = vec![Sent {
            path: "/v1/customers".into(),
            body: json!({"companyProfile": {"domain": format!("{tag}-{i}.example.edu")}}),
            answer: None,
        }];
        let mut n = 0;
        while n < steps.len() {
            let request_id = Uuid::new_v4().to_string();
            let mut sent = steps[n].clone();
            log.lock().unwrap().insert(request_id.clone(), sent.clone());
            match post(&http, &url, &token, &request_id, &sent).await {
                Ok((status, body)) => {
                    assert!(status == 201, "{} answered {status}: {body}", sent.path);
                    acknowledged.fetch_add(1, Ordering::SeqCst);
                    progress.notify_one();
                    if n == 0 {
                        let id = serde_json::from_str::<Value>(&body).unwrap()["id"]
                            .as_str()
                            .unwrap()
                            .to_owned();
                        steps.push(Sent {
                            path: format!("/v1/customers/{id}/qualifications"),
                            body: json!({"qualification": "Education"}),
                            answer: None,
                        });
                    }
                    sent.answer = Some((status, body));
                    log.lock().unwrap().insert(request_id, sent);
                }
                Err(_) => return,
            }
            n += 1;
        }
    }
}

/// What the clients of one round share with the test.
#[derive(Default)]
struct Round {
    /// Writes answered 2xx so far.
    acknowledged: AtomicUsize,
    /// Notified at each answered write.
    progress: Notify,
    /// Set once the server is killed.
    dead: AtomicBool,
}

fn rounds() -> usize {
    std::env::var("PCQ_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(5)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_acknowledged_write_is_lost_when_pcq_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let http = pcq_test_support::client();
    let log: Arc<Mutex<BTreeMap<String, Sent>>> = Arc::default();
    let mut partner_token: Option<(String, String)> = None;

    let rounds = rounds();
    for round in 0..rounds {
        let mut server = start(&data);
        let (url, partner) = (server.url.clone(), server.partner.clone());
        let token = partner_token
            .get_or_insert_with(|| {
                (
                    partner.clone(),
                    PCQ.token(Key::DataDir(&data), &partner, &[]),
                )
            })
            .1
            .clone();
        assert_eq!(partner_token.as_ref().unwrap().0, partner);
        let shared = Arc::new(Round::default());
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                tokio::spawn(client(
                    http.clone(),
                    url.clone(),
                    token.clone(),
                    format!("r{round}c{c}"),
                    log.clone(),
                    shared.clone(),
                ))
            })
            .collect();
        // A random moment: after between 20 and 275 acknowledged writes of this round.
        let moment = 20 + usize::from(Uuid::new_v4().as_bytes()[0]);
        while shared.acknowledged.load(Ordering::SeqCst) < moment {
            shared.progress.notified().await;
        }
        server.kill();
        shared.dead.store(true, Ordering::SeqCst);
        for c in clients {
            c.await.unwrap();
        }
        eprintln!("round {round}: killed after {moment}+ acknowledged writes");
    }

    // Start once more: every answered write replays its first answer; an unanswered one takes
    // effect when retried.
    let server = start(&data);
    let url = server.url.clone();
    let token = partner_token.unwrap().1;
    let entries: Vec<(String, Sent)> = log
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (mut answered, mut unanswered_customers) = (0, 0);
    for (request_id, sent) in &entries {
        let replay = post(&http, &url, &token, request_id, sent).await.unwrap();
        match &sent.answer {
            Some(first) => {
                answered += 1;
                assert_eq!(&replay, first, "{request_id} {}", sent.path);
            }
            None => {
                assert_eq!(replay.0, 201, "retry of {request_id}: {}", replay.1);
                if sent.path == "/v1/customers" {
                    unanswered_customers += 1;
                }
            }
        }
    }
    let answered_customers = entries
        .iter()
        .filter(|(_, s)| s.path == "/v1/customers" && s.answer.is_some())
        .count();
    let listed = count_customers(&http, &url, &token).await;
    assert_eq!(
        listed,
        answered_customers + unanswered_customers,
        "one customer per request, answered or retried"
    );
    eprintln!(
        "{rounds} kills: {answered} answered writes all present and replayed, {} retried, \
         {listed} customers",
        entries.len() - answered
    );
    assert!(server.stop().success());

    let mut db = sqlx::SqliteConnection::connect(&format!(
        "sqlite://{}?mode=ro",
        data.join("pcq.db").display()
    ))
    .await
    .unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(check, "ok");
}
