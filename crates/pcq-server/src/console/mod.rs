//! The web console: HTML pages served by pcq itself for reviewers, partners and sandbox admins
//! (`/_pcq/console/`), and the OpenAPI document rendered for reading (`/_pcq/docs`).
//!
//! Pages are rendered on the server with maud (templates checked by the compiler, every value
//! escaped unless a template says otherwise); one stylesheet and one small script of pcq's own
//! are compiled into the binary; nothing loads from elsewhere. Each page calls the same
//! operations as the API handlers, so audit records, histories and webhook events follow as
//! they do for the API. Sessions and CSRF protection are in [`session`]; `docs/console.md`
//! describes the design.
//!
//! The console is not part of the API: its routes are not in the OpenAPI document, are not
//! throttled, do not meet injected faults and are not kept in the request journal (a sign-in
//! carries a token). They share the request context, the access log and the metrics.

pub mod admin;
pub mod customers;
pub mod docs;
pub mod review;
pub mod session;

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use pcq_core::ApiFault;
use sha2::Digest;

use crate::AppState;
use crate::error::Error;
use crate::store::Reply;
use session::{Session, Sessions};

/// Where the console lives.
pub const BASE: &str = "/_pcq/console";

/// What console handlers reach: the node's state and the console's sessions.
#[derive(Clone)]
pub struct Console {
    /// The node.
    pub app: AppState,
    /// The signed-in sessions of this node.
    pub sessions: Arc<Sessions>,
}

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");
const ICON: &str = include_str!("assets/icon.svg");

/// A compiled-in file, served under a name carrying a hash of its content, so it can be cached
/// for good and a new version of pcq is never served a stale copy.
struct Asset {
    name: String,
    etag: String,
    content_type: &'static str,
    body: &'static str,
}

fn asset(stem: &str, ext: &str, content_type: &'static str, body: &'static str) -> Asset {
    let digest = sha2::Sha256::digest(body.as_bytes());
    let hash: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    Asset {
        name: format!("{stem}-{hash}.{ext}"),
        etag: format!("\"{hash}\""),
        content_type,
        body,
    }
}

static ASSETS: LazyLock<[Asset; 3]> = LazyLock::new(|| {
    [
        asset("console", "css", "text/css; charset=utf-8", CSS),
        asset("console", "js", "text/javascript; charset=utf-8", JS),
        asset("icon", "svg", "image/svg+xml", ICON),
    ]
});

/// The path of the stylesheet.
pub fn css_path() -> String {
    format!("{BASE}/assets/{}", ASSETS[0].name)
}

/// The path of the script.
pub fn js_path() -> String {
    format!("{BASE}/assets/{}", ASSETS[1].name)
}

/// The path of the icon.
pub fn icon_path() -> String {
    format!("{BASE}/assets/{}", ASSETS[2].name)
}

async fn serve_asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return not_found().await;
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == asset.etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    if let Ok(etag) = HeaderValue::from_str(&asset.etag) {
        h.insert(header::ETAG, etag);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    response
}

/// The console's routes, the `GET /` redirect and `/_pcq/docs`, with their own middleware:
/// security headers on every answer, the route template for the metrics, the body limit and
/// the request timeout.
pub fn router(app: AppState) -> Router {
    let limits = &app.config.limits;
    let console = Console {
        sessions: Arc::new(Sessions::default()),
        app: app.clone(),
    };
    Router::new()
        .route("/", axum::routing::any(root))
        .route(BASE, get(|| async { Redirect::to(&format!("{BASE}/")) }))
        .route(&format!("{BASE}/"), get(session::home))
        .route(&format!("{BASE}/session"), post(session::sign_in))
        .route(&format!("{BASE}/session/dev"), post(session::dev_sign_in))
        .route(&format!("{BASE}/session/delete"), post(session::sign_out))
        .route(&format!("{BASE}/assets/{{name}}"), get(serve_asset))
        .route(&format!("{BASE}/review"), get(review::queue_page))
        .route(&format!("{BASE}/review/decision"), post(review::decide))
        .route(&format!("{BASE}/customers"), get(customers::list_page))
        .route(
            &format!("{BASE}/customers/{{id}}"),
            get(customers::customer_page),
        )
        .route(
            &format!("{BASE}/customers/{{id}}/qualifications"),
            post(customers::request_qualification),
        )
        .route(&format!("{BASE}/admin"), get(admin::admin_page))
        .route(&format!("{BASE}/admin/clock"), post(admin::advance_clock))
        .route(&format!("{BASE}/admin/policy"), post(admin::set_policy))
        .route(&format!("{BASE}/admin/reset"), post(admin::reset))
        .route(&format!("{BASE}/admin/faults"), post(admin::add_fault))
        .route(
            &format!("{BASE}/admin/faults/delete"),
            post(admin::remove_fault),
        )
        .route(&format!("{BASE}/admin/journal"), get(admin::journal_page))
        .route(
            &format!("{BASE}/admin/journal/entries"),
            get(admin::journal_entries),
        )
        .route(&format!("{BASE}/admin/webhooks"), get(admin::webhooks_page))
        .route("/_pcq/docs", get(docs::docs_page))
        .route(&format!("{BASE}/{{*rest}}"), get(not_found))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            limits.request_timeout(),
            crate::http::limits::request_timeout,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            error_page_now(
                StatusCode::INTERNAL_SERVER_ERROR,
                "pcq could not complete this; its log says why.",
            )
        }))
        .route_layer(middleware::from_fn(crate::http::note_route))
        .layer(middleware::from_fn(security_headers))
        .with_state(console)
}

