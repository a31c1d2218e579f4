//! Throttling: a token bucket per partner tenant and route family, as Partner Center limits
//! its API ("500 requests per minute per tenant identifier" for customer resources, 2 per minute
//! for posting a test webhook event).
//!
//! Buckets are checked once the caller is authenticated (so the partner tenant is known and
//! unauthenticated requests get their 401 first) and before the handler does any work. A request
//! over the limit gets 429 with the error envelope and a `Retry-After` header in whole seconds.
//!
//! The buckets live in this node's memory: behind a load balancer with N nodes a partner may get
//! up to N times the configured rate. Their time is monotonic time plus the sandbox clock's
//! offset, so advancing pcq's clock refills them like it makes any other time-based event due.
//! Buckets of partners that stopped calling are dropped by [`keep_tidy`].

use std::time::{Duration, Instant};

use axum::extract::MatchedPath;
use axum::http::Method;
use axum::http::request::Parts;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use pcq_core::ApiFault;
use uuid::Uuid;

use crate::AppState;
use crate::auth::Principal;
use crate::clock::Clock;
use crate::config::{RouteQuota, ThrottleConfig};

/// The largest sandbox-clock advance the buckets follow (about a century); beyond it they keep
/// running on monotonic time alone.
const MAX_FOLLOWED_OFFSET_MICROS: i64 = 100 * 366 * 24 * 3600 * 1_000_000;

/// How many partners a family tracks before it drops idle ones without waiting for the timer.
const TIDY_ABOVE_PARTNERS: usize = 65_536;

/// How often [`keep_tidy`] drops the buckets of partners that stopped calling.
const TIDY_INTERVAL: Duration = Duration::from_secs(60);

/// A group of routes that shares one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteFamily {
    /// Customer resources: `/v1/customers` and everything under it (qualifications included),
    /// except validation codes.
    Customers,
    /// `GET /v1/customers/all/validations`.
    ValidationCodes,
    /// `/v1/auditrecords`.
    Audit,
    /// `/webhooks/v1/...`, except posting a validation event.
    Webhooks,
    /// `POST /webhooks/v1/registration/validationEvents` (the test-created event).
    WebhookTestEvents,
    /// Reviewer routes: `/_pcq/review/...` and qualification history.
    Review,
    /// Sandbox controls: `/_pcq/admin/...`.
    Admin,
}

impl RouteFamily {
    /// Every family, in configuration order.
    pub const ALL: [RouteFamily; 7] = [
        RouteFamily::Customers,
        RouteFamily::ValidationCodes,
        RouteFamily::Audit,
        RouteFamily::Webhooks,
        RouteFamily::WebhookTestEvents,
        RouteFamily::Review,
        RouteFamily::Admin,
    ];

    /// The family of a route, from its method and its matched path (the route template, such
    /// as `/v1/customers/{customer_tenant_id}`), or `None` for routes that are not throttled.
    pub fn of(method: &Method, path: &str) -> Option<RouteFamily> {
        let under = |prefix: &str| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        Some(if under("/v1/customers/all/validations") {
            RouteFamily::ValidationCodes
        } else if under("/v1/customers") {
            RouteFamily::Customers
        } else if under("/v1/auditrecords") {
            RouteFamily::Audit
        } else if path == "/webhooks/v1/registration/validationEvents" && method == Method::POST {
            RouteFamily::WebhookTestEvents
        } else if under("/webhooks") {
            RouteFamily::Webhooks
        } else if under("/_pcq/review") || under("/_pcq/customers") {
            RouteFamily::Review
        } else if under("/_pcq/admin") {
            RouteFamily::Admin
        } else {
            return None;
        })
    }

    /// The family's key in `[throttle]`.
    pub fn key(self) -> &'static str {
        match self {
            RouteFamily::Customers => "customers",
            RouteFamily::ValidationCodes => "validation_codes",
            RouteFamily::Audit => "audit",
            RouteFamily::Webhooks => "webhooks",
            RouteFamily::WebhookTestEvents => "webhook_test_events",
            RouteFamily::Review => "review",
            RouteFamily::Admin => "admin",
        }
    }

    /// What the family covers, for people.
    fn describe(self) -> &'static str {
        match self {
            RouteFamily::Customers => "customer resources (/v1/customers and below)",
            RouteFamily::ValidationCodes => "validation codes (/v1/customers/all/validations)",
            RouteFamily::Audit => "audit records (/v1/auditrecords)",
            RouteFamily::Webhooks => "webhook registration (/webhooks/v1)",
            RouteFamily::WebhookTestEvents => {
                "posting test-created validation events (/webhooks/v1/registration/validationEvents)"
            }
            RouteFamily::Review => "reviewer routes",
            RouteFamily::Admin => "sandbox controls (/_pcq/admin)",
        }
    }

    fn quota(self, config: &ThrottleConfig) -> RouteQuota {
        match self {
            RouteFamily::Customers => config.customers,
            RouteFamily::ValidationCodes => config.validation_codes,
            RouteFamily::Audit => config.audit,
            RouteFamily::Webhooks => config.webhooks,
            RouteFamily::WebhookTestEvents => config.webhook_test_events,
            RouteFamily::Review => config.review,
            RouteFamily::Admin => config.admin,
        }
    }
}

