//! State snapshots (sandbox controls): `GET /_pcq/admin/state` streams the store's state as a
//! document, `PUT /_pcq/admin/state` replaces it with one (`docs/state.md`).

use std::io::Write;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use futures_util::StreamExt;
use pcq_core::ApiFault;
use uuid::Uuid;

use super::extract::{AdminCaller, QueryParams};
use super::fault::Rendered;
use crate::AppState;
use crate::error::Error;
use crate::service::seed::Seed;
use crate::service::state::{
    Document, DumpState, LoadSeed, LoadState, StateFile, StateLoaded, check,
};
use crate::store::{Op, Reply};

/// The path of the state controls.
pub const STATE_PATH: &str = "/_pcq/admin/state";

/// The query of the state controls.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StateQuery {
    /// Only this partner's data (its tenant id); without it, the whole store, with the sandbox
    /// clock and the run-time vetting policy.
    #[param(value_type = Option<uuid::Uuid>)]
    pub partner: Option<String>,
}

/// A state document (`docs/state.md` describes every row's fields).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateDocument {
    /// `pcq-state/1`.
    pub format: String,
    /// The partner whose data this is, or null for the whole store.
    pub partner: Option<Uuid>,
    /// The sandbox clock (whole store only): `{"offsetMicros": N}`.
    #[schema(value_type = Option<Object>)]
    pub clock: Option<serde_json::Value>,
    /// The run-time vetting policy (whole store only; null when the configured one is in force).
    #[schema(value_type = Option<Object>)]
    pub vetting_policy: Option<serde_json::Value>,
    /// Customers.
    #[schema(value_type = Vec<Object>)]
    pub customers: Vec<serde_json::Value>,
    /// Qualifications.
    #[schema(value_type = Vec<Object>)]
    pub qualifications: Vec<serde_json::Value>,
    /// Every step of the qualifications' history.
    #[schema(value_type = Vec<Object>)]
    pub qualification_events: Vec<serde_json::Value>,
    /// GCC validation codes.
    #[schema(value_type = Vec<Object>)]
    pub validation_codes: Vec<serde_json::Value>,
    /// Pending vetting decisions.
    #[schema(value_type = Vec<Object>)]
    pub vetting_jobs: Vec<serde_json::Value>,
    /// Audit records.
    #[schema(value_type = Vec<Object>)]
    pub audit_records: Vec<serde_json::Value>,
    /// Webhook registrations.
    #[schema(value_type = Vec<Object>)]
    pub webhook_registrations: Vec<serde_json::Value>,
    /// The webhook outbox.
    #[schema(value_type = Vec<Object>)]
    pub webhook_deliveries: Vec<serde_json::Value>,
    /// Delivery attempts.
    #[schema(value_type = Vec<Object>)]
    pub webhook_attempts: Vec<serde_json::Value>,
    /// Stored answers of idempotent requests.
    #[schema(value_type = Vec<Object>)]
    pub idempotency_records: Vec<serde_json::Value>,
}

/// Runs an op on a blocking thread: a dump waits (synchronously) for its reader, and a load for
/// its batches, which must not hold up an async worker thread.
async fn on_blocking_thread<T: Send + 'static>(
    work: impl FnOnce(tokio::runtime::Handle) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || work(handle))
        .await
        .map_err(|_| Error::Internal("a state operation panicked".into()))?
}

/// The store's state as a document, written as it is read, in one read snapshot (sandbox
/// control): customers, qualifications with every history step, validation codes, pending
/// vetting decisions, audit records, webhook registrations and the outbox with its attempts,
/// idempotency records; for the whole store also the sandbox clock and the run-time vetting
/// policy. Never keys. With `partner`, only that partner's data.
#[utoipa::path(
    get,
    path = "/_pcq/admin/state",
    tag = "sandbox",
    params(StateQuery),
    responses((status = 200, description = "The state document", body = StateDocument)),
    security(("bearer" = []))
)]
pub async fn get_state(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    query: QueryParams,
) -> Result<Response, Error> {
    let partner = query.partner()?;
    let (out, mut chunks) = tokio::sync::mpsc::channel(4);
    let app = state.clone();
    tokio::task::spawn_blocking(move || {
        let handle = tokio::runtime::Handle::current();
        let failed = out.clone();
        if let Err(e) = handle.block_on(app.pipeline.read(DumpState { partner, out })) {
            tracing::warn!(error = %e, "a state dump failed");
            let cut = std::io::Error::other(format!("the dump failed: {e}"));
            let _ = futures_executor::block_on(failed.send(Err(cut)));
        }
    });
    // The first chunk tells whether the dump could start: until then, a failure is an answer.
    let first = match chunks.recv().await {
        Some(Ok(chunk)) => chunk,
        Some(Err(e)) => return Err(Error::Internal(e.to_string())),
        None => return Err(Error::Internal("the dump ended without output".into())),
    };
    let rest = futures_util::stream::unfold(chunks, |mut chunks| async move {
        chunks.recv().await.map(|item| (item, chunks))
    });
    let body = futures_util::stream::once(async move { Ok(first) }).chain(rest);
    let mut response = Response::new(Body::from_stream(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response.extensions_mut().insert(Rendered);
    Ok(response)
}

/// Spools a request body to a temporary file, refusing one larger than `limit` bytes.
async fn spool(body: Body, limit: u64) -> Result<tempfile::TempPath, Error> {
    let file = tempfile::NamedTempFile::new()
        .map_err(|e| Error::Internal(format!("creating a temporary file: {e}")))?;
    let (file, path) = file.into_parts();
    let mut writer = std::io::BufWriter::with_capacity(1 << 16, file);
    let mut stream = body.into_data_stream();
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiFault::invalid_input(format!("The request body could not be read: {e}."))
        })?;
        total += chunk.len() as u64;
        if total > limit {
            return Err(
                ApiFault::payload_too_large(usize::try_from(limit).unwrap_or(usize::MAX)).into(),
            );
        }
        writer
            .write_all(&chunk)
            .map_err(|e| Error::Internal(format!("spooling the document: {e}")))?;
    }
    writer
        .flush()
        .map_err(|e| Error::Internal(format!("spooling the document: {e}")))?;
    Ok(path)
}

