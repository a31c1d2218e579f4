//! Configuration: compiled-in defaults, then a file, then `PCQ_*` environment variables; the
//! binary applies command-line flags last.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use figment::{Figment, Provider};
use pcq_core::Contract;
use pcq_core::vetting::VettingPolicy;
use serde::{Deserialize, Serialize};

/// The documented defaults (also the reference for every key).
pub const DEFAULTS: &str = include_str!("../config/default.toml");

/// `PCQ_*` environment variables of pcq's own tooling, which are not configuration keys.
const TOOLING_ENV: &[&str] = &[
    "test_database_url",
    "bin",
    "venv_dir",
    "ci_cache",
    "url",
    "token",
];

/// The whole configuration of a pcq node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory for the database and the development signing key.
    pub data_dir: PathBuf,
    /// Whether the data directory was chosen explicitly (flag or file), rather than defaulted.
    #[serde(skip)]
    pub data_dir_explicit: bool,
    /// PostgreSQL URL; empty for the embedded SQLite database.
    pub database_url: String,
    /// Keep the database in memory.
    pub in_memory: bool,
    /// The base URL this node is reached at (empty: derived from the listen address).
    pub public_url: String,
    /// The qualification contract generation.
    pub contract: Contract,
    /// The vetting policy configured (run-time changes are stored separately).
    pub vetting: VettingPolicy,
    /// The background worker.
    pub worker: WorkerConfig,
    /// Webhook delivery.
    pub webhooks: WebhooksConfig,
    /// Authentication.
    pub auth: AuthConfig,
    /// Request limits.
    pub limits: LimitsConfig,
    /// Per-partner request throttling.
    pub throttle: ThrottleConfig,
    /// Collection paging.
    pub paging: PagingConfig,
    /// The request journal.
    pub journal: JournalConfig,
    /// Storage tuning.
    pub store: StoreConfig,
    /// How long records are kept before the worker prunes them.
    pub retention: RetentionConfig,
    /// Logging.
    pub log: LogConfig,
    /// The Prometheus metrics endpoint.
    pub metrics: MetricsConfig,
    /// `PCQ_*` environment variables that name no configuration key (ignored; reported at start).
    #[serde(skip)]
    pub ignored_env: Vec<String>,
}

/// `[auth]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Required token audience.
    pub audience: String,
    /// Whether the development issuer is trusted (`auto`: when listening on loopback only).
    pub dev_issuer: AutoBool,
    /// Whether GovernmentCommunityCloud requests need a GDAP directory role.
    pub gcc_requires_gdap_role: bool,
    /// The GDAP directory roles that allow GCC requests: template ids (`wids`) or names (`roles`).
    pub gdap_roles: Vec<String>,
    /// Shortest time between two JWKS fetches of one issuer, in seconds.
    pub jwks_min_refresh_seconds: u64,
    /// Age at which an issuer's JWKS is fetched again (in the background), in seconds.
    pub jwks_max_age_seconds: u64,
    /// External identity providers.
    pub issuers: Vec<IssuerConfig>,
}

impl AuthConfig {
    /// Whether the development issuer is trusted by a node listening on `listen`: as configured,
    /// or under `auto` only when every connection comes from this machine.
    pub fn dev_issuer_on(&self, listen: SocketAddr) -> bool {
        self.dev_issuer
            .explicit()
            .unwrap_or_else(|| listen.ip().is_loopback())
    }
}

/// One `[[auth.issuers]]` entry: an identity provider whose tokens pcq accepts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The `iss` its tokens carry; `{tenantid}` stands for the token's own `tid`.
    pub issuer: String,
    /// Where its signing keys are published: an `https://` (or `http://`) URL or a file path.
    pub jwks: String,
    /// Audiences accepted from it; empty: `auth.audience`.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// The tenants (GUIDs) whose tokens from this issuer may carry pcq's roles (`Pcq.Reviewer`,
    /// `Pcq.Admin`); empty: this issuer grants none, and the roles of its tokens are ignored.
    #[serde(default)]
    pub role_tenants: Vec<String>,
}

fn default_leeway() -> u64 {
    60
}

/// `[worker]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// Whether this node runs the worker.
    pub enabled: bool,
    /// Idle poll interval in milliseconds.
    pub poll_interval_ms: u64,
    /// Most items per step.
    pub batch_size: u32,
}

/// `"auto"`, `true` or `false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AutoBool {
    /// Decided explicitly.
    Set(bool),
    /// Decided by pcq (see the key's documentation).
    Auto(AutoWord),
}