/// The buckets' time: monotonic time since the node started plus the sandbox clock's offset
/// (its forward moves: a reset of the sandbox clock does not take it back), in nanoseconds.
#[derive(Debug, Clone)]
pub struct BucketClock {
    started: Instant,
    sandbox: Clock,
}

impl BucketClock {
    /// Time since `Instant::now()`, moved forward with `sandbox`.
    pub fn new(sandbox: Clock) -> Self {
        BucketClock {
            started: Instant::now(),
            sandbox,
        }
    }
}

impl governor::clock::Clock for BucketClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let real = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let followed = self
            .sandbox
            .forward_micros()
            .clamp(0, MAX_FOLLOWED_OFFSET_MICROS)
            .unsigned_abs()
            * 1_000;
        Nanos::from(real.saturating_add(followed))
    }
}

type Buckets = RateLimiter<Uuid, DashMapStateStore<Uuid>, BucketClock, NoOpMiddleware<Nanos>>;

/// One family's limit and buckets.
struct Limit {
    family: RouteFamily,
    quota: RouteQuota,
    buckets: Buckets,
}

/// Every family's buckets.
pub struct Throttle {
    clock: BucketClock,
    limits: Vec<Limit>,
}

impl Throttle {
    /// The throttle the configuration describes (with no limits when it is switched off).
    pub fn new(config: &ThrottleConfig, sandbox: Clock) -> Self {
        let clock = BucketClock::new(sandbox);
        let limits = if config.enabled {
            RouteFamily::ALL
                .into_iter()
                .filter_map(|family| {
                    let quota = family.quota(config);
                    let rate = quota.requests_per_minute;
                    if rate == 0 {
                        return None;
                    }
                    let capacity = std::num::NonZeroU32::new(quota.capacity())?;
                    let period = Duration::from_secs(60) / rate;
                    let governed = Quota::with_period(period)?.allow_burst(capacity);
                    Some(Limit {
                        family,
                        quota,
                        buckets: RateLimiter::dashmap_with_clock(governed, clock.clone()),
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        Throttle { clock, limits }
    }

    /// Takes a token from `partner`'s bucket for `family`; a 429 fault when it is empty.
    pub fn admit(&self, family: RouteFamily, partner: Uuid) -> Result<(), ApiFault> {
        let Some(limit) = self.limits.iter().find(|l| l.family == family) else {
            return Ok(());
        };
        let refused = match limit.buckets.check_key(&partner) {
            Ok(()) => return Ok(()),
            Err(refused) => refused,
        };
        if limit.buckets.len() > TIDY_ABOVE_PARTNERS {
            limit.buckets.retain_recent();
        }
        let wait = refused.wait_time_from(self.now());
        let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let quota = limit.quota;
        let mut what = format!(
            "{} requests per minute for {}",
            quota.requests_per_minute,
            family.describe()
        );
        if quota.capacity() != quota.requests_per_minute {
            what.push_str(&format!(" (at most {} at once)", quota.capacity()));
        }
        what.push_str(" on this pcq node");
        tracing::debug!(%partner, family = family.key(), retry_after, "throttled");
        Err(ApiFault::too_many_requests(
            &partner.to_string(),
            family.key(),
            &what,
            retry_after,
        ))
    }

    fn now(&self) -> Nanos {
        governor::clock::Clock::now(&self.clock)
    }

    /// Drops the buckets that are full again (partners that stopped calling); a later request
    /// of theirs starts with a full bucket, as it would have anyway.
    pub fn tidy(&self) {
        for limit in &self.limits {
            limit.buckets.retain_recent();
            limit.buckets.shrink_to_fit();
        }
    }

    /// How many partners' buckets are held, over all families.
    pub fn tracked(&self) -> usize {
        self.limits.iter().map(|l| l.buckets.len()).sum()
    }
}

/// Throttles an authenticated request: finds its route family from the matched route (or the
/// path) and takes a token from the partner's bucket. Called by the authenticating extractors
/// once the principal is known.
pub fn admit(parts: &Parts, state: &AppState, principal: &Principal) -> Result<(), ApiFault> {
    let path = parts
        .extensions
        .get::<MatchedPath>()
        .map_or_else(|| parts.uri.path(), MatchedPath::as_str);
    match RouteFamily::of(&parts.method, path) {
        Some(family) => state
            .throttle
            .admit(family, principal.tenant_id)
            .inspect_err(|_| state.metrics.throttled(family.key())),
        None => Ok(()),
    }
}

/// Drops idle partners' buckets every minute until `stop` turns true.
pub async fn keep_tidy(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut every = tokio::time::interval(TIDY_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => state.throttle.tidy(),
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rate: u32, burst: u32) -> ThrottleConfig {
        let quota = RouteQuota {
            requests_per_minute: rate,
            burst,
        };
        let mut config = crate::config::Config::defaults().throttle;
        config.customers = quota;
        config
    }

    #[test]
    fn families_follow_the_route_templates() {
        let get = Method::GET;
        let post = Method::POST;
        for (method, path, family) in [
            (&post, "/v1/customers", Some(RouteFamily::Customers)),
            (
                &get,
                "/v1/customers/{customer_tenant_id}/qualifications",
                Some(RouteFamily::Customers),
            ),
            (
                &get,
                "/v1/customers/all/validations",
                Some(RouteFamily::ValidationCodes),
            ),
            (&get, "/v1/customersx", None),
            (
                &get,
                "/v1/auditrecords/{audit_record_id}",
                Some(RouteFamily::Audit),
            ),
            (
                &post,
                "/webhooks/v1/registration/validationEvents",
                Some(RouteFamily::WebhookTestEvents),
            ),
            (
                &get,
                "/webhooks/v1/registration/validationEvents/{correlation_id}",
                Some(RouteFamily::Webhooks),
            ),
            (
                &post,
                "/webhooks/v1/registration",
                Some(RouteFamily::Webhooks),
            ),
            (&get, "/_pcq/review/queue", Some(RouteFamily::Review)),
            (
                &get,
                "/_pcq/customers/{customer_tenant_id}/qualifications/history",
                Some(RouteFamily::Review),
            ),
            (&post, "/_pcq/admin/clock", Some(RouteFamily::Admin)),
            (&get, "/_pcq/health", None),
        ] {
            assert_eq!(RouteFamily::of(method, path), family, "{method} {path}");
        }
    }

    #[test]
    fn a_bucket_empties_refills_and_is_dropped_when_full_again() {
        let sandbox = Clock::system();
        let throttle = Throttle::new(&config(60, 2), sandbox.clone());
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        throttle.admit(RouteFamily::Customers, a).unwrap();
        throttle.admit(RouteFamily::Customers, a).unwrap();
        let fault = throttle.admit(RouteFamily::Customers, a).unwrap_err();
        assert_eq!((fault.status, fault.code), (429, 950429));
        assert!(fault.is_retryable);
        // One token per second: the next one is due within a second.
        assert_eq!(fault.parameters["retryAfterSeconds"], 1);
        assert!(fault.description.contains("60 requests per minute"));
        assert!(fault.description.contains("at most 2 at once"));
        // Another partner and another family are unaffected.
        throttle.admit(RouteFamily::Customers, b).unwrap();
        throttle.admit(RouteFamily::Audit, a).unwrap();
        assert_eq!(throttle.tracked(), 3);
        // A minute later every bucket is full again, and full buckets are dropped.
        sandbox.set_offset_micros(60_000_000);
        throttle.tidy();
        assert_eq!(throttle.tracked(), 0);
        throttle.admit(RouteFamily::Customers, a).unwrap();
        throttle.admit(RouteFamily::Customers, a).unwrap();
    }

    #[test]
    fn retry_after_is_whole_seconds_until_the_next_token() {
        let throttle = Throttle::new(&config(2, 1), Clock::system());
        let partner = Uuid::new_v4();
        throttle.admit(RouteFamily::Customers, partner).unwrap();
        let fault = throttle.admit(RouteFamily::Customers, partner).unwrap_err();
        let seconds = fault.parameters["retryAfterSeconds"].as_u64().unwrap();
        assert!((29..=30).contains(&seconds), "{seconds}");
    }

    #[test]
    fn zero_rate_and_disabled_throttles_admit_everything() {
        let mut off = config(0, 0);
        let throttle = Throttle::new(&off, Clock::system());
        let partner = Uuid::new_v4();
        for _ in 0..1000 {
            throttle.admit(RouteFamily::Customers, partner).unwrap();
            throttle.admit(RouteFamily::Admin, partner).unwrap();
        }
        off = config(1, 1);
        off.enabled = false;
        let throttle = Throttle::new(&off, Clock::system());
        for _ in 0..1000 {
            throttle.admit(RouteFamily::Customers, partner).unwrap();
        }
        assert_eq!(throttle.tracked(), 0);
    }

    #[test]
    fn huge_sandbox_offsets_do_not_overflow_the_buckets_clock() {
        let sandbox = Clock::system();
        let throttle = Throttle::new(&config(60, 1), sandbox.clone());
        let partner = Uuid::new_v4();
        throttle.admit(RouteFamily::Customers, partner).unwrap();
        sandbox.set_offset_micros(i64::MAX);
        throttle.admit(RouteFamily::Customers, partner).unwrap();
        assert!(throttle.admit(RouteFamily::Customers, partner).is_err());
    }
}
