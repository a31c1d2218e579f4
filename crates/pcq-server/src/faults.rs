//! Faults injected on purpose (sandbox control): a request whose method, path and partner
//! match a fault is answered with the fault's status, has its connection closed, or is slowed
//! down, before its handler runs (`before`) or after it took effect (`after`).
//!
//! Faults live in the store (`store::faults`), so every node sharing it applies the same ones.
//! Each node keeps a copy ([`FaultSet`]) for matching, replaced as a whole when the stored
//! version (`faults_version` in `meta`, set anew by every change) differs from the copy's: at
//! once on the node that made the change (an effect of its commit), on the others on their
//! next settings refresh (every worker step or `worker.poll_interval_ms`). With no fault
//! defined, matching a request costs one atomic load. A fault that matches is spent in the
//! store before it fires (a conditional update), so a fault removed on another node, or a
//! `count` used up there, never fires again whatever the copy says.
//!
//! `probability` is decided per node: the n-th request a node matches to a fault fires when
//! [`unit`]`(seed, n)` is below the probability, so the same seed picks the same requests on a
//! fresh node every time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use globset::{GlobBuilder, GlobMatcher};
use pcq_core::ApiFault;
use pcq_core::input::{LooseObject, json_type};
use pcq_core::time::Timestamp;
use serde_json::Value;
use uuid::Uuid;

use crate::error::Error;
use crate::service::Pipeline;
use crate::store::{FaultRow, Op, Tx};

/// The longest delay a fault may add.
pub const MAX_DELAY_MS: u64 = 60_000;
/// The longest `Retry-After` a fault may announce.
pub const MAX_RETRY_AFTER_SECONDS: u64 = 86_400;
/// The longest path glob.
pub const MAX_PATH_CHARS: usize = 1_000;
/// The methods a fault may name (besides `*`).
pub const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
/// The properties of a fault's body.
pub const PROPERTIES: [&str; 10] = [
    "method",
    "path",
    "partner",
    "status",
    "retryAfterSeconds",
    "delayMs",
    "probability",
    "count",
    "seed",
    "when",
];

/// Whether requests to `path` are never faulted: the sandbox controls (so that a fault can
/// always be removed), health, readiness, the OpenAPI document and the web console.
pub fn is_exempt(path: &str) -> bool {
    crate::console::is_console_path(path)
        || path == "/_pcq/admin"
        || path.starts_with("/_pcq/admin/")
        || matches!(
            path,
            "/_pcq/health" | "/_pcq/ready" | "/_pcq/openapi.json" | "/_pcq/metrics"
        )
}

/// What a fault does to the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Answer this status with the Partner Center envelope.
    Status(u16),
    /// Close the connection without answering.
    Reset,
}

impl Action {
    fn parse_stored(raw: &str) -> Option<Action> {
        if raw == "reset" {
            Some(Action::Reset)
        } else {
            raw.parse().ok().map(Action::Status)
        }
    }

    fn stored(self) -> String {
        match self {
            Action::Status(status) => status.to_string(),
            Action::Reset => "reset".to_owned(),
        }
    }
}

/// When a fault fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Before the handler: the request changes nothing.
    Before,
    /// After the handler: the request took effect, its answer is lost.
    After,
}

impl When {
    fn as_str(self) -> &'static str {
        match self {
            When::Before => "before",
            When::After => "after",
        }
    }
}

/// A fault as asked for, checked.
#[derive(Debug, Clone)]
pub struct FaultSpec {
    method: String,
    path: String,
    partner: Option<Uuid>,
    action: Option<Action>,
    retry_after_seconds: Option<u64>,
    delay_ms: u64,
    probability: f64,
    count: Option<u64>,
    seed: Option<u64>,
    when: When,
}

fn invalid(field: &str, description: String) -> ApiFault {
    ApiFault::invalid_input(description).with_param("field", field)
}

