//! Asynchronous vetting: pending decisions ("vetting jobs"), the policy that decides them, and
//! the one transition every decision goes through (by the worker, on a read, or by a reviewer).

use std::sync::Arc;

use pcq_core::time::Timestamp;
use pcq_core::vetting::VettingPolicy;
use pcq_core::{ApiFault, Qualification, VettingStatus};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, status};
use super::webhooks::{self, CUSTOMER_QUALIFICATION_UPDATED};
use super::{Actor, Links, render};
use crate::error::{Error, Found};
use crate::store::{
    CustomerRow, Isolation, Op, PolicyState, QualificationEvent, QualificationRow, Reply, Scope,
    StoreResult, Tx, VettingJobRow, WebhookRegistrationRow,
};

/// The policy in force, read in this transaction: the run-time one if set, else `configured`.
pub async fn current_policy(
    tx: &mut Tx<'_>,
    configured: &Arc<VettingPolicy>,
) -> StoreResult<Arc<VettingPolicy>> {
    Ok(match tx.policy_state().await?.policy {
        Some(p) => Arc::new(p),
        None => configured.clone(),
    })
}

/// Records a qualification change: its audit record and its webhook event, for the partner's
/// webhook registration as read earlier in the transaction (reading everything before the
/// first write lets PostgreSQL receive the writes together).
#[allow(clippy::too_many_arguments)]
pub async fn announce(
    tx: &mut Tx<'_>,
    registration: Option<&WebhookRegistrationRow>,
    customer: &CustomerRow,
    before: Option<&QualificationRow>,
    after: &QualificationRow,
    actor: &Actor,
    links: &Links,
) -> Result<(), Error> {
    let mut data = vec![(
        "Qualification".to_owned(),
        after.qualification.as_str().to_owned(),
    )];
    if let Some(s) = after.vetting_status {
        data.push(("VettingStatus".to_owned(), s.as_str().to_owned()));
    }
    if let Some(r) = &after.vetting_reason {
        data.push(("VettingReason".to_owned(), r.clone()));
    }
    let audit_id = audit::record(
        tx,
        audit::Entry {
            customer,
            actor,
            operation: audit::UPDATE_CUSTOMER_QUALIFICATION,
            status: if after.vetting_status == Some(VettingStatus::InReview) {
                status::PROGRESS
            } else {
                status::SUCCEEDED
            },
            old_value: before.map(|b| json!(render::qualification(b)).to_string()),
            new_value: Some(json!(render::qualification(after)).to_string()),
            data,
            at: after.updated_at,
        },
    )
    .await?;
    webhooks::enqueue_to(
        tx,
        registration,
        webhooks::Event {
            partner: customer.partner_tenant_id,
            name: CUSTOMER_QUALIFICATION_UPDATED,
            resource_uri: &links.qualifications_uri(customer.id),
            audit_uri: Some(&links.audit_uri(&audit_id)),
            correlation_id: None,
            at: after.updated_at,
        },
    )
    .await?;
    Ok(())
}

/// Starts the vetting of a qualification that is InReview: its pending decision, which the
/// policy in force makes due (or leaves to a reviewer); the worker is woken after the commit.
pub async fn start(
    tx: &mut Tx<'_>,
    customer: &CustomerRow,
    row: &QualificationRow,
) -> StoreResult<()> {
    tx.wake_worker();
    tx.put_vetting_job(&VettingJobRow {
        customer_id: customer.id,
        qualification: row.qualification,
        round: row.round,
        partner_tenant_id: customer.partner_tenant_id,
        created_at: row.updated_at,
        reads: 0,
    })
    .await
}

/// Decides a qualification in review: moves it to `to`, records the step, audits and announces
/// it, and removes its pending decision. `None` when it was no longer in that review round
/// (someone decided it first), in which case nothing changes.
#[allow(clippy::too_many_arguments)]
pub async fn transition(
    tx: &mut Tx<'_>,
    customer: &CustomerRow,
    current: &QualificationRow,
    to: VettingStatus,
    reason: Option<String>,
    actor: &Actor,
    request_id: Option<String>,
    at: Timestamp,
    links: &Links,
) -> Result<Option<QualificationRow>, Error> {
    let moved = tx
        .decide_in_review(current, to, reason.as_deref(), at)
        .await?;
    if !moved {
        return Ok(None);
    }
    let registration = tx.webhook_registration(customer.partner_tenant_id).await?;
    tx.delete_vetting_job(customer.id, current.qualification, current.round)
        .await?;
    let after = QualificationRow {
        vetting_status: Some(to),
        vetting_reason: reason.clone(),
        updated_at: at,
        ..current.clone()
    };
    tx.insert_qualification_event(&QualificationEvent {
        customer_id: customer.id,
        qualification: current.qualification,
        round: current.round,
        from_status: Some(VettingStatus::InReview),
        to_status: Some(to),
        reason,
        actor: actor.name(),
        request_id,
        at,
    })
    .await?;
    announce(
        tx,
        registration.as_ref(),
        customer,
        Some(current),
        &after,
        actor,
        links,
    )
    .await?;
    Ok(Some(after))
}

