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
use super::{Actor, Effects, owned_customer, render, reply_fault, reply_json};
use crate::store::{
    CustomerRow, Op, QualificationEvent, QualificationRow, StoreResult, StoredReply, Tx,
    VettingJobRow,
};

/// Meta key of a vetting policy set at run time.
pub const POLICY_KEY: &str = "vetting_policy";

/// Records a qualification change: its audit record and its webhook event.
pub async fn announce<T: Tx>(
    tx: &mut T,
    customer: &CustomerRow,
    before: Option<&QualificationRow>,
    after: &QualificationRow,
    actor: &Actor,
    effects: &Effects,
) -> StoreResult<()> {
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
    webhooks::enqueue(
        tx,
        webhooks::Event {
            partner: customer.partner_tenant_id,
            name: CUSTOMER_QUALIFICATION_UPDATED,
            resource_uri: &effects.qualifications_uri(customer.id),
            audit_uri: Some(&effects.audit_uri(&audit_id)),
            correlation_id: None,
            at: after.updated_at,
        },
    )
    .await?;
    Ok(())
}

/// Starts the vetting of a qualification that is InReview: its pending decision, due when the
/// policy says.
pub async fn start<T: Tx>(
    tx: &mut T,
    customer: &CustomerRow,
    row: &QualificationRow,
    policy: &VettingPolicy,
) -> StoreResult<()> {
    tx.put_vetting_job(&VettingJobRow {
        customer_id: customer.id,
        qualification: row.qualification,
        round: row.round,
        partner_tenant_id: customer.partner_tenant_id,
        created_at: row.updated_at,
        due_at: policy.due_at(row.updated_at, 0),
        reads: 0,
    })
    .await
}

/// Decides a qualification in review: moves it to `to`, records the step, audits and announces
/// it, and removes its pending decision. `None` when it was no longer in that review round
/// (someone decided it first), in which case nothing changes.
#[allow(clippy::too_many_arguments)]
pub async fn transition<T: Tx>(
    tx: &mut T,
    customer: &CustomerRow,
    current: &QualificationRow,
    to: VettingStatus,
    reason: Option<String>,
    actor: &Actor,
    request_id: Option<String>,
    at: Timestamp,
    effects: &Effects,
) -> StoreResult<Option<QualificationRow>> {
    let moved = tx
        .transition_qualification(
            customer.id,
            current.qualification,
            current.round,
            VettingStatus::InReview,
            to,
            reason.as_deref(),
            at,
        )
        .await?;
    if !moved {
        return Ok(None);
    }
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
    announce(tx, customer, Some(current), &after, actor, effects).await?;
    tx.delete_vetting_job(customer.id, current.qualification)
        .await?;
    Ok(Some(after))
}

/// Decides a due pending decision by the policy; `false` when it had nothing left to decide.
async fn decide_job<T: Tx>(
    tx: &mut T,
    job: &VettingJobRow,
    policy: &VettingPolicy,
    now: Timestamp,
    effects: &Effects,
) -> StoreResult<bool> {
    let customer = tx.customer(job.customer_id).await?;
    let current = match &customer {
        Some(_) => tx
            .qualifications(job.customer_id)
            .await?
            .into_iter()
            .find(|q| q.qualification == job.qualification),
        None => None,
    };
    let (Some(customer), Some(current)) = (customer, current) else {
        tx.delete_vetting_job(job.customer_id, job.qualification)
            .await?;
        return Ok(false);
    };
    if current.vetting_status != Some(VettingStatus::InReview) || current.round != job.round {
        tx.delete_vetting_job(job.customer_id, job.qualification)
            .await?;
        return Ok(false);
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
        effects,
    )
    .await?;
    Ok(decided.is_some())
}

/// Decides every pending decision that is due (up to `limit`).
pub struct DecideDue {
    /// The policy in force.
    pub policy: Arc<VettingPolicy>,
    /// Now, on pcq's clock.
    pub now: Timestamp,
    /// Most decisions in one transaction.
    pub limit: i64,
    /// Where announcements point.
    pub effects: Effects,
}

impl Op for DecideDue {
    /// How many due decisions were looked at, and how many of them changed a qualification.
    type Output = (usize, usize);

    async fn run<T: Tx>(self, tx: &mut T) -> StoreResult<(usize, usize)> {
        let jobs = tx.due_vetting_jobs(self.now, self.limit).await?;
        let mut decided = 0;
        for job in &jobs {
            if decide_job(tx, job, &self.policy, self.now, &self.effects).await? {
                decided += 1;
            }
        }
        Ok((jobs.len(), decided))
    }
}