/// A whole number in `min..=max`, from a JSON number or a numeric string.
fn whole(
    object: &LooseObject<'_>,
    field: &str,
    min: u64,
    max: u64,
    what: &str,
) -> Result<Option<u64>, ApiFault> {
    let Some(value) = object.get(field)? else {
        return Ok(None);
    };
    let number = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match number {
        Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(invalid(
            field,
            format!(
                "{field} must be a whole number from {min} to {max} ({what}), not {}.",
                shown(value)
            ),
        )),
    }
}

/// A value as the client wrote it, shortened.
fn shown(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}

/// The path glob's matcher: `*` and `?` stay within a path segment, `**` crosses them, `[ab]`
/// and `{a,b}` choose.
fn matcher(glob: &str) -> Result<GlobMatcher, globset::Error> {
    Ok(GlobBuilder::new(glob)
        .literal_separator(true)
        .build()?
        .compile_matcher())
}

impl FaultSpec {
    /// Reads and checks a fault's body; every refusal names the property and what it takes.
    pub fn parse(body: &Value) -> Result<FaultSpec, ApiFault> {
        let Value::Object(map) = body else {
            return Err(ApiFault::invalid_input(format!(
                "The body must be a JSON object such as {{\"method\": \"POST\", \"path\": \
                 \"/v1/customers/*/qualifications\", \"status\": 503}}, not {}.",
                json_type(body)
            )));
        };
        let unknown: Vec<&str> = map
            .keys()
            .filter(|k| !PROPERTIES.iter().any(|p| p.eq_ignore_ascii_case(k)))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err(ApiFault::invalid_input(format!(
                "Unknown propert{} {}; a fault takes {}.",
                if unknown.len() == 1 { "y" } else { "ies" },
                unknown
                    .iter()
                    .map(|k| format!("'{}'", k.chars().take(60).collect::<String>()))
                    .collect::<Vec<_>>()
                    .join(", "),
                PROPERTIES.join(", ")
            ))
            .with_param("field", unknown[0].chars().take(60).collect::<String>()));
        }
        let object = LooseObject::new(map);

        let method = match object.get_str("method")? {
            None => "*".to_owned(),
            Some(raw) => {
                let upper = raw.trim().to_ascii_uppercase();
                if upper != "*" && !METHODS.contains(&upper.as_str()) {
                    return Err(invalid(
                        "method",
                        format!(
                            "method '{}' is not one pcq serves; use one of {} or \"*\" for any.",
                            raw.chars().take(20).collect::<String>(),
                            METHODS.join(", ")
                        ),
                    ));
                }
                upper
            }
        };

        let path = object
            .get_str("path")?
            .ok_or_else(|| {
                ApiFault::property_required(
                    "path",
                    ", a glob on the request path such as \"/v1/customers/*/qualifications\" \
                     (\"/**\" for every path).",
                )
            })?
            .trim()
            .to_owned();
        if !path.starts_with('/') || path.chars().count() > MAX_PATH_CHARS {
            return Err(invalid(
                "path",
                format!(
                    "path must be a glob on the request path that starts with '/' and has at \
                     most {MAX_PATH_CHARS} characters, such as \"/v1/customers/*\" (\"/**\" for \
                     every path)."
                ),
            ));
        }
        if let Err(e) = matcher(&path) {
            return Err(invalid(
                "path",
                format!(
                    "path is not a valid glob: {}. '*' matches within one path segment, '**' \
                     across segments, '?' one character, [abc] and {{a,b}} choose.",
                    e.kind()
                ),
            ));
        }
        if only_exempt(&path) {
            return Err(invalid(
                "path",
                format!(
                    "path '{path}' matches only routes that are never faulted (/_pcq/admin/..., \
                     /_pcq/health, /_pcq/ready, /_pcq/openapi.json, /_pcq/metrics), so the fault \
                     would never fire."
                ),
            ));
        }

