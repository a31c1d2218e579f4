//! The request journal: `GET`/`DELETE /_pcq/admin/requests`, the requests this node served.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{TestApp, assert_fault, backend_tests, ok, status_json};

/// The journal's answer to `query` (e.g. `?limit=5`), as the admin reads it.
async fn journal(app: &TestApp, query: &str) -> Value {
    ok(app
        .fetch(&format!("/_pcq/admin/requests{query}"), &app.admin_token())
        .await)
    .await
}

/// The entries of the journal's answer to `query`, newest first.
async fn entries(app: &TestApp, query: &str) -> Vec<Value> {
    journal(app, query).await["items"]
        .as_array()
        .expect("items")
        .clone()
}

fn customer_body(domain: &str) -> Value {
    json!({"companyProfile": {"domain": domain, "companyName": "Contoso"}})
}

async fn entries_record_what_was_asked_and_answered() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let request_id = Uuid::new_v4().to_string();
    let correlation_id = Uuid::new_v4().to_string();
    let body = customer_body("journal.example.edu");
    let resp = app
        .post("/v1/customers", &partner.user, &body)
        .header("MS-RequestId", &request_id)
        .header("MS-CorrelationId", &correlation_id)
        .send()
        .await
        .unwrap();
    let (status, created) = status_json(resp).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let customer = created["id"].as_str().unwrap().to_owned();
    let resp = app
        .fetch(&format!("/v1/customers/{customer}"), &partner.app)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = app.anon(Method::GET, "/v1/customers").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = app.fetch("/v1/nowhere", &partner.app).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    let page = journal(&app, "").await;
    assert_eq!(page["node"], app.base);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{page:#}");
    let ids: Vec<u64> = items.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    assert_eq!(page["nextSince"], ids[0]);
    assert_eq!(page["truncated"], false);
    let [missing, refused, read, create] = &items[..] else {
        unreachable!()
    };

    assert_eq!(create["method"], "POST");
    assert_eq!(create["path"], "/v1/customers");
    assert_eq!(create["status"], 201);
    assert!(create["durationMicros"].as_u64().unwrap() > 0);
    assert_eq!(create["partner"], partner.tenant.to_string());
    assert_eq!(create["user"], "agent@partner.onmicrosoft.com");
    assert_eq!(
        create["application"],
        pcq_server::auth::dev_issuer::DEV_APP_ID
    );
    assert_eq!(create["requestId"], request_id);
    assert_eq!(create["correlationId"], correlation_id);
    assert_eq!(create["requestBody"], body);
    assert_eq!(create["requestBodyTruncated"], false);
    assert_eq!(create["responseBody"], created);
    assert_eq!(create["responseBodyTruncated"], false);
    assert_eq!(create["fault"], Value::Null);
    assert_eq!(create["replayed"], false);
    assert_eq!(create["node"], app.base);
    for key in ["time", "pcqTime"] {
        let time = create[key].as_str().unwrap();
        assert!(time.ends_with('Z') && time.len() > 20, "{key}: {time}");
    }

    assert_eq!(read["method"], "GET");
    assert_eq!(read["path"], format!("/v1/customers/{customer}"));
    assert_eq!(read["status"], 200);
    assert_eq!(read["user"], Value::Null, "an App-only token");
    assert_eq!(read["partner"], partner.tenant.to_string());
    assert_eq!(read["requestBody"], Value::Null);
    assert_eq!(read["responseBody"]["id"], customer);
    // Generated ids are those the answer carried.
    assert!(read["requestId"].as_str().is_some_and(|id| id.len() == 36));

    assert_eq!(refused["status"], 401);
    assert_eq!(refused["partner"], Value::Null);
    assert_eq!(refused["responseBody"]["code"], 800001);

    assert_eq!(missing["status"], 404);
    assert_eq!(missing["path"], "/v1/nowhere");
    // The route does not exist, so no extractor verified the token.
    assert_eq!(missing["partner"], Value::Null);

    // Reading the journal is not recorded.
    let again = entries(&app, "").await;
    assert_eq!(again.len(), 4);
}

