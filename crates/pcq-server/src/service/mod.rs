//! pcq's operations and the pipeline that runs them.
//!
//! An op (a [`store::Op`](crate::store::Op)) reads the state it needs, applies the rules of
//! `pcq_core` and writes the outcome, inside one store transaction; it answers a refusal with
//! a fault ([`Error::Fault`]) decided before it writes anything, and asks for what must happen
//! after its commit through the transaction (waking the worker, a moved clock, a changed
//! policy). The [`Pipeline`] runs ops: it records a client's write for idempotent replay, and
//! applies each commit's effects once. Handlers only parse, call the pipeline and answer.

pub mod audit;
pub mod clock;
pub mod customers;
pub mod keys;
pub mod load;
pub mod qualifications;
pub mod render;
pub mod reset;
pub mod retention;
pub mod review;
pub mod seed;
pub mod state;
pub mod validation_codes;
pub mod vetting;
pub mod webhooks;

use std::fmt::Write as _;
use std::sync::Arc;

use pcq_core::ApiFault;
use pcq_core::time::Timestamp;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::clock::Clock;
use crate::error::Error;
pub use crate::error::json_text;
use crate::settings::PolicyCell;
use crate::store::{Effects, IdemKey, IdemRecord, Isolation, Op, Reply, Store, Tx};

/// Who caused a change, as audit records and histories name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The user principal name of a delegated caller.
    pub user: Option<String>,
    /// The application.
    pub application: Option<String>,
}

/// The application id pcq's own vetting decisions are recorded under.
pub const VETTING_APPLICATION: &str = "pcq-vetting";

impl Actor {
    /// The caller of a request.
    pub fn caller(principal: &crate::auth::Principal) -> Self {
        Actor {
            user: principal.upn.clone(),
            application: principal.app_id.clone(),
        }
    }

    /// pcq's vetting policy.
    pub fn vetting() -> Self {
        Actor {
            user: None,
            application: Some(VETTING_APPLICATION.to_owned()),
        }
    }

    /// One name: the user, else the application.
    pub fn name(&self) -> String {
        self.user
            .clone()
            .or_else(|| self.application.clone())
            .unwrap_or_else(|| "unknown".to_owned())
    }
}

/// Where the links in audit records and webhook events point: pcq's public base URL.
#[derive(Debug, Clone)]
pub struct Links {
    /// pcq's public base URL, e.g. `http://127.0.0.1:8080`.
    pub public_url: Arc<str>,
}

impl Links {
    /// The URI of a customer's qualifications.
    pub fn qualifications_uri(&self, customer: Uuid) -> String {
        format!("{}/v1/customers/{customer}/qualifications", self.public_url)
    }

    /// The URI of an audit record.
    pub fn audit_uri(&self, id: &str) -> String {
        format!("{}/v1/auditrecords/{id}", self.public_url)
    }
}

