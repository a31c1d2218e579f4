//! Where the client's bearer tokens come from.
//!
//! A [`TokenProvider`] hands out an access token; the client asks it before every attempt (a
//! cached token costs nothing) and, when the service answers 401, once more with
//! `force_refresh` before repeating the call. [`ClientCredentials`] (App only) and
//! [`RefreshToken`] (App+User) get their tokens from Entra ID's token endpoint and keep each
//! one until shortly before it expires: 5 minutes early, or a tenth of its lifetime when that
//! is shorter.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::Error;

/// The scope of Partner Center's API for client credentials.
pub const PARTNER_CENTER_SCOPE: &str = "https://api.partnercenter.microsoft.com/.default";

/// Supplies access tokens to a [`PartnerClient`](crate::PartnerClient).
///
/// Implement it for a source of your own:
///
/// ```
/// use futures_util::future::BoxFuture;
/// use pcq_client::{Error, TokenProvider};
///
/// struct FromEnvironment;
///
/// impl TokenProvider for FromEnvironment {
///     fn token(&self, _force_refresh: bool) -> BoxFuture<'_, Result<String, Error>> {
///         Box::pin(async {
///             std::env::var("PCQ_TOKEN").map_err(|_| Error::token("PCQ_TOKEN is not set"))
///         })
///     }
/// }
/// ```
pub trait TokenProvider: Send + Sync + 'static {
    /// An access token; with `force_refresh`, a new one rather than a cached one (the service
    /// refused the last).
    fn token(&self, force_refresh: bool) -> BoxFuture<'_, Result<String, Error>>;
}

impl<T: TokenProvider + ?Sized> TokenProvider for Arc<T> {
    fn token(&self, force_refresh: bool) -> BoxFuture<'_, Result<String, Error>> {
        (**self).token(force_refresh)
    }
}

/// A token given once, used as it is (a development token from `pcq token`, or one obtained
/// elsewhere).
#[derive(Clone)]
pub struct StaticToken(String);

impl StaticToken {
    /// The token.
    pub fn new(token: impl Into<String>) -> Self {
        StaticToken(token.into())
    }
}

impl std::fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StaticToken(REDACTED)")
    }
}

impl TokenProvider for StaticToken {
    fn token(&self, _force_refresh: bool) -> BoxFuture<'_, Result<String, Error>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
}

/// The default token endpoint of a tenant (Entra ID, v2.0).
pub fn entra_token_endpoint(tenant: &str) -> String {
    format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token")
}

/// A token and when it stops being handed out.
struct Cached {
    token: String,
    renew_at: Instant,
}

/// How early before its expiry a token is renewed: 5 minutes, or a tenth of its lifetime when
/// that is less.
pub(crate) fn renewal_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(Duration::from_secs(300))
}

/// The fields of a token endpoint's answer the providers use.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// The fields of a token endpoint's refusal.
#[derive(Deserialize)]
struct TokenRefusal {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// One HTTP client for every token request of the process.
fn token_http() -> Result<&'static reqwest::Client, Error> {
    static HTTP: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(http) = HTTP.get() {
        return Ok(http);
    }
    crate::install_crypto_provider();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| Error::Token {
            message: "cannot set up the HTTP client of the token provider".into(),
            source: Some(Box::new(e)),
        })?;
    Ok(HTTP.get_or_init(|| http))
}

/// Posts `form` to `endpoint`: the token, its lifetime and the new refresh token, if any.
async fn request_token(
    endpoint: &str,
    form: &[(&str, &str)],
) -> Result<(String, Duration, Option<String>), Error> {
    let answer = token_http()?
        .post(endpoint)
        .header(reqwest::header::ACCEPT, "application/json")
        .form(form)
        .send()
        .await
        .map_err(|e| Error::Token {
            message: format!("the token endpoint {endpoint} did not answer"),
            source: Some(Box::new(e)),
        })?;
    let status = answer.status();
    let body = answer.bytes().await.map_err(|e| Error::Token {
        message: format!("the token endpoint {endpoint} did not answer in full"),
        source: Some(Box::new(e)),
    })?;
    if !status.is_success() {
        let why = match serde_json::from_slice::<TokenRefusal>(&body) {
            Ok(r) => match r.error_description {
                Some(d) => format!("{}: {}", r.error, d),
                None => r.error,
            },
            Err(_) => String::from_utf8_lossy(&body).chars().take(300).collect(),
        };
        return Err(Error::token(format!(
            "the token endpoint answered {status}: {why}"
        )));
    }
    let token: TokenAnswer = serde_json::from_slice(&body).map_err(|e| Error::Token {
        message: "the token endpoint's answer has no access_token".into(),
        source: Some(Box::new(e)),
    })?;
    // Entra ID sends a number; some endpoints send it as a string. One hour when absent.
    let seconds = match &token.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .unwrap_or(3600);
    Ok((
        token.access_token,
        Duration::from_secs(seconds),
        token.refresh_token,
    ))
}

/// Keeps a token until shortly before it expires; one fetch at a time, so that concurrent calls
/// wait for the same token request rather than each making one.
struct TokenCache {
    cached: Mutex<Option<Cached>>,
}

impl TokenCache {
    fn new() -> Self {
        TokenCache {
            cached: Mutex::new(None),
        }
    }

