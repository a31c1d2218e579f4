//! External identity providers: an issuer whose signing keys are published as a JWKS (a URL or a
//! file), cached by key id and fetched again on a key rotation.
//!
//! The keys are fetched at start, again when a token names a key id the cache lacks, and again
//! when the copy is older than the configured maximum age; never more often than the minimum
//! refresh interval per issuer, so a flood of tokens with made-up key ids costs the provider at
//! most one request per interval. A fetch that fails keeps the keys the cache had.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use tokio::time::Instant;
use uuid::Uuid;

use crate::config::IssuerConfig;

/// The placeholder in a configured issuer that stands for the token's `tid`.
const TENANT_PLACEHOLDER: &str = "{tenantid}";
/// Largest JWKS document accepted, in bytes.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// How long a JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// A verification key and the one algorithm it is used with.
#[derive(Clone)]
pub struct VerificationKey {
    /// The key.
    pub key: Arc<DecodingKey>,
    /// RS256 for RSA keys, ES256 for P-256 keys.
    pub algorithm: Algorithm,
}

/// Where an issuer's JWKS comes from.
#[derive(Debug, Clone)]
enum Source {
    Url(String),
    File(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Url(url) => f.write_str(url),
            Source::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// What the cache holds.
struct Cached {
    keys: HashMap<String, VerificationKey>,
    /// When the keys were last fetched successfully.
    fetched: Option<Instant>,
}

/// An external identity provider.
pub struct JwksIssuer {
    /// The configured `iss`, possibly with `{tenantid}`.
    issuer: String,
    audiences: Vec<String>,
    leeway_seconds: u64,
    /// The tenants whose tokens from this issuer may carry pcq's roles.
    role_tenants: HashSet<Uuid>,
    source: Source,
    http: reqwest::Client,
    cached: RwLock<Cached>,
    /// When a fetch was last started (successful or not); held across a fetch, so concurrent
    /// requests wait for one fetch rather than starting their own.
    last_attempt: tokio::sync::Mutex<Option<Instant>>,
    min_refresh: Duration,
    max_age: Duration,
    /// How many fetches were started (for tests and diagnostics).
    fetches: std::sync::atomic::AtomicU64,
}

/// Why an issuer has no key for a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLookup {
    /// The issuer publishes no key with this id (after a refresh, if one was allowed).
    Unknown,
}

impl JwksIssuer {
    /// An issuer as configured; its keys are loaded by [`JwksIssuer::load`].
    pub fn new(
        config: &IssuerConfig,
        default_audience: &str,
        min_refresh: Duration,
        max_age: Duration,
    ) -> anyhow::Result<Self> {
        let source = if config.jwks.starts_with("https://") || config.jwks.starts_with("http://") {
            Source::Url(config.jwks.clone())
        } else {
            Source::File(PathBuf::from(&config.jwks))
        };
        crate::install_tls_provider();
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("pcq/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let role_tenants = config
            .role_tenants
            .iter()
            .map(|tenant| {
                pcq_core::ids::parse_guid(tenant).ok_or_else(|| {
                    anyhow::anyhow!("role_tenants: {tenant:?} is not a tenant id (a GUID)")
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let audiences = if config.audiences.is_empty() {
            vec![default_audience.to_owned()]
        } else {
            config.audiences.clone()
        };
        Ok(JwksIssuer {
            issuer: config.issuer.clone(),
            audiences,
            leeway_seconds: config.leeway_seconds,
            role_tenants,
            source,
            http,
            cached: RwLock::new(Cached {
                keys: HashMap::new(),
                fetched: None,
            }),
            last_attempt: tokio::sync::Mutex::new(None),
            min_refresh,
            max_age,
            fetches: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Loads the keys at start. A JWKS file that cannot be read or holds no usable key is an
    /// error (the configuration is wrong); a URL that cannot be fetched is logged, and fetched
    /// again when the first token of this issuer arrives.
    pub async fn load(&self) -> anyhow::Result<()> {
        let mut last_attempt = self.last_attempt.lock().await;
        *last_attempt = Some(Instant::now());
        match (self.fetch().await, &self.source) {
            (Ok(count), _) => {
                tracing::info!(issuer = %self.issuer, jwks = %self.source, keys = count, "identity provider keys loaded");
                Ok(())
            }
            (Err(e), Source::File(_)) => Err(e),
            (Err(e), Source::Url(_)) => {
                tracing::warn!(issuer = %self.issuer, jwks = %self.source, error = %format!("{e:#}"),
                    "could not fetch the identity provider's keys; its tokens are refused until a later fetch succeeds");
                Ok(())
            }
        }
    }

    /// The configured issuer, as written (with `{tenantid}` if it has one).
    pub fn configured_issuer(&self) -> &str {
        &self.issuer
    }

    /// The audiences accepted from this issuer.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub fn leeway_seconds(&self) -> u64 {
        self.leeway_seconds
    }

    /// Whether this issuer's tokens for `tenant` may carry pcq's roles (`Pcq.Reviewer`,
    /// `Pcq.Admin`): only for the tenants configured in its `role_tenants`.
    pub fn grants_roles_to(&self, tenant: Uuid) -> bool {
        self.role_tenants.contains(&tenant)
    }

    /// How many fetches of the JWKS were started so far.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether a token whose (unverified) `iss` and `tid` are these claims this issuer.
    pub fn matches(&self, iss: &str, tid: Option<&str>) -> bool {
        match self.issuer.split_once(TENANT_PLACEHOLDER) {
            None => self.issuer == iss,
            Some((before, after)) => {
                let Some(tid) = tid else { return false };
                iss.strip_prefix(before)
                    .and_then(|rest| rest.strip_suffix(after))
                    .is_some_and(|middle| middle == tid && !tid.is_empty())
            }
        }
    }

    /// The key with id `kid`, fetching the JWKS again when the key is unknown or the copy is
    /// old, within the refresh limits.
    pub async fn key(&self, kid: &str) -> Result<VerificationKey, KeyLookup> {
        let (found, stale) = self.cached_key(kid);
        if let (Some(key), false) = (&found, stale) {
            return Ok(key.clone());
        }
        self.refresh_if_allowed().await;
        match self.cached_key(kid) {
            (Some(key), _) => Ok(key),
            (None, _) => Err(KeyLookup::Unknown),
        }
    }

    /// The cached key, and whether the cache is older than its maximum age.
    fn cached_key(&self, kid: &str) -> (Option<VerificationKey>, bool) {
        let cached = self.cached.read().unwrap_or_else(|p| p.into_inner());
        let stale = cached.fetched.is_none_or(|at| at.elapsed() >= self.max_age);
        (cached.keys.get(kid).cloned(), stale)
    }

    /// Fetches the JWKS unless one was fetched (or tried) within the minimum interval.
    async fn refresh_if_allowed(&self) {
        let mut last_attempt = self.last_attempt.lock().await;
        if last_attempt.is_some_and(|at| at.elapsed() < self.min_refresh) {
            return;
        }
        *last_attempt = Some(Instant::now());
        match self.fetch().await {
            Ok(count) => {
                tracing::info!(issuer = %self.issuer, jwks = %self.source, keys = count, "identity provider keys refreshed");
            }
            Err(e) => {
                tracing::warn!(issuer = %self.issuer, jwks = %self.source, error = %format!("{e:#}"),
                    "could not refresh the identity provider's keys; keeping the ones it had");
            }
        }
    }

    /// Reads the JWKS and replaces the cached keys; returns how many keys are usable.
    async fn fetch(&self) -> anyhow::Result<usize> {
        use anyhow::Context;
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let body = match &self.source {
            Source::File(path) => tokio::fs::read(path)
                .await
                .with_context(|| format!("reading the JWKS file {}", path.display()))?,
            Source::Url(url) => {
                let response = self
                    .http
                    .get(url)
                    .send()
                    .await
                    .with_context(|| format!("fetching the JWKS {url}"))?;
                let status = response.status();
                anyhow::ensure!(status.is_success(), "the JWKS {url} answered {status}");
                let body = response
                    .bytes()
                    .await
                    .with_context(|| format!("reading the JWKS {url}"))?;
                body.to_vec()
            }
        };
        anyhow::ensure!(
            body.len() <= MAX_JWKS_BYTES,
            "the JWKS {} is larger than {MAX_JWKS_BYTES} bytes",
            self.source
        );
        let keys = parse_jwks(&body)
            .map_err(|e| anyhow::anyhow!("the JWKS {} is not valid: {e}", self.source))?;
        anyhow::ensure!(
            !keys.is_empty(),
            "the JWKS {} holds no RSA or P-256 signing key with a key id",
            self.source
        );
        let count = keys.len();
        let mut cached = self.cached.write().unwrap_or_else(|p| p.into_inner());
        cached.keys = keys;
        cached.fetched = Some(Instant::now());
        Ok(count)
    }
}

#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<serde_json::Value>,
}

/// The usable signing keys of a JWKS document by key id: RSA keys (RS256) and P-256 keys
/// (ES256) with a `kid`, not marked for encryption and not bound to another algorithm. Other
/// keys are skipped; a document that is not a JWKS is an error.
pub fn parse_jwks(body: &[u8]) -> Result<HashMap<String, VerificationKey>, String> {
    let document: JwksDocument = serde_json::from_slice(body)
        .map_err(|e| format!("expected a JSON object with a \"keys\" array ({e})"))?;
    let mut keys = HashMap::new();
    for value in document.keys {
        // A key of a type this library does not know is skipped, not fatal.
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        if let Some((kid, key)) = usable_key(&jwk) {
            keys.insert(kid, key);
        }
    }
    Ok(keys)
}

fn usable_key(jwk: &Jwk) -> Option<(String, VerificationKey)> {
    let kid = jwk.common.key_id.clone().filter(|k| !k.is_empty())?;
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
            if ec.curve == EllipticCurve::P256 =>
        {
            Algorithm::ES256
        }
        _ => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((
        kid,
        VerificationKey {
            key: Arc::new(key),
            algorithm,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(pattern: &str) -> JwksIssuer {
        let config = IssuerConfig {
            issuer: pattern.to_owned(),
            jwks: "/nonexistent/jwks.json".to_owned(),
            audiences: vec![],
            leeway_seconds: 60,
            role_tenants: vec![],
        };
        JwksIssuer::new(
            &config,
            "https://api.partnercenter.microsoft.com",
            Duration::from_secs(60),
            Duration::from_secs(3600),
        )
        .unwrap()
    }

    #[test]
    fn tenant_placeholders_match_the_tokens_own_tenant_only() {
        let entra = issuer("https://sts.windows.net/{tenantid}/");
        let tid = "6affab8f-68fe-4688-916b-a96207c95998";
        assert!(entra.matches(&format!("https://sts.windows.net/{tid}/"), Some(tid)));
        // Another tenant's issuer, a missing tid, a prefix trick.
        assert!(!entra.matches(
            "https://sts.windows.net/00000000-0000-0000-0000-000000000001/",
            Some(tid)
        ));
        assert!(!entra.matches(&format!("https://sts.windows.net/{tid}/"), None));
        assert!(!entra.matches(
            &format!("https://sts.windows.net.evil.example/{tid}/"),
            Some(tid)
        ));
        assert!(!entra.matches("https://sts.windows.net//", Some("")));
        let fixed = issuer("https://idp.example.com");
        assert!(fixed.matches("https://idp.example.com", Some(tid)));
        assert!(!fixed.matches("https://idp.example.com/", Some(tid)));
    }

    #[test]
    fn only_rsa_and_p256_signing_keys_with_a_kid_are_kept() {
        let body = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "rsa", "use": "sig", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"},
                {"kty": "RSA", "use": "sig", "n": "sXch", "e": "AQAB"},
                {"kty": "RSA", "kid": "enc", "use": "enc", "n": "sXch", "e": "AQAB"},
                {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": "sXch", "e": "AQAB"},
                {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
                {"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AA", "y": "AA"},
                {"kty": "weird", "kid": "x"}
            ]})
        .to_string();
        let keys = parse_jwks(body.as_bytes()).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), vec!["rsa"]);
        assert_eq!(keys["rsa"].algorithm, Algorithm::RS256);
        assert!(parse_jwks(b"[]").is_err());
        assert!(parse_jwks(b"{\"keys\": 1}").is_err());
    }
}