/// The word `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoWord {
    /// `auto`
    Auto,
}

impl AutoBool {
    /// The explicit value, if any.
    pub fn explicit(self) -> Option<bool> {
        match self {
            AutoBool::Set(b) => Some(b),
            AutoBool::Auto(_) => None,
        }
    }
}

/// `[webhooks]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Whether private addresses may receive events.
    pub allow_private_targets: AutoBool,
    /// The HTTP proxy deliveries go through; empty: none (never one from the environment).
    pub proxy: String,
    /// Receiver timeout in seconds.
    pub timeout_seconds: u64,
    /// Attempts per event.
    pub max_attempts: u32,
    /// First backoff in seconds.
    pub backoff_seconds: u64,
    /// Longest backoff in seconds.
    pub max_backoff_seconds: u64,
    /// Most deliveries of one partner in flight at once, across nodes.
    pub max_in_flight_per_partner: u32,
}

/// `[limits]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Largest state document a load accepts, in bytes.
    pub max_state_bytes: u64,
    /// Request timeout in seconds (fractions allowed).
    pub request_timeout_seconds: f64,
    /// Largest request head (request line and headers) in bytes.
    pub max_header_bytes: usize,
    /// Deepest nesting of objects and arrays in a JSON body.
    pub max_json_depth: usize,
    /// Time for a new connection's first request head (HTTP/1) or preface and SETTINGS frame
    /// (HTTP/2) to arrive, and for each later HTTP/1 request head, in seconds (fractions
    /// allowed).
    pub header_read_timeout_seconds: f64,
    /// Time a connection may sit with no request in progress and no bytes moving, in seconds
    /// (fractions allowed).
    pub idle_timeout_seconds: f64,
    /// Most connections served at once.
    pub max_connections: usize,
}

impl LimitsConfig {
    /// The request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.request_timeout_seconds)
    }

    /// The request head timeout.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.header_read_timeout_seconds)
    }

    /// The idle connection timeout.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.idle_timeout_seconds)
    }
}

/// `[throttle]`: token buckets per partner tenant and route family.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Whether requests are throttled at all.
    pub enabled: bool,
    /// Customer resources: `/v1/customers` and everything under it but validation codes.
    pub customers: RouteQuota,
    /// `GET /v1/customers/all/validations`.
    pub validation_codes: RouteQuota,
    /// `/v1/auditrecords`.
    pub audit: RouteQuota,
    /// `/webhooks/v1/...` other than posting a validation (test) event.
    pub webhooks: RouteQuota,
    /// `POST /webhooks/v1/registration/validationEvents`.
    pub webhook_test_events: RouteQuota,
    /// Reviewer routes (`/_pcq/review/...`, qualification history).
    pub review: RouteQuota,
    /// Sandbox controls (`/_pcq/admin/...`).
    pub admin: RouteQuota,
}

/// The limit of one route family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteQuota {
    /// Sustained rate per partner tenant; 0 switches the family's throttling off.
    pub requests_per_minute: u32,
    /// Requests a partner may send at once after a quiet spell; 0 means `requests_per_minute`.
    pub burst: u32,
}

impl RouteQuota {
    /// The bucket capacity in force (`burst`, or `requests_per_minute` when it is 0).
    pub fn capacity(&self) -> u32 {
        if self.burst == 0 {
            self.requests_per_minute
        } else {
            self.burst
        }
    }
}

/// `[paging]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagingConfig {
    /// Page size when none is asked for.
    pub default_size: u32,
    /// Largest page size.
    pub max_size: u32,
    /// Most bytes of JSON the items of one page take: a page of large items ends earlier than
    /// `size` (with one item at least) and continues where it stopped.
    pub max_page_bytes: usize,
}

/// `[journal]`: the requests this node served, kept in memory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    /// Whether requests are recorded.
    pub enabled: bool,
    /// Most requests kept (the oldest go first).
    pub max_entries: usize,
    /// Most bytes the kept requests take (the oldest go first).
    pub max_bytes: usize,
}

/// `[retention]`: how long each kind of record is kept before the worker prunes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Idempotency records (with their stored answers), by the time of their request.
    pub idempotency: Retention,
    /// Finished webhook deliveries (delivered or given up) and their attempts, by the time
    /// they finished. Pending ones are never pruned.
    pub webhook_deliveries: Retention,
    /// Audit records, by their operation date.
    pub audit_records: Retention,
    /// Most rows of one kind deleted in one write transaction.
    pub batch_size: u32,
    /// How often the worker looks for expired records.
    pub interval: pcq_core::vetting::Duration,
}

