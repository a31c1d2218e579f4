//! Authentication: bearer JWTs to a [`Principal`].
//!
//! A token is accepted when its issuer (`iss`) is a trusted one — the development issuer, or an
//! external identity provider configured with its JWKS ([`jwks`]) — the key its `kid` names is
//! one that issuer publishes, the signature checks out with that key's own algorithm, its times
//! are valid, its audience is one the issuer may use and it names a partner tenant (`tid`).
//! pcq's own roles (`Pcq.Reviewer`, `Pcq.Admin`) are kept only from an issuer that may grant
//! them to the token's tenant: the development issuer, or an external one whose `role_tenants`
//! lists the tenant; otherwise they are dropped and the token is a partner's like any other.
//! Authorisation (which credential kind or role a route needs) happens in the HTTP extractors.

pub mod dev_issuer;
pub mod jwks;

use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, Validation};
use pcq_core::ApiFault;
use serde::Deserialize;
use sha2::Digest;
use uuid::Uuid;

pub use dev_issuer::{DevIssuer, TokenSpec};
pub use jwks::JwksIssuer;

/// Role that may decide vetting reviews.
pub const ROLE_REVIEWER: &str = "Pcq.Reviewer";
/// Role that may use the sandbox controls.
pub const ROLE_ADMIN: &str = "Pcq.Admin";
/// pcq's own roles, which only some issuers may grant.
const PCQ_ROLES: [&str; 2] = [ROLE_REVIEWER, ROLE_ADMIN];

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
    /// Application roles (`roles`); pcq's own roles only if the issuer may grant them to the
    /// tenant.
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

    /// Whether the caller holds `Pcq.Admin`.
    pub fn is_admin(&self) -> bool {
        self.has_role(ROLE_ADMIN)
    }

    /// Whether the caller may review: `Pcq.Reviewer`, or `Pcq.Admin`, which includes it.
    pub fn is_reviewer(&self) -> bool {
        self.has_role(ROLE_REVIEWER) || self.is_admin()
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
    verified: VerifiedTokens,
}

/// Most verified tokens remembered.
const MAX_VERIFIED_TOKENS: usize = 16_384;

/// Tokens verified before, by the SHA-256 of their text, with what they proved and until when
/// (`exp` plus the issuer's leeway, in Unix seconds). A client sends the same token with every
/// request until it expires, so the signature is checked once per token rather than once per
/// request. Only fully verified tokens are remembered; a token is never served from here after
/// its expiry.
#[derive(Default)]
struct VerifiedTokens {
    entries: std::sync::RwLock<std::collections::HashMap<[u8; 32], (Principal, i64)>>,
    /// Signature verifications performed (for tests and diagnostics).
    verifications: std::sync::atomic::AtomicU64,
}

