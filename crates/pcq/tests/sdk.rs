//! The Rust client (`pcq-client`) against a real `pcq serve`: every operation, paging over
//! several pages, retries with one `MS-RequestId` through injected faults (checked in pcq's
//! request journal), Retry-After, and errors decoded into `pcq_client::Error`.
//!
//! The operations run on the embedded store, and on PostgreSQL as well when
//! `PCQ_TEST_DATABASE_URL` is set.

use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt, stream};
use pcq_client::{
    AuditQuery, EducationSegment, FaultSpec, NewCustomer, NewValidationCode, PartnerClient,
    Qualification, QualificationRequest, RequestFilter, RetryPolicy, ReviewQuery, VettingStatus,
};
use pcq_test_support::{Key, Pcq, PgSchema, Server, database_or_skip};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The binary under test.
const PCQ: Pcq = Pcq::new(env!("CARGO_BIN_EXE_pcq"));

/// A `pcq serve` and clients for its development partner's user, its application, an admin
/// and a reviewer.
struct Sandbox {
    user: PartnerClient,
    app: PartnerClient,
    admin: PartnerClient,
    reviewer: PartnerClient,
    partner: String,
    server: Server,
    // Dropped last: the server stops before its data goes.
    _data: Data,
}

#[allow(dead_code)]
enum Data {
    Dir(tempfile::TempDir),
    Schema(PgSchema),
}

/// Retries quick enough for tests (the waits are not what is tested, but their count).
fn quick_retries() -> RetryPolicy {
    RetryPolicy::default().backoff(Duration::from_millis(5), Duration::from_millis(20))
}

impl Sandbox {
    /// pcq in memory (SQLite).
    fn in_memory() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap().to_owned();
        let server = Server::start(PCQ.serve_command(&["--in-memory", "--data-dir", &path]));
        let path = dir.path().to_path_buf();
        Self::with(server, Key::DataDir(&path), Data::Dir(dir))
    }

    /// pcq on a fresh PostgreSQL schema, when there is a test database.
    async fn on_postgresql(what: &str) -> Option<Sandbox> {
        let database = database_or_skip(what)?;
        let schema = PgSchema::create(&database, "pcq_sdk").await;
        let server = Server::start(PCQ.serve_command(&["--database-url", &schema.url]));
        let url = schema.url.clone();
        let key = Key::Database(&url);
        Some(Self::with(server, key, Data::Schema(schema)))
    }

    fn with(server: Server, key: Key<'_>, data: Data) -> Sandbox {
        let partner = server.partner.clone();
        let client = |extra: &[&str]| {
            PartnerClient::builder(&server.url)
                .token(PCQ.token(key, &partner, extra))
                .retry(quick_retries())
                .build()
                .unwrap()
        };
        Sandbox {
            user: client(&[]),
            app: client(&["--app-only"]),
            admin: client(&["--role", "Pcq.Admin"]),
            reviewer: client(&["--role", "Pcq.Reviewer"]),
            partner,
            server,
            _data: data,
        }
    }

    /// The journal's entries for requests to `path` (a prefix) with `method`, oldest first.
    async fn journal(&self, method: &str, path: &str) -> Vec<Value> {
        let page = self
            .admin
            .admin()
            .requests(RequestFilter::new().method(method).path(path).limit(1000))
            .await
            .unwrap();
        let mut items = page["items"].as_array().unwrap().clone();
        items.reverse();
        items
    }
}

fn field<'a>(entries: &'a [Value], key: &str) -> Vec<&'a Value> {
    entries.iter().map(|e| &e[key]).collect()
}

#[tokio::test]
async fn every_operation_in_memory() {
    every_operation(&Sandbox::in_memory()).await;
}

#[tokio::test]
async fn every_operation_on_postgresql() {
    if let Some(sandbox) = Sandbox::on_postgresql("every_operation_on_postgresql").await {
        every_operation(&sandbox).await;
    }
}

