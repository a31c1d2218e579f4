//! Console sessions: signing in with a token pcq trusts, the session cookie, CSRF protection.
//!
//! A sign-in validates the token with the API's own validator and keeps what it proves (the
//! partner tenant, the user, the roles), never the token, under a random session id: 32 bytes
//! from the operating system, base64url. The cookie holds only that id (`HttpOnly`,
//! `SameSite=Strict`, `Path=/_pcq/console`, `Secure` when pcq's public URL is https) and lasts
//! as long as the token would have; the session ends then, or at sign-out.
//!
//! Sessions live in the memory of the node that signed the user in: several nodes behind a load
//! balancer need sticky sessions for the console (`docs/console.md`).
//!
//! Every state-changing request carries the session's CSRF token (a hidden form field) and must
//! not come from another site (`Origin`, `Sec-Fetch-Site`); the sign-in, which has no session
//! yet, is held to the second rule.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use maud::{Markup, html};

use super::{BASE, Console, error_page, html_response, page, see_other};
use crate::auth::{DIRECTORY_READERS, Principal, ROLE_ADMIN, ROLE_REVIEWER, TokenSpec};
use crate::serve::ConnectionHandle;

/// The session cookie's name.
pub const COOKIE: &str = "pcq_console";

/// Most sessions a node keeps; past it, those closest to their end go first.
const MAX_SESSIONS: usize = 10_000;

/// How long the development sign-in's tokens last.
const DEV_TOKEN_SECONDS: i64 = 8 * 3600;

/// A signed-in user.
#[derive(Debug)]
pub struct Session {
    /// The session id (the cookie's value).
    pub id: String,
    /// Who signed in, as the token proved it.
    pub principal: Principal,
    /// When the session ends (the token's expiry, Unix seconds).
    pub expires_at: i64,
    /// The token every form of this session carries.
    pub csrf: String,
}

impl Session {
    /// The user (or application) and partner, in words.
    pub fn who(&self) -> String {
        let p = &self.principal;
        let name = p
            .upn
            .clone()
            .or_else(|| p.app_id.as_ref().map(|a| format!("application {a}")))
            .unwrap_or_else(|| "an unnamed caller".to_owned());
        let roles: Vec<&str> = [ROLE_ADMIN, ROLE_REVIEWER]
            .into_iter()
            .filter(|r| p.has_role(r))
            .collect();
        if roles.is_empty() {
            name
        } else {
            format!("{name} ({})", roles.join(", "))
        }
    }
}

/// The sessions of this node, by id.
#[derive(Default)]
pub struct Sessions {
    by_id: RwLock<HashMap<String, Arc<Session>>>,
}

/// Unix seconds now (tokens' `exp` is on the system's clock, not the sandbox clock).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn random_id() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

impl Sessions {
    /// Starts a session for `principal` until `expires_at`.
    pub fn create(
        &self,
        principal: Principal,
        expires_at: i64,
        now: i64,
    ) -> Result<Arc<Session>, getrandom::Error> {
        let session = Arc::new(Session {
            id: random_id()?,
            principal,
            expires_at,
            csrf: random_id()?,
        });
        let mut all = self.by_id.write().unwrap_or_else(|p| p.into_inner());
        if all.len() >= MAX_SESSIONS {
            all.retain(|_, s| s.expires_at > now);
            while all.len() >= MAX_SESSIONS {
                let Some(first) = all
                    .values()
                    .min_by_key(|s| s.expires_at)
                    .map(|s| s.id.clone())
                else {
                    break;
                };
                all.remove(&first);
            }
        }
        all.insert(session.id.clone(), session.clone());
        Ok(session)
    }

    /// The session `id`, unless it ended (an ended one is forgotten).
    pub fn get(&self, id: &str, now: i64) -> Option<Arc<Session>> {
        let found = self
            .by_id
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()?;
        if found.expires_at > now {
            return Some(found);
        }
        self.remove(id);
        None
    }