impl VerifiedTokens {
    fn get(&self, digest: &[u8; 32], now: i64) -> Option<Principal> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        match entries.get(digest) {
            Some((principal, until)) if now < *until => Some(principal.clone()),
            _ => None,
        }
    }

    fn insert(&self, digest: [u8; 32], principal: Principal, until: i64, now: i64) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_VERIFIED_TOKENS {
            entries.retain(|_, (_, until)| now < *until);
            if entries.len() >= MAX_VERIFIED_TOKENS {
                entries.clear();
            }
        }
        entries.insert(digest, (principal, until));
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
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
    exp: Option<i64>,
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
            verified: VerifiedTokens::default(),
        }
    }

    /// The external identity providers.
    pub fn external_issuers(&self) -> &[Arc<JwksIssuer>] {
        &self.external
    }

    /// How many token signatures were verified so far (tokens seen before are not verified
    /// again until they expire).
    pub fn verifications(&self) -> u64 {
        self.verified
            .verifications
            .load(std::sync::atomic::Ordering::Relaxed)
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
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let now = unix_now();
        if let Some(principal) = self.verified.get(&digest, now) {
            return Ok(principal);
        }
        let (principal, until) = self.verify(token).await?;
        self.verified.insert(digest, principal.clone(), until, now);
        Ok(principal)
    }

    /// Verifies a bare token (as pasted into the web console, which keeps what it proves and
    /// never the token): the principal it proves, and until when (Unix seconds) it does.
    pub async fn verify_token(&self, token: &str) -> Result<(Principal, i64), ApiFault> {
        let token = token.trim();
        if token.is_empty() {
            return Err(ApiFault::token_missing());
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(ApiFault::access_denied("the token is too long"));
        }
        self.verify(token).await
    }

    /// Verifies a token: the principal it proves, and until when (Unix seconds) it does.
    async fn verify(&self, token: &str) -> Result<(Principal, i64), ApiFault> {
        self.verified
            .verifications
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
        // An external issuer grants pcq's roles only to the tenants configured for it.
        let role_grantor = match &signer {
            Signer::Dev(_) => None,
            Signer::External(issuer) => Some(*issuer),
        };
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
                let found = issuer.key(kid).map_err(|_| {
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
        // `exp` is required and was checked; the leeway extends it as it did above.
        let until = claims
            .exp
            .unwrap_or(0)
            .saturating_add(i64::try_from(leeway).unwrap_or(0));
        let mut roles = claims.roles.unwrap_or_default();
        if let Some(issuer) = role_grantor
            && !issuer.grants_roles_to(tenant_id)
        {
            drop_pcq_roles(&mut roles, issuer.configured_issuer());
        }
        let principal = Principal {
            tenant_id,
            kind: if delegated {
                CredentialKind::AppUser
            } else {
                CredentialKind::AppOnly
            },
            roles,
            wids: claims.wids.unwrap_or_default(),
            app_id: claims.appid.or(claims.azp),
            upn: if delegated { upn } else { None },
        };
        Ok((principal, until))
    }
}

/// Removes pcq's own roles from `roles`, which a token of `issuer` (as configured) may not carry
/// for its tenant. The token stays valid: its caller is a partner without those roles.
fn drop_pcq_roles(roles: &mut Vec<String>, issuer: &str) {
    for role in PCQ_ROLES {
        let before = roles.len();
        roles.retain(|held| !held.eq_ignore_ascii_case(role));
        if roles.len() != before {
            // Nothing of the token is logged: the role is pcq's name, the issuer as configured.
            tracing::debug!(
                role,
                issuer,
                "a role in a token was ignored: its issuer may not grant it to the token's \
                 tenant (see role_tenants of the issuer)"
            );
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    const AUD: &str = "https://api.partnercenter.microsoft.com";

    fn spec(ttl_seconds: i64) -> TokenSpec {
        TokenSpec {
            tenant: Uuid::new_v4(),
            user: Some("ana@contoso.onmicrosoft.com".into()),
            roles: vec![],
            wids: vec![],
            audience: AUD.into(),
            ttl_seconds,
        }
    }

    fn digest(token: &str) -> [u8; 32] {
        sha2::Sha256::digest(token.as_bytes()).into()
    }

    #[tokio::test]
    async fn a_token_is_verified_once_until_it_expires() {
        let issuer = Arc::new(DevIssuer::ephemeral().unwrap());
        let auth = Authenticator::new(AUD, Some(issuer.clone()), vec![]);
        let token = issuer.mint(&spec(600)).unwrap();
        let header = format!("Bearer {token}");
        let first = auth.authenticate(Some(&header)).await.unwrap();
        let again = auth.authenticate(Some(&header)).await.unwrap();
        assert_eq!(first, again);
        assert_eq!(auth.verifications(), 1);
        let other = issuer.mint(&spec(600)).unwrap();
        auth.authenticate(Some(&format!("Bearer {other}")))
            .await
            .unwrap();
        assert_eq!(auth.verifications(), 2);

        // Failures are not remembered: each is verified (and refused) again.
        let expired = format!("Bearer {}", issuer.mint(&spec(-60)).unwrap());
        for n in 3..5 {
            assert_eq!(
                auth.authenticate(Some(&expired)).await.unwrap_err().status,
                401
            );
            assert_eq!(auth.verifications(), n);
        }
    }

    #[tokio::test]
    async fn a_remembered_token_is_not_served_past_its_expiry() {
        let issuer = Arc::new(DevIssuer::ephemeral().unwrap());
        let auth = Authenticator::new(AUD, Some(issuer.clone()), vec![]);
        // A token that has expired, remembered as valid until a moment that has passed too.
        let token = issuer.mint(&spec(-60)).unwrap();
        let principal = Principal {
            tenant_id: Uuid::new_v4(),
            kind: CredentialKind::AppUser,
            roles: vec![],
            wids: vec![],
            app_id: None,
            upn: None,
        };
        let now = unix_now();
        auth.verified
            .insert(digest(&token), principal.clone(), now - 1, now);
        let header = format!("Bearer {token}");
        let refused = auth.authenticate(Some(&header)).await.unwrap_err();
        assert!(refused.description.contains("expired"), "{refused:?}");
        assert_eq!(auth.verifications(), 1);
        // While the remembered moment lasts, the entry is what answers.
        auth.verified
            .insert(digest(&token), principal.clone(), now + 60, now);
        assert_eq!(auth.authenticate(Some(&header)).await.unwrap(), principal);
        assert_eq!(auth.verifications(), 1);
    }

    #[test]
    fn the_memory_of_tokens_is_bounded() {
        let cache = VerifiedTokens::default();
        let principal = Principal {
            tenant_id: Uuid::nil(),
            kind: CredentialKind::AppOnly,
            roles: vec![],
            wids: vec![],
            app_id: None,
            upn: None,
        };
        for n in 0..(MAX_VERIFIED_TOKENS as u32 + 10) {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&n.to_le_bytes());
            cache.insert(key, principal.clone(), 100, 0);
        }
        assert!(cache.entries.read().unwrap().len() <= MAX_VERIFIED_TOKENS);
    }
}