/// Reads a customer's qualifications under the `after_reads` policy: counts the read against
/// each pending decision, decides those that become due, and returns the qualifications as
/// they are then.
pub struct ReadQualifications {
    /// The calling partner.
    pub partner: Uuid,
    /// The customer.
    pub customer: Uuid,
    /// The policy in force.
    pub policy: Arc<VettingPolicy>,
    /// Now.
    pub now: Timestamp,
    /// Where announcements point.
    pub effects: Effects,
}

impl Op for ReadQualifications {
    type Output = Result<Vec<QualificationRow>, ApiFault>;

    async fn run<T: Tx>(self, tx: &mut T) -> StoreResult<Self::Output> {
        if let Err(fault) = owned_customer(
            tx.customer(self.customer).await?,
            self.partner,
            self.customer,
        ) {
            return Ok(Err(fault));
        }
        for mut job in tx.customer_vetting_jobs(self.customer).await? {
            job.reads += 1;
            job.due_at = self
                .policy
                .due_at(job.created_at, u32::try_from(job.reads).unwrap_or(u32::MAX));
            tx.put_vetting_job(&job).await?;
            if job.due_at.is_some_and(|due| due <= self.now) {
                decide_job(tx, &job, &self.policy, self.now, &self.effects).await?;
            }
        }
        let mut rows = tx.qualifications(self.customer).await?;
        rows.sort_by_key(|q| pcq_core::rules::listing_order(q.qualification));
        Ok(Ok(rows))
    }
}

/// A reviewer's decision on a qualification in review.
pub struct ReviewDecide {
    /// The customer.
    pub customer: Uuid,
    /// The qualification.
    pub qualification: Qualification,
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
    pub effects: Effects,
}

impl Op for ReviewDecide {
    type Output = StoredReply;

    async fn run<T: Tx>(self, tx: &mut T) -> StoreResult<StoredReply> {
        let Some(customer) = tx.customer(self.customer).await? else {
            return Ok(reply_fault(&ApiFault::customer_not_found(
                &self.customer.to_string(),
            )));
        };
        let current = tx
            .qualifications(self.customer)
            .await?
            .into_iter()
            .find(|q| q.qualification == self.qualification);
        let Some(current) = current else {
            return Ok(reply_fault(&ApiFault::qualification_not_found(
                &self.customer.to_string(),
                self.qualification.as_str(),
            )));
        };
        let not_in_review = || {
            ApiFault::not_in_review(
                current.qualification.as_str(),
                current
                    .vetting_status
                    .map_or("not vetted", VettingStatus::as_str),
            )
        };
        if current.vetting_status != Some(VettingStatus::InReview) {
            return Ok(reply_fault(&not_in_review()));
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
            &self.effects,
        )
        .await?;
        Ok(match decided {
            Some(after) => reply_json(200, &render::qualification(&after)),
            None => reply_fault(&not_in_review()),
        })
    }
}

/// Sets (or, with `None`, clears) the policy chosen at run time, and reschedules every pending
/// decision for the policy now in force.
pub struct SetPolicy {
    /// The policy to store; `None` returns to the configured one.
    pub stored: Option<VettingPolicy>,
    /// The policy in force afterwards.
    pub effective: Arc<VettingPolicy>,
}

impl Op for SetPolicy {
    type Output = ();

    async fn run<T: Tx>(self, tx: &mut T) -> StoreResult<()> {
        match &self.stored {
            Some(policy) => {
                let text = serde_json::to_string(policy).unwrap_or_default();
                tx.meta_put(POLICY_KEY, &text).await?;
            }
            None => tx.meta_delete(POLICY_KEY).await?,
        }
        let p = &self.effective;
        tx.reschedule_vetting_jobs(p.policy, p.after.as_micros(), i64::from(p.after_reads))
            .await
    }
}

/// The policy set at run time, if any.
pub struct StoredPolicy;

impl Op for StoredPolicy {
    type Output = Option<VettingPolicy>;

    async fn run<T: Tx>(self, tx: &mut T) -> StoreResult<Option<VettingPolicy>> {
        Ok(tx
            .meta_get(POLICY_KEY)
            .await?
            .and_then(|text| serde_json::from_str(&text).ok()))
    }
}