/// `GET /` leads to the console; any other method gets the API's 404 (nothing else is there).
async fn root(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    if method == axum::http::Method::GET || method == axum::http::Method::HEAD {
        return see_other(&format!("{BASE}/"));
    }
    crate::http::fault::route_not_found(method, uri).await
}

/// Whether `path` is the console's (or `/_pcq/docs`, or the `/` redirect): such requests are
/// routed to the console and kept out of the request journal.
pub fn is_console_path(path: &str) -> bool {
    path == "/"
        || path == "/_pcq/docs"
        || path == BASE
        || path
            .strip_prefix(BASE)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The headers of every console answer: a content security policy that allows pcq's own files
/// only (no inline script, no framing, forms posting to pcq only), no MIME sniffing, no referrer
/// beyond pcq, and no caching of pages (which show a signed-in user's data).
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
        .extensions_mut()
        .insert(crate::http::fault::Rendered);
    response
}

/// An HTML page with `status`.
pub fn html_response(status: StatusCode, page: Markup) -> Response {
    let mut response = (status, page.into_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// A 303 to `to` (after a form post, or to the sign-in page); to the console's home when `to`
/// is not a path of the console made of visible ASCII (a form's `back` field is the client's).
pub fn see_other(to: &str) -> Response {
    let safe = to.starts_with(BASE)
        && !to.contains("//")
        && !to.contains('\\')
        && to.bytes().all(|b| b.is_ascii_graphic());
    let to = if safe { to } else { "/_pcq/console/" };
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// The links of the navigation bar, as the session's roles allow them.
fn nav(session: Option<&Session>) -> Markup {
    html! {
        header.top {
            a.brand href={ (BASE) "/" } { "pcq console" }
            @if let Some(s) = session {
                nav aria-label="Console pages" {
                    @if s.principal.is_reviewer() {
                        a href={ (BASE) "/review" } { "Review queue" }
                    }
                    a href={ (BASE) "/customers" } { "Customers" }
                    @if s.principal.is_admin() {
                        a href={ (BASE) "/admin" } { "Sandbox" }
                        a href={ (BASE) "/admin/journal" } { "Journal" }
                        a href={ (BASE) "/admin/webhooks" } { "Webhooks" }
                    }
                    a href="/_pcq/docs" { "API docs" }
                }
                form.signout method="post" action={ (BASE) "/session/delete" } {
                    (csrf_field(s))
                    span.who { (s.who()) }
                    button type="submit" { "Sign out" }
                }
            } @else {
                nav aria-label="Console pages" {
                    a href="/_pcq/docs" { "API docs" }
                }
            }
        }
    }
}

/// The hidden form field carrying the session's CSRF token.
pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// A whole page: the layout around `body`.
pub fn page(title: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · pcq" }
                link rel="stylesheet" href=(css_path());
                link rel="icon" href=(icon_path()) type="image/svg+xml";
                script src=(js_path()) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                (nav(session))
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page saying what went wrong, with `status`.
pub fn error_page(status: StatusCode, session: Option<&Session>, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    html_response(
        status,
        page(
            title,
            session,
            html! {
                p.error role="alert" { (message) }
                p { a href={ (BASE) "/" } { "Back to the console" } }
            },
        ),
    )
}

/// The 403 page of a signed-in user without the role a page needs.
pub fn role_required(session: &Session, role: &str) -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        Some(session),
        &format!(
            "This page needs the {role} role; you are signed in as {}, who does not hold it. \
             Sign out and sign in with a token that carries it.",
            session.who()
        ),
    )
}

fn error_page_now(status: StatusCode, message: &str) -> Response {
    error_page(status, None, message)
}

async fn not_found() -> Response {
    error_page(StatusCode::NOT_FOUND, None, "The console has no such page.")
}

async fn method_not_allowed() -> Response {
    error_page(
        StatusCode::METHOD_NOT_ALLOWED,
        None,
        "This page does not take that kind of request.",
    )
}

/// The answer of an operation as the console shows it: the fault's status and description
/// for a refusal; for a failure inside pcq, a 500 without details (they are in the log).
pub fn failure(session: Option<&Session>, error: &Error) -> Response {
    match error {
        Error::Fault(fault) => fault_page(session, fault),
        other => {
            tracing::error!(error = %other, "a console page failed");
            error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                session,
                "pcq could not complete this; its log says why.",
            )
        }
    }
}

/// The page of a refusal.
pub fn fault_page(session: Option<&Session>, fault: &ApiFault) -> Response {
    error_page(
        StatusCode::from_u16(fault.status).unwrap_or(StatusCode::BAD_REQUEST),
        session,
        &fault.description,
    )
}

/// A table's caption and its column headers.
pub fn table_head(caption: &str, columns: &[&str]) -> Markup {
    html! {
        caption { (caption) }
        thead { tr { @for column in columns { th scope="col" { (column) } } } }
    }
}

/// What an operation answered, as the API would: its JSON body on success, or the refusal its
/// envelope describes.
pub fn reply_value(reply: Result<Reply, Error>) -> Result<serde_json::Value, Error> {
    let reply = reply?;
    let body: serde_json::Value = if reply.body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&reply.body).map_err(|e| Error::Internal(e.to_string()))?
    };
    if reply.status >= 400 {
        let description = body["description"]
            .as_str()
            .unwrap_or("The request was refused.")
            .to_owned();
        return Err(Error::Fault(ApiFault::new(
            reply.status,
            u32::try_from(body["code"].as_u64().unwrap_or(0)).unwrap_or(0),
            "Refused",
            description,
        )));
    }
    Ok(body)
}