/// How long a kind of record is kept: a duration (`7d`), or for ever (`"off"` or `0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention(pub Option<pcq_core::vetting::Duration>);

impl Serialize for Retention {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(d) => d.serialize(serializer),
            None => serializer.serialize_str("off"),
        }
    }
}

impl<'de> Deserialize<'de> for Retention {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Retention;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration such as \"7d\", or \"off\" or 0 to keep for ever")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Retention, E> {
                match v {
                    0 => Ok(Retention(None)),
                    _ => Err(E::custom(
                        "a retention is a duration with its unit (\"7d\"), or 0 or \"off\"",
                    )),
                }
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Retention, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(1))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Retention, E> {
                match v.trim() {
                    "off" | "0" => Ok(Retention(None)),
                    text => pcq_core::vetting::Duration::parse(text)
                        .map(|d| Retention((d.as_micros() > 0).then_some(d)))
                        .map_err(E::custom),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `[store]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// SQLite read connections kept open.
    pub sqlite_readers: u32,
    /// Largest group-commit batch.
    pub sqlite_max_batch: usize,
    /// SQLite page cache of the writer in MiB (readers get a quarter each).
    pub sqlite_cache_mib: u32,
    /// PostgreSQL pool size.
    pub pg_max_connections: u32,
    /// PostgreSQL connections kept when idle.
    pub pg_min_connections: u32,
    /// Wait for a PostgreSQL connection, in milliseconds.
    pub pg_acquire_timeout_ms: u64,
    /// PostgreSQL statement timeout, in milliseconds.
    pub pg_statement_timeout_ms: u64,
    /// Runs of a write that conflicted with a concurrent one.
    pub pg_conflict_retries: u32,
}

/// `[log]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// EnvFilter directives.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
    /// Whether a line is logged for every request served (`auto`: with the `json` format).
    pub access: AutoBool,
}

impl LogConfig {
    /// Whether a line is logged for every request served.
    pub fn access_on(&self) -> bool {
        self.access
            .explicit()
            .unwrap_or(self.format == LogFormat::Json)
    }
}

/// `[metrics]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Whether the node keeps metrics at all (off: nothing is counted, the endpoint answers 404).
    pub enabled: bool,
    /// Who may read `/_pcq/metrics`.
    pub access: MetricsAccess,
}