    /// Ends session `id`.
    pub fn remove(&self, id: &str) {
        self.by_id
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

fn session_of(console: &Console, headers: &HeaderMap) -> Option<Arc<Session>> {
    console.sessions.get(cookie_value(headers)?, unix_now())
}

/// Whether pcq is reached over HTTPS (judged by its configured public URL; pcq trusts no
/// forwarding header).
fn secure(console: &Console) -> bool {
    console.app.config.public_url.starts_with("https://")
}

fn set_cookie(console: &Console, value: &str, max_age: i64) -> HeaderValue {
    let secure = if secure(console) { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path={BASE}; Max-Age={}{secure}",
        max_age.max(0)
    );
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The session of a request, if it has one.
pub struct MaybeSignedIn(pub Option<Arc<Session>>);

impl FromRequestParts<Console> for MaybeSignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Response> {
        Ok(MaybeSignedIn(session_of(console, &parts.headers)))
    }
}

/// The session of a request; without one, the answer is the way to the sign-in page.
pub struct SignedIn(pub Arc<Session>);

impl FromRequestParts<Console> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Response> {
        session_of(console, &parts.headers)
            .map(SignedIn)
            .ok_or_else(|| see_other(&format!("{BASE}/")))
    }
}

/// Whether a request comes from another site: its browser says so (`Sec-Fetch-Site`), or its
/// `Origin` is not pcq's own.
pub fn from_another_site(parts: &Parts) -> bool {
    let headers = &parts.headers;
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        let site = site.trim().to_ascii_lowercase();
        if site != "same-origin" && site != "none" {
            return true;
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let Ok(origin) = origin.to_str() else {
        return true;
    };
    let Some(authority) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        // `null` (a sandboxed frame, a redirect across sites) and anything else.
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()));
    !host.is_some_and(|host| host.eq_ignore_ascii_case(authority.trim_end_matches('/')))
}

fn cross_site_refused() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        None,
        "This form was sent from another site; pcq's console takes forms from its own pages \
         only.",
    )
}

/// The fields of a form body (`application/x-www-form-urlencoded`).
pub struct FormFields(pub Vec<(String, String)>);

impl FromRequest<Console> for FormFields {
    type Rejection = Response;

    async fn from_request(request: Request, console: &Console) -> Result<Self, Response> {
        match axum::Form::<Vec<(String, String)>>::from_request(request, console).await {
            Ok(axum::Form(fields)) => Ok(FormFields(fields)),
            Err(rejection) => Err(error_page(
                rejection.status(),
                None,
                &format!("The form could not be read: {}.", rejection.body_text()),
            )),
        }
    }
}

/// A state-changing request of a signed-in user: from pcq's own pages (not another site), with
/// the session's CSRF token, and its form's fields.
pub struct Guarded {
    /// The session.
    pub session: Arc<Session>,
    /// The form's fields (the CSRF token among them).
    pub form: Vec<(String, String)>,
}

fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl FromRequest<Console> for Guarded {
    type Rejection = Response;

    async fn from_request(request: Request, console: &Console) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        if from_another_site(&parts) {
            return Err(cross_site_refused());
        }
        let SignedIn(session) = SignedIn::from_request_parts(&mut parts, console).await?;
        let FormFields(form) =
            FormFields::from_request(Request::from_parts(parts, body), console).await?;
        let sent = super::field(&form, "csrf").unwrap_or("");
        if !same_token(sent, &session.csrf) {
            return Err(error_page(
                StatusCode::FORBIDDEN,
                Some(&session),
                "This form is missing the console's CSRF token, or carries an old one. Reload \
                 the page and send it again.",
            ));
        }
        Ok(Guarded { session, form })
    }
}

/// Whether the request came from this machine.
fn from_loopback(parts: &Parts) -> bool {
    parts
        .extensions
        .get::<ConnectionHandle>()
        .is_some_and(|c| c.peer().ip().to_canonical().is_loopback())
}

/// Whether the development sign-in is offered: the development issuer is on and the request
/// came from this machine.
fn dev_sign_in_offered(console: &Console, parts: &Parts) -> bool {
    console.app.dev_issuer.is_some() && from_loopback(parts)
}

