//! Idempotency records: the answer to each POST and PUT a client sent with an `MS-RequestId`,
//! by partner, request id, method and route, for replay.

use pcq_core::ApiFault;
use pcq_core::time::Timestamp;
use serde::Serialize;
use uuid::Uuid;

use super::sql::{Column, FromRow, Row, sql};
use super::{StoreError, StoreResult, Tx};
use crate::error::{Error, json_bytes};

/// Identifies one client request for idempotent replay: the partner, its `MS-RequestId`, the
/// method and the canonical route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdemKey {
    /// The calling partner.
    pub partner: Uuid,
    /// The client's `MS-RequestId`.
    pub request_id: String,
    /// `POST` or `PUT`.
    pub method: &'static str,
    /// The route with its ids in canonical form.
    pub route: String,
}

/// An answer: a status and a JSON body. What a request's op returns, what an idempotency record
/// keeps, and what the HTTP layer sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// JSON body (empty for 204).
    pub body: Vec<u8>,
    /// Whether this is the stored answer of an earlier request, replayed for a retry (the
    /// request journal shows it; never stored).
    pub replayed: bool,
}

impl Reply {
    /// `value` as JSON with `status`. A value that cannot be encoded is pcq's error, never an
    /// empty answer.
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Result<Reply, Error> {
        Ok(Reply {
            status,
            body: json_bytes(value)?,
            replayed: false,
        })
    }

    /// 200 with `value`.
    pub fn ok<T: Serialize + ?Sized>(value: &T) -> Result<Reply, Error> {
        Self::json(200, value)
    }

    /// 201 with `value`.
    pub fn created<T: Serialize + ?Sized>(value: &T) -> Result<Reply, Error> {
        Self::json(201, value)
    }

    /// 204 without a body.
    pub fn no_content() -> Reply {
        Reply {
            status: 204,
            body: Vec::new(),
            replayed: false,
        }
    }

    /// A fault's envelope with its status.
    pub fn fault(fault: &ApiFault) -> Result<Reply, Error> {
        Self::json(fault.status, fault)
    }
}

/// An idempotency record found for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdemRecord {
    /// Hash of the request that created the record.
    pub fingerprint: String,
    /// Its answer. (A record's claim and answer commit in one transaction, so a committed record
    /// always has one.)
    pub reply: Reply,
}

impl FromRow for IdemRecord {
    fn from_row(row: &dyn Row) -> StoreResult<Self> {
        let fingerprint = Column::read(row, 0)?;
        let (Some(status), Some(body)) = (row.int(1)?, Column::read_optional(row, 2)?) else {
            return Err(StoreError::Corrupt(
                "an idempotency record without an answer".to_owned(),
            ));
        };
        let status = u16::try_from(status)
            .map_err(|_| StoreError::Corrupt(format!("invalid status {status}")))?;
        Ok(IdemRecord {
            fingerprint,
            reply: Reply {
                status,
                body,
                replayed: false,
            },
        })
    }
}

impl Tx<'_> {
    /// The record holding an idempotency key, if any.
    pub async fn idem_get(&mut self, key: &IdemKey) -> StoreResult<Option<IdemRecord>> {
        self.fetch_optional(sql!(
            "SELECT fingerprint, status, body FROM idempotency WHERE partner_tenant_id = ",
            { key.partner },
            " AND request_id = ",
            { &key.request_id },
            " AND method = ",
            { key.method },
            " AND route = ",
            { &key.route },
        ))
        .await
    }

    /// Stores the answer of a key looked up in this transaction and found free. Where writers
    /// run in parallel, a concurrent request under the same key may have stored its answer
    /// since (on PostgreSQL the insert waits for it to commit): the transaction then fails with
    /// [`StoreError::Raced`], to run again and replay that answer.
    pub async fn idem_insert(
        &mut self,
        key: &IdemKey,
        fingerprint: &str,
        reply: &Reply,
        now: Timestamp,
    ) -> StoreResult<()> {
        self.defer(
            sql!(
                "INSERT INTO idempotency \
                 (partner_tenant_id, request_id, method, route, fingerprint, created_at, status, \
                 body) VALUES (",
                { key.partner },
                ", ",
                { &key.request_id },
                ", ",
                { key.method },
                ", ",
                { &key.route },
                ", ",
                { fingerprint },
                ", ",
                { now },
                ", ",
                { i64::from(reply.status) },
                ", ",
                { &reply.body },
                ") ON CONFLICT (partner_tenant_id, request_id, method, route) DO NOTHING",
            ),
            true,
        )
        .await
    }
}