    async fn get<F, Fut>(&self, force_refresh: bool, fetch: F) -> Result<String, Error>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(String, Duration), Error>>,
    {
        let mut cached = self.cached.lock().await;
        if !force_refresh {
            if let Some(c) = cached.as_ref().filter(|c| Instant::now() < c.renew_at) {
                return Ok(c.token.clone());
            }
        }
        let (token, lifetime) = fetch().await?;
        *cached = Some(Cached {
            token: token.clone(),
            renew_at: Instant::now() + lifetime - renewal_margin(lifetime),
        });
        Ok(token)
    }
}

/// App-only credentials: Entra ID's client-credentials grant for an application's secret.
///
/// ```no_run
/// # async fn run() -> Result<(), pcq_client::Error> {
/// use pcq_client::{ClientCredentials, PartnerClient};
///
/// let credentials = ClientCredentials::new("contoso.onmicrosoft.com", "app-id", "secret");
/// let client = PartnerClient::builder("https://api.partnercenter.microsoft.com")
///     .token_provider(credentials)
///     .build()?;
/// # Ok(()) }
/// ```
pub struct ClientCredentials {
    client_id: String,
    client_secret: String,
    scope: String,
    endpoint: String,
    cache: TokenCache,
}

impl ClientCredentials {
    /// Credentials of application `client_id` in `tenant`, for Partner Center's scope, from
    /// `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`.
    pub fn new(
        tenant: impl AsRef<str>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        ClientCredentials {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scope: PARTNER_CENTER_SCOPE.to_owned(),
            endpoint: entra_token_endpoint(tenant.as_ref()),
            cache: TokenCache::new(),
        }
    }

    /// Another scope than Partner Center's.
    #[must_use]
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = scope.into();
        self
    }

    /// Another token endpoint (a national cloud, or a test double).
    #[must_use]
    pub fn token_endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = url.into();
        self
    }
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl TokenProvider for ClientCredentials {
    fn token(&self, force_refresh: bool) -> BoxFuture<'_, Result<String, Error>> {
        Box::pin(self.cache.get(force_refresh, move || async move {
            let (token, lifetime, _) = request_token(
                &self.endpoint,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &self.client_id),
                    ("client_secret", &self.client_secret),
                    ("scope", &self.scope),
                ],
            )
            .await?;
            Ok((token, lifetime))
        }))
    }
}

/// App+User credentials: Entra ID's refresh-token grant. The refresh token the endpoint sends
/// back replaces the one in use (Entra ID rotates them).
pub struct RefreshToken {
    client_id: String,
    client_secret: Option<String>,
    refresh_token: std::sync::Mutex<String>,
    scope: String,
    endpoint: String,
    cache: TokenCache,
}

impl RefreshToken {
    /// Tokens of the user who granted `refresh_token` to public application `client_id`, for
    /// Partner Center's scope, from the `organizations` endpoint of Entra ID (see
    /// [`RefreshToken::tenant`] and [`RefreshToken::token_endpoint`]).
    pub fn new(client_id: impl Into<String>, refresh_token: impl Into<String>) -> Self {
        RefreshToken {
            client_id: client_id.into(),
            client_secret: None,
            refresh_token: std::sync::Mutex::new(refresh_token.into()),
            scope: PARTNER_CENTER_SCOPE.to_owned(),
            endpoint: entra_token_endpoint("organizations"),
            cache: TokenCache::new(),
        }
    }

    /// The application's secret, for a confidential application.
    #[must_use]
    pub fn client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    /// Another scope than Partner Center's.
    #[must_use]
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = scope.into();
        self
    }

    /// The token endpoint of this tenant.
    #[must_use]
    pub fn tenant(self, tenant: impl AsRef<str>) -> Self {
        let endpoint = entra_token_endpoint(tenant.as_ref());
        self.token_endpoint(endpoint)
    }

    /// Another token endpoint (a national cloud, or a test double).
    #[must_use]
    pub fn token_endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = url.into();
        self
    }

    /// The refresh token in use now (the latest the endpoint sent), to keep for a later run.
    pub fn current_refresh_token(&self) -> String {
        self.refresh_token
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshToken")
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl TokenProvider for RefreshToken {
    fn token(&self, force_refresh: bool) -> BoxFuture<'_, Result<String, Error>> {
        Box::pin(self.cache.get(force_refresh, move || async move {
            let refresh = self.current_refresh_token();
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("client_id", self.client_id.as_str()),
                ("refresh_token", refresh.as_str()),
                ("scope", self.scope.as_str()),
            ];
            if let Some(secret) = &self.client_secret {
                form.push(("client_secret", secret));
            }
            let (token, lifetime, rotated) = request_token(&self.endpoint, &form).await?;
            if let Some(rotated) = rotated {
                *self.refresh_token.lock().unwrap_or_else(|p| p.into_inner()) = rotated;
            }
            Ok((token, lifetime))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_renewed_early_but_not_too_early() {
        assert_eq!(
            renewal_margin(Duration::from_secs(3600)),
            Duration::from_secs(300)
        );
        assert_eq!(
            renewal_margin(Duration::from_secs(600)),
            Duration::from_secs(60)
        );
        assert_eq!(renewal_margin(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let s = format!(
            "{:?} {:?} {:?}",
            StaticToken::new("tok-123"),
            ClientCredentials::new("t", "app", "sec-456"),
            RefreshToken::new("app", "ref-789").client_secret("sec-000"),
        );
        for secret in ["tok-123", "sec-456", "ref-789", "sec-000"] {
            assert!(!s.contains(secret), "{s}");
        }
    }
}
