//! Several `pcq serve` processes on one PostgreSQL database: what a load balancer in front of
//! them must be able to count on. Each test runs two real nodes (each with a data directory of
//! its own) on a schema of its own in the database named by `PCQ_TEST_DATABASE_URL`; without
//! that variable the tests say they were skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use futures_util::future::join_all;
use pcq_test_support::{
    Key, Pcq, PgSchema, Receiver, Server, client, count_customers, database_or_skip,
};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

/// The binary under test.
const PCQ: Pcq = Pcq::new(env!("CARGO_BIN_EXE_pcq"));

/// One `pcq serve` process on `database_url`, with a data directory of its own.
struct Node {
    server: Server,
    _data: tempfile::TempDir,
}

impl std::ops::Deref for Node {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl Node {
    fn start(database_url: &str, args: &[&str], env: &[(&str, &str)]) -> Node {
        let data = tempfile::tempdir().unwrap();
        let mut command = PCQ.serve_command(&["--database-url", database_url]);
        command
            .arg("--data-dir")
            .arg(data.path())
            .args(args)
            .envs(env.iter().copied());
        Node {
            server: Server::start(command),
            _data: data,
        }
    }

    fn kill(&mut self) {
        self.server.kill();
    }
}

/// Two nodes on a fresh schema, and tokens for the development partner they share.
struct Cluster {
    nodes: Vec<Node>,
    user: String,
    admin: String,
    http: reqwest::Client,
    // Dropped last: the nodes stop before their schema goes.
    _schema: PgSchema,
}

impl Cluster {
    async fn start(server: &str, args: &[&str], env: &[(&str, &str)]) -> Cluster {
        let schema = PgSchema::create(server, "pcq_mn").await;
        // Both nodes start at once: migrations and the shared keys must come out the same.
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| Node::start(&schema.url, args, env));
            let b = s.spawn(|| Node::start(&schema.url, args, env));
            (a.join().unwrap(), b.join().unwrap())
        });
        assert_eq!(
            a.partner, b.partner,
            "the nodes share the development partner"
        );
        let user = PCQ.token(Key::Database(&schema.url), &a.partner, &[]);
        let admin = PCQ.token(
            Key::Database(&schema.url),
            &a.partner,
            &["--role", "Pcq.Admin"],
        );
        Cluster {
            nodes: vec![a, b],
            user,
            admin,
            http: client(),
            _schema: schema,
        }
    }

    async fn call(
        &self,
        node: usize,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
        request_id: Option<&str>,
    ) -> Result<(u16, Value), reqwest::Error> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.nodes[node].url))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(body);
        }
        if let Some(id) = request_id {
            req = req.header("MS-RequestId", id);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    async fn ok(&self, node: usize, method: Method, path: &str, body: Option<&Value>) -> Value {
        let (status, value) = self
            .call(node, method, path, &self.admin_or_user(path), body, None)
            .await
            .unwrap();
        assert!((200..300).contains(&status), "{path}: {status} {value}");
        value
    }

    fn admin_or_user(&self, path: &str) -> String {
        if path.starts_with("/_pcq/admin") {
            self.admin.clone()
        } else {
            self.user.clone()
        }
    }

    async fn create_customer(&self, node: usize, domain: &str) -> String {
        let customer = self
            .ok(
                node,
                Method::POST,
                "/v1/customers",
                Some(&json!({"companyProfile": {"domain": domain}})),
            )
            .await;
        customer["id"].as_str().unwrap().to_owned()
    }

    /// Drains the workers of both nodes at the same time; returns what each did.
    async fn drain_both(&self) -> Vec<Value> {
        join_all((0..2).map(|node| self.ok(node, Method::POST, "/_pcq/admin/worker/drain", None)))
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_request_id_sent_to_both_nodes_at_once_has_one_effect() {
    let Some(server) =
        database_or_skip("one_request_id_sent_to_both_nodes_at_once_has_one_effect on PostgreSQL")
    else {
        return;
    };
    let cluster = Cluster::start(&server, &["--no-worker"], &[]).await;
    for round in 0..20 {
        let request_id = Uuid::new_v4().to_string();
        let body = json!({"companyProfile": {"domain": format!("same{round}.example.com")}});
        let answers = join_all((0..2).map(|node| {
            cluster.call(
                node,
                Method::POST,
                "/v1/customers",
                &cluster.user,
                Some(&body),
                Some(&request_id),
            )
        }))
        .await;
        let answers: Vec<(u16, Value)> = answers.into_iter().map(Result::unwrap).collect();
        assert_eq!(answers[0].0, 201, "{:?}", answers[0].1);
        assert_eq!(answers[0], answers[1], "both nodes give the same answer");
    }
    let page = cluster
        .ok(0, Method::GET, "/v1/customers?size=100", None)
        .await;
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        20,
        "one customer per request id"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_gcc_requests_on_both_nodes_never_overdraw_a_code() {
    let Some(server) = database_or_skip(
        "concurrent_gcc_requests_on_both_nodes_never_overdraw_a_code on PostgreSQL",
    ) else {
        return;
    };
    const MAX_CREATES: usize = 10;
    const REQUESTS: usize = 30;
    let cluster = Cluster::start(&server, &["--no-worker"], &[]).await;
    let partner = cluster.nodes[0].partner.clone();
    let code = cluster
        .ok(
            0,
            Method::POST,
            &format!("/_pcq/admin/partners/{partner}/validation-codes"),
            Some(&json!({"organizationName": "Contoso Gov", "maxCreates": MAX_CREATES})),
        )
        .await;
    let code = code["validationId"].as_str().unwrap().to_owned();
    let mut customers = Vec::new();
    for i in 0..REQUESTS {
        customers.push(
            cluster
                .create_customer(i % 2, &format!("gov{i}.example.gov"))
                .await,
        );
    }
    let body = json!({"qualification": "GovernmentCommunityCloud", "validationCode": code});
    let paths: Vec<String> = customers
        .iter()
        .map(|customer| format!("/v1/customers/{customer}/qualifications"))
        .collect();
    let answers = join_all(paths.iter().enumerate().map(|(i, path)| {
        cluster.call(i % 2, Method::POST, path, &cluster.user, Some(&body), None)
    }))
    .await;
    let mut by_outcome: BTreeMap<String, usize> = BTreeMap::new();
    for answer in answers {
        let (status, value) = answer.unwrap();
        let outcome = match status {
            201 => "created".to_owned(),
            _ => format!("{status} {}", value["errorName"].as_str().unwrap_or("?")),
        };
        *by_outcome.entry(outcome).or_default() += 1;
    }
    assert_eq!(
        by_outcome,
        BTreeMap::from([
            ("created".to_owned(), MAX_CREATES),
            (
                "400 ValidationCodeExhausted".to_owned(),
                REQUESTS - MAX_CREATES
            ),
        ])
    );
    let codes = cluster
        .ok(1, Method::GET, "/v1/customers/all/validations", None)
        .await;
    assert_eq!(codes[0]["remainingCreates"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn both_workers_decide_each_vetting_job_exactly_once() {
    let Some(server) =
        database_or_skip("both_workers_decide_each_vetting_job_exactly_once on PostgreSQL")
    else {
        return;
    };
    const JOBS: usize = 60;
    // Small batches, so that the two workers take turns many times.
    let cluster = Cluster::start(
        &server,
        &["--no-worker"],
        &[
            ("PCQ_VETTING__POLICY", "immediate"),
            ("PCQ_WORKER__BATCH_SIZE", "3"),
        ],
    )
    .await;
    let mut customers = Vec::new();
    for i in 0..JOBS {
        let node = i % 2;
        let customer = cluster
            .create_customer(node, &format!("school{i}.example.edu"))
            .await;
        cluster
            .ok(
                node,
                Method::POST,
                &format!("/v1/customers/{customer}/qualifications"),
                Some(&json!({"qualification": "Education"})),
            )
            .await;
        customers.push(customer);
    }
    let progress = cluster.drain_both().await;
    let decided: u64 = progress
        .iter()
        .map(|p| p["vettingDecisions"].as_u64().unwrap())
        .sum();
    assert_eq!(decided, JOBS as u64, "{progress:?}");
    eprintln!(
        "decisions per node: {:?}",
        progress
            .iter()
            .map(|p| p["vettingDecisions"].as_u64())
            .collect::<Vec<_>>()
    );
    for customer in &customers {
        let history = cluster
            .ok(
                0,
                Method::GET,
                &format!("/_pcq/customers/{customer}/qualifications/history"),
                None,
            )
            .await;
        let transitions: Vec<(Option<&str>, Option<&str>)> = history
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["fromStatus"].as_str(), s["toStatus"].as_str()))
            .collect();
        assert_eq!(
            transitions,
            [
                (None, Some("InReview")),
                (Some("InReview"), Some("Approved"))
            ],
            "{customer}"
        );
    }
    // Nothing is left for either worker.
    let again = cluster.drain_both().await;
    assert!(
        again.iter().all(|p| p["vettingDecisions"] == 0),
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn both_nodes_deliver_each_webhook_event_once() {
    let Some(server) = database_or_skip("both_nodes_deliver_each_webhook_event_once on PostgreSQL")
    else {
        return;
    };
    const PARTNERS: usize = 4;
    const EVENTS_EACH: usize = 12;
    let receiver = Receiver::start().await;
    // Both nodes run their workers, polling often and claiming little at a time, so both
    // deliver while events are being written; one delivery of a partner in flight at a time
    // (across both nodes), so each partner's events keep their order. Test events are sent far
    // faster than Partner Center's 2 per minute: no throttling.
    let cluster = Cluster::start(
        &server,
        &["--no-throttle"],
        &[
            ("PCQ_WORKER__POLL_INTERVAL_MS", "20"),
            ("PCQ_WORKER__BATCH_SIZE", "2"),
            ("PCQ_WEBHOOKS__MAX_IN_FLIGHT_PER_PARTNER", "1"),
        ],
    )
    .await;
    let url = cluster._schema.url.clone();
    let tokens: Vec<String> = (0..PARTNERS)
        .map(|_| PCQ.token(Key::Database(&url), &Uuid::new_v4().to_string(), &[]))
        .collect();
    for (i, token) in tokens.iter().enumerate() {
        let registration = json!({"WebhookUrl": receiver.url, "WebhookEvents": ["test-created"]});
        let (status, body) = cluster
            .call(
                i % 2,
                Method::POST,
                "/webhooks/v1/registration",
                token,
                Some(&registration),
                None,
            )
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
    }
    // Each partner's events, in the order they were sent (from both nodes in turn).
    let mut sent: Vec<Vec<String>> = vec![Vec::new(); PARTNERS];
    for n in 0..EVENTS_EACH {
        for (partner, token) in tokens.iter().enumerate() {
            let (status, body) = cluster
                .call(
                    (n + partner) % 2,
                    Method::POST,
                    "/webhooks/v1/registration/validationEvents",
                    token,
                    None,
                    None,
                )
                .await
                .unwrap();
            assert_eq!(status, 200, "{body}");
            sent[partner].push(body["correlationId"].as_str().unwrap().to_owned());
        }
    }
    receiver
        .wait_for(PARTNERS * EVENTS_EACH, std::time::Duration::from_secs(60))
        .await;
    // Nothing is left to deliver, and every delivery took one attempt.
    let progress = cluster.drain_both().await;
    assert!(
        progress.iter().all(|p| p["webhookAttempts"] == 0),
        "{progress:?}"
    );
    for token in &tokens {
        let (_, log) = cluster
            .call(
                0,
                Method::GET,
                "/webhooks/v1/registration/deliveries",
                token,
                None,
                None,
            )
            .await
            .unwrap();
        let log = log.as_array().unwrap();
        assert_eq!(log.len(), EVENTS_EACH);
        for delivery in log {
            assert_eq!(delivery["status"], "completed", "{delivery}");
            assert_eq!(
                delivery["results"].as_array().unwrap().len(),
                1,
                "{delivery}"
            );
        }
    }

    // Each event arrived once, and each partner's in the order they were sent.
    let received: Vec<Value> = receiver.received().iter().map(|r| r.json()).collect();
    assert_eq!(received.len(), PARTNERS * EVENTS_EACH);
    let arrived: Vec<String> = received
        .iter()
        .map(|e| {
            let uri = e["ResourceUri"].as_str().unwrap();
            uri.rsplit('/').next().unwrap().to_owned()
        })
        .collect();
    let distinct: BTreeSet<&String> = arrived.iter().collect();
    assert_eq!(distinct.len(), arrived.len(), "no event arrived twice");
    for events in &sent {
        let order: Vec<&String> = arrived.iter().filter(|c| events.contains(c)).collect();
        assert_eq!(order, events.iter().collect::<Vec<_>>());
    }
}

/// POSTs a customer under `request_id`.
async fn create_customer(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: &Value,
    request_id: &str,
) -> Result<(u16, Value), reqwest::Error> {
    let resp = http
        .post(format!("{url}/v1/customers"))
        .bearer_auth(token)
        .header("MS-RequestId", request_id)
        .json(body)
        .send()
        .await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

/// What a client saw: request ids answered 201 (with the customer), and requests that got no
/// answer.
#[derive(Default)]
struct Seen {
    acknowledged: BTreeMap<String, String>,
    unanswered: Vec<(String, Value)>,
}

/// Keeps creating customers on one node until it stops answering or `stop` is set; after
/// `signal_after` acknowledgements it says so on `signal`.
/// Where a client sends its requests.
struct Target {
    http: reqwest::Client,
    url: String,
    token: String,
}

async fn keep_creating(
    target: Target,
    tag: &'static str,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    signal_after: usize,
    signal: tokio::sync::oneshot::Sender<()>,
) {
    let mut signal = Some(signal);
    for i in 0.. {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let request_id = Uuid::new_v4().to_string();
        let body = json!({"companyProfile": {"domain": format!("{tag}-{i}.example.com")}});
        match create_customer(&target.http, &target.url, &target.token, &body, &request_id).await {
            Ok((201, customer)) => {
                let mut seen = seen.lock().unwrap();
                seen.acknowledged
                    .insert(request_id, customer["id"].as_str().unwrap().to_owned());
                if i + 1 >= signal_after {
                    if let Some(signal) = signal.take() {
                        let _ = signal.send(());
                    }
                }
            }
            Ok((status, value)) => panic!("{tag}: {status} {value}"),
            Err(_) => {
                seen.lock().unwrap().unanswered.push((request_id, body));
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_node_loses_nothing_it_acknowledged() {
    let Some(server) =
        database_or_skip("a_killed_node_loses_nothing_it_acknowledged on PostgreSQL")
    else {
        return;
    };
    let mut cluster = Cluster::start(&server, &["--no-worker"], &[]).await;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // One client per node, both busy when node 0 dies.
    let (doomed_busy, doomed_ready) = tokio::sync::oneshot::channel();
    let (survivor_busy, survivor_ready) = tokio::sync::oneshot::channel();
    let doomed = tokio::spawn(keep_creating(
        Target {
            http: cluster.http.clone(),
            url: cluster.nodes[0].url.clone(),
            token: cluster.user.clone(),
        },
        "doomed",
        seen.clone(),
        stop.clone(),
        20,
        doomed_busy,
    ));
    let survivor = tokio::spawn(keep_creating(
        Target {
            http: cluster.http.clone(),
            url: cluster.nodes[1].url.clone(),
            token: cluster.user.clone(),
        },
        "survivor",
        seen.clone(),
        stop.clone(),
        20,
        survivor_busy,
    ));
    doomed_ready.await.unwrap();
    survivor_ready.await.unwrap();
    cluster.nodes[0].kill();
    doomed.await.unwrap();

    // The survivor goes on serving.
    for i in 0..10 {
        let request_id = Uuid::new_v4().to_string();
        let body = json!({"companyProfile": {"domain": format!("after-{i}.example.com")}});
        let (status, customer) = create_customer(
            &cluster.http,
            &cluster.nodes[1].url,
            &cluster.user,
            &body,
            &request_id,
        )
        .await
        .unwrap();
        assert_eq!(status, 201, "{customer}");
        seen.lock()
            .unwrap()
            .acknowledged
            .insert(request_id, customer["id"].as_str().unwrap().to_owned());
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    survivor.await.unwrap();

    // A request the dead node never answered is retried on the survivor under its request id:
    // whether or not the dead node committed it, it ends with exactly one customer.
    let (acknowledged, unanswered) = {
        let seen = seen.lock().unwrap();
        (seen.acknowledged.clone(), seen.unanswered.clone())
    };
    assert!(acknowledged.len() >= 50, "{}", acknowledged.len());
    eprintln!(
        "{} requests acknowledged, {} unanswered when node 0 died",
        acknowledged.len(),
        unanswered.len()
    );
    for (request_id, body) in &unanswered {
        let (status, value) = create_customer(
            &cluster.http,
            &cluster.nodes[1].url,
            &cluster.user,
            body,
            request_id,
        )
        .await
        .unwrap();
        assert_eq!(status, 201, "{value}");
    }

    // Everything either node acknowledged is there, once.
    for id in acknowledged.values() {
        let (status, _) = cluster
            .call(
                1,
                Method::GET,
                &format!("/v1/customers/{id}"),
                &cluster.user,
                None,
                None,
            )
            .await
            .unwrap();
        assert_eq!(status, 200, "customer {id} was acknowledged");
    }
    let listed = count_customers(&cluster.http, &cluster.nodes[1].url, &cluster.user).await;
    assert_eq!(
        listed,
        acknowledged.len() + unanswered.len(),
        "one customer per request, acknowledged or retried"
    );
}
