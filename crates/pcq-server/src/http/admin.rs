//! Sandbox controls under `/_pcq/admin` (role `Pcq.Admin`) and the node's own endpoints.

use axum::extract::{Path, State};
use pcq_core::wire::ValidationCode;
use pcq_core::{ApiFault, NewValidationCode};
use serde_json::json;

use super::extract::{AdminCaller, Ctx, JsonBody, QueryParams, partner_tenant_id};
use super::openapi::HealthBody;
use crate::AppState;
use crate::error::Error;
use crate::service::validation_codes::IssueValidationCode;
use crate::store::{Op, Reply, Tx};

/// Issues a GCC validation code to a partner (sandbox control).
#[utoipa::path(
    post,
    path = "/_pcq/admin/partners/{partner_tenant_id}/validation-codes",
    tag = "sandbox",
    params(("partner_tenant_id" = uuid::Uuid, Path, description = "The partner receiving the code")),
    request_body = NewValidationCode,
    responses((status = 201, description = "The new validation code", body = ValidationCode)),
    security(("bearer" = []))
)]
pub async fn issue_validation_code(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Ctx(ctx): Ctx,
    Path(raw_partner): Path<String>,
    body: JsonBody,
) -> Result<Reply, Error> {
    let partner = partner_tenant_id(&raw_partner)?;
    let route = format!("/_pcq/admin/partners/{partner}/validation-codes");
    let pipeline = &state.pipeline;
    let write = ctx.client_write(caller.tenant_id, "POST", route, "", &body.raw);
    let op = NewValidationCode::parse(&body.value).map(|code| IssueValidationCode {
        partner,
        code,
        now: pipeline.now(),
    });
    pipeline.request(write, op).await
}

/// The query of a reset.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResetQuery {
    /// Only this partner's data (its tenant id); without it, every partner's data, the clock
    /// and the vetting policy.
    #[param(value_type = Option<uuid::Uuid>)]
    pub partner: Option<String>,
}

/// Resets the sandbox: removes every customer, qualification and its history, validation code,
/// vetting job, audit record, webhook registration and event, idempotency record and injected
/// fault; returns the clock and the vetting policy to the configured ones; loads the node's seed
/// again (sandbox control). Keys stay, so issued tokens keep working. With `partner`, only that partner's data
/// and the faults scoped to it are removed (and its part of the seed loaded again).
#[utoipa::path(
    post,
    path = "/_pcq/admin/reset",
    tag = "sandbox",
    params(ResetQuery),
    responses((status = 200, description = "What was removed", body = crate::service::reset::ResetOutcome)),
    security(("bearer" = []))
)]
pub async fn reset(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    query: QueryParams,
) -> Result<Reply, Error> {
    let partner = query.partner()?;
    Reply::ok(&reset_sandbox(&state, partner).await?)
}

/// Resets the sandbox (everything, or `partner`'s data): for the API and the web console.
pub async fn reset_sandbox(
    state: &AppState,
    partner: Option<uuid::Uuid>,
) -> Result<crate::service::reset::ResetOutcome, Error> {
    let now = match partner {
        Some(_) => state.pipeline.now(),
        // The clock goes back to the system's time in the same transaction.
        None => pcq_core::time::Timestamp::from_datetime(time::OffsetDateTime::now_utc()),
    };
    let outcome = match (partner, state.seed_state.get()) {
        // A node started with a state document puts the whole store back to that document:
        // the load removes what a reset removes and sets the document's clock and policy, in
        // one transaction.
        (None, Some(path)) => {
            let checked = super::state::check_state_file(path).await.map_err(|e| {
                Error::Internal(format!("the state document pcq started with: {e:#}"))
            })?;
            let loaded = super::state::load_checked_file(state, path, checked).await?;
            crate::service::reset::ResetOutcome {
                removed: loaded.removed,
                partner: None,
                seeded: true,
            }
        }
        _ => {
            state
                .pipeline
                .write(crate::service::reset::Reset {
                    partner,
                    seed: state.seed.get().cloned(),
                    dev_partner: state.dev_partner,
                    now,
                })
                .await?
        }
    };
    // The request journal follows: a partner's entries go, or every entry. Other nodes empty
    // theirs when they take up the reset of the clock (its epoch), which this node does now.
    match partner {
        Some(partner) => {
            state.journal.remove_partner(partner);
        }
        None => {
            if let Err(e) = crate::settings::refresh(&state.pipeline).await {
                tracing::warn!(error = %e, "could not read the clock after a reset");
            }
            state.journal.reset();
        }
    }
    Ok(outcome)
}

