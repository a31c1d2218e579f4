//! External identity providers: an issuer whose signing keys are published as a JWKS (a URL or a
//! file), cached by key id and refreshed in the background.
//!
//! A request never waits for the network: tokens are checked against the keys in hand. The keys
//! are fetched once at start, before pcq serves, and then by a task of their own
//! ([`JwksIssuer::keep_fresh`], which stops with the server): when the copy reaches its age
//! limit (the configured maximum age, or the provider's `Cache-Control: max-age` if shorter),
//! and soon after a token names a key id the cache lacks (a key rotation: that token is refused,
//! and a later one with the same key id succeeds once the new keys are in). Never more often
//! than the minimum refresh interval per issuer, so a flood of tokens with made-up key ids costs
//! the provider at most one request per interval. A fetch that fails keeps the keys the cache
//! had and is retried with a growing delay.

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
/// Shortest wait between two scheduled fetches, whatever the configuration says.
const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Longest wait before retrying a fetch that failed.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(600);

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
    /// How long the provider said the keys may be cached (`Cache-Control: max-age`), if it did.
    lifetime: Option<Duration>,
}

/// How the fetches went.
#[derive(Default)]
struct Attempts {
    /// When a fetch was last started (successful or not).
    last: Option<Instant>,
    /// Fetches that failed in a row since the last success.
    failures: u32,
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
    attempts: std::sync::Mutex<Attempts>,
    /// Asks the refresh task for a fetch: a token named a key id the cache lacks.
    wanted: tokio::sync::Notify,
    min_refresh: Duration,
    max_age: Duration,
    /// How many fetches were started (for tests and diagnostics).
    fetches: std::sync::atomic::AtomicU64,
}

/// Why an issuer has no key for a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLookup {
    /// The keys in hand have no key with this id (a refresh is asked for).
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
                lifetime: None,
            }),
            attempts: std::sync::Mutex::new(Attempts::default()),
            wanted: tokio::sync::Notify::new(),
            min_refresh,
            max_age,
            fetches: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Loads the keys at start, before pcq serves. A JWKS file that cannot be read or holds no
    /// usable key is an error (the configuration is wrong); a URL that cannot be fetched is
    /// logged, and fetched again by [`JwksIssuer::keep_fresh`].
    pub async fn load(&self) -> anyhow::Result<()> {
        match (self.attempt().await, &self.source) {
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

    /// Keeps the keys fresh until `stop` turns true (or its sender is gone): fetches them again
    /// when the copy reaches its age limit, after a token named an unknown key id, and, after a
    /// failure, with a growing delay; never sooner than the minimum refresh interval after the
    /// previous fetch started. A fetch under way when `stop` comes is abandoned.
    pub async fn keep_fresh(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            let due = self.next_due();
            let asked = tokio::select! {
                _ = stop.wait_for(|stop| *stop) => return,
                () = tokio::time::sleep_until(due) => false,
                () = self.wanted.notified() => true,
            };
            if asked {
                let allowed = self.next_allowed().min(due);
                tokio::select! {
                    _ = stop.wait_for(|stop| *stop) => return,
                    () = tokio::time::sleep_until(allowed) => {}
                }
            }
            tokio::select! {
                _ = stop.wait_for(|stop| *stop) => return,
                result = self.attempt() => match result {
                    Ok(count) => {
                        tracing::info!(issuer = %self.issuer, jwks = %self.source, keys = count, "identity provider keys refreshed");
                    }
                    Err(e) => {
                        tracing::warn!(issuer = %self.issuer, jwks = %self.source, error = %format!("{e:#}"),
                            "could not refresh the identity provider's keys; keeping the ones it had");
                    }
                },
            }
        }
    }

    /// When the next scheduled fetch is due: at the copy's age limit after a success, after a
    /// growing delay after a failure, at once if nothing was fetched yet.
    fn next_due(&self) -> Instant {
        let attempts = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        let Some(last) = attempts.last else {
            return Instant::now();
        };
        let cached = self.cached.read().unwrap_or_else(|p| p.into_inner());
        let interval = refresh_interval(self.max_age, cached.lifetime, self.min_refresh);
        match (attempts.failures, cached.fetched) {
            (0, Some(fetched)) => later(fetched, interval),
            (failures, _) => later(
                last,
                retry_delay(failures.max(1), self.min_refresh, interval),
            ),
        }
    }

    /// The earliest moment the minimum refresh interval allows another fetch.
    fn next_allowed(&self) -> Instant {
        let attempts = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        attempts
            .last
            .map_or_else(Instant::now, |last| later(last, self.min_refresh))
    }

    /// One fetch, recorded in [`Attempts`].
    async fn attempt(&self) -> anyhow::Result<usize> {
        self.attempts.lock().unwrap_or_else(|p| p.into_inner()).last = Some(Instant::now());
        let result = self.fetch().await;
        let mut attempts = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        attempts.failures = match result {
            Ok(_) => 0,
            Err(_) => attempts.failures.saturating_add(1),
        };
        result
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

    /// The key with id `kid` from the keys in hand. An unknown key id asks the refresh task for
    /// a fetch (a rotation may have published it), but is not waited for.
    pub fn key(&self, kid: &str) -> Result<VerificationKey, KeyLookup> {
        let cached = self.cached.read().unwrap_or_else(|p| p.into_inner());
        match cached.keys.get(kid) {
            Some(key) => Ok(key.clone()),
            None => {
                self.wanted.notify_one();
                Err(KeyLookup::Unknown)
            }
        }
    }

    /// Reads the JWKS and replaces the cached keys; returns how many keys are usable.
    async fn fetch(&self) -> anyhow::Result<usize> {
        use anyhow::Context;
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut lifetime = None;
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
                lifetime = cache_lifetime(response.headers());
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
        cached.lifetime = lifetime;
        Ok(count)
    }
}

/// `wait` after `at`, or a moment decades away if that is beyond what an instant can hold.
fn later(at: Instant, wait: Duration) -> Instant {
    at.checked_add(wait)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(30 * 365 * 86_400))
}