        let partner = match object.get_str("partner")? {
            None => None,
            Some(raw) => Some(pcq_core::ids::parse_guid(raw).ok_or_else(|| {
                invalid(
                    "partner",
                    format!(
                        "partner '{}' is not a GUID; give the partner tenant id whose requests \
                         the fault applies to, or leave it out for every caller.",
                        raw.chars().take(80).collect::<String>()
                    ),
                )
            })?),
        };

        let action = match object.get("status")? {
            None => None,
            Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("reset") => Some(Action::Reset),
            Some(value) => {
                let code = match value {
                    Value::Number(n) => n.as_u64(),
                    Value::String(s) => s.trim().parse::<u64>().ok(),
                    _ => None,
                };
                match code {
                    Some(code @ 400..=599) => Some(Action::Status(code as u16)),
                    _ => {
                        return Err(invalid(
                            "status",
                            format!(
                                "status must be an HTTP error status from 400 to 599 (such as \
                                 429, 500 or 503) or \"reset\" to close the connection without \
                                 answering, not {}.",
                                shown(value)
                            ),
                        ));
                    }
                }
            }
        };

        let retry_after_seconds = whole(
            &object,
            "retryAfterSeconds",
            1,
            MAX_RETRY_AFTER_SECONDS,
            "the Retry-After of the answer, in seconds",
        )?;
        if retry_after_seconds.is_some() && !matches!(action, Some(Action::Status(_))) {
            return Err(invalid(
                "retryAfterSeconds",
                "retryAfterSeconds goes with an answered status (such as 429 or 503); a fault \
                 that closes the connection or only delays sends no Retry-After."
                    .to_owned(),
            ));
        }
        let delay_ms = whole(
            &object,
            "delayMs",
            0,
            MAX_DELAY_MS,
            "how long the answer is held back, in milliseconds",
        )?
        .unwrap_or(0);
        if action.is_none() && delay_ms == 0 {
            return Err(ApiFault::invalid_input(
                "A fault needs a status (400 to 599, or \"reset\" to close the connection), a \
                 delayMs, or both: this one would change nothing.",
            )
            .with_param("field", "status"));
        }

        let probability = match object.get("probability")? {
            None => 1.0,
            Some(value) => match value.as_f64() {
                Some(p) if (0.0..=1.0).contains(&p) => p,
                _ => {
                    return Err(invalid(
                        "probability",
                        format!(
                            "probability must be a number from 0 to 1 (the chance that a \
                             matching request is faulted), not {}.",
                            shown(value)
                        ),
                    ));
                }
            },
        };
        let count = whole(
            &object,
            "count",
            1,
            u64::from(u32::MAX),
            "how many times the fault fires before it is removed",
        )?;
        let seed = whole(
            &object,
            "seed",
            0,
            i64::MAX as u64,
            "the seed that makes probability repeatable",
        )?;
        let when = match object.get_str("when")? {
            None => When::Before,
            Some(raw) if raw.trim().eq_ignore_ascii_case("before") => When::Before,
            Some(raw) if raw.trim().eq_ignore_ascii_case("after") => When::After,
            Some(raw) => {
                return Err(invalid(
                    "when",
                    format!(
                        "when must be \"before\" (the request never reaches pcq's logic) or \
                         \"after\" (the request takes effect, then its answer is lost), not \
                         '{}'.",
                        raw.chars().take(20).collect::<String>()
                    ),
                ));
            }
        };
        Ok(FaultSpec {
            method,
            path,
            partner,
            action,
            retry_after_seconds,
            delay_ms,
            probability,
            count,
            seed,
            when,
        })
    }

    /// The row to store.
    pub fn into_row(self, id: Uuid, now: Timestamp) -> FaultRow {
        let count = self.count.map(|n| n as i64);
        FaultRow {
            id,
            method: self.method,
            path: self.path,
            partner_tenant_id: self.partner,
            status: self.action.map(Action::stored),
            retry_after_seconds: self.retry_after_seconds.map(|s| s as i64),
            delay_ms: self.delay_ms as i64,
            probability: self.probability.to_string(),
            count,
            remaining: count,
            seed: self.seed.map(|s| s as i64),
            fire_when: self.when.as_str().to_owned(),
            fired: 0,
            created_at: now,
        }
    }
}