/// What the health and readiness endpoints say.
fn node_status(state: &AppState, status: &str) -> Result<Reply, Error> {
    Reply::ok(&json!({
        "status": status,
        "version": env!("CARGO_PKG_VERSION"),
        "store": state.pipeline.store.backend_name(),
    }))
}

/// Liveness: the process serves HTTP.
#[utoipa::path(
    get,
    path = "/_pcq/health",
    tag = "node",
    responses((status = 200, description = "The node is up", body = HealthBody))
)]
pub async fn health(State(state): State<AppState>) -> Result<Reply, Error> {
    node_status(&state, "ok")
}

/// Readiness: the node can read its store.
#[utoipa::path(
    get,
    path = "/_pcq/ready",
    tag = "node",
    responses(
        (status = 200, description = "The node can serve requests", body = HealthBody),
        (status = 503, description = "The store is not reachable", body = pcq_core::fault::Envelope),
    )
)]
pub async fn ready(State(state): State<AppState>) -> Result<Reply, Error> {
    match state.pipeline.read(Ping).await {
        Ok(()) => node_status(&state, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(ApiFault::service_unavailable("its store does not answer").into())
        }
    }
}

/// A trivial read, to see that the store answers.
#[derive(Clone)]
struct Ping;

impl Op for Ping {
    type Output = ();
    const BRIEF_READ: bool = true;

    async fn run(self, tx: &mut Tx<'_>) -> Result<(), Error> {
        tx.clock_offset().await?;
        Ok(())
    }
}

/// pcq's clock.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClockView {
    /// pcq's current time (RFC 3339).
    pub now: String,
    /// How far pcq's time is ahead of the system's, e.g. `3d`.
    pub offset: String,
    /// The same in seconds.
    pub offset_seconds: i64,
}

fn clock_view(state: &AppState) -> ClockView {
    let clock = &state.pipeline.clock;
    let offset = clock.offset_micros();
    ClockView {
        now: clock.now().to_rfc3339(),
        offset: pcq_core::vetting::Duration::from_micros(offset).to_string(),
        offset_seconds: offset / 1_000_000,
    }
}

/// pcq's clock (sandbox control).
#[utoipa::path(
    get,
    path = "/_pcq/admin/clock",
    tag = "sandbox",
    responses((status = 200, description = "The clock", body = ClockView)),
    security(("bearer" = []))
)]
pub async fn get_clock(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
) -> Result<Reply, Error> {
    Reply::ok(&clock_view(&state))
}

/// Moves pcq's clock forward: time-based vetting decisions and webhook retries fall due without
/// waiting (sandbox control).
#[utoipa::path(
    post,
    path = "/_pcq/admin/clock",
    tag = "sandbox",
    request_body = pcq_core::schema::AdvanceBody,
    responses((status = 200, description = "The clock after the move", body = ClockView)),
    security(("bearer" = []))
)]
pub async fn advance_clock(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    body: JsonBody,
) -> Result<Reply, Error> {
    let serde_json::Value::Object(map) = &body.value else {
        return Err(ApiFault::invalid_input(
            "The body must be an object such as {\"advance\": \"72h\"}.",
        )
        .into());
    };
    let raw = pcq_core::input::LooseObject::new(map)
        .get_str("advance")?
        .ok_or_else(|| ApiFault::property_required("advance", ", e.g. \"72h\"."))?;
    let by = pcq_core::vetting::Duration::parse(raw).map_err(|e| {
        ApiFault::invalid_input(format!("advance: {e}.")).with_param("field", "advance")
    })?;
    state
        .pipeline
        .write(crate::service::clock::Advance::from_now(by, raw))
        .await?;
    Reply::ok(&clock_view(&state))
}