async fn refusals_of_every_layer_are_recorded() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    // A malformed MS-CorrelationId, refused before any route is found.
    let resp = app
        .get("/v1/customers", &partner.app)
        .header("MS-CorrelationId", "x".repeat(200))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // A method the route does not allow (the envelope safety net answers).
    let resp = app
        .req(Method::PATCH, "/v1/customers", &partner.app)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let items = entries(&app, "").await;
    assert_eq!(items.len(), 2, "{items:#?}");
    assert_eq!(items[0]["method"], "PATCH");
    assert_eq!(items[0]["status"], 405);
    assert_eq!(items[0]["responseBody"]["code"], 950405);
    assert_eq!(items[1]["status"], 400);
    assert_eq!(items[1]["partner"], Value::Null);
    // The answer carried a correlation id of pcq's own, and the entry says which.
    assert_eq!(items[1]["correlationId"].as_str().map(str::len), Some(36));
}

async fn the_pcq_clock_and_the_system_clock_are_both_shown() {
    let app = TestApp::spawn().await;
    app.advance("2d").await;
    let partner = app.partner();
    let resp = app.fetch("/v1/customers", &partner.app).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let entry = &entries(&app, "?path=/v1/customers").await[0];
    let time = pcq_core::time::Timestamp::parse_rfc3339(entry["time"].as_str().unwrap()).unwrap();
    let pcq = pcq_core::time::Timestamp::parse_rfc3339(entry["pcqTime"].as_str().unwrap()).unwrap();
    assert_eq!(pcq.as_micros() - time.as_micros(), 172_800_000_000);
}

async fn bodies_are_cut_at_4_kib() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let mut body = customer_body("long.example.edu");
    body["notes"] = json!("x".repeat(6000));
    let resp = app.send_post("/v1/customers", &partner.user, &body).await;
    assert!(resp.status().is_success() || resp.status().is_client_error());
    // The OpenAPI document is far longer than 4 KiB.
    let resp = app
        .anon(Method::GET, "/_pcq/openapi.json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let document = resp.bytes().await.unwrap();
    assert!(document.len() > 4096);

    let items = entries(&app, "").await;
    let (openapi, post) = (&items[0], &items[1]);
    assert_eq!(post["requestBodyTruncated"], true);
    let cut = post["requestBody"].as_str().expect("a cut body is text");
    assert_eq!(cut.len(), 4096);
    assert!(cut.starts_with('{'));
    assert_eq!(post["responseBodyTruncated"], false);
    assert_eq!(openapi["responseBodyTruncated"], true);
    let cut = openapi["responseBody"]
        .as_str()
        .expect("a cut body is text");
    assert_eq!(cut.as_bytes(), &document[..4096]);
}

