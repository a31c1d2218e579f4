//! Requesting and reading customer qualifications.

use std::sync::Arc;

use pcq_core::rules::{self, CodeState, Held};
use pcq_core::time::Timestamp;
use pcq_core::vetting::VettingPolicy;
use pcq_core::{ApiFault, QualificationRequest, VettingStatus};
use serde_json::json;
use uuid::Uuid;

use super::{Actor, Effects, owned_customer, render, reply_fault, reply_json, vetting};
use crate::store::{
    Isolation, Op, QualificationEvent, QualificationRow, StoreError, StoreResult, StoredReply, Tx,
};

/// Which endpoint a qualification request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/customers/{id}/qualifications`: 201 with the new qualification.
    Post,
    /// Legacy `PUT /v1/customers/{id}/qualification`: 200 with the bare enum string; setting a
    /// qualification the customer already holds succeeds without change.
    LegacyPut,
}

/// Adds a qualification to a customer.
#[derive(Clone)]
pub struct CreateQualification {
    /// The calling partner.
    pub partner: Uuid,
    /// The customer.
    pub customer: Uuid,
    /// The parsed request.
    pub request: QualificationRequest,
    /// The endpoint it came through.
    pub endpoint: Endpoint,
    /// Who asked.
    pub actor: Actor,
    /// The request's `MS-RequestId`.
    pub request_id: String,
    /// When.
    pub now: Timestamp,
    /// The configured vetting policy (a run-time one is read in the transaction).
    pub configured: Arc<VettingPolicy>,
    /// Where announcements point.
    pub effects: Effects,
}

// Read committed is enough: the customer is locked before anything else is read, so requests
// for one customer run one after another, and a validation code is locked before its creates
// are counted. Serializable isolation would also abort requests for neighbouring customers,
// whose rows share index pages.
impl Op for CreateQualification {
    type Output = StoredReply;
    const ISOLATION: Isolation = Isolation::ReadCommitted;

    async fn run<T: Tx>(self, tx: &mut T) -> StoreResult<StoredReply> {
        let customer = match owned_customer(
            tx.lock_customer(self.customer).await?,
            self.partner,
            self.customer,
        ) {
            Ok(c) => c,
            Err(fault) => return Ok(reply_fault(&fault)),
        };
        let current = tx.qualifications(self.customer).await?;
        let wanted = self.request.qualification;

        let held: Vec<Held> = current
            .iter()
            .map(|q| Held {
                qualification: q.qualification,
                status: q.vetting_status,
            })
            .collect();
        if self.endpoint == Endpoint::LegacyPut && rules::legacy_put_is_noop(&held, wanted) {
            return Ok(reply_json(200, &json!(wanted.as_str())));
        }

        let code = match &self.request.validation_code {
            Some(id) => tx.lock_validation_code(self.partner, id).await?,
            None => None,
        };
        let code_state = code.as_ref().map(|c| CodeState {
            max_creates: c.max_creates,
            remaining_creates: c.remaining_creates,
        });
        let policy = vetting::current_policy(tx, &self.configured).await?;
        let decision =
            match rules::decide(&held, &self.request, code_state.as_ref(), policy.gcc_review) {
                Ok(d) => d,
                Err(fault) => return Ok(reply_fault(&fault)),
            };

        if decision.consumes_code {
            let code = code.as_ref().ok_or_else(|| {
                StoreError::Corrupt("a GCC decision without a validation code".to_owned())
            })?;
            // eTags are derived from the change time, which must move on with every change.
            let at = self.now.max(code.updated_at.plus_micros(1));
            let used = tx
                .consume_validation_code(self.partner, &code.validation_id, &render::etag(at), at)
                .await?;
            if !used {
                return Ok(reply_fault(&ApiFault::validation_code_exhausted(
                    &code.validation_id,
                    code.max_creates,
                )));
            }
        }

        // A new round reopens the denied qualification; otherwise the qualification is new.
        let previous = current
            .iter()
            .find(|q| q.qualification == wanted)
            .filter(|_| decision.new_round);
        let row = QualificationRow {
            customer_id: self.customer,
            qualification: wanted,
            vetting_status: decision.status,
            vetting_reason: None,
            vetting_create_date: decision.status.map(|_| self.now),
            education_segment: self.request.education_segment,
            website: self.request.website.clone(),
            validation_id: self.request.validation_code.clone(),
            round: previous.map_or(1, |p| p.round + 1),
            created_at: previous.map_or(self.now, |p| p.created_at),
            updated_at: self.now,
        };
        tx.put_qualification(&row).await?;
        tx.insert_qualification_event(&QualificationEvent {
            customer_id: self.customer,
            qualification: wanted,
            round: row.round,
            from_status: previous.and_then(|p| p.vetting_status),
            to_status: decision.status,
            reason: None,
            actor: self.actor.name(),
            request_id: Some(self.request_id),
            at: self.now,
        })
        .await?;
        if row.vetting_status == Some(VettingStatus::InReview) {
            vetting::start(tx, &customer, &row).await?;
        }
        vetting::announce(tx, &customer, previous, &row, &self.actor, &self.effects).await?;

        Ok(match self.endpoint {
            Endpoint::Post => reply_json(201, &render::qualification(&row)),
            Endpoint::LegacyPut => reply_json(200, &json!(wanted.as_str())),
        })
    }
}

/// A customer's partner and its current qualifications, in listing order.
#[derive(Clone)]
pub struct CustomerQualifications(pub Uuid);

impl Op for CustomerQualifications {
    type Output = Option<(Uuid, Vec<QualificationRow>)>;
    const BRIEF_READ: bool = true;

    async fn run<T: Tx>(self, tx: &mut T) -> StoreResult<Self::Output> {
        let Some(partner) = tx.customer_partner(self.0).await? else {
            return Ok(None);
        };
        let mut rows = tx.qualifications(self.0).await?;
        rows.sort_by_key(|q| rules::listing_order(q.qualification));
        Ok(Some((partner, rows)))
    }
}
