//! The web console's server-side rules, without a browser (tests/console/ drives chromium):
//! sign-in and its cookie, CSRF and cross-site refusals, roles per page, escaping, session end,
//! security headers, the `GET /` redirect, assets and `/_pcq/docs`.

use crate::common::{TestApp, status_json, urlencode};
use pcq_server::auth::TokenSpec;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

const CONSOLE: &str = "/_pcq/console";
const CSP: &str = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// A browser-like client: no redirects followed, cookies handled by the test.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn form_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Posts a form to the console, with `cookie` (the session id) and extra headers.
async fn post_form(
    app: &TestApp,
    path: &str,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> Response {
    let mut request = client()
        .post(app.url(path))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form_body(fields));
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, format!("pcq_console={cookie}"));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

async fn get_page(app: &TestApp, path: &str, cookie: Option<&str>) -> Response {
    let mut request = client().get(app.url(path));
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, format!("pcq_console={cookie}"));
    }
    request.send().await.unwrap()
}

/// The `Set-Cookie` header of a response.
fn set_cookie(resp: &Response) -> String {
    resp.headers()
        .get(SET_COOKIE)
        .expect("a Set-Cookie header")
        .to_str()
        .unwrap()
        .to_owned()
}

/// The session id a sign-in's cookie holds.
fn session_id(set_cookie: &str) -> String {
    set_cookie
        .strip_prefix("pcq_console=")
        .and_then(|rest| rest.split(';').next())
        .expect("the console's cookie")
        .to_owned()
}