async fn every_operation(s: &Sandbox) {
    let customers = s.user.customers();

    // Customers: create, get, list.
    let contoso = customers
        .create(&NewCustomer::new("contoso.example.edu").company_name("Contoso"))
        .await
        .unwrap();
    assert_eq!(contoso.company_profile.domain, "contoso.example.edu");
    assert_eq!(
        contoso.company_profile.company_name.as_deref(),
        Some("Contoso")
    );
    let got = customers.by_id(contoso.id).get().await.unwrap();
    assert_eq!(
        (got.id, got.relationship_to_partner.as_str()),
        (contoso.id, "reseller")
    );
    let mut others = Vec::new();
    for domain in [
        "fabrikam.example.com",
        "tailspin.example.com",
        "wingtip.example.com",
    ] {
        others.push(customers.create(&NewCustomer::new(domain)).await.unwrap());
    }
    let listed: Vec<_> = customers.list().collect_all().await.unwrap();
    assert_eq!(listed.len(), 4);

    // Qualifications: Education (InReview), then read back, also on the legacy route.
    let education = customers
        .by_id(contoso.id)
        .qualifications()
        .create(
            QualificationRequest::education(EducationSegment::HigherEducation)
                .website("https://contoso.example.edu"),
        )
        .await
        .unwrap();
    assert_eq!(education.qualification, Qualification::Education);
    assert_eq!(education.vetting_status, Some(VettingStatus::InReview));
    assert!(education.vetting_create_date.is_some());
    let all = customers
        .by_id(contoso.id)
        .qualifications()
        .get()
        .await
        .unwrap();
    assert_eq!(all, vec![education.clone()]);
    assert_eq!(
        customers
            .by_id(contoso.id)
            .qualification()
            .get()
            .await
            .unwrap(),
        Qualification::Education
    );
    assert_eq!(
        customers
            .by_id(others[0].id)
            .qualification()
            .get()
            .await
            .unwrap(),
        Qualification::None
    );
    assert!(
        customers
            .by_id(others[0].id)
            .qualifications()
            .get()
            .await
            .unwrap()
            .is_empty()
    );

    // GCC with a validation code issued through the sandbox controls.
    let code = s
        .admin
        .admin()
        .issue_validation_code(&s.partner, &NewValidationCode::new("Fabrikam Gov", 2))
        .await
        .unwrap();
    assert_eq!((code.max_creates, code.remaining_creates), (2, 2));
    let codes = s.user.validation_codes().list().await.unwrap();
    assert_eq!(codes, vec![code.clone()]);
    let gcc = customers
        .by_id(others[0].id)
        .qualifications()
        .create(QualificationRequest::gcc(&code.validation_id))
        .await
        .unwrap();
    assert_eq!(
        (gcc.qualification, gcc.vetting_status),
        (
            Qualification::GovernmentCommunityCloud,
            Some(VettingStatus::Approved)
        )
    );
    let soe = customers
        .by_id(others[0].id)
        .qualifications()
        .create(QualificationRequest::state_owned_entity())
        .await
        .unwrap();
    assert_eq!(
        (soe.qualification, soe.vetting_status),
        (Qualification::StateOwnedEntity, None)
    );
    // The legacy PUT: a bare string, and GCC with ?code=.
    assert_eq!(
        customers
            .by_id(others[1].id)
            .qualification()
            .update(Qualification::Education)
            .await
            .unwrap(),
        Qualification::Education
    );
    assert_eq!(
        customers
            .by_id(others[2].id)
            .qualification()
            .update_gcc(&code.validation_id)
            .await
            .unwrap(),
        Qualification::GovernmentCommunityCloud
    );
    assert_eq!(
        s.user.validation_codes().list().await.unwrap()[0].remaining_creates,
        0
    );

    // Audit records: a query as a stream, one record by id.
    let records: Vec<_> = s
        .user
        .audit_records()
        .query(AuditQuery::new().operation_type("add_customer"))
        .page_size(2)
        .collect_all()
        .await
        .unwrap();
    assert_eq!(records.len(), 4, "{records:?}");
    assert!(records.iter().all(|r| r.operation_type == "add_customer"));
    let one = s
        .user
        .audit_records()
        .by_id(&records[0].id)
        .get()
        .await
        .unwrap();
    assert_eq!(one, records[0]);
    let for_contoso: Vec<_> = s
        .user
        .audit_records()
        .query(AuditQuery::new().customer_id(contoso.id))
        .collect_all()
        .await
        .unwrap();
    assert!(
        for_contoso
            .iter()
            .all(|r| r.customer_id == Some(contoso.id))
    );
    assert!(for_contoso.len() >= 2, "add_customer and the qualification");

    // Review: the queue, an approval and a denial.
    let queue: Vec<_> = s
        .reviewer
        .review()
        .queue(ReviewQuery::new().qualification(Qualification::Education))
        .collect_all()
        .await
        .unwrap();
    let waiting: Vec<_> = queue
        .iter()
        .map(|i| i["customerId"].as_str().unwrap())
        .collect();
    assert_eq!(waiting.len(), 2, "{queue:?}");
    assert!(waiting.contains(&contoso.id.to_string().as_str()));
    let approved = s
        .reviewer
        .review()
        .approve(contoso.id, Qualification::Education)
        .await
        .unwrap();
    assert_eq!(approved.vetting_status, Some(VettingStatus::Approved));
    let denied = s
        .reviewer
        .review()
        .deny(
            others[1].id,
            Qualification::Education,
            "Not an Academic Domain",
        )
        .await
        .unwrap();
    assert_eq!(
        (denied.vetting_status, denied.vetting_reason.as_deref()),
        (Some(VettingStatus::Denied), Some("Not an Academic Domain"))
    );
    let history = s
        .user
        .admin()
        .qualification_history(contoso.id)
        .await
        .unwrap();
    let statuses: Vec<_> = history.iter().map(|h| h["toStatus"].clone()).collect();
    assert_eq!(statuses, [json!("InReview"), json!("Approved")]);

    // Webhooks.
    let webhooks = s.user.webhooks();
    let events = webhooks.events().await.unwrap();
    assert!(
        events.contains(&"customer-qualification-updated".to_owned()),
        "{events:?}"
    );
    let registered = webhooks
        .register(
            "http://127.0.0.1:1/hooks",
            ["customer-qualification-updated"],
        )
        .await
        .unwrap();
    assert!(registered.subscriber_id.is_some());
    assert_eq!(webhooks.get().await.unwrap(), registered);
    let updated = webhooks
        .update(
            "http://127.0.0.1:1/hooks2",
            ["test-created", "customer-qualification-updated"],
        )
        .await
        .unwrap();
    assert_eq!(updated.webhook_url, "http://127.0.0.1:1/hooks2");
    assert_eq!(updated.webhook_events.len(), 2);
    let correlation = webhooks.send_validation_event().await.unwrap();
    let status = webhooks.validation_event(&correlation).await.unwrap();
    assert_eq!(status.correlation_id, correlation);
    assert_eq!(status.callback_url, "http://127.0.0.1:1/hooks2");
    let deliveries = webhooks.deliveries(Some(10)).await.unwrap();
    assert!(!deliveries.is_empty());
    webhooks.delete().await.unwrap();
    let gone = webhooks.get().await.unwrap_err();
    assert_eq!(gone.status(), Some(StatusCode::NOT_FOUND), "{gone}");

    // The sandbox controls.
    let admin = s.admin.admin();
    let clock = admin.clock().get().await.unwrap();
    assert!(clock["now"].is_string());
    let moved = admin.clock().advance("1h").await.unwrap();
    assert_eq!(
        moved["offsetSeconds"].as_i64().unwrap() - clock["offsetSeconds"].as_i64().unwrap(),
        3600
    );
    assert_eq!(
        admin.vetting_policy().get().await.unwrap()["policy"],
        "manual"
    );
    let set = admin
        .vetting_policy()
        .set(json!({"policy": "immediate", "outcome": "approve"}))
        .await
        .unwrap();
    assert_eq!(
        (set["policy"].as_str(), set["source"].as_str()),
        (Some("immediate"), Some("runtime"))
    );
    assert_eq!(
        admin.vetting_policy().reset().await.unwrap()["policy"],
        "manual"
    );

    let fault = admin
        .faults()
        .add(
            &FaultSpec::new("/v1/customers/*")
                .method("GET")
                .status(502)
                .count(5),
        )
        .await
        .unwrap();
    let listed = admin.faults().list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], fault["id"]);
    admin
        .faults()
        .remove(fault["id"].as_str().unwrap())
        .await
        .unwrap();
    assert!(admin.faults().list().await.unwrap().is_empty());
    admin
        .faults()
        .add(&FaultSpec::new("/v1/**").delay_ms(1))
        .await
        .unwrap();
    assert_eq!(admin.faults().clear().await.unwrap()["removed"], 1);

    let drained = admin.drain_worker().await.unwrap();
    assert_eq!(drained["incomplete"], false);
    let journal = admin.requests(RequestFilter::new().limit(5)).await.unwrap();
    assert_eq!(journal["items"].as_array().unwrap().len(), 5);
    assert!(
        admin.clear_requests().await.unwrap()["removed"]
            .as_u64()
            .unwrap()
            > 5
    );

    // State: dump (streamed), reset, load from bytes, from a file and from a stream.
    let dump: Vec<u8> = admin
        .state()
        .dump(None)
        .await
        .unwrap()
        .try_fold(Vec::new(), |mut all, chunk| async move {
            all.extend_from_slice(&chunk);
            Ok(all)
        })
        .await
        .unwrap();
    let document: Value = serde_json::from_slice(&dump).unwrap();
    assert!(document.is_object());
    let reset = admin.reset(Some(&s.partner)).await.unwrap();
    assert_eq!(reset["removed"]["customers"], 4);
    assert!(customers.list().collect_all().await.unwrap().is_empty());
    let loaded = admin.state().load_bytes(None, dump.clone()).await.unwrap();
    assert_eq!(loaded["loaded"]["customers"], 4);
    assert_eq!(customers.list().collect_all().await.unwrap().len(), 4);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &dump).unwrap();
    let loaded = admin.state().load_file(None, file.path()).await.unwrap();
    assert_eq!(loaded["removed"]["customers"], 4);
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = dump
        .chunks(1000)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let loaded = admin
        .state()
        .load(None, stream::iter(chunks))
        .await
        .unwrap();
    assert_eq!(loaded["loaded"]["customers"], 4);
    assert_eq!(
        customers
            .by_id(contoso.id)
            .qualifications()
            .get()
            .await
            .unwrap()[0]
            .vetting_status,
        Some(VettingStatus::Approved)
    );
    admin.reset(None).await.unwrap();
    assert!(customers.list().collect_all().await.unwrap().is_empty());
}

