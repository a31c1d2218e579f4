//! Authentication: bearer JWTs to a [`Principal`].
//!
//! A token is accepted when its issuer (`iss`) is a trusted one — the development issuer, or an
//! external identity provider configured with its JWKS ([`jwks`]) — the key its `kid` names is
//! one that issuer publishes, the signature checks out with that key's own algorithm, its times
//! are valid, its audience is one the issuer may use and it names a partner tenant (`tid`).
//! Authorisation (which credential kind or role a route needs) happens in the HTTP extractors.

pub mod dev_issuer;
pub mod jwks;

use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, Validation};
use pcq_core::ApiFault;
use serde::Deserialize;
use uuid::Uuid;

pub use dev_issuer::{DevIssuer, TokenSpec};
pub use jwks::JwksIssuer;

/// Role that may decide vetting reviews.
pub const ROLE_REVIEWER: &str = "Pcq.Reviewer";
/// Role that may use the sandbox controls.
pub const ROLE_ADMIN: &str = "Pcq.Admin";

/// Template id of the Directory Readers directory role, a GDAP role that allows GCC requests.
pub const DIRECTORY_READERS: &str = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b";

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

    /// Whether the token carries one of `accepted`, a list of directory role template ids
    /// (matched against `wids`) and role names (matched against `roles`), case-insensitively.
    pub fn has_any_directory_role(&self, accepted: &[String]) -> bool {
        self.wids.iter().chain(&self.roles).any(|held| {
            accepted
                .iter()
                .any(|a| a.trim().eq_ignore_ascii_case(held.trim()))
        })
    }
}

/// Verifies bearer tokens against the trusted issuers: the development issuer (when it is on)
/// and the configured external identity providers.
pub struct Authenticator {
    audience: String,
    dev: Option<Arc<DevIssuer>>,
    external: Vec<Arc<JwksIssuer>>,
}

/// The claims read before the signature is checked, to choose the issuer whose key checks it.
/// Nothing else is taken from an unverified token.
#[derive(Debug, Deserialize)]
struct Unverified {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    tid: Option<serde_json::Value>,
}

/// The issuer that signed a token, with what it accepts.
enum Signer<'a> {
    Dev(&'a DevIssuer),
    External(&'a JwksIssuer),
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
    /// An authenticator for `audience` trusting the development issuer `dev` (if any) and the
    /// external identity providers `external`.
    pub fn new(
        audience: impl Into<String>,
        dev: Option<Arc<DevIssuer>>,
        external: Vec<Arc<JwksIssuer>>,
    ) -> Self {
        Authenticator {
            audience: audience.into(),
            dev,
            external,
        }
    }

    /// The external identity providers.
    pub fn external_issuers(&self) -> &[Arc<JwksIssuer>] {
        &self.external
    }

    /// The trusted issuer a token claiming `iss` (and `tid`) must be signed by.
    fn signer(&self, iss: &str, tid: Option<&str>) -> Option<Signer<'_>> {
        if iss == dev_issuer::DEV_ISSUER {
            return self.dev.as_deref().map(Signer::Dev);
        }
        self.external
            .iter()
            .find(|i| i.matches(iss, tid))
            .map(|i| Signer::External(i))
    }

    /// The audience tokens must carry.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Verifies the value of an `Authorization` header.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, ApiFault> {
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
        let unverified: Unverified = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|_| ApiFault::access_denied("the token is not a well-formed JWT"))?;
        let iss = unverified
            .iss
            .ok_or_else(|| ApiFault::access_denied("the token has no iss claim"))?;
        let tid = unverified.tid.as_ref().and_then(serde_json::Value::as_str);

        let signer = self.signer(&iss, tid).ok_or_else(|| {
            ApiFault::access_denied(format!(
                "the token's issuer (iss) {} is not one pcq trusts",
                shown(&iss)
            ))
        })?;
        let (key, algorithm, leeway, audiences) = match signer {
            Signer::Dev(dev) => {
                let (key, algorithm) = dev.verification_key(kid).ok_or_else(|| {
                    ApiFault::access_denied(
                        "the token was signed with a development key pcq does not have \
                         (was it minted with another data directory or database?)",
                    )
                })?;
                (
                    KeyRef::Borrowed(key),
                    algorithm,
                    0,
                    std::slice::from_ref(&self.audience),
                )
            }
            Signer::External(issuer) => {
                let found = issuer.key(kid).await.map_err(|_| {
                    ApiFault::access_denied(format!(
                        "the token was signed with a key (kid {}) that its issuer does not publish",
                        shown(kid)
                    ))
                })?;
                (
                    KeyRef::Shared(found.key),
                    found.algorithm,
                    issuer.leeway_seconds(),
                    issuer.audiences(),
                )
            }
        };

        // The algorithm comes from the key, never from the token: a token whose header names
        // another one (`none`, HMAC over a public key, ...) fails here.
        let mut validation = Validation::new(algorithm);
        validation.leeway = leeway;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_issuer(&[iss.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<Claims>(token, key.get(), &validation)
            .map_err(|e| ApiFault::access_denied(describe_jwt_error(e.kind())))?
            .claims;

        let token_audiences = claims
            .aud
            .as_ref()
            .map(Audience::values)
            .unwrap_or_default();
        if !token_audiences
            .iter()
            .any(|a| audiences.iter().any(|want| same_audience(a, want)))
        {
            return Err(ApiFault::invalid_audience(
                &token_audiences.join(" "),
                &audiences.join(" "),
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

/// A verification key owned by the development issuer or shared from a JWKS cache.
enum KeyRef<'a> {
    Borrowed(&'a DecodingKey),
    Shared(Arc<DecodingKey>),
}

impl KeyRef<'_> {
    fn get(&self) -> &DecodingKey {
        match self {
            KeyRef::Borrowed(key) => key,
            KeyRef::Shared(key) => key,
        }
    }
}

/// A value from an unverified token, quoted and cut short for an error description.
fn shown(value: &str) -> String {
    const MAX: usize = 120;
    let mut cut: String = value
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX)
        .collect();
    if value.chars().count() > MAX {
        cut.push('…');
    }
    format!("'{cut}'")
}