/// Who may read `/_pcq/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsAccess {
    /// Clients connecting from a loopback address, without a token.
    Loopback,
    /// Callers with a token holding the `Pcq.Admin` role.
    Role,
    /// Anyone who can reach the node.
    Open,
    /// Nobody: the endpoint answers 404 (metrics are still kept when `enabled`).
    Off,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Config {
    /// Loads the defaults, then `file` (which must exist when given), then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut figment = Figment::new().merge(Toml::string(DEFAULTS));
        let mut explicit = Figment::new();
        if let Some(path) = file {
            if !path.is_file() {
                anyhow::bail!("the config file {} does not exist", path.display());
            }
            explicit = explicit.merge(Toml::file(path));
        }
        let known = known_keys();
        let env_known = known.clone();
        explicit = explicit.merge(
            Env::prefixed("PCQ_")
                .split("__")
                .filter(move |k| env_known.contains(&k.as_str().to_ascii_lowercase())),
        );
        figment = figment.merge(explicit.clone());
        let mut config: Config = figment
            .extract()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        config.data_dir_explicit = explicit.contains("data_dir");
        config.ignored_env = std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .filter(|k| {
                k.strip_prefix("PCQ_").is_some_and(|rest| {
                    let key = rest.to_ascii_lowercase().replace("__", ".");
                    !known.contains(&key) && !TOOLING_ENV.contains(&key.as_str())
                })
            })
            .collect();
        config.validate()?;
        Ok(config)
    }

    /// The defaults alone (for tests and tools).
    pub fn defaults() -> Config {
        let mut config: Config = Figment::new()
            .merge(Toml::string(DEFAULTS))
            .extract()
            .expect("the compiled-in defaults are valid");
        config
            .validate()
            .expect("the compiled-in defaults are valid");
        config
    }

    /// Checks values that serde cannot (and normalises the vetting policy).
    pub fn validate(&mut self) -> anyhow::Result<()> {
        self.vetting
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid [vetting]: {e}"))?;
        if !self.database_url.is_empty() {
            crate::store::postgres::parse_url(&self.database_url)
                .map_err(|e| anyhow::anyhow!("database_url: {e}"))?;
            anyhow::ensure!(
                !self.in_memory,
                "in_memory and database_url exclude each other: the database is PostgreSQL's"
            );
        }
        at_least("store.pg_max_connections", self.store.pg_max_connections, 1)?;
        at_least(
            "store.pg_statement_timeout_ms",
            self.store.pg_statement_timeout_ms,
            100,
        )?;
        at_least(
            "store.pg_acquire_timeout_ms",
            self.store.pg_acquire_timeout_ms,
            10,
        )?;
        if !self.public_url.is_empty() {
            anyhow::ensure!(
                self.public_url.starts_with("http://") || self.public_url.starts_with("https://"),
                "public_url must start with http:// or https://"
            );
            self.public_url = self.public_url.trim_end_matches('/').to_owned();
        }
        at_least("worker.poll_interval_ms", self.worker.poll_interval_ms, 10)?;
        at_least("worker.batch_size", self.worker.batch_size, 1)?;
        between("webhooks.max_attempts", self.webhooks.max_attempts, 1, 100)?;
        if !self.webhooks.proxy.is_empty() {
            let scheme = reqwest::Url::parse(&self.webhooks.proxy)
                .map(|url| url.scheme().to_owned())
                .unwrap_or_default();
            anyhow::ensure!(
                matches!(scheme.as_str(), "http" | "https"),
                "webhooks.proxy must be an http:// or https:// URL, or empty for none"
            );
        }
        between(
            "webhooks.max_in_flight_per_partner",
            self.webhooks.max_in_flight_per_partner,
            1,
            1000,
        )?;
        between(
            "webhooks.timeout_seconds",
            self.webhooks.timeout_seconds,
            1,
            300,
        )?;
        anyhow::ensure!(
            !self.auth.audience.is_empty(),
            "auth.audience must not be empty"
        );
        for (n, issuer) in self.auth.issuers.iter().enumerate() {
            let at = format!("auth.issuers[{n}]");
            anyhow::ensure!(!issuer.issuer.is_empty(), "{at}.issuer must not be empty");
            anyhow::ensure!(
                issuer.issuer != crate::auth::dev_issuer::DEV_ISSUER,
                "{at}.issuer is the development issuer's; use auth.dev_issuer for it"
            );
            anyhow::ensure!(!issuer.jwks.is_empty(), "{at}.jwks must not be empty");
            anyhow::ensure!(
                issuer.leeway_seconds <= 600,
                "{at}.leeway_seconds must be at most 600"
            );
            for (m, tenant) in issuer.role_tenants.iter().enumerate() {
                anyhow::ensure!(
                    pcq_core::ids::parse_guid(tenant).is_some(),
                    "{at}.role_tenants[{m}] ({tenant:?}) is not a tenant id: expected a GUID such \
                     as \"6affab8f-68fe-4688-916b-a96207c95998\""
                );
            }
        }
        anyhow::ensure!(
            self.auth.jwks_min_refresh_seconds <= self.auth.jwks_max_age_seconds,
            "auth.jwks_min_refresh_seconds must not exceed auth.jwks_max_age_seconds"
        );
        at_least("limits.max_body_bytes", self.limits.max_body_bytes, 1024)?;
        anyhow::ensure!(
            self.limits.max_state_bytes >= 1024,
            "limits.max_state_bytes must be at least 1024"
        );
        let limits = &self.limits;
        for (key, seconds) in [
            ("request_timeout_seconds", limits.request_timeout_seconds),
            (
                "header_read_timeout_seconds",
                limits.header_read_timeout_seconds,
            ),
            ("idle_timeout_seconds", limits.idle_timeout_seconds),
        ] {
            anyhow::ensure!(
                (0.01..=86_400.0).contains(&seconds),
                "limits.{key} must be between 0.01 and 86400 seconds"
            );
        }
        between(
            "limits.max_header_bytes",
            limits.max_header_bytes,
            1024,
            1024 * 1024,
        )?;
        between("limits.max_json_depth", limits.max_json_depth, 1, 128)?;
        between(
            "limits.max_connections",
            limits.max_connections,
            1,
            1_000_000,
        )?;
        anyhow::ensure!(
            self.paging.default_size >= 1 && self.paging.default_size <= self.paging.max_size,
            "paging.default_size must be between 1 and paging.max_size"
        );
        between(
            "paging.max_page_bytes",
            self.paging.max_page_bytes,
            1024,
            64 * 1024 * 1024,
        )?;
        between(
            "journal.max_entries",
            self.journal.max_entries,
            1,
            1_000_000,
        )?;
        between(
            "journal.max_bytes",
            self.journal.max_bytes,
            64 * 1024,
            4 * 1024 * 1024 * 1024,
        )?;
        between(
            "retention.batch_size",
            self.retention.batch_size,
            1,
            100_000,
        )?;
        anyhow::ensure!(
            self.retention.interval.as_micros() >= 1_000_000,
            "retention.interval must be at least 1s"
        );
        at_least("store.sqlite_readers", self.store.sqlite_readers, 1)?;
        at_least("store.sqlite_max_batch", self.store.sqlite_max_batch, 1)?;
        Ok(())
    }
}