/// The query string's fields; a query that cannot be read is an HTML 400.
pub struct QueryFields(pub Vec<(String, String)>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for QueryFields {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Response> {
        match axum::extract::Query::<Vec<(String, String)>>::from_request_parts(parts, state).await
        {
            Ok(axum::extract::Query(fields)) => Ok(QueryFields(fields)),
            Err(rejection) => Err(error_page(
                StatusCode::BAD_REQUEST,
                None,
                &format!(
                    "The query string could not be read: {}.",
                    rejection.body_text()
                ),
            )),
        }
    }
}

/// The one path parameter of a route; one that cannot be read is an HTML 400.
pub struct Segment(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Segment {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Response> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(segment)) => Ok(Segment(segment)),
            Err(rejection) => Err(error_page(
                StatusCode::BAD_REQUEST,
                None,
                &format!("The path could not be read: {}.", rejection.body_text()),
            )),
        }
    }
}

/// A notice at the top of a page (after a form post).
pub fn notice(text: Option<&str>) -> Markup {
    html! {
        @if let Some(text) = text {
            p.notice role="status" { (text) }
        }
    }
}

/// A form field's value, trimmed; `None` when empty.
pub fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// A time as the console shows it: `2026-12-03 14:41:08Z` (the full time in its title).
pub fn when(at: pcq_core::time::Timestamp) -> Markup {
    let full = at.to_rfc3339();
    let short = match full.split_once('.') {
        Some((seconds, _)) => format!("{seconds}Z"),
        None => full.clone(),
    }
    .replacen('T', " ", 1);
    html! { time datetime=(full) title=(full) { (short) } }
}

/// Percent-encodes a query value.
pub fn encode(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_in_the_console() {
        let location = |to: &str| {
            see_other(to).headers()[header::LOCATION]
                .to_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(
            location("/_pcq/console/review?a=b"),
            "/_pcq/console/review?a=b"
        );
        for unsafe_target in [
            "https://elsewhere.example/",
            "//elsewhere.example/",
            "/_pcq/console//elsewhere.example",
            "/_pcq/console/x\r\nSet-Cookie: a=b",
            "/_pcq/console/\\elsewhere",
            "/v1/customers",
        ] {
            assert_eq!(
                location(unsafe_target),
                "/_pcq/console/",
                "{unsafe_target:?}"
            );
        }
    }

    #[test]
    fn console_paths() {
        for path in [
            "/",
            "/_pcq/docs",
            "/_pcq/console",
            "/_pcq/console/",
            "/_pcq/console/review",
        ] {
            assert!(is_console_path(path), "{path}");
        }
        for path in [
            "/_pcq/consoleX",
            "/_pcq/admin/clock",
            "/v1/customers",
            "/_pcq/docs/x",
        ] {
            assert!(!is_console_path(path), "{path}");
        }
    }
}