/// Replaces the store's state with a document (sandbox control), in one transaction: removes
/// what a reset removes, then inserts the document's rows, and for the whole store sets the
/// sandbox clock and the run-time vetting policy. With `partner`, only that partner's data is
/// replaced, and a document holding another partner's rows is refused. A seed file
/// (`docs/seed.md`, without `format`) is accepted too. A document that is not valid is refused
/// with 400 naming the JSON path of the problem, and nothing changes. The body may be as large
/// as `limits.max_state_bytes`.
#[utoipa::path(
    put,
    path = "/_pcq/admin/state",
    tag = "sandbox",
    params(StateQuery),
    request_body(content = StateDocument, content_type = "application/json"),
    responses((status = 200, description = "What was loaded and removed", body = StateLoaded)),
    security(("bearer" = []))
)]
pub async fn put_state(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    query: QueryParams,
    body: Body,
) -> Result<Reply, Error> {
    let partner = query.partner()?;
    let path = Arc::new(spool(body, state.config.limits.max_state_bytes).await?);
    let checked_path = Arc::clone(&path);
    let document = on_blocking_thread(move |_| Ok(check(&checked_path, partner)?)).await?;
    let app = state.clone();
    let loaded = match document {
        Document::State(checked) => {
            let op = LoadState {
                partner,
                file: StateFile::Spooled(path),
                checked,
            };
            write_blocking(app, op).await?
        }
        Document::Seed => {
            let text = std::fs::read_to_string(&*path).map_err(|e| {
                ApiFault::invalid_input(format!("The seed is not valid: it is not UTF-8: {e}"))
            })?;
            let seed = Seed::from_json(&text)
                .map_err(|e| ApiFault::invalid_input(format!("The seed is not valid: {e:#}")))?;
            if let Some(partner) = partner
                && let Some(other) = seed.partners(state.dev_partner).find(|p| *p != partner)
            {
                return Err(ApiFault::invalid_input(format!(
                    "The seed is not valid: partners: it holds entries of the partner {other}; \
                     this load replaces only {partner}'s data"
                ))
                .into());
            }
            let op = LoadSeed {
                partner,
                seed,
                dev_partner: state.dev_partner,
                now: match partner {
                    Some(_) => state.pipeline.now(),
                    None => {
                        pcq_core::time::Timestamp::from_datetime(time::OffsetDateTime::now_utc())
                    }
                },
            };
            write_blocking(app, op).await?
        }
    };
    Reply::ok(&loaded)
}

/// Checks the whole-store state document at `path` (a seed file is refused here).
pub(crate) async fn check_state_file(
    path: &std::path::Path,
) -> anyhow::Result<crate::service::state::Checked> {
    use crate::service::state::{Document, check};
    use anyhow::Context as _;
    let owned = path.to_path_buf();
    let document = tokio::task::spawn_blocking(move || check(&owned, None))
        .await
        .context("checking the state document")?
        .map_err(|fault| anyhow::anyhow!(fault.description))?;
    let Document::State(checked) = document else {
        anyhow::bail!("{} is a seed file, not a state document", path.display());
    };
    Ok(checked)
}

/// Replaces the whole store with the checked state document at `path`, in one transaction.
pub(crate) async fn load_checked_file(
    app: &AppState,
    path: &std::path::Path,
    checked: crate::service::state::Checked,
) -> Result<StateLoaded, Error> {
    use crate::service::state::{LoadState, StateFile};
    let op = LoadState {
        partner: None,
        file: StateFile::Given(path.to_path_buf()),
        checked,
    };
    write_blocking(app.clone(), op).await
}

pub(crate) async fn write_blocking<O: Op<Output = StateLoaded>>(
    app: AppState,
    op: O,
) -> Result<StateLoaded, Error> {
    on_blocking_thread(move |handle| handle.block_on(app.pipeline.write(op))).await
}