/// Hash identifying a request's content, to tell a retry from a different request that reuses
/// its `MS-RequestId`.
pub fn fingerprint(query: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(query.as_bytes());
    hash.update([0u8]);
    hash.update(body);
    let mut hex = String::with_capacity(64);
    for b in hash.finalize() {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// What makes a client's write replayable: its idempotency key (when the client sent an
/// `MS-RequestId`) and the fingerprint of its query and body.
#[derive(Debug, Clone)]
pub struct ClientWrite {
    /// The key; `None` when the client sent no `MS-RequestId` (every request is then new).
    pub key: Option<IdemKey>,
    /// [`fingerprint`] of the request.
    pub fingerprint: String,
}

impl ClientWrite {
    /// A write of `partner` by `method` to `route` (its ids in canonical form), with the
    /// client's `MS-RequestId` if it sent one.
    pub fn new(
        partner: Uuid,
        request_id: Option<&str>,
        method: &'static str,
        route: String,
        query: &str,
        body: &[u8],
    ) -> Self {
        ClientWrite {
            key: request_id.map(|id| IdemKey {
                partner,
                request_id: id.to_owned(),
                method,
                route,
            }),
            fingerprint: fingerprint(query, body),
        }
    }
}

/// Runs a client's write at most once per idempotency key: the first request with a key runs
/// and its answer is stored with the op's writes; a retry gets the stored answer and changes
/// nothing; a different request under the same key gets 409. A request refused before it
/// became an op (`Err`) that retries an earlier one still gets that one's answer: the
/// configuration may have changed since (say from contract 2021 to 2023).
#[derive(Clone)]
struct Idempotent<O> {
    write: ClientWrite,
    now: Timestamp,
    op: Result<O, ApiFault>,
}

fn replay(record: IdemRecord, fingerprint: &str, request_id: &str) -> Result<Reply, Error> {
    if record.fingerprint == fingerprint {
        Ok(Reply {
            replayed: true,
            ..record.reply
        })
    } else {
        Reply::fault(&ApiFault::request_id_reused(request_id))
    }
}

// The key is looked up first and its answer inserted last; the insert's conflict waits for a
// concurrent request under the same key, so the op's own isolation is enough for the whole.
impl<O: Op<Output = Reply>> Op for Idempotent<O> {
    type Output = Reply;
    const ISOLATION: Isolation = O::ISOLATION;
    // Run as a read only when refused: then it looks its key up.
    const BRIEF_READ: bool = true;

    async fn run(self, tx: &mut Tx<'_>) -> Result<Reply, Error> {
        let ClientWrite { key, fingerprint } = self.write;
        let op = match self.op {
            Ok(op) => op,
            Err(fault) => {
                if let Some(key) = &key {
                    if let Some(record) = tx.idem_get(key).await? {
                        return replay(record, &fingerprint, &key.request_id);
                    }
                }
                return Err(fault.into());
            }
        };
        let Some(key) = key else {
            return op.run(tx).await;
        };
        if let Some(record) = tx.idem_get(&key).await? {
            return replay(record, &fingerprint, &key.request_id);
        }
        let before = tx.writes();
        let reply = match op.run(tx).await {
            Ok(reply) => reply,
            // The refusal is the request's answer: it is kept for retries like any other.
            Err(Error::Fault(fault)) if tx.writes() == before => Reply::fault(&fault)?,
            Err(Error::Fault(fault)) => {
                return Err(Error::Internal(format!(
                    "an operation refused a request ({}) after changing data",
                    fault.error_name
                )));
            }
            Err(e) => return Err(e),
        };
        // Stored with the op's writes. If a concurrent request under the same key stored its
        // answer since the lookup, this run rolls back and runs again, to replay that answer.
        tx.idem_insert(&key, &fingerprint, &reply, self.now).await?;
        Ok(reply)
    }
}

/// Runs ops against the store and applies what their commits leave to do: the one way pcq's
/// requests and its worker change state.
pub struct Pipeline {
    /// The store.
    pub store: Store,
    /// The one clock.
    pub clock: Clock,
    /// The vetting policy in force, as this node last saw it.
    pub policy: PolicyCell,
    /// Where links point.
    pub links: Links,
    /// The injected faults, as this node last read them.
    pub faults: crate::faults::FaultSet,
    wake: Notify,
    /// Webhook attempts this node's background worker has started, and how many of them it
    /// has settled (recorded, or left to their leases).
    background_attempts: tokio::sync::watch::Sender<(u64, u64)>,
}

impl Pipeline {
    /// A pipeline over `store`.
    pub fn new(store: Store, clock: Clock, policy: PolicyCell, links: Links) -> Self {
        Pipeline {
            store,
            clock,
            policy,
            links,
            faults: crate::faults::FaultSet::new(),
            wake: Notify::new(),
            background_attempts: tokio::sync::watch::Sender::new((0, 0)),
        }
    }

    /// Now, on pcq's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Runs `op` in a read snapshot.
    pub async fn read<O: Op>(&self, op: O) -> Result<O::Output, Error> {
        self.store.read(op).await
    }

    /// Runs `op` in a write transaction; once it is durable, applies its effects (reading the
    /// injected faults again when it changed them, so this node applies them at once).
    pub async fn write<O: Op>(&self, op: O) -> Result<O::Output, Error> {
        let committed = self.store.write(op).await?;
        let faults_changed = committed.effects.faults_changed;
        self.apply(committed.effects);
        if faults_changed {
            if let Err(e) = self.faults.reload(self).await {
                tracing::warn!(error = %e, "could not read the injected faults again");
            }
        }
        Ok(committed.output)
    }

    /// Runs a client's write (or its refusal) with idempotent replay (see [`ClientWrite`]).
    pub async fn request<O: Op<Output = Reply>>(
        &self,
        write: ClientWrite,
        op: Result<O, ApiFault>,
    ) -> Result<Reply, Error> {
        let refused_without_key = op.is_err() && write.key.is_none();
        let idempotent = Idempotent {
            write,
            now: self.now(),
            op,
        };
        match &idempotent.op {
            // Nothing to look up: no transaction at all.
            Err(fault) if refused_without_key => Err(fault.clone().into()),
            // A refusal only reads its key.
            Err(_) => self.read(idempotent).await,
            Ok(_) => self.write(idempotent).await,
        }
    }

    /// Applies what a commit left to do.
    pub fn apply(&self, effects: Effects) {
        if let Some(offset) = effects.clock_offset {
            self.clock.set_offset_micros(offset);
        }
        if let Some(state) = effects.policy {
            self.policy.observe(state);
        }
        if effects.wake_worker {
            self.wake.notify_one();
        }
    }

    /// Resolves when a commit left work for the worker.
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// The background worker started `n` webhook attempts.
    pub fn background_attempts_started(&self, n: usize) {
        if n > 0 {
            self.background_attempts
                .send_modify(|(started, _)| *started += n as u64);
        }
    }

    /// The background worker settled `n` webhook attempts: recorded them, or gave them up to
    /// their leases.
    pub fn background_attempts_settled(&self, n: usize) {
        if n > 0 {
            self.background_attempts
                .send_modify(|(_, settled)| *settled += n as u64);
        }
    }

    /// Resolves once the background worker has settled every attempt it had started when
    /// called (not those it starts meanwhile); `true` when it had to wait for one.
    pub async fn background_attempts_recorded(&self) -> bool {
        let mut attempts = self.background_attempts.subscribe();
        let (target, settled) = *attempts.borrow_and_update();
        if settled >= target {
            return false;
        }
        let _ = attempts.wait_for(|(_, settled)| *settled >= target).await;
        true
    }
}

/// Reads or creates the store's development partner tenant.
#[derive(Clone)]
pub struct DevPartner;

impl Op for DevPartner {
    type Output = Uuid;

    async fn run(self, tx: &mut Tx<'_>) -> Result<Uuid, Error> {
        Ok(tx.dev_partner().await?)
    }
}