#[tokio::test]
async fn lists_follow_the_continuation_tokens_with_one_correlation_id() {
    let s = Sandbox::in_memory();
    let mut created = Vec::new();
    for i in 0..7 {
        let c = s
            .user
            .customers()
            .create(&NewCustomer::new(format!("paged-{i}.example.com")))
            .await
            .unwrap();
        created.push(c.id);
    }
    let list = s.user.customers().list().page_size(3);
    let first = list.page(None).await.unwrap();
    assert_eq!(first.items.len(), 3);
    let token = first.continuation_token.clone().expect("more pages");
    let second = list.page(Some(token)).await.unwrap();
    assert_eq!(second.items.len(), 3);
    assert!(
        first
            .items
            .iter()
            .all(|a| second.items.iter().all(|b| a.id != b.id))
    );

    s.admin.admin().clear_requests().await.unwrap();
    let streamed: Vec<_> = list.clone().stream().try_collect().await.unwrap();
    let mut ids: Vec<_> = streamed.iter().map(|c| c.id).collect();
    ids.sort();
    ids.dedup();
    let mut expected = created.clone();
    expected.sort();
    assert_eq!(ids, expected, "every customer once");

    let gets = s.journal("GET", "/v1/customers").await;
    assert_eq!(gets.len(), 3, "three pages of 3, 3 and 1");
    let correlation = field(&gets, "correlationId");
    assert!(
        correlation
            .iter()
            .all(|c| *c == correlation[0] && c.is_string())
    );
    let request_ids = field(&gets, "requestId");
    assert!(
        request_ids[0] != request_ids[1],
        "each page is a call of its own"
    );

    // The stream stops at the first error.
    s.admin
        .admin()
        .faults()
        .add(
            &FaultSpec::new("/v1/customers")
                .method("GET")
                .status(400)
                .count(1),
        )
        .await
        .unwrap();
    let mut failing = s.user.customers().list().page_size(3).stream();
    let err = failing.next().await.unwrap().unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST));
    assert!(failing.next().await.is_none());
}