fn sign_in_form(dev: bool, problem: Option<&str>) -> Markup {
    html! {
        @if let Some(problem) = problem {
            p.error role="alert" { (problem) }
        }
        p { "Sign in with a token pcq trusts: one that " code { "pcq token" } " minted, or an \
             access token of a configured identity provider. The console keeps who the token \
             names, never the token, until it expires." }
        form.card method="post" action={ (BASE) "/session" } {
            label for="token" { "Access token" }
            textarea #token name="token" rows="5" required autocomplete="off" spellcheck="false" {}
            button type="submit" { "Sign in" }
        }
        @if dev {
            section.card aria-labelledby="dev-heading" {
                h2 #dev-heading { "Development sign-in" }
                p { "pcq's development issuer is on and you are on this machine: sign in as one \
                     of these without a token." }
                form.buttons method="post" action={ (BASE) "/session/dev" } {
                    button type="submit" name="as" value="partner" { "Development partner" }
                    button type="submit" name="as" value="reviewer" { "Reviewer" }
                    button type="submit" name="as" value="admin" { "Admin" }
                }
            }
        }
    }
}

/// `GET /_pcq/console/`: the sign-in page, or where a signed-in user can go.
pub async fn home(
    State(console): State<Console>,
    MaybeSignedIn(session): MaybeSignedIn,
    parts: Parts,
) -> Response {
    let Some(session) = session else {
        let dev = dev_sign_in_offered(&console, &parts);
        return html_response(
            StatusCode::OK,
            page("Sign in", None, sign_in_form(dev, None)),
        );
    };
    let p = &session.principal;
    let body = html! {
        p { "Signed in as " strong { (session.who()) } " for partner " code { (p.tenant_id) } "." }
        ul.links {
            @if p.is_reviewer() {
                li { a href={ (BASE) "/review" } { "Review queue" } ": Education and GCC requests \
                    waiting for a decision; approve or deny them." }
            }
            li { a href={ (BASE) "/customers" } { "Customers" } ": your partner's customers, \
                their qualifications and validation codes." }
            @if p.is_admin() {
                li { a href={ (BASE) "/admin" } { "Sandbox" } ": the clock, the vetting policy, \
                    reset, injected faults and a summary of the metrics." }
                li { a href={ (BASE) "/admin/journal" } { "Request journal" } ": the requests \
                    this node served, live." }
                li { a href={ (BASE) "/admin/webhooks" } { "Webhooks" } ": registrations and \
                    every delivery with its attempts." }
            }
            li { a href="/_pcq/docs" { "API documentation" } }
        }
    };
    html_response(StatusCode::OK, page("pcq console", Some(&session), body))
}

fn signed_in(console: &Console, principal: Principal, until: i64) -> Response {
    let now = unix_now();
    let session = match console.sessions.create(principal, until, now) {
        Ok(session) => session,
        Err(e) => {
            tracing::error!(error = %e, "no randomness for a console session");
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                "pcq could not start a session; its log says why.",
            );
        }
    };
    let mut response = see_other(&format!("{BASE}/"));
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(console, &session.id, until - now),
    );
    response
}

fn sign_in_refused(console: &Console, parts: &Parts, status: StatusCode, why: &str) -> Response {
    let dev = dev_sign_in_offered(console, parts);
    html_response(status, page("Sign in", None, sign_in_form(dev, Some(why))))
}

/// `POST /_pcq/console/session`: signs in with the form's `token`, or the `Authorization:
/// Bearer` header of a script.
pub async fn sign_in(State(console): State<Console>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if from_another_site(&parts) {
        return cross_site_refused();
    }
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.trim()
                .split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, token)| token.trim().to_owned())
        });
    let token = match bearer {
        Some(token) => token,
        None => {
            let request = Request::from_parts(parts.clone(), body);
            match FormFields::from_request(request, &console).await {
                Ok(FormFields(form)) => super::field(&form, "token").unwrap_or("").to_owned(),
                Err(refused) => return refused,
            }
        }
    };
    if token.is_empty() {
        return sign_in_refused(
            &console,
            &parts,
            StatusCode::BAD_REQUEST,
            "Paste an access token to sign in.",
        );
    }
    match console.app.auth.verify_token(&token).await {
        Ok((principal, until)) => signed_in(&console, principal, until),
        Err(fault) => sign_in_refused(
            &console,
            &parts,
            StatusCode::UNAUTHORIZED,
            &format!("pcq does not accept this token: {}", fault.description),
        ),
    }
}