async fn filters_since_and_limit() {
    let app = TestApp::spawn().await;
    let (a, b) = (app.partner(), app.partner());
    app.create_customer(&a, "a.example.edu").await;
    let resp = app.fetch("/v1/customers", &b.app).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = app.fetch("/v1/customers/not-a-guid", &b.app).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = app
        .anon(Method::GET, "/v1/auditrecords")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let paths = |items: Vec<Value>| -> Vec<String> {
        items
            .iter()
            .map(|e| {
                format!(
                    "{} {} {}",
                    e["method"].as_str().unwrap(),
                    e["path"].as_str().unwrap(),
                    e["status"]
                )
            })
            .collect()
    };
    assert_eq!(
        paths(entries(&app, &format!("?partner={}", a.tenant)).await),
        ["POST /v1/customers 201"]
    );
    assert_eq!(
        paths(
            entries(
                &app,
                &format!("?partner={}", b.tenant.to_string().to_uppercase())
            )
            .await
        ),
        ["GET /v1/customers/not-a-guid 400", "GET /v1/customers 200"]
    );
    assert_eq!(
        paths(entries(&app, "?method=post").await),
        ["POST /v1/customers 201"]
    );
    assert_eq!(
        paths(entries(&app, "?path=/v1/customers/").await),
        ["GET /v1/customers/not-a-guid 400"]
    );
    assert_eq!(
        paths(entries(&app, "?status=4xx").await),
        [
            "GET /v1/auditrecords 401",
            "GET /v1/customers/not-a-guid 400"
        ]
    );
    assert_eq!(
        paths(entries(&app, "?status=200&method=GET").await),
        ["GET /v1/customers 200"]
    );

    // Newest first, cut at limit; since reads forward without gaps.
    let all = entries(&app, "").await;
    assert_eq!(all.len(), 4);
    let id = |e: &Value| e["id"].as_u64().unwrap();
    let newest = journal(&app, "?limit=2").await;
    assert_eq!(newest["truncated"], true);
    assert_eq!(
        newest["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(id)
            .collect::<Vec<_>>(),
        [id(&all[0]), id(&all[1])]
    );
    let first = id(&all[3]);
    let page = journal(&app, &format!("?since={first}&limit=2")).await;
    assert_eq!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(id)
            .collect::<Vec<_>>(),
        [id(&all[1]), id(&all[2])]
    );
    assert_eq!(page["truncated"], true);
    assert_eq!(page["nextSince"], id(&all[1]));
    let page = journal(&app, &format!("?since={}&limit=2", id(&all[1]))).await;
    assert_eq!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(id)
            .collect::<Vec<_>>(),
        [id(&all[0])]
    );
    assert_eq!(page["truncated"], false);
    let next = page["nextSince"].as_u64().unwrap();
    assert_eq!(next, id(&all[0]));
    assert!(entries(&app, &format!("?since={next}")).await.is_empty());
    // A later request shows up after it, once.
    let resp = app.fetch("/v1/customers", &a.app).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let later = entries(&app, &format!("?since={next}")).await;
    assert_eq!(paths(later), ["GET /v1/customers 200"]);

    let admin = app.admin_token();
    for (query, field) in [
        ("partner=contoso", "partner"),
        ("method=G%20T", "method"),
        ("path=v1", "path"),
        ("status=abc", "status"),
        ("status=600", "status"),
        ("status=6xx", "status"),
        ("since=-1", "since"),
        ("since=next", "since"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
    ] {
        let resp = app
            .fetch(&format!("/_pcq/admin/requests?{query}"), &admin)
            .await;
        let fault = assert_fault(resp, 400, 800002).await;
        assert_eq!(fault.parameters["field"], field, "{query}");
        assert!(
            fault.description.starts_with(&format!("{field}:")),
            "{query}: {}",
            fault.description
        );
    }
    assert_eq!(entries(&app, "?limit=1000").await.len(), 5);
}

async fn the_journal_keeps_the_newest_max_entries() {
    let app = TestApp::spawn_with(|c| c.journal.max_entries = 5).await;
    let partner = app.partner();
    for _ in 0..8 {
        let resp = app.fetch("/v1/customers", &partner.app).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let items = entries(&app, "").await;
    let ids: Vec<u64> = items.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [8, 7, 6, 5, 4]);
    assert_eq!(app.state.journal.usage().0, 5);
}

async fn a_byte_budget_bounds_the_journal_too() {
    let app = TestApp::spawn_with(|c| c.journal.max_bytes = 64 * 1024).await;
    let partner = app.partner();
    for n in 0..40 {
        let mut body = customer_body(&format!("big{n}.example.edu"));
        body["notes"] = json!("y".repeat(5000));
        let resp = app.send_post("/v1/customers", &partner.user, &body).await;
        assert!(resp.status().as_u16() < 500);
    }
    let (count, bytes) = app.state.journal.usage();
    assert!(bytes <= 64 * 1024, "{bytes}");
    assert!((5..40).contains(&count), "{count} entries");
    let items = entries(&app, "?limit=1000").await;
    assert_eq!(items.len(), count);
    assert_eq!(items[0]["id"], 40);
}

async fn a_disabled_journal_records_nothing_and_says_so() {
    let app = TestApp::spawn_with(|c| c.journal.enabled = false).await;
    let partner = app.partner();
    let resp = app.fetch("/v1/customers", &partner.app).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let admin = app.admin_token();
    let fault = assert_fault(app.fetch("/_pcq/admin/requests", &admin).await, 409, 950409).await;
    assert!(
        fault.description.contains("journal.enabled"),
        "{}",
        fault.description
    );
    let resp = app
        .send(Method::DELETE, "/_pcq/admin/requests", &admin, None)
        .await;
    assert_fault(resp, 409, 950409).await;
    assert_eq!(app.state.journal.usage(), (0, 0));
}