/// Whether every path `glob` matches is exempt from faults.
fn only_exempt(glob: &str) -> bool {
    let literal_end = glob.find(['*', '?', '[', '{', '\\']).unwrap_or(glob.len());
    let literal = &glob[..literal_end];
    if literal_end == glob.len() {
        return is_exempt(literal);
    }
    literal.starts_with("/_pcq/admin/")
}

/// A fault as the API shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FaultView {
    /// Its id.
    pub id: Uuid,
    /// The method it matches, or `*` for any.
    pub method: String,
    /// The glob the request path must match.
    pub path: String,
    /// The partner tenant whose (authenticated) requests it matches; null for every request.
    pub partner: Option<Uuid>,
    /// The status answered, `"reset"` (the connection is closed without an answer), or null
    /// (the answer is only delayed).
    pub status: Option<StatusView>,
    /// The `Retry-After` of the answer, in seconds (a 429 without one sends 1).
    pub retry_after_seconds: Option<u64>,
    /// How long the answer is held back, in milliseconds.
    pub delay_ms: u64,
    /// The chance that a matching request is faulted.
    pub probability: f64,
    /// How many times it fires in all; null when unlimited.
    pub count: Option<u64>,
    /// The seed that makes `probability` repeatable; null when random.
    pub seed: Option<u64>,
    /// `before` (the request never reaches pcq's logic) or `after` (it takes effect, then its
    /// answer is replaced).
    pub when: String,
    /// How many times it has fired.
    pub fired: u64,
    /// How many times it may still fire; null when unlimited.
    pub remaining: Option<u64>,
    /// When it was added (pcq's clock, RFC 3339).
    pub created_at: String,
}

/// A fault's status: a number, or `"reset"`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum StatusView {
    /// The HTTP status answered (400 to 599).
    Code(u16),
    /// The connection is closed without an answer.
    Reset(ResetWord),
}

/// The word `reset`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ResetWord {
    /// Close the connection.
    Reset,
}

impl FaultView {
    /// How `row` is shown.
    pub fn of(row: &FaultRow) -> FaultView {
        let unsigned = |n: i64| u64::try_from(n).unwrap_or(0);
        FaultView {
            id: row.id,
            method: row.method.clone(),
            path: row.path.clone(),
            partner: row.partner_tenant_id,
            status: row
                .status
                .as_deref()
                .and_then(Action::parse_stored)
                .map(|a| match a {
                    Action::Status(code) => StatusView::Code(code),
                    Action::Reset => StatusView::Reset(ResetWord::Reset),
                }),
            retry_after_seconds: row.retry_after_seconds.map(unsigned),
            delay_ms: unsigned(row.delay_ms),
            probability: row.probability.parse().unwrap_or(1.0),
            count: row.count.map(unsigned),
            seed: row.seed.map(unsigned),
            when: row.fire_when.clone(),
            fired: unsigned(row.fired),
            remaining: row.remaining.map(unsigned),
            created_at: row.created_at.to_rfc3339(),
        }
    }
}

