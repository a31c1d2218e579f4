//! Requesting and reading customer qualifications.

use std::sync::Arc;

use pcq_core::rules::{self, CodeState, Held};
use pcq_core::time::Timestamp;
use pcq_core::vetting::{Mode, VettingPolicy};
use pcq_core::{ApiFault, Qualification, QualificationRequest, VettingStatus};
use uuid::Uuid;

use super::{Actor, Links, Pipeline, render, vetting};
use crate::auth::Principal;
use crate::config::AuthConfig;
use crate::error::Error;
use crate::store::{
    Isolation, Op, QualificationEvent, QualificationRow, Reply, Scope, StoreError, Tx,
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

impl Endpoint {
    /// The method and canonical route of a request for `customer`, as idempotency keys name it.
    pub fn route(self, customer: Uuid) -> (&'static str, String) {
        match self {
            Endpoint::Post => ("POST", format!("/v1/customers/{customer}/qualifications")),
            Endpoint::LegacyPut => ("PUT", format!("/v1/customers/{customer}/qualification")),
        }
    }
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
    pub links: Links,
}

impl CreateQualification {
    /// The request of `caller` for `customer`, refused before it runs when the caller lacks what
    /// its credentials must hold: Partner Center asks a GDAP role of GCC requests on the
    /// current endpoint only.
    pub fn new(
        pipeline: &Pipeline,
        auth: &AuthConfig,
        caller: &Principal,
        request_id: &str,
        customer: Uuid,
        endpoint: Endpoint,
        request: QualificationRequest,
    ) -> Result<Self, ApiFault> {
        if endpoint == Endpoint::Post
            && request.qualification == Qualification::GovernmentCommunityCloud
            && auth.gcc_requires_gdap_role
            && !caller.has_any_directory_role(&auth.gdap_roles)
        {
            return Err(ApiFault::gdap_role_required());
        }
        Ok(CreateQualification {
            partner: caller.tenant_id,
            customer,
            request,
            endpoint,
            actor: Actor::caller(caller),
            request_id: request_id.to_owned(),
            now: pipeline.now(),
            configured: pipeline.policy.configured().clone(),
            links: pipeline.links.clone(),
        })
    }
}

fn held(current: &[QualificationRow]) -> Vec<Held> {
    current
        .iter()
        .map(|q| Held {
            qualification: q.qualification,
            status: q.vetting_status,
        })
        .collect()
}

// Read committed is enough: the customer is locked before anything else is read, so requests
// for one customer run one after another, and a validation code is locked before its creates
// are counted. Serializable isolation would also abort requests for neighbouring customers,
// whose rows share index pages.
impl Op for CreateQualification {
    type Output = Reply;
    const ISOLATION: Isolation = Isolation::ReadCommitted;

    async fn run(self, tx: &mut Tx<'_>) -> Result<Reply, Error> {
        let customer = tx
            .lock_customer(Scope::Partner(self.partner), self.customer)
            .await?;
        let current = tx.qualifications(self.customer).await?;
        let wanted = self.request.qualification;
        let held = held(&current);
        if self.endpoint == Endpoint::LegacyPut && rules::legacy_put_is_noop(&held, wanted) {
            return Reply::ok(wanted.as_str());
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
        let decision = rules::decide(&held, &self.request, code_state.as_ref(), policy.gcc_review)?;

        if decision.consumes_code {
            let code = code.as_ref().ok_or_else(|| {
                StoreError::Corrupt("a GCC decision without a validation code".to_owned())
            })?;
            // eTags are derived from the change time, which must move on with every change.
            let at = self.now.max(code.updated_at.plus_micros(1));
            let used = tx
                .consume_validation_code(self.partner, &code.validation_id, &at.to_table_etag(), at)
                .await?;
            if !used {
                return Err(ApiFault::validation_code_exhausted(
                    &code.validation_id,
                    code.max_creates,
                )
                .into());
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
        // Everything is read before the first write, so that PostgreSQL gets the writes in one
        // round trip.
        let registration = tx.webhook_registration(self.partner).await?;
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
        vetting::announce(
            tx,
            registration.as_ref(),
            &customer,
            previous,
            &row,
            &self.actor,
            &self.links,
        )
        .await?;

        match self.endpoint {
            Endpoint::Post => Reply::created(&render::qualification(&row)),
            Endpoint::LegacyPut => Reply::ok(wanted.as_str()),
        }
    }
}

/// A partner's customer's current qualifications, in listing order. Under the `after_reads`
/// vetting policy (`count_reads`) the read counts against each pending decision and decides
/// those that become due, so it runs as a write; otherwise it only reads.
#[derive(Clone)]
pub struct ReadQualifications {
    /// The calling partner.
    pub partner: Uuid,
    /// The customer.
    pub customer: Uuid,
    /// Whether the read counts (as this node last saw the policy; the decision itself asks
    /// the stored policy).
    pub count_reads: bool,
    /// The configured policy (a run-time one is read in the transaction).
    pub configured: Arc<VettingPolicy>,
    /// Now.
    pub now: Timestamp,
    /// Where announcements point.
    pub links: Links,
}

impl Op for ReadQualifications {
    type Output = Vec<QualificationRow>;
    // Run as a read, it finds a customer's few rows by key.
    const BRIEF_READ: bool = true;

    async fn run(self, tx: &mut Tx<'_>) -> Result<Vec<QualificationRow>, Error> {
        tx.admit_customer(Scope::Partner(self.partner), self.customer)
            .await?;
        if self.count_reads {
            let policy = vetting::current_policy(tx, &self.configured).await?;
            if policy.policy == Mode::AfterReads {
                for job in tx.count_vetting_read(self.customer).await? {
                    if policy.is_due(job.created_at, job.reads, self.now) {
                        vetting::decide_job(tx, &job, &policy, self.now, &self.links).await?;
                    }
                }
            }
        }
        let mut rows = tx.qualifications(self.customer).await?;
        rows.sort_by_key(|q| rules::listing_order(q.qualification));
        Ok(rows)
    }
}

/// A customer's current qualifications for its partner (GET), counting the read where the
/// policy in force decides on reads.
pub async fn current(
    pipeline: &Pipeline,
    partner: Uuid,
    customer: Uuid,
) -> Result<Vec<QualificationRow>, Error> {
    let count_reads = pipeline.policy.get().policy == Mode::AfterReads;
    let read = ReadQualifications {
        partner,
        customer,
        count_reads,
        configured: pipeline.policy.configured().clone(),
        now: pipeline.now(),
        links: pipeline.links.clone(),
    };
    if count_reads {
        pipeline.write(read).await
    } else {
        pipeline.read(read).await
    }
}

/// The bare legacy qualification of a customer holding `current`.
pub fn legacy_qualification(current: &[QualificationRow]) -> Qualification {
    rules::legacy_qualification(&held(current))
}
