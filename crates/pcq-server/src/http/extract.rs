//! Extractors whose rejections are Partner Center envelopes.

use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use bytes::Bytes;
use pcq_core::ApiFault;
use serde_json::Value;
use uuid::Uuid;

use super::context::RequestContext;
use crate::AppState;
use crate::auth::{CredentialKind, Principal, ROLE_ADMIN, ROLE_REVIEWER};
use crate::error::Error;

/// A JSON request body, parsed tolerantly, with its raw bytes (for idempotency fingerprints).
///
/// Bodies that are not strict JSON but that .NET's Newtonsoft reader accepts (trailing commas,
/// comments, single quotes; the create-customer documentation example has trailing commas) are
/// accepted too. An empty body is `null`.
pub struct JsonBody {
    /// The parsed body.
    pub value: Value,
    /// The body as received.
    pub raw: Bytes,
}

fn is_json_media_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence == "text/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl FromRequest<AppState> for JsonBody {
    type Rejection = Error;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(value) = request.headers().get(CONTENT_TYPE) {
            let text = value.to_str().unwrap_or("(not text)");
            if !is_json_media_type(text) {
                return Err(ApiFault::unsupported_media_type(text).into());
            }
        }
        let raw =
            Bytes::from_request(request, state)
                .await
                .map_err(|rejection| match rejection {
                    BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => {
                        ApiFault::payload_too_large(state.config.limits.max_body_bytes)
                    }
                    other => ApiFault::invalid_input(format!(
                        "The request body could not be read: {other}."
                    )),
                })?;
        super::limits::check_json_depth(&raw, state.config.limits.max_json_depth)?;
        Ok(JsonBody {
            value: parse_json(&raw)?,
            raw,
        })
    }
}

/// Parses a body: strict JSON first, then the lenient JSON5 superset; `null` when empty.
pub fn parse_json(raw: &[u8]) -> Result<Value, ApiFault> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    let strict = match serde_json::from_slice::<Value>(raw) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    let text = std::str::from_utf8(raw)
        .map_err(|_| ApiFault::invalid_input("The request body is not UTF-8 text."))?;
    // JSON5 reading recurses per nesting level; only try it on bodies of sane depth.
    if max_depth(raw) <= 64 {
        if let Ok(value) = json5::from_str::<Value>(text) {
            return Ok(value);
        }
    }
    Err(ApiFault::invalid_input(format!(
        "The request body is not valid JSON: {strict}."
    )))
}

fn max_depth(raw: &[u8]) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for b in raw {
        match b {
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// A partner tenant id given in a path or a query, or the 400 that says it is not one.
pub fn partner_tenant_id(raw: &str) -> Result<Uuid, ApiFault> {
    pcq_core::ids::parse_guid(raw).ok_or_else(|| {
        ApiFault::invalid_input(format!(
            "The partner tenant id '{}' is not a GUID.",
            raw.chars().take(80).collect::<String>()
        ))
    })
}

/// Query parameters, looked up case-insensitively, and the query string as received.
pub struct QueryParams {
    pairs: Vec<(String, String)>,
    raw: String,
}

impl QueryParams {
    /// The query string as received (without `?`).
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The `partner` parameter of the sandbox controls (`?partner=GUID`): the partner tenant
    /// the control is limited to, if any.
    pub fn partner(&self) -> Result<Option<Uuid>, ApiFault> {
        self.get("partner")
            .map(|value| partner_tenant_id(value).map_err(|f| f.with_param("field", "partner")))
            .transpose()
    }

    /// The first value of `name` in any letter case.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiFault::invalid_input(format!("The query string is invalid: {e}.")))?;
        Ok(QueryParams {
            pairs,
            raw: parts.uri.query().unwrap_or("").to_owned(),
        })
    }
}

/// The `{customer-tenant-id}` path segment, parsed (braces allowed; 900118 otherwise). Its
/// OpenAPI parameter is `params(CustomerId)`.
#[derive(utoipa::IntoParams)]
#[into_params(names("customer_tenant_id"), parameter_in = Path)]
pub struct CustomerId(
    /// The customer's tenant id (GUID; braces are accepted too)
    pub Uuid,
);

impl<S: Send + Sync> FromRequestParts<S> for CustomerId {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiFault::invalid_customer_id(parts.uri.path()))?;
        Ok(CustomerId(pcq_core::ids::parse_customer_id(&raw)?))
    }
}