/// How long after a successful fetch the next one is due: the configured maximum age, or the
/// provider's cache lifetime if shorter; never less than the minimum refresh interval (nor a
/// second).
fn refresh_interval(
    max_age: Duration,
    lifetime: Option<Duration>,
    min_refresh: Duration,
) -> Duration {
    lifetime
        .map_or(max_age, |lifetime| lifetime.min(max_age))
        .max(min_refresh)
        .max(MIN_INTERVAL)
}

/// How long to wait after the `failures`-th failed fetch in a row: the minimum refresh interval
/// (at least a second), doubled with every further failure, up to ten minutes or the regular
/// `interval`, whichever is shorter.
fn retry_delay(failures: u32, min_refresh: Duration, interval: Duration) -> Duration {
    let first = min_refresh.max(MIN_INTERVAL);
    let doubled = first.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    doubled.min(MAX_RETRY_DELAY).min(interval).max(first)
}

/// The `max-age` of a response's `Cache-Control` headers, if any.
fn cache_lifetime(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get_all(reqwest::header::CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|directive| {
            let (name, seconds) = directive.trim().split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("max-age")
                .then(|| seconds.trim().trim_matches('"').parse().ok())
                .flatten()
                .map(Duration::from_secs)
        })
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
    fn refreshes_follow_the_cache_lifetime_within_the_limits() {
        let s = Duration::from_secs;
        // The configured maximum age, or a shorter lifetime the provider gives.
        assert_eq!(refresh_interval(s(86_400), None, s(60)), s(86_400));
        assert_eq!(refresh_interval(s(86_400), Some(s(3600)), s(60)), s(3600));
        assert_eq!(refresh_interval(s(600), Some(s(3600)), s(60)), s(600));
        // Never below the minimum interval, nor a second.
        assert_eq!(refresh_interval(s(86_400), Some(s(0)), s(60)), s(60));
        assert_eq!(refresh_interval(s(0), None, s(0)), s(1));
    }

    #[test]
    fn failed_fetches_are_retried_with_a_growing_delay() {
        let s = Duration::from_secs;
        let delays: Vec<_> = (1..=7)
            .map(|n| retry_delay(n, s(60), s(86_400)).as_secs())
            .collect();
        assert_eq!(delays, [60, 120, 240, 480, 600, 600, 600]);
        // Not longer than the regular refresh, not shorter than the minimum interval.
        assert_eq!(retry_delay(5, s(60), s(300)), s(300));
        assert_eq!(retry_delay(1, s(0), s(1)), s(1));
        assert_eq!(retry_delay(u32::MAX, s(0), s(86_400)), s(600));
    }

    #[test]
    fn huge_intervals_do_not_overflow() {
        let now = Instant::now();
        assert!(later(now, Duration::MAX) > now + Duration::from_secs(86_400 * 365));
        assert_eq!(
            later(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
    }

    #[test]
    fn the_cache_lifetime_is_the_max_age_directive() {
        use reqwest::header::{CACHE_CONTROL, HeaderMap, HeaderValue};
        let of = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(CACHE_CONTROL, HeaderValue::from_str(value).unwrap());
            }
            cache_lifetime(&headers)
        };
        assert_eq!(
            of(&["public, max-age=86400"]),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(
            of(&["private", "Max-Age = 60"]),
            Some(Duration::from_secs(60))
        );
        assert_eq!(of(&["no-cache"]), None);
        assert_eq!(of(&["max-age=soon"]), None);
        assert_eq!(of(&[]), None);
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