#[tokio::test]
async fn lost_answers_are_retried_with_one_request_id_and_applied_once() {
    let s = Sandbox::in_memory();
    let customer = s
        .user
        .customers()
        .create(&NewCustomer::new("retried.example.edu"))
        .await
        .unwrap();
    let path = format!("/v1/customers/{}/qualifications", customer.id);
    // The request commits, then its answer is replaced by a 503, twice.
    s.admin
        .admin()
        .faults()
        .add(
            &FaultSpec::new(&path)
                .method("POST")
                .status(503)
                .count(2)
                .after(),
        )
        .await
        .unwrap();
    let created = s
        .user
        .customers()
        .by_id(customer.id)
        .qualifications()
        .create(QualificationRequest::education(EducationSegment::K12))
        .with_request_id("row-17")
        .await
        .unwrap();
    assert_eq!(created.vetting_status, Some(VettingStatus::InReview));

    let posts = s.journal("POST", &path).await;
    assert_eq!(
        field(&posts, "status"),
        [&json!(503), &json!(503), &json!(201)]
    );
    assert!(field(&posts, "requestId").iter().all(|id| *id == "row-17"));
    // The last answer is the stored one (a fault that replaces an answer hides whether it was).
    assert_eq!(posts[2]["replayed"], true);
    let correlation = field(&posts, "correlationId");
    assert!(correlation.iter().all(|c| *c == correlation[0]));
    // Applied once: one qualification, one vetting round.
    let history = s
        .user
        .admin()
        .qualification_history(customer.id)
        .await
        .unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0]["requestId"], "row-17");

    // A connection closed after the commit: a transport error, retried, created once.
    s.admin
        .admin()
        .faults()
        .add(
            &FaultSpec::new("/v1/customers")
                .method("POST")
                .reset_connection()
                .count(1)
                .after(),
        )
        .await
        .unwrap();
    let again = s
        .user
        .customers()
        .create(&NewCustomer::new("reset.example.com"))
        .await
        .unwrap();
    let posts = s.journal("POST", "/v1/customers").await;
    let last_two = &posts[posts.len() - 2..];
    assert_eq!(field(last_two, "status"), [&json!(0), &json!(201)]);
    assert_eq!(last_two[0]["requestId"], last_two[1]["requestId"]);
    let domains: Vec<_> = s
        .user
        .customers()
        .list()
        .collect_all()
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.company_profile.domain == "reset.example.com")
        .map(|c| c.id)
        .collect();
    assert_eq!(domains, [again.id]);

    // A run of the same import again: the same request id answers the stored qualification.
    let replay = s
        .user
        .customers()
        .by_id(customer.id)
        .qualifications()
        .create(QualificationRequest::education(EducationSegment::K12))
        .with_request_id("row-17")
        .await
        .unwrap();
    assert_eq!(replay, created);
}

