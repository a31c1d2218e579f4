//! Authentication: bearer JWTs to a [`Principal`].
//!
//! A token is accepted when its signing key belongs to a trusted issuer (today the development
//! issuer; external issuers plug in beside it as further [`Issuer`]s), its signature and times
//! check out, its audience is the configured one and it names a partner tenant (`tid`).
//! Authorisation (which credential kind or role a route needs) happens in the HTTP extractors.

pub mod dev_issuer;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use pcq_core::ApiFault;
use serde::Deserialize;
use uuid::Uuid;

pub use dev_issuer::{DevIssuer, TokenSpec};

/// Role that may decide vetting reviews.
pub const ROLE_REVIEWER: &str = "Pcq.Reviewer";
/// Role that may use the sandbox controls.
pub const ROLE_ADMIN: &str = "Pcq.Admin";

/// Longest accepted token, in bytes.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// How the caller signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A user through an application (delegated; App+User).
    AppUser,
    /// An application on its own (App-only).
    AppOnly,
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The partner tenant (`tid`).
    pub tenant_id: Uuid,
    /// App+User or App-only.
    pub kind: CredentialKind,
    /// Application roles (`roles`).
    pub roles: Vec<String>,
    /// Directory role template ids (`wids`).
    pub wids: Vec<String>,
    /// The client application (`appid` or `azp`).
    pub app_id: Option<String>,
    /// The user principal name of a delegated token.
    pub upn: Option<String>,
}

impl Principal {
    /// Whether the token carries the application role `role` (case-insensitive).
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.eq_ignore_ascii_case(role))
    }
}

/// A trusted token issuer: its identifier and its verification keys by `kid`.
pub trait Issuer: Send + Sync {
    /// The `iss` value its tokens carry.
    fn issuer(&self) -> &str;
    /// The key and algorithm for a `kid`, if the issuer has it.
    fn key(&self, kid: &str) -> Option<(&DecodingKey, Algorithm)>;
}

/// Verifies bearer tokens against the trusted issuers.
pub struct Authenticator {
    audience: String,
    issuers: Vec<Box<dyn Issuer>>,
}

/// The claims pcq reads. Entra ID access tokens use the same names.
#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    tid: Option<String>,
    #[serde(default)]
    scp: Option<String>,
    #[serde(default)]
    roles: Option<Vec<String>>,
    #[serde(default)]
    wids: Option<Vec<String>>,
    #[serde(default)]
    idtyp: Option<String>,
    #[serde(default)]
    upn: Option<String>,
    #[serde(default)]
    unique_name: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(default)]
    appid: Option<String>,
    #[serde(default)]
    azp: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn values(&self) -> Vec<&str> {
        match self {
            Audience::One(a) => vec![a.as_str()],
            Audience::Many(all) => all.iter().map(String::as_str).collect(),
        }
    }
}

fn same_audience(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

impl Authenticator {
    /// An authenticator for `audience` trusting `issuers`.
    pub fn new(audience: impl Into<String>, issuers: Vec<Box<dyn Issuer>>) -> Self {
        Authenticator {
            audience: audience.into(),
            issuers,
        }
    }

    /// The audience tokens must carry.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Verifies the value of an `Authorization` header.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, ApiFault> {
        let header = authorization
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .ok_or_else(ApiFault::token_missing)?;
        if header.eq_ignore_ascii_case("bearer") {
            return Err(ApiFault::token_missing());
        }
        let token = match header.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            _ => {
                return Err(ApiFault::invalid_authorization_header(
                    "the Authorization header must have the form 'Bearer <token>'",
                ));
            }
        };
        if token.is_empty() {
            return Err(ApiFault::token_missing());
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(ApiFault::access_denied("the token is too long"));
        }

        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| ApiFault::access_denied("the token is not a well-formed JWT"))?;
        let kid = header
            .kid
            .as_deref()
            .ok_or_else(|| ApiFault::access_denied("the token has no key id (kid)"))?;
        let (issuer, key, algorithm) = self
            .issuers
            .iter()
            .find_map(|i| i.key(kid).map(|(k, a)| (i, k, a)))
            .ok_or_else(|| {
                ApiFault::access_denied("the token was signed with a key pcq does not trust")
            })?;

        let mut validation = Validation::new(algorithm);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_issuer(&[issuer.issuer()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|e| ApiFault::access_denied(describe_jwt_error(e.kind())))?
            .claims;

        let audiences = claims
            .aud
            .as_ref()
            .map(Audience::values)
            .unwrap_or_default();
        if !audiences.iter().any(|a| same_audience(a, &self.audience)) {
            return Err(ApiFault::invalid_audience(
                &audiences.join(" "),
                &self.audience,
            ));
        }

        let tenant_id = claims
            .tid
            .as_deref()
            .and_then(pcq_core::ids::parse_guid)
            .ok_or_else(|| {
                ApiFault::access_denied("the token has no partner tenant id (tid) claim")
            })?;

        let delegated = claims.idtyp.as_deref() != Some("app")
            && claims.scp.as_deref().is_some_and(|s| !s.trim().is_empty());
        let upn = claims
            .upn
            .or(claims.unique_name)
            .or(claims.preferred_username);
        Ok(Principal {
            tenant_id,
            kind: if delegated {
                CredentialKind::AppUser
            } else {
                CredentialKind::AppOnly
            },
            roles: claims.roles.unwrap_or_default(),
            wids: claims.wids.unwrap_or_default(),
            app_id: claims.appid.or(claims.azp),
            upn: if delegated { upn } else { None },
        })
    }
}

fn describe_jwt_error(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::InvalidSignature => "the token's signature is not valid".to_owned(),
        ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
        ErrorKind::ImmatureSignature => {
            "the token is not valid yet (nbf is in the future)".to_owned()
        }
        ErrorKind::InvalidIssuer => "the token's issuer (iss) is not trusted".to_owned(),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            "the token's signing algorithm is not accepted for its key".to_owned()
        }
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no {claim} claim"),
        ErrorKind::InvalidClaimFormat(claim) => format!("the token's {claim} claim is malformed"),
        _ => "the token is not a well-formed JWT".to_owned(),
    }
}

impl<T: Issuer + ?Sized> Issuer for std::sync::Arc<T> {
    fn issuer(&self) -> &str {
        (**self).issuer()
    }

    fn key(&self, kid: &str) -> Option<(&DecodingKey, Algorithm)> {
        (**self).key(kid)
    }
}