/// Refuses `value` of `key` below `min`.
fn at_least<T: PartialOrd + Copy + std::fmt::Display>(
    key: &str,
    value: T,
    min: T,
) -> anyhow::Result<()> {
    anyhow::ensure!(value >= min, "{key} must be at least {min}");
    Ok(())
}

/// Refuses `value` of `key` outside `min..=max`.
fn between<T: PartialOrd + Copy + std::fmt::Display>(
    key: &str,
    value: T,
    min: T,
    max: T,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        (min..=max).contains(&value),
        "{key} must be between {min} and {max}"
    );
    Ok(())
}

/// Every configuration key path (`listen`, `auth.audience`, …), as the defaults file lists them.
fn known_keys() -> Vec<String> {
    fn walk(prefix: &str, dict: &figment::value::Dict, out: &mut Vec<String>) {
        for (key, value) in dict {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                figment::value::Value::Dict(_, inner) => walk(&path, inner, out),
                _ => out.push(path),
            }
        }
    }
    let mut keys = Vec::new();
    if let Ok(data) = Figment::from(Toml::string(DEFAULTS)).data() {
        for dict in data.values() {
            walk("", dict, &mut keys);
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_validate() {
        let mut config = Config::defaults();
        config.validate().unwrap();
        assert_eq!(config.vetting, VettingPolicy::default());
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.contract, Contract::V2021);
        assert_eq!(
            config.auth.audience,
            "https://api.partnercenter.microsoft.com"
        );
    }

    #[test]
    fn limits_take_whole_or_fractional_seconds_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pcq.toml");
        let load = |text: &str| {
            std::fs::write(&file, text).unwrap();
            Config::load(Some(&file))
        };
        let config = load("[limits]\nrequest_timeout_seconds = 45\n").unwrap();
        assert_eq!(config.limits.request_timeout(), Duration::from_secs(45));
        let config = load(
            "[limits]\nrequest_timeout_seconds = 0.25\nheader_read_timeout_seconds = 1.5\n\
             [throttle.customers]\nrequests_per_minute = 10\nburst = 3\n",
        )
        .unwrap();
        assert_eq!(config.limits.request_timeout(), Duration::from_millis(250));
        assert_eq!(
            config.limits.header_read_timeout(),
            Duration::from_millis(1500)
        );
        assert_eq!(config.throttle.customers.capacity(), 3);
        assert_eq!(config.throttle.audit.requests_per_minute, 500);
        for (bad, key) in [
            (
                "[limits]\nheader_read_timeout_seconds = 0\n",
                "header_read_timeout_seconds",
            ),
            (
                "[limits]\nidle_timeout_seconds = -1\n",
                "idle_timeout_seconds",
            ),
            ("[limits]\nmax_json_depth = 200\n", "max_json_depth"),
            ("[limits]\nmax_connections = 0\n", "max_connections"),
            ("[limits]\nmax_header_bytes = 100\n", "max_header_bytes"),
            ("[throttle.customers]\nrate = 5\n", "rate"),
        ] {
            let err = load(bad).unwrap_err().to_string();
            assert!(err.contains(key), "{bad}: {err}");
        }
    }

    #[test]
    fn retention_has_documented_defaults_and_off_keeps_for_ever() {
        use pcq_core::vetting::Duration as Span;
        let config = Config::defaults();
        let days = |n: i64| Retention(Some(Span::from_secs(n * 86_400)));
        assert_eq!(config.retention.idempotency, days(7));
        assert_eq!(config.retention.webhook_deliveries, days(30));
        assert_eq!(config.retention.audit_records, days(90));
        assert_eq!(config.retention.batch_size, 100);
        assert_eq!(config.retention.interval, Span::from_secs(60));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pcq.toml");
        let load = |text: &str| {
            std::fs::write(&file, text).unwrap();
            Config::load(Some(&file))
        };
        let config = load(
            "[retention]\nidempotency = \"off\"\nwebhook_deliveries = 0\n\
             audit_records = \"36h\"\n",
        )
        .unwrap();
        assert_eq!(config.retention.idempotency, Retention(None));
        assert_eq!(config.retention.webhook_deliveries, Retention(None));
        assert_eq!(
            config.retention.audit_records,
            Retention(Some(Span::from_secs(36 * 3600)))
        );
        for (bad, key) in [
            ("[retention]\nidempotency = 7\n", "retention"),
            ("[retention]\nidempotency = \"soon\"\n", "soon"),
            ("[retention]\nbatch_size = 0\n", "retention.batch_size"),
            ("[retention]\ninterval = \"10ms\"\n", "retention.interval"),
        ] {
            let err = format!("{:#}", load(bad).unwrap_err());
            assert!(err.contains(key), "{bad}: {err}");
        }
    }

    #[test]
    fn the_journal_is_on_and_bounded_by_default_and_checked() {
        let config = Config::defaults();
        assert!(config.journal.enabled);
        assert_eq!(config.journal.max_entries, 10_000);
        assert_eq!(config.journal.max_bytes, 32 * 1024 * 1024);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pcq.toml");
        let load = |text: &str| {
            std::fs::write(&file, text).unwrap();
            Config::load(Some(&file))
        };
        let config = load("[journal]\nenabled = false\nmax_entries = 50\n").unwrap();
        assert!(!config.journal.enabled);
        assert_eq!(config.journal.max_entries, 50);
        for (bad, key) in [
            ("[journal]\nmax_entries = 0\n", "journal.max_entries"),
            ("[journal]\nmax_bytes = 1000\n", "journal.max_bytes"),
            ("[journal]\nenabled = \"yes\"\n", "enabled"),
        ] {
            let err = load(bad).unwrap_err().to_string();
            assert!(err.contains(key), "{bad}: {err}");
        }
    }

    #[test]
    fn role_tenants_must_be_tenant_ids() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pcq.toml");
        let load = |role_tenants: &str| {
            std::fs::write(
                &file,
                format!(
                    "[[auth.issuers]]\nissuer = \"https://sts.windows.net/{{tenantid}}/\"\n\
                     jwks = \"https://login.microsoftonline.com/common/discovery/keys\"\n\
                     {role_tenants}"
                ),
            )
            .unwrap();
            Config::load(Some(&file))
        };
        // By default an issuer grants no roles.
        assert!(load("").unwrap().auth.issuers[0].role_tenants.is_empty());
        let config = load(
            "role_tenants = [\"6affab8f-68fe-4688-916b-a96207c95998\", \
             \"{0E1F2A3B-4C5D-6E7F-8091-A2B3C4D5E6F7}\"]",
        )
        .unwrap();
        assert_eq!(config.auth.issuers[0].role_tenants.len(), 2);
        for (bad, shown) in [
            ("[\"contoso.onmicrosoft.com\"]", "role_tenants[0]"),
            (
                "[\"6affab8f-68fe-4688-916b-a96207c95998\", \"6affab8f68fe4688916ba96207c95998\"]",
                "role_tenants[1]",
            ),
            ("[\"*\"]", "\"*\""),
            ("[\"\"]", "not a tenant id"),
        ] {
            let err = load(&format!("role_tenants = {bad}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("auth.issuers[0].role_tenants"), "{bad}: {err}");
            assert!(err.contains(shown), "{bad}: {err}");
        }
        let err = load("role_tenants = \"6affab8f-68fe-4688-916b-a96207c95998\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("role_tenants"), "{err}");
    }

    #[test]
    fn every_default_key_is_known() {
        let keys = known_keys();
        for key in [
            "listen",
            "data_dir",
            "contract",
            "auth.audience",
            "limits.max_body_bytes",
            "limits.max_connections",
            "throttle.enabled",
            "throttle.customers.requests_per_minute",
            "throttle.webhook_test_events.burst",
            "log.format",
        ] {
            assert!(keys.iter().any(|k| k == key), "{key} in {keys:?}");
        }
    }
}