async fn delete_empties_the_journal_and_ids_go_on() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    for _ in 0..3 {
        let resp = app.fetch("/v1/customers", &partner.app).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let admin = app.admin_token();
    let resp = app
        .send(Method::DELETE, "/_pcq/admin/requests", &admin, None)
        .await;
    let answer: Value = ok(resp).await;
    assert_eq!(answer, json!({"removed": 3}));
    // Only the DELETE itself, numbered after what was removed.
    let items = entries(&app, "").await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["method"], "DELETE");
    assert_eq!(items[0]["id"], 4);
    assert_eq!(app.state.journal.usage().0, 1);
}

async fn resets_empty_the_journal() {
    let app = TestApp::spawn().await;
    let (a, b) = (app.partner(), app.partner());
    for partner in [&a, &b] {
        let resp = app.fetch("/v1/customers", &partner.app).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let admin = app.admin_token();
    let resp = app
        .send(
            Method::POST,
            &format!("/_pcq/admin/reset?partner={}", a.tenant),
            &admin,
            None,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let partners: Vec<Value> = entries(&app, "")
        .await
        .iter()
        .map(|e| e["partner"].clone())
        .collect();
    assert!(
        !partners.contains(&json!(a.tenant.to_string())),
        "{partners:?}"
    );
    assert!(
        partners.contains(&json!(b.tenant.to_string())),
        "{partners:?}"
    );

    let resp = app
        .send(Method::POST, "/_pcq/admin/reset", &admin, None)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let items = entries(&app, "").await;
    assert_eq!(items.len(), 1, "only the reset itself: {items:#?}");
    assert_eq!(items[0]["path"], "/_pcq/admin/reset");
    // Taking up the reset's clock again (as the worker does) keeps what came after it.
    pcq_server::settings::refresh(&app.state.pipeline)
        .await
        .unwrap();
    assert_eq!(entries(&app, "").await.len(), 1);
}

async fn other_nodes_empty_their_journal_after_a_reset() {
    if crate::common::backend() != crate::common::Backend::Postgres {
        return;
    }
    let app = TestApp::spawn().await;
    let mut config = app.state.config.clone();
    config.listen = "127.0.0.1:0".parse().unwrap();
    let other = TestApp::start(config).await;
    let partner = app.partner();
    let resp = other.fetch("/v1/customers", &partner.app).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let on_other = entries(&other, "").await;
    assert_eq!(on_other.len(), 1);
    assert_eq!(on_other[0]["node"], other.base);
    assert!(
        entries(&app, "").await.is_empty(),
        "each node keeps its own"
    );

    let resp = app
        .send(Method::POST, "/_pcq/admin/reset", &app.admin_token(), None)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    pcq_server::settings::refresh(&other.state.pipeline)
        .await
        .unwrap();
    assert!(entries(&other, "").await.is_empty());
}

async fn no_credential_is_kept() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let secrets = [
        "invalid-bearer-Zq7uLk3",
        "query-token-Hx81Pq",
        "body-token-Mv29Wd",
        "body-secret-Tr55Yb",
        "body-password-Ka44Nn",
        "webhook-password-Gf66Rr",
        "webhook-key-Lp12Ee",
    ];
    // A bearer token that is not one.
    let resp = app
        .anon(Method::GET, "/v1/customers")
        .header("Authorization", format!("Bearer {}", secrets[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // A valid token, with a token in the query.
    let resp = app
        .fetch(
            &format!("/v1/customers?size=5&access_token={}", secrets[1]),
            &partner.app,
        )
        .await;
    assert!(resp.status().as_u16() < 500);
    // Credential fields in a body.
    let mut body = customer_body("secret.example.edu");
    body["access_token"] = json!(secrets[2]);
    body["client"] = json!({"client_secret": secrets[3], "Password": secrets[4]});
    let resp = app.send_post("/v1/customers", &partner.user, &body).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    // Credentials in a webhook URL (refused, but read).
    let url = format!(
        "https://user:{}@hooks.example.com/in?key={}",
        secrets[5], secrets[6]
    );
    let resp = app
        .post_registration(&partner, &url, &["test-created"])
        .await;
    assert!(resp.status().is_client_error(), "{}", resp.status());
    // The valid tokens used, as a whole and by their signature.
    let valid = [partner.app.clone(), partner.user.clone(), app.admin_token()];

    let text = serde_json::to_string(&journal(&app, "?limit=1000").await).unwrap();
    for secret in secrets {
        assert!(!text.contains(secret), "{secret} kept: {text}");
    }
    for token in &valid {
        let signature = token.rsplit('.').next().unwrap();
        assert!(!text.contains(signature), "a token kept: {text}");
    }
    // What was around them stays.
    assert!(text.contains("access_token=REDACTED"), "{text}");
    assert!(text.contains("secret.example.edu"), "{text}");
    assert!(text.contains("hooks.example.com/in"), "{text}");
}

async fn an_idempotent_retry_is_marked_as_replayed() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let request_id = Uuid::new_v4().to_string();
    let body = customer_body("again.example.edu");
    for _ in 0..2 {
        let resp = app
            .post("/v1/customers", &partner.user, &body)
            .header("MS-RequestId", &request_id)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    let items = entries(&app, "?method=POST").await;
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["replayed"], true);
    assert_eq!(items[1]["replayed"], false);
    assert_eq!(items[0]["requestId"], request_id);
    assert_eq!(items[0]["responseBody"], items[1]["responseBody"]);
}

/// An `after` fault that replaces the answer of a replay: the entry still says it was one.
async fn a_replay_whose_answer_a_fault_replaced_is_marked_as_replayed() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let request_id = Uuid::new_v4().to_string();
    let body = customer_body("lost-replay.example.edu");
    let send = || {
        app.post("/v1/customers", &partner.user, &body)
            .header("MS-RequestId", &request_id)
            .send()
    };
    assert_eq!(send().await.unwrap().status(), StatusCode::CREATED);
    let resp = app
        .send_post(
            "/_pcq/admin/faults",
            &app.admin_token(),
            &serde_json::json!({"method": "POST", "path": "/v1/customers", "status": 503,
                                "when": "after", "count": 1}),
        )
        .await;
    let (status, fault) = status_json(resp).await;
    assert_eq!(status, StatusCode::CREATED, "{fault}");
    assert_fault(send().await.unwrap(), 503, 800003).await;

    let items = entries(&app, "?method=POST&path=/v1/customers").await;
    assert_eq!(items.len(), 2, "{items:#?}");
    assert_eq!(items[0]["status"], 503);
    assert_eq!(items[0]["fault"], fault["id"]);
    assert_eq!(items[0]["replayed"], true);
    assert_eq!(items[1]["replayed"], false);
}

async fn only_admins_read_or_empty_the_journal() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    for token in [partner.user.clone(), app.reviewer_token()] {
        let resp = app.fetch("/_pcq/admin/requests", &token).await;
        assert_fault(resp, 403, 900150).await;
        let resp = app
            .send(Method::DELETE, "/_pcq/admin/requests", &token, None)
            .await;
        assert_fault(resp, 403, 900150).await;
    }
    let resp = app
        .anon(Method::GET, "/_pcq/admin/requests")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // The refused DELETEs are recorded, the reads are not.
    let items = entries(&app, "").await;
    assert_eq!(items.len(), 2);
    assert!(
        items
            .iter()
            .all(|e| e["method"] == "DELETE" && e["status"] == 403)
    );
}

backend_tests!(
    entries_record_what_was_asked_and_answered,
    refusals_of_every_layer_are_recorded,
    the_pcq_clock_and_the_system_clock_are_both_shown,
    bodies_are_cut_at_4_kib,
    filters_since_and_limit,
    the_journal_keeps_the_newest_max_entries,
    a_byte_budget_bounds_the_journal_too,
    a_disabled_journal_records_nothing_and_says_so,
    delete_empties_the_journal_and_ids_go_on,
    resets_empty_the_journal,
    other_nodes_empty_their_journal_after_a_reset,
    no_credential_is_kept,
    an_idempotent_retry_is_marked_as_replayed,
    a_replay_whose_answer_a_fault_replaced_is_marked_as_replayed,
    only_admins_read_or_empty_the_journal,
);