#[tokio::test]
async fn retries_stop_at_the_policy_limit() {
    let s = Sandbox::in_memory();
    s.admin
        .admin()
        .faults()
        .add(
            &FaultSpec::new("/v1/customers/all/validations")
                .status(503)
                .count(10),
        )
        .await
        .unwrap();
    let err = s.user.validation_codes().list().await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    let gets = s.journal("GET", "/v1/customers/all/validations").await;
    assert_eq!(gets.len(), 4, "the first attempt and 3 retries");
    let id = err.request_id().unwrap();
    assert!(field(&gets, "requestId").iter().all(|r| *r == id));

    // Not retried without retries.
    let err = s
        .user
        .validation_codes()
        .list()
        .retry(RetryPolicy::none())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(
        s.journal("GET", "/v1/customers/all/validations")
            .await
            .len(),
        5
    );
}

#[tokio::test]
async fn a_429_waits_its_retry_after() {
    let s = Sandbox::in_memory();
    s.admin
        .admin()
        .faults()
        .add(
            &FaultSpec::new("/v1/customers")
                .method("POST")
                .status(429)
                .retry_after_seconds(1)
                .count(1),
        )
        .await
        .unwrap();
    let started = Instant::now();
    s.user
        .customers()
        .create(&NewCustomer::new("throttled.example.com"))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let posts = s.journal("POST", "/v1/customers").await;
    assert_eq!(field(&posts, "status"), [&json!(429), &json!(201)]);
    assert_eq!(posts[0]["requestId"], posts[1]["requestId"]);

    // Without retrying throttled calls, the 429 is the answer, with its Retry-After.
    s.admin
        .admin()
        .faults()
        .add(
            &FaultSpec::new("/v1/customers")
                .method("GET")
                .status(429)
                .retry_after_seconds(7)
                .count(1),
        )
        .await
        .unwrap();
    let err = s
        .user
        .customers()
        .list()
        .page(None)
        .retry(RetryPolicy::default().retry_throttled(false))
        .await
        .unwrap_err();
    assert!(err.is_throttled());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(err.fault().unwrap().status, 429);
}