/// A uniformly distributed number in `[0, 1)` for the `n`-th matching request under `seed`:
/// SplitMix64's output function over `seed` and `n`. Written out here rather than taken from an
/// RNG crate because it must give the same numbers in every pcq version and on every platform
/// (rand's small RNGs promise neither), and a seed's repeatability is the point.
pub fn unit(seed: u64, n: u64) -> f64 {
    let mut z = seed
        .wrapping_add(n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    // The top 53 bits, as a double in [0, 1).
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// One fault of a node's copy, ready to match.
#[derive(Debug)]
pub struct Rule {
    /// Its id (the `x-pcq-fault` header of what it fires on).
    pub id: Uuid,
    method: Option<axum::http::Method>,
    glob: GlobMatcher,
    /// Only requests authenticated as this partner.
    pub partner: Option<Uuid>,
    /// What it does to the answer (none: it only delays).
    pub action: Option<Action>,
    /// The answer's `Retry-After`.
    pub retry_after_seconds: Option<u64>,
    /// How long the answer is held back.
    pub delay: Duration,
    probability: f64,
    seed: u64,
    /// Before or after the handler.
    pub when: When,
    /// How many requests this node has matched to it (kept while the fault is unchanged).
    matched: Arc<AtomicU64>,
}

impl Rule {
    fn from_row(row: &FaultRow, previous: Option<&Rule>) -> Option<Rule> {
        let glob = matcher(&row.path).ok()?;
        let method = match row.method.as_str() {
            "*" => None,
            m => Some(axum::http::Method::from_bytes(m.as_bytes()).ok()?),
        };
        let seed = match (row.seed, previous) {
            (Some(seed), _) => seed as u64,
            (None, Some(previous)) => previous.seed,
            (None, None) => {
                let mut bytes = [0u8; 8];
                getrandom::fill(&mut bytes).ok()?;
                u64::from_le_bytes(bytes)
            }
        };
        Some(Rule {
            id: row.id,
            method,
            glob,
            partner: row.partner_tenant_id,
            action: row.status.as_deref().and_then(Action::parse_stored),
            retry_after_seconds: row.retry_after_seconds.map(|s| s.max(0) as u64),
            delay: Duration::from_millis(row.delay_ms.max(0) as u64),
            probability: row.probability.parse().unwrap_or(1.0),
            seed,
            when: match row.fire_when.as_str() {
                "after" => When::After,
                _ => When::Before,
            },
            matched: previous.map_or_else(|| Arc::new(AtomicU64::new(0)), |p| p.matched.clone()),
        })
    }

    /// Whether the rule applies to a request with this method and path (partner aside).
    pub fn matches(&self, method: &axum::http::Method, path: &str) -> bool {
        self.method.as_ref().is_none_or(|m| m == method) && self.glob.is_match(path)
    }

    /// Counts a matching request and decides by the probability whether it is faulted.
    pub fn roll(&self) -> bool {
        if self.probability >= 1.0 {
            return true;
        }
        let n = self.matched.fetch_add(1, Ordering::Relaxed);
        unit(self.seed, n) < self.probability
    }

    /// Spends one firing in the store: `false` when the fault is gone or used up (on any
    /// node), or the store cannot say (the request then goes on unfaulted).
    pub async fn spend(&self, pipeline: &Pipeline) -> bool {
        match pipeline.write(FireFault(self.id)).await {
            Ok(fired) => fired,
            Err(e) => {
                tracing::warn!(fault = %self.id, error = %e, "could not record a fault firing");
                false
            }
        }
    }
}

/// The faults a node applies: the stored version they were read at (`None` before the first
/// read; `Some(None)` when no fault was ever stored) and the rules made from them.
#[derive(Debug, Default)]
struct Copy {
    version: Option<Option<String>>,
    rules: Vec<Arc<Rule>>,
}

/// This node's copy of the stored faults.
#[derive(Debug, Default)]
pub struct FaultSet {
    copy: ArcSwap<Copy>,
    reloading: tokio::sync::Mutex<()>,
}

impl FaultSet {
    /// An empty set.
    pub fn new() -> Self {
        FaultSet::default()
    }

    /// The rules that may apply to a request with this method and path, oldest first; empty
    /// for exempt paths. One atomic load when there are no faults.
    pub fn candidates(&self, method: &axum::http::Method, path: &str) -> Vec<Arc<Rule>> {
        let copy = self.copy.load();
        if copy.rules.is_empty() || is_exempt(path) {
            return Vec::new();
        }
        copy.rules
            .iter()
            .filter(|rule| rule.matches(method, path))
            .cloned()
            .collect()
    }

    /// Takes up the stored faults if their version differs from the copy's.
    pub async fn refresh(&self, pipeline: &Pipeline) -> Result<(), Error> {
        self.load(pipeline, false).await
    }

    /// Reads the stored faults again, whatever the version.
    pub async fn reload(&self, pipeline: &Pipeline) -> Result<(), Error> {
        self.load(pipeline, true).await
    }

    async fn load(&self, pipeline: &Pipeline, always: bool) -> Result<(), Error> {
        // One load at a time, so that an older read never replaces a newer one.
        let _one = self.reloading.lock().await;
        let seen = self.copy.load().version.clone();
        let stored = pipeline
            .read(StoredFaults {
                seen: if always { None } else { seen.clone() },
            })
            .await?;
        let Some((version, rows)) = stored else {
            return Ok(());
        };
        let previous = self.copy.load();
        let rules = rows
            .iter()
            .filter_map(|row| {
                let before = previous.rules.iter().find(|r| r.id == row.id);
                let rule = Rule::from_row(row, before.map(|r| &**r));
                if rule.is_none() {
                    tracing::warn!(fault = %row.id, "a stored fault cannot be applied");
                }
                rule.map(Arc::new)
            })
            .collect();
        self.copy.store(Arc::new(Copy {
            version: Some(version),
            rules,
        }));
        Ok(())
    }
}

/// The stored faults and their version, unless the version is the one `seen` (`None` then;
/// a `seen` of `None` reads them whatever the version).
#[derive(Clone)]
pub struct StoredFaults {
    seen: Option<Option<String>>,
}

impl Op for StoredFaults {
    type Output = Option<(Option<String>, Vec<FaultRow>)>;
    const BRIEF_READ: bool = true;

    async fn run(self, tx: &mut Tx<'_>) -> Result<Self::Output, Error> {
        let version = tx.faults_version().await?;
        if self.seen.as_ref() == Some(&version) {
            return Ok(None);
        }
        Ok(Some((version, tx.faults().await?)))
    }
}

/// Spends one firing of a fault (see [`Tx::fire_fault`]).
#[derive(Clone)]
pub struct FireFault(pub Uuid);

impl Op for FireFault {
    type Output = bool;
    // The one decision is a conditional update.
    const ISOLATION: crate::store::Isolation = crate::store::Isolation::ReadCommitted;

    async fn run(self, tx: &mut Tx<'_>) -> Result<bool, Error> {
        Ok(tx.fire_fault(self.0).await?)
    }
}

/// Adds a fault.
#[derive(Clone)]
pub struct AddFault(pub FaultRow);

impl Op for AddFault {
    type Output = FaultView;

    async fn run(self, tx: &mut Tx<'_>) -> Result<FaultView, Error> {
        tx.insert_fault(&self.0).await?;
        Ok(FaultView::of(&self.0))
    }
}

/// Every stored fault, oldest first.
#[derive(Clone)]
pub struct ListFaults;

impl Op for ListFaults {
    type Output = Vec<FaultView>;
    const BRIEF_READ: bool = true;

    async fn run(self, tx: &mut Tx<'_>) -> Result<Vec<FaultView>, Error> {
        Ok(tx.faults().await?.iter().map(FaultView::of).collect())
    }
}

/// Removes one fault (404 when there is none with that id).
#[derive(Clone)]
pub struct RemoveFault(pub Uuid);

impl Op for RemoveFault {
    type Output = ();

    async fn run(self, tx: &mut Tx<'_>) -> Result<(), Error> {
        if tx.delete_fault(self.0).await? {
            Ok(())
        } else {
            Err(ApiFault::new(
                404,
                pcq_core::fault::codes::NOT_FOUND,
                "FaultNotFound",
                format!(
                    "There is no fault {}: it was removed, used up its count, or never \
                     existed. GET /_pcq/admin/faults lists the faults in force.",
                    self.0
                ),
            )
            .with_param("id", self.0.to_string())
            .into())
        }
    }
}

/// Removes every fault; how many.
#[derive(Clone)]
pub struct ClearFaults;

impl Op for ClearFaults {
    type Output = u64;

    async fn run(self, tx: &mut Tx<'_>) -> Result<u64, Error> {
        Ok(tx.delete_faults(None).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn units_are_repeatable_and_spread() {
        assert_eq!(unit(7, 3), unit(7, 3));
        assert_ne!(unit(7, 3), unit(8, 3));
        let fired = (0..10_000).filter(|n| unit(42, *n) < 0.3).count();
        assert!((2_700..3_300).contains(&fired), "{fired}");
        assert!((0..10_000).all(|n| (0.0..1.0).contains(&unit(n, n))));
    }

    #[test]
    fn globs_stay_within_segments() {
        let m = matcher("/v1/customers/*/qualifications").unwrap();
        assert!(m.is_match("/v1/customers/abc/qualifications"));
        assert!(!m.is_match("/v1/customers/a/b/qualifications"));
        assert!(!m.is_match("/v1/customers/abc/qualifications/x"));
        assert!(
            matcher("/**")
                .unwrap()
                .is_match("/v1/customers/a/qualifications")
        );
        assert!(
            matcher("/v1/{customers,auditrecords}")
                .unwrap()
                .is_match("/v1/auditrecords")
        );
    }

    #[test]
    fn exempt_only_globs_are_refused() {
        for path in [
            "/_pcq/admin/faults",
            "/_pcq/admin/*",
            "/_pcq/health",
            "/_pcq/ready",
        ] {
            let fault = FaultSpec::parse(&json!({"path": path, "status": 503})).unwrap_err();
            assert_eq!(fault.parameters["field"], "path", "{path}");
        }
        assert!(FaultSpec::parse(&json!({"path": "/_pcq/*", "status": 503})).is_ok());
    }

    #[test]
    fn every_field_is_checked() {
        let bad = [
            (
                json!({"path": "/x", "status": 503, "method": "FETCH"}),
                "method",
            ),
            (json!({"path": "/x", "status": 399}), "status"),
            (json!({"path": "/x", "status": 600}), "status"),
            (json!({"path": "/x", "status": "teapot"}), "status"),
            (
                json!({"path": "/x", "status": 503, "probability": 1.5}),
                "probability",
            ),
            (
                json!({"path": "/x", "status": 503, "probability": -0.1}),
                "probability",
            ),
            (json!({"path": "/x"}), "status"),
            (json!({"path": "/x", "delayMs": 60_001}), "delayMs"),
            (json!({"path": "/x[", "status": 503}), "path"),
            (json!({"path": "x", "status": 503}), "path"),
            (
                json!({"path": "/x", "status": 503, "colour": "red"}),
                "colour",
            ),
            (json!({"path": "/x", "status": 503, "count": 0}), "count"),
            (
                json!({"path": "/x", "status": 503, "when": "during"}),
                "when",
            ),
            (
                json!({"path": "/x", "status": 503, "partner": "p"}),
                "partner",
            ),
            (
                json!({"path": "/x", "status": "reset", "retryAfterSeconds": 2}),
                "retryAfterSeconds",
            ),
        ];
        for (body, field) in bad {
            let fault = FaultSpec::parse(&body).unwrap_err();
            assert_eq!((fault.status, fault.code), (400, 800002), "{body}");
            assert_eq!(
                fault.parameters["field"], field,
                "{body}: {}",
                fault.description
            );
        }
        let spec = FaultSpec::parse(&json!({
            "method": "post", "path": "/v1/customers", "status": "reset", "when": "after",
            "count": 2, "seed": 9, "probability": 0.5, "delayMs": 10
        }))
        .unwrap();
        assert_eq!(spec.method, "POST");
        assert_eq!(spec.action, Some(Action::Reset));
        assert_eq!(spec.when, When::After);
    }
}