/// Decides a due pending decision by the policy; `false` when it had nothing left to decide.
pub(super) async fn decide_job(
    tx: &mut Tx<'_>,
    job: &VettingJobRow,
    policy: &VettingPolicy,
    now: Timestamp,
    links: &Links,
) -> Result<Option<VettingStatus>, Error> {
    let customer = tx
        .customer(Scope::AnyPartner, job.customer_id)
        .await
        .found()?;
    let current = match &customer {
        Some(_) => tx
            .qualifications(job.customer_id)
            .await?
            .into_iter()
            .find(|q| q.qualification == job.qualification),
        None => None,
    };
    let (Some(customer), Some(current)) = (customer, current) else {
        tx.delete_vetting_job(job.customer_id, job.qualification, job.round)
            .await?;
        return Ok(None);
    };
    if current.vetting_status != Some(VettingStatus::InReview) || current.round != job.round {
        tx.delete_vetting_job(job.customer_id, job.qualification, job.round)
            .await?;
        return Ok(None);
    }
    let (to, reason) = policy.decide(
        current.qualification,
        &customer.domain,
        current.website.as_deref(),
    );
    let decided = transition(
        tx,
        &customer,
        &current,
        to,
        reason,
        &Actor::vetting(),
        None,
        now,
        links,
    )
    .await?;
    Ok(decided.map(|_| to))
}

/// Decides every pending decision that is due under the policy in force (up to `limit`).
#[derive(Clone)]
pub struct DecideDue {
    /// The configured policy (a run-time one is read in the transaction).
    pub configured: Arc<VettingPolicy>,
    /// Now, on pcq's clock.
    pub now: Timestamp,
    /// Most decisions in one transaction.
    pub limit: i64,
    /// Where announcements point.
    pub links: Links,
}

impl Op for DecideDue {
    /// How many due decisions were looked at, and the outcomes of those that changed a
    /// qualification.
    type Output = (usize, Vec<VettingStatus>);
    /// The due rows are claimed with row locks that concurrent workers skip, and every decision
    /// is the conditional update of [`transition`].
    const ISOLATION: Isolation = Isolation::ReadCommitted;

    async fn run(self, tx: &mut Tx<'_>) -> Result<Self::Output, Error> {
        let policy = current_policy(tx, &self.configured).await?;
        let Some((started_by, min_reads)) = policy.due_window(self.now) else {
            return Ok((0, Vec::new()));
        };
        let jobs = tx
            .due_vetting_jobs(started_by, min_reads, self.limit)
            .await?;
        let mut decided = Vec::new();
        for job in &jobs {
            if let Some(outcome) = decide_job(tx, job, &policy, self.now, &self.links).await? {
                decided.push(outcome);
            }
        }
        Ok((jobs.len(), decided))
    }
}

/// A reviewer's decision on a qualification in review.
#[derive(Clone)]
pub struct ReviewDecide {
    /// The customer.
    pub customer: Uuid,
    /// The qualification.
    pub qualification: Qualification,
    /// The round the reviewer decides, when given.
    pub round: Option<i64>,
    /// Approved or Denied.
    pub decision: VettingStatus,
    /// The documented reason of a denial.
    pub reason: Option<String>,
    /// The reviewer.
    pub actor: Actor,
    /// The reviewer's request id.
    pub request_id: String,
    /// Now.
    pub now: Timestamp,
    /// Where announcements point.
    pub links: Links,
}

impl Op for ReviewDecide {
    type Output = Reply;

    async fn run(self, tx: &mut Tx<'_>) -> Result<Reply, Error> {
        let customer = tx.customer(Scope::AnyPartner, self.customer).await?;
        let current = tx
            .qualifications(self.customer)
            .await?
            .into_iter()
            .find(|q| q.qualification == self.qualification)
            .ok_or_else(|| {
                ApiFault::qualification_not_found(
                    &self.customer.to_string(),
                    self.qualification.as_str(),
                )
            })?;
        let not_in_review = || {
            ApiFault::not_in_review(
                current.qualification.as_str(),
                current
                    .vetting_status
                    .map_or("not vetted", VettingStatus::as_str),
            )
        };
        if let Some(round) = self.round.filter(|r| *r != current.round) {
            return Err(ApiFault::round_changed(
                current.qualification.as_str(),
                round,
                current.round,
            )
            .into());
        }
        if current.vetting_status != Some(VettingStatus::InReview) {
            return Err(not_in_review().into());
        }
        let decided = transition(
            tx,
            &customer,
            &current,
            self.decision,
            self.reason,
            &self.actor,
            Some(self.request_id),
            self.now,
            &self.links,
        )
        .await?;
        match decided {
            Some(after) => Reply::ok(&render::qualification(&after)),
            // Someone decided it first: nothing changed.
            None => Err(not_in_review().into()),
        }
    }
}

/// Sets (or, with `None`, clears) the policy chosen at run time; returns the new stored state.
/// Pending decisions need no rescheduling: whether one is due is asked of the policy in force.
#[derive(Clone)]
pub struct SetPolicy(pub Option<VettingPolicy>);

impl Op for SetPolicy {
    type Output = PolicyState;

    async fn run(self, tx: &mut Tx<'_>) -> Result<PolicyState, Error> {
        Ok(tx.set_policy(self.0).await?)
    }
}

/// The stored run-time policy state.
#[derive(Clone)]
pub struct StoredPolicy;

impl Op for StoredPolicy {
    type Output = PolicyState;
    const BRIEF_READ: bool = true;

    async fn run(self, tx: &mut Tx<'_>) -> Result<PolicyState, Error> {
        Ok(tx.policy_state().await?)
    }
}