#[tokio::test]
async fn errors_carry_the_status_the_fault_and_the_ids() {
    let s = Sandbox::in_memory();
    let unknown = "0b3f0ad4-7bd3-4bcf-a4b4-2f1f4b6a0a11";
    let err = s
        .user
        .customers()
        .by_id(unknown)
        .get()
        .with_request_id("lookup-1")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
    let fault = err.fault().expect("the envelope");
    assert_eq!(fault.status, 404);
    assert!(!fault.description.is_empty());
    assert_eq!(err.request_id(), Some("lookup-1"));
    assert!(err.correlation_id().is_some());
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("404 Not Found (code {}): ", fault.code))
            && text.contains("[request id lookup-1"),
        "{text}"
    );
    let journal = s.journal("GET", &format!("/v1/customers/{unknown}")).await;
    assert_eq!(field(&journal, "requestId"), [&json!("lookup-1")]);
    assert_eq!(journal[0]["correlationId"].as_str(), err.correlation_id());

    // A malformed id: 400, code 900118, not retried.
    let err = s
        .user
        .customers()
        .by_id("not-a-guid")
        .get()
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST));
    assert_eq!(err.fault().unwrap().code, 900118);
    assert_eq!(s.journal("GET", "/v1/customers/not-a-guid").await.len(), 1);

    // App-only credentials cannot add qualifications: 403.
    let customer = s
        .app
        .customers()
        .create(&NewCustomer::new("app-only.example.com"))
        .await
        .unwrap();
    let err = s
        .app
        .customers()
        .by_id(customer.id)
        .qualifications()
        .create(QualificationRequest::state_owned_entity())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::FORBIDDEN));
    assert!(
        err.fault().unwrap().description.contains("application"),
        "{err}"
    );

    // An operation's correlation id, and one for every call of a client.
    let op = s.user.with_correlation_id("import-42");
    op.customers().list().page(None).await.unwrap();
    op.validation_codes().list().await.unwrap();
    let tagged = s
        .admin
        .admin()
        .requests(RequestFilter::new().limit(1000))
        .await
        .unwrap();
    let count = tagged["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["correlationId"] == "import-42")
        .count();
    assert_eq!(count, 2);

    // A token pcq refuses: 401, refreshed once (a static token stays the same), then the error.
    let stranger = PartnerClient::builder(&s.server.url)
        .token("not.a.jwt")
        .build()
        .unwrap();
    let err = stranger.validation_codes().list().await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
    assert_eq!(
        s.journal("GET", "/v1/customers/all/validations")
            .await
            .len(),
        3
    );
}