/// Signs in with `token`; answers the session id.
async fn sign_in(app: &TestApp, token: &str) -> String {
    let resp = post_form(
        app,
        &format!("{CONSOLE}/session"),
        None,
        &[("token", token)],
        &[],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    session_id(&set_cookie(&resp))
}

/// The CSRF token in the forms of a page.
async fn csrf_of(app: &TestApp, cookie: &str) -> String {
    let html = get_page(app, &format!("{CONSOLE}/"), Some(cookie))
        .await
        .text()
        .await
        .unwrap();
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a page of a session carries its CSRF token");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

fn reviewer_token(app: &TestApp) -> String {
    app.reviewer_token()
}

async fn clock_offset(app: &TestApp) -> i64 {
    let (status, clock) =
        status_json(app.fetch("/_pcq/admin/clock", &app.admin_token()).await).await;
    assert_eq!(status, StatusCode::OK);
    clock["offsetSeconds"].as_i64().unwrap()
}

async fn the_root_redirects_and_every_answer_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    let root = get_page(&app, "/", None).await;
    assert_eq!(root.status(), StatusCode::SEE_OTHER);
    assert_eq!(root.headers()[LOCATION], "/_pcq/console/");
    // Only GET is the console's; other methods on / keep the API's 404 envelope.
    let post = client().post(app.url("/")).send().await.unwrap();
    assert_eq!(post.status(), StatusCode::NOT_FOUND);
    assert!(
        post.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );

    for path in [
        "/",
        "/_pcq/console/",
        "/_pcq/console/review",
        "/_pcq/console/nope",
        "/_pcq/docs",
    ] {
        let resp = get_page(&app, path, None).await;
        let h = resp.headers();
        assert_eq!(h["content-security-policy"], CSP, "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
        assert!(
            h.contains_key("ms-requestid"),
            "{path}: the request context"
        );
    }
    let page = get_page(&app, "/_pcq/console/", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert!(
        page.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("action=\"/_pcq/console/session\""));
    assert!(!html.contains("<script>"), "no inline script");
    // The development issuer is on and the test is on this machine.
    assert!(html.contains("Development sign-in"));

    let missing = get_page(&app, "/_pcq/console/nope", None).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.text().await.unwrap().contains("no such page"));
}

async fn a_sign_in_sets_a_session_cookie_that_holds_no_token() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let resp = post_form(
        &app,
        &format!("{CONSOLE}/session"),
        None,
        &[("token", &partner.user)],
        &[],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()[LOCATION], "/_pcq/console/");
    let cookie = set_cookie(&resp);
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    for wanted in ["HttpOnly", "SameSite=Strict", "Path=/_pcq/console"] {
        assert!(attributes.contains(&wanted), "{cookie}");
    }
    assert!(!attributes.contains(&"Secure"), "plain HTTP: {cookie}");
    let max_age: i64 = attributes
        .iter()
        .find_map(|a| a.strip_prefix("Max-Age="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (3590..=3600).contains(&max_age),
        "the token's lifetime: {cookie}"
    );
    let id = session_id(&cookie);
    assert_eq!(id.len(), 43, "32 random bytes, base64url");
    for part in partner.user.split('.') {
        assert!(!cookie.contains(part), "no part of the token in the cookie");
    }
    let home = get_page(&app, &format!("{CONSOLE}/"), Some(&id)).await;
    let html = home.text().await.unwrap();
    assert!(html.contains("Signed in as"), "{html}");
    assert!(html.contains(&partner.tenant.to_string()));

    // A script may send the token as a bearer header instead.
    let scripted = client()
        .post(app.url(&format!("{CONSOLE}/session")))
        .bearer_auth(&partner.user)
        .send()
        .await
        .unwrap();
    assert_eq!(scripted.status(), StatusCode::SEE_OTHER);
    assert_ne!(session_id(&set_cookie(&scripted)), id);

    // Tokens pcq does not trust are refused with the sign-in page again.
    let bad = post_form(
        &app,
        &format!("{CONSOLE}/session"),
        None,
        &[("token", "not.a.token")],
        &[],
    )
    .await;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert!(bad.headers().get(SET_COOKIE).is_none());
    assert!(
        bad.text()
            .await
            .unwrap()
            .contains("pcq does not accept this token")
    );
    let empty = post_form(
        &app,
        &format!("{CONSOLE}/session"),
        None,
        &[("token", " ")],
        &[],
    )
    .await;
    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
}

async fn the_cookie_is_secure_when_pcq_is_reached_over_https() {
    let app = TestApp::spawn_with(|c| c.public_url = "https://pcq.example.com".into()).await;
    let resp = post_form(
        &app,
        &format!("{CONSOLE}/session"),
        None,
        &[("token", &app.partner().user)],
        &[],
    )
    .await;
    let cookie = set_cookie(&resp);
    assert!(cookie.split(';').any(|a| a.trim() == "Secure"), "{cookie}");
}

async fn state_changes_need_the_csrf_token_and_pcq_as_origin() {
    let app = TestApp::spawn().await;
    let admin = sign_in(&app, &app.admin_token()).await;
    let csrf = csrf_of(&app, &admin).await;
    let clock = format!("{CONSOLE}/admin/clock");
    let before = clock_offset(&app).await;

    let missing = post_form(&app, &clock, Some(&admin), &[("advance", "1h")], &[]).await;
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    assert!(missing.text().await.unwrap().contains("CSRF token"));
    let wrong = post_form(
        &app,
        &clock,
        Some(&admin),
        &[("advance", "1h"), ("csrf", "x")],
        &[],
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    // Another session's token is no better.
    let other = sign_in(&app, &app.admin_token()).await;
    let others = csrf_of(&app, &other).await;
    let swapped = post_form(
        &app,
        &clock,
        Some(&admin),
        &[("advance", "1h"), ("csrf", &others)],
        &[],
    )
    .await;
    assert_eq!(swapped.status(), StatusCode::FORBIDDEN);

    let fields = [("advance", "1h"), ("csrf", csrf.as_str())];
    let host = app.base.trim_start_matches("http://").to_owned();
    for headers in [
        vec![("Origin", "http://elsewhere.example")],
        vec![("Origin", "null")],
        vec![("Sec-Fetch-Site", "cross-site")],
        vec![("Sec-Fetch-Site", "same-site")],
    ] {
        let resp = post_form(&app, &clock, Some(&admin), &fields, &headers).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{headers:?}");
        assert!(resp.text().await.unwrap().contains("from another site"));
    }
    assert_eq!(
        clock_offset(&app).await,
        before,
        "nothing refused changed the clock"
    );

    // The sign-in itself, without a session yet, is held to the origin rule.
    let foreign = post_form(
        &app,
        &format!("{CONSOLE}/session"),
        None,
        &[("token", &app.admin_token())],
        &[("Origin", "http://elsewhere.example")],
    )
    .await;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert!(foreign.headers().get(SET_COOKIE).is_none());

    let origin = format!("http://{host}");
    let resp = post_form(
        &app,
        &clock,
        Some(&admin),
        &fields,
        &[
            ("Origin", origin.as_str()),
            ("Sec-Fetch-Site", "same-origin"),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(clock_offset(&app).await, before + 3600);
}

async fn partners_are_refused_review_and_admin_pages() {
    let app = TestApp::spawn().await;
    // Not signed in: the way to the sign-in page.
    for path in ["review", "customers", "admin", "admin/journal"] {
        let resp = get_page(&app, &format!("{CONSOLE}/{path}"), None).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(resp.headers()[LOCATION], "/_pcq/console/");
    }
    let partner = app.partner();
    let customer = app.request_education(&partner, "refused.example.edu").await;
    let session = sign_in(&app, &partner.user).await;
    let csrf = csrf_of(&app, &session).await;
    for (path, role) in [
        ("review", "Pcq.Reviewer"),
        ("admin", "Pcq.Admin"),
        ("admin/journal", "Pcq.Admin"),
        ("admin/webhooks", "Pcq.Admin"),
        ("admin/journal/entries", "Pcq.Admin"),
    ] {
        let resp = get_page(&app, &format!("{CONSOLE}/{path}"), Some(&session)).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(
            resp.text()
                .await
                .unwrap()
                .contains(&format!("needs the {role} role")),
            "{path}"
        );
    }
    let decided = post_form(
        &app,
        &format!("{CONSOLE}/review/decision"),
        Some(&session),
        &[
            ("csrf", &csrf),
            ("customer", &customer.to_string()),
            ("qualification", "Education"),
            ("decision", "Approved"),
        ],
        &[],
    )
    .await;
    assert_eq!(decided.status(), StatusCode::FORBIDDEN);
    app.assert_education_status(&partner, customer, pcq_core::VettingStatus::InReview)
        .await;
    let reset = post_form(
        &app,
        &format!("{CONSOLE}/admin/reset"),
        Some(&session),
        &[("csrf", &csrf)],
        &[],
    )
    .await;
    assert_eq!(reset.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.customer_count(&partner).await, 1);

    // Another partner's customer is refused as the API refuses it.
    let other = sign_in(&app, &app.partner().user).await;
    let resp = get_page(
        &app,
        &format!("{CONSOLE}/customers/{customer}"),
        Some(&other),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let list = get_page(&app, &format!("{CONSOLE}/customers"), Some(&other)).await;
    assert!(!list.text().await.unwrap().contains(&customer.to_string()));
}

async fn user_strings_are_escaped() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let name = "<img src=x onerror=alert(1)>";
    let resp = app
        .send_post(
            "/v1/customers",
            &partner.user,
            &json!({"companyProfile": {"domain": "escape.example.com", "companyName": name}}),
        )
        .await;
    let (status, customer) = status_json(resp).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = customer["id"].as_str().unwrap().to_owned();
    let session = sign_in(&app, &partner.user).await;
    for path in [
        format!("{CONSOLE}/customers"),
        format!("{CONSOLE}/customers/{id}"),
    ] {
        let html = get_page(&app, &path, Some(&session))
            .await
            .text()
            .await
            .unwrap();
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{path}: {html}"
        );
        assert!(!html.contains("<img"), "{path}");
    }
    // And in the reviewer's queue.
    app.post_qualification(
        &partner,
        id.parse().unwrap(),
        &json!({"qualification": "Education"}),
    )
    .await;
    let reviewer = sign_in(&app, &reviewer_token(&app)).await;
    let queue = get_page(&app, &format!("{CONSOLE}/review"), Some(&reviewer))
        .await
        .text()
        .await
        .unwrap();
    assert!(queue.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(!queue.contains("<img"));
}

async fn a_reviewer_decides_through_the_console_as_through_the_api() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let customer = app.request_education(&partner, "decided.example.com").await;
    let reviewer = sign_in(&app, &reviewer_token(&app)).await;
    let csrf = csrf_of(&app, &reviewer).await;
    let queue = get_page(
        &app,
        &format!("{CONSOLE}/review?qualification=Education"),
        Some(&reviewer),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(queue.contains("decided.example.com"));
    assert!(
        queue.contains("Not an Academic Domain"),
        "the documented reasons"
    );

    let decision = format!("{CONSOLE}/review/decision");
    let id = customer.to_string();
    let mut fields = vec![
        ("csrf", csrf.as_str()),
        ("customer", id.as_str()),
        ("qualification", "Education"),
        ("decision", "Denied"),
    ];
    // A denial needs a documented reason.
    let refused = post_form(&app, &decision, Some(&reviewer), &fields, &[]).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    fields.push(("reason", "Not an Academic Domain"));
    // Where to go back to is the form's: only a path of the console is followed.
    let mut leaving = fields.clone();
    leaving.push(("back", "https://elsewhere.example/\r\nX: y"));
    let resp = post_form(&app, &decision, Some(&reviewer), &leaving, &[]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let to = resp.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(to.starts_with("/_pcq/console/review?"), "{to}");
    assert!(
        to.contains(&format!("decided={customer}&status=Denied")),
        "{to}"
    );
    let page = get_page(&app, &to, Some(&reviewer))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("the qualification is now Denied"));

    app.assert_education_status(&partner, customer, pcq_core::VettingStatus::Denied)
        .await;
    let qualifications = app.qualifications_json(&partner, customer).await;
    assert_eq!(qualifications[0]["vettingReason"], "Not an Academic Domain");
    let records = app.audit(&partner, &format!("customerId={customer}")).await;
    assert!(
        records.iter().any(|r| r["customizedData"]
            .as_array()
            .unwrap()
            .contains(&json!({"key": "VettingReason", "value": "Not an Academic Domain"}))),
        "{records:?}"
    );
    // Deciding again is the API's 409, as a page.
    let again = post_form(&app, &decision, Some(&reviewer), &fields, &[]).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
}

async fn a_session_ends_when_its_token_expires_and_at_sign_out() {
    let app = TestApp::spawn().await;
    let tenant = Uuid::new_v4();
    let short = app.token(TokenSpec {
        ttl_seconds: 2,
        ..TestApp::spec(tenant)
    });
    let resp = post_form(
        &app,
        &format!("{CONSOLE}/session"),
        None,
        &[("token", &short)],
        &[],
    )
    .await;
    let cookie = set_cookie(&resp);
    assert!(
        cookie.contains("Max-Age=2") || cookie.contains("Max-Age=1"),
        "{cookie}"
    );
    let session = session_id(&cookie);
    assert_eq!(
        get_page(&app, &format!("{CONSOLE}/customers"), Some(&session))
            .await
            .status(),
        StatusCode::OK
    );
    // Token lifetimes are on the system's clock (as the API checks them): wait out this one.
    let exp = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
        + 2;
    while i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
        <= exp
    {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let ended = get_page(&app, &format!("{CONSOLE}/customers"), Some(&session)).await;
    assert_eq!(
        ended.status(),
        StatusCode::SEE_OTHER,
        "the session ended with its token"
    );

    let session = sign_in(&app, &app.user_token(tenant)).await;
    let csrf = csrf_of(&app, &session).await;
    let out = post_form(
        &app,
        &format!("{CONSOLE}/session/delete"),
        Some(&session),
        &[("csrf", &csrf)],
        &[],
    )
    .await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let cleared = set_cookie(&out);
    assert!(
        cleared.starts_with("pcq_console=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let after = get_page(&app, &format!("{CONSOLE}/customers"), Some(&session)).await;
    assert_eq!(after.status(), StatusCode::SEE_OTHER, "signed out");
}

async fn the_development_sign_in_offers_three_roles() {
    let app = TestApp::spawn().await;
    for (who, page, status) in [
        ("partner", "customers", StatusCode::OK),
        ("partner", "review", StatusCode::FORBIDDEN),
        ("reviewer", "review", StatusCode::OK),
        ("reviewer", "admin", StatusCode::FORBIDDEN),
        ("admin", "admin", StatusCode::OK),
        ("admin", "admin/journal", StatusCode::OK),
        ("admin", "admin/webhooks", StatusCode::OK),
    ] {
        let resp = post_form(
            &app,
            &format!("{CONSOLE}/session/dev"),
            None,
            &[("as", who)],
            &[],
        )
        .await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{who}");
        let session = session_id(&set_cookie(&resp));
        let resp = get_page(&app, &format!("{CONSOLE}/{page}"), Some(&session)).await;
        assert_eq!(resp.status(), status, "{who} on {page}");
    }
    let partner = post_form(
        &app,
        &format!("{CONSOLE}/session/dev"),
        None,
        &[("as", "partner")],
        &[],
    )
    .await;
    let session = session_id(&set_cookie(&partner));
    let html = get_page(&app, &format!("{CONSOLE}/"), Some(&session))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&app.state.dev_partner.to_string()),
        "the development partner"
    );
    let bad = post_form(
        &app,
        &format!("{CONSOLE}/session/dev"),
        None,
        &[("as", "root")],
        &[],
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    // Without the development issuer there is no development sign-in.
    let app =
        TestApp::spawn_with(|c| c.auth.dev_issuer = pcq_server::config::AutoBool::Set(false)).await;
    let html = get_page(&app, &format!("{CONSOLE}/"), None)
        .await
        .text()
        .await
        .unwrap();
    assert!(!html.contains("Development sign-in"));
    let refused = post_form(
        &app,
        &format!("{CONSOLE}/session/dev"),
        None,
        &[("as", "admin")],
        &[],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

async fn assets_are_compiled_in_and_cached_by_content() {
    let app = TestApp::spawn().await;
    let html = get_page(&app, &format!("{CONSOLE}/"), None)
        .await
        .text()
        .await
        .unwrap();
    for (prefix, content_type) in [
        ("/_pcq/console/assets/console-", "text/css"),
        ("/_pcq/console/assets/icon-", "image/svg+xml"),
    ] {
        let at = html
            .find(prefix)
            .unwrap_or_else(|| panic!("{prefix} in {html}"));
        let path = &html[at..at + html[at..].find('"').unwrap()];
        let resp = get_page(&app, path, None).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert!(
            resp.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with(content_type)
        );
        assert!(
            resp.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
        let again = client()
            .get(app.url(path))
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    }
    let script = html
        .find("/_pcq/console/assets/console-")
        .and_then(|_| html.find(".js\""))
        .is_some();
    assert!(script, "the script is a file of its own");
    let stale = get_page(&app, "/_pcq/console/assets/console-000000000000.css", None).await;
    assert_eq!(stale.status(), StatusCode::NOT_FOUND);
}

async fn the_docs_list_every_api_path_and_the_console_is_not_in_the_api_document() {
    let app = TestApp::spawn().await;
    let document: Value = app
        .anon(reqwest::Method::GET, "/_pcq/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = document["paths"].as_object().unwrap();
    assert!(
        paths
            .keys()
            .all(|p| !p.starts_with("/_pcq/console") && p != "/" && p != "/_pcq/docs")
    );
    let resp = get_page(&app, "/_pcq/docs", None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    for path in paths.keys() {
        assert!(
            html.contains(&format!("<code class=\"path\">{path}</code>")),
            "{path}"
        );
    }
}

async fn the_console_meets_no_injected_fault_and_stays_out_of_the_journal() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let resp = app
        .send_post(
            "/_pcq/admin/faults",
            &admin,
            &json!({"path": "/**", "status": 503}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let partner = app.partner();
    let session = sign_in(&app, &partner.user).await;
    assert_eq!(
        get_page(&app, &format!("{CONSOLE}/customers"), Some(&session))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.fetch("/v1/customers", &partner.user).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let (_, journal) = status_json(app.fetch("/_pcq/admin/requests", &admin).await).await;
    let paths: Vec<&str> = journal["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"/v1/customers"), "{paths:?}");
    assert!(
        paths.iter().all(|p| !p.starts_with("/_pcq/console")),
        "{paths:?}"
    );
}

async fn the_webhooks_page_lists_every_registration() {
    let app = TestApp::spawn().await;
    let first = app.partner();
    let second = app.partner();
    app.register_webhook(&first, "http://127.0.0.1:9/first-hook", &["test-created"])
        .await;
    app.register_webhook(&second, "http://127.0.0.1:9/second-hook", &["test-created"])
        .await;
    let admin = sign_in(&app, &app.admin_token()).await;
    let resp = get_page(&app, &format!("{CONSOLE}/admin/webhooks"), Some(&admin)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    for (partner, url) in [(&first, "first-hook"), (&second, "second-hook")] {
        assert!(
            html.contains(&format!("/admin/webhooks?partner={}", partner.tenant)),
            "a link to {}'s deliveries",
            partner.tenant
        );
        assert!(html.contains(url), "{url}");
    }
    // One partner's registration and deliveries, chosen from the list.
    let resp = get_page(
        &app,
        &format!("{CONSOLE}/admin/webhooks?partner={}", second.tenant),
        Some(&admin),
    )
    .await;
    let html = resp.text().await.unwrap();
    assert!(html.contains("Callback URL") && html.contains("second-hook"));
    let resp = get_page(
        &app,
        &format!("{CONSOLE}/admin/webhooks?after=not-a-tenant"),
        Some(&admin),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

crate::common::backend_tests!(
    the_root_redirects_and_every_answer_carries_the_security_headers,
    a_sign_in_sets_a_session_cookie_that_holds_no_token,
    the_cookie_is_secure_when_pcq_is_reached_over_https,
    state_changes_need_the_csrf_token_and_pcq_as_origin,
    partners_are_refused_review_and_admin_pages,
    user_strings_are_escaped,
    a_reviewer_decides_through_the_console_as_through_the_api,
    a_session_ends_when_its_token_expires_and_at_sign_out,
    the_development_sign_in_offers_three_roles,
    assets_are_compiled_in_and_cached_by_content,
    the_docs_list_every_api_path_and_the_console_is_not_in_the_api_document,
    the_console_meets_no_injected_fault_and_stays_out_of_the_journal,
    the_webhooks_page_lists_every_registration,
);