/// The request's identifiers.
pub struct Ctx(pub RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .map(Ctx)
            .ok_or_else(|| Error::Fault(ApiFault::unexpected()))
    }
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, ApiFault> {
    let header = match parts.headers.get(AUTHORIZATION) {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| {
            ApiFault::invalid_authorization_header("the Authorization header is not visible ASCII")
        })?),
    };
    let principal = state.auth.authenticate(header).await?;
    // The request span (see `context`) carries the partner into every later log line.
    tracing::Span::current().record(
        "partner_tenant",
        tracing::field::display(principal.tenant_id),
    );
    if let Some(note) = parts.extensions.get::<super::context::PartnerNote>() {
        let _ = note.0.set(principal.tenant_id);
    }
    super::journal::note_caller(state, &parts.extensions, &principal);
    super::throttle::admit(parts, state, &principal)?;
    super::faults::after_authentication(parts, state, &principal).await?;
    Ok(principal)
}

/// Declares an extractor that authenticates the caller (401, then 429 when throttled, then an
/// injected fault scoped to the partner) and then
/// lets `refuse` name the fault (403) for a principal the route does not admit.
macro_rules! caller_extractor {
    ($(#[$doc:meta])* $name:ident, $refuse:expr) => {
        $(#[$doc])*
        pub struct $name(pub Principal);

        impl FromRequestParts<AppState> for $name {
            type Rejection = Error;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, Self::Rejection> {
                let principal = authenticate(parts, state).await?;
                let refuse: fn(&Principal) -> Option<ApiFault> = $refuse;
                match refuse(&principal) {
                    Some(fault) => Err(fault.into()),
                    None => Ok($name(principal)),
                }
            }
        }
    };
}

caller_extractor!(
    /// A caller with App+User or App-only credentials.
    Caller,
    |_| None
);

caller_extractor!(
    /// A caller with App+User (delegated) credentials; App-only tokens get 403.
    UserCaller,
    |p| (p.kind != CredentialKind::AppUser).then(ApiFault::app_only_not_allowed)
);

caller_extractor!(
    /// A caller holding the `Pcq.Admin` role.
    AdminCaller,
    |p| (!p.is_admin()).then(|| ApiFault::role_required(ROLE_ADMIN))
);

caller_extractor!(
    /// A caller holding the `Pcq.Reviewer` role (or `Pcq.Admin`, which includes it).
    ReviewerCaller,
    |p| (!p.is_reviewer()).then(|| ApiFault::role_required(ROLE_REVIEWER))
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lenient_bodies_parse() {
        let doc_example = br#"{ "CompanyProfile": { "Domain": "xyz.ccsctp.net", }, }"#;
        assert_eq!(
            parse_json(doc_example).unwrap()["CompanyProfile"]["Domain"],
            "xyz.ccsctp.net"
        );
        assert_eq!(parse_json(b"  ").unwrap(), Value::Null);
        assert_eq!(
            parse_json(b"{'qualification': 'Education'}").unwrap()["qualification"],
            "Education"
        );
        let fault = parse_json(b"{\"qualification\": ").unwrap_err();
        assert_eq!((fault.status, fault.code), (400, 800002));
        assert!(parse_json(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        assert!(parse_json(deep.as_bytes()).is_err());
        let deep_obj = "{\"a\":".repeat(10_000);
        assert!(parse_json(deep_obj.as_bytes()).is_err());
    }

    #[test]
    fn media_types() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "text/json",
            "Application/JSON",
            "application/problem+json",
        ] {
            assert!(is_json_media_type(ok), "{ok}");
        }
        for bad in [
            "application/x-www-form-urlencoded",
            "text/plain",
            "application/xml",
            "",
        ] {
            assert!(!is_json_media_type(bad), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn body_parsing_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_json(&raw);
        }

        #[test]
        fn body_parsing_of_json_like_text_never_panics(s in "[{}\\[\\]\",:'a-z0-9 /*\\\\-]{0,200}") {
            let _ = parse_json(s.as_bytes());
        }
    }
}