/// `POST /_pcq/console/session/dev`: signs in as the development partner, a reviewer or an
/// admin, with a token the development issuer mints (from this machine only).
pub async fn dev_sign_in(State(console): State<Console>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if from_another_site(&parts) {
        return cross_site_refused();
    }
    let Some(issuer) = console
        .app
        .dev_issuer
        .as_ref()
        .filter(|_| from_loopback(&parts))
    else {
        return error_page(
            StatusCode::FORBIDDEN,
            None,
            "The development sign-in is offered only while pcq's development issuer is on, to \
             a browser on pcq's own machine.",
        );
    };
    let form = match FormFields::from_request(Request::from_parts(parts, body), &console).await {
        Ok(FormFields(form)) => form,
        Err(refused) => return refused,
    };
    let (user, roles) = match super::field(&form, "as") {
        Some("partner") => ("dev.user@partner.onmicrosoft.com", vec![]),
        Some("reviewer") => (
            "dev.reviewer@partner.onmicrosoft.com",
            vec![ROLE_REVIEWER.to_owned()],
        ),
        Some("admin") => (
            "dev.admin@partner.onmicrosoft.com",
            vec![ROLE_ADMIN.to_owned()],
        ),
        _ => {
            return error_page(
                StatusCode::BAD_REQUEST,
                None,
                "Choose the development partner, a reviewer or an admin.",
            );
        }
    };
    let spec = TokenSpec {
        tenant: console.app.dev_partner,
        user: Some(user.to_owned()),
        roles,
        wids: vec![DIRECTORY_READERS.to_owned()],
        audience: console.app.auth.audience().to_owned(),
        ttl_seconds: DEV_TOKEN_SECONDS,
    };
    // The minted token goes through the same validation as a pasted one.
    let verified = match issuer.mint(&spec) {
        Ok(token) => console.app.auth.verify_token(&token).await,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "minting a development token");
            Err(pcq_core::ApiFault::unexpected())
        }
    };
    match verified {
        Ok((principal, until)) => signed_in(&console, principal, until),
        Err(fault) => super::fault_page(None, &fault),
    }
}

/// `POST /_pcq/console/session/delete`: signs out.
pub async fn sign_out(State(console): State<Console>, guarded: Guarded) -> Response {
    console.sessions.remove(&guarded.session.id);
    let mut response = see_other(&format!("{BASE}/"));
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&console, "", 0));
    response.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::CredentialKind;

    fn principal() -> Principal {
        Principal {
            tenant_id: uuid::Uuid::new_v4(),
            kind: CredentialKind::AppUser,
            roles: vec![],
            wids: vec![],
            app_id: None,
            upn: Some("someone@example.com".into()),
        }
    }

    #[test]
    fn a_session_ends_when_its_token_expires() {
        let sessions = Sessions::default();
        let s = sessions.create(principal(), 1_000, 900).unwrap();
        assert_eq!(s.id.len(), 43, "32 bytes, base64url");
        assert_ne!(s.id, s.csrf);
        assert!(sessions.get(&s.id, 999).is_some());
        assert!(sessions.get(&s.id, 1_000).is_none());
        // Forgotten once ended.
        assert!(sessions.get(&s.id, 0).is_none());
    }

    #[test]
    fn sign_out_ends_a_session() {
        let sessions = Sessions::default();
        let s = sessions.create(principal(), 1_000, 0).unwrap();
        sessions.remove(&s.id);
        assert!(sessions.get(&s.id, 0).is_none());
    }

    #[test]
    fn csrf_tokens_compare_whole() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "ab"));
        assert!(!same_token("", "a"));
    }
}