/// The vetting policy in force.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyView {
    /// `manual`, `immediate`, `after`, `after_reads` or `domain_rules`.
    pub policy: String,
    /// The delay of `after`.
    pub after: String,
    /// The reads of `after_reads`.
    pub after_reads: u32,
    /// `approve`, `deny` or `domain_rules`.
    pub outcome: String,
    /// The reason of the `deny` outcome.
    pub deny_reason: String,
    /// Suffixes the domain rules treat as academic.
    pub academic_suffixes: Vec<String>,
    /// Whether GCC requests are vetted too.
    pub gcc_review: bool,
    /// `configured` (from the configuration) or `runtime` (set through this API).
    pub source: String,
}

fn policy_view(state: &AppState) -> PolicyView {
    let cell = &state.pipeline.policy;
    let p = cell.get();
    PolicyView {
        policy: p.policy.as_str().to_owned(),
        after: p.after.to_string(),
        after_reads: p.after_reads,
        outcome: p.outcome.as_str().to_owned(),
        deny_reason: p.deny_reason.clone(),
        academic_suffixes: p.academic_suffixes.clone(),
        gcc_review: p.gcc_review,
        source: if cell.is_overridden() {
            "runtime"
        } else {
            "configured"
        }
        .to_owned(),
    }
}

/// The vetting policy in force (sandbox control).
#[utoipa::path(
    get,
    path = "/_pcq/admin/vetting-policy",
    tag = "sandbox",
    responses((status = 200, description = "The policy", body = PolicyView)),
    security(("bearer" = []))
)]
pub async fn get_policy(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
) -> Result<Reply, Error> {
    Reply::ok(&policy_view(&state))
}

/// Sets the vetting policy at run time: the given settings on top of the configured policy,
/// e.g. `{"policy": "after", "after": "72h"}` or `{"policy": "domain_rules"}`. Pending
/// decisions are rescheduled at once.
#[utoipa::path(
    put,
    path = "/_pcq/admin/vetting-policy",
    tag = "sandbox",
    request_body = pcq_core::schema::PolicyChangesBody,
    responses((status = 200, description = "The policy now in force", body = PolicyView)),
    security(("bearer" = []))
)]
pub async fn put_policy(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    body: JsonBody,
) -> Result<Reply, Error> {
    let policy = state
        .pipeline
        .policy
        .configured()
        .with_changes(&body.value)
        .map_err(|e| ApiFault::invalid_input(format!("The vetting policy is not valid: {e}.")))?;
    set_policy(&state, Some(policy)).await
}

/// Returns to the configured vetting policy.
#[utoipa::path(
    delete,
    path = "/_pcq/admin/vetting-policy",
    tag = "sandbox",
    responses((status = 200, description = "The policy now in force", body = PolicyView)),
    security(("bearer" = []))
)]
pub async fn delete_policy(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
) -> Result<Reply, Error> {
    set_policy(&state, None).await
}

async fn set_policy(
    state: &AppState,
    stored: Option<pcq_core::vetting::VettingPolicy>,
) -> Result<Reply, Error> {
    state
        .pipeline
        .write(crate::service::vetting::SetPolicy(stored))
        .await?;
    Reply::ok(&policy_view(state))
}

/// Runs this node's worker until nothing is due: first the pruning of expired records
/// (`[retention]`, on pcq's clock), then vetting decisions, then one attempt of every due
/// webhook delivery (sandbox control; useful with `--no-worker` for deterministic tests).
#[utoipa::path(
    post,
    path = "/_pcq/admin/worker/drain",
    tag = "sandbox",
    responses((status = 200, description = "What was done", body = crate::worker::Progress)),
    security(("bearer" = []))
)]
pub async fn drain_worker(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
) -> Result<Reply, Error> {
    // The drain runs on its own: a request that times out does not cut it short.
    let worker = crate::worker::Worker::new(state.clone());
    let progress = tokio::spawn(async move { worker.drain().await })
        .await
        .map_err(|_| crate::store::StoreError::Panicked)??;
    Reply::ok(&progress)
}
