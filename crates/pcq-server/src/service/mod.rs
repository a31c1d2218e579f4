//! pcq's operations: each reads the state it needs, applies the rules of `pcq_core` and writes
//! the outcome, inside one store transaction. Handlers only parse, call one op and answer.

pub mod audit;
pub mod clock;
pub mod customers;
pub mod keys;
pub mod load;
pub mod qualifications;
pub mod render;
pub mod review;
pub mod seed;
pub mod validation_codes;
pub mod vetting;
pub mod webhooks;

use std::fmt::Write as _;
use std::sync::Arc;

use pcq_core::ApiFault;
use pcq_core::time::Timestamp;
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::store::{CustomerRow, IdemKey, IdemRecord, Op, StoreResult, StoredReply, Tx};

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

/// What side effects of a change need to know: the public address links point to.
#[derive(Debug, Clone)]
pub struct Effects {
    /// pcq's public base URL, e.g. `http://127.0.0.1:8080`.
    pub public_url: Arc<str>,
}

impl Effects {
    /// The URI of a customer's qualifications.
    pub fn qualifications_uri(&self, customer: Uuid) -> String {
        format!("{}/v1/customers/{customer}/qualifications", self.public_url)
    }

    /// The URI of an audit record.
    pub fn audit_uri(&self, id: &str) -> String {
        format!("{}/v1/auditrecords/{id}", self.public_url)
    }
}

/// A JSON answer.
pub fn reply_json<T: Serialize>(status: u16, value: &T) -> StoredReply {
    StoredReply {
        status,
        body: serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec()),
    }
}

/// A fault answer.
pub fn reply_fault(fault: &ApiFault) -> StoredReply {
    reply_json(fault.status, fault)
}

/// The customer `id` if it exists and belongs to `partner`; otherwise the 404 or 403 fault.
pub fn owned_customer(
    row: Option<CustomerRow>,
    partner: Uuid,
    id: Uuid,
) -> Result<CustomerRow, ApiFault> {
    check_owner(row.as_ref().map(|c| c.partner_tenant_id), partner, id)?;
    Ok(row.expect("checked to exist"))
}

/// Whether the customer `id`, whose partner is `owner` (`None`: no such customer), belongs to
/// `partner`; otherwise the 404 or 403 fault.
pub fn check_owner(owner: Option<Uuid>, partner: Uuid, id: Uuid) -> Result<(), ApiFault> {
    match owner {
        None => Err(ApiFault::customer_not_found(&id.to_string())),
        Some(owner) if owner != partner => Err(ApiFault::no_relationship(
            &partner.to_string(),
            &id.to_string(),
        )),
        Some(_) => Ok(()),
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

/// Runs `op` at most once per idempotency key: the first request with a key runs and its answer
/// is stored with the op's writes; a retry gets the stored answer and changes nothing; a
/// different request under the same key gets 409.
#[derive(Clone)]
pub struct Idempotent<O> {
    /// The key; `None` when the client sent no `MS-RequestId` (every request is then new).
    pub key: Option<IdemKey>,
    /// [`fingerprint`] of the request.
    pub fingerprint: String,
    /// When the request arrived.
    pub now: Timestamp,
    /// The operation.
    pub op: O,
}

impl<O> Idempotent<O> {
    /// The answer to a request whose key is held by `record`: the stored answer for a retry, a
    /// 409 for a different request under the same key.
    pub fn replay(record: IdemRecord, fingerprint: &str, request_id: &str) -> StoredReply {
        if record.fingerprint == fingerprint {
            record.reply
        } else {
            reply_fault(&ApiFault::request_id_reused(request_id))
        }
    }
}

// The key's claim is an insert whose conflict waits for a concurrent claim of the same key, so
// the op's own isolation is enough for the whole.
impl<O: Op<Output = StoredReply>> Op for Idempotent<O> {
    type Output = StoredReply;
    const ISOLATION: crate::store::Isolation = O::ISOLATION;

    async fn run<T: Tx>(self, tx: &mut T) -> StoreResult<StoredReply> {
        let Some(key) = self.key else {
            return self.op.run(tx).await;
        };
        if let Some(record) = tx.idem_claim(&key, &self.fingerprint, self.now).await? {
            return Ok(Self::replay(record, &self.fingerprint, &key.request_id));
        }
        let reply = self.op.run(tx).await?;
        tx.idem_complete(&key, &reply).await?;
        Ok(reply)
    }
}

/// Looks an idempotency key up (for requests that fail before they reach a write).
#[derive(Clone)]
pub struct FindIdempotencyRecord(pub IdemKey);

impl Op for FindIdempotencyRecord {
    type Output = Option<IdemRecord>;
    const BRIEF_READ: bool = true;

    async fn run<T: Tx>(self, tx: &mut T) -> StoreResult<Option<IdemRecord>> {
        tx.idem_get(&self.0).await
    }
}

/// Reads or creates the node's development partner tenant.
#[derive(Clone)]
pub struct DevPartner;

impl Op for DevPartner {
    type Output = Uuid;

    async fn run<T: Tx>(self, tx: &mut T) -> StoreResult<Uuid> {
        let value = tx
            .meta_insert_default("dev_partner_tenant_id", &Uuid::new_v4().to_string())
            .await?;
        Uuid::parse_str(&value).map_err(|_| {
            crate::store::StoreError::Corrupt("invalid dev_partner_tenant_id".to_owned())
        })
    }
}
