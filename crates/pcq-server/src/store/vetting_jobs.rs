//! Vetting jobs: one pending decision per qualification in review. A job does not store when
//! it is due: the policy in force says so when the worker asks.

use pcq_core::Qualification;
use pcq_core::time::Timestamp;
use uuid::Uuid;

use super::sql::{Table, sql, table};
use super::{StoreResult, Tx};

/// A pending vetting decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VettingJobRow {
    /// Customer tenant id.
    pub customer_id: Uuid,
    /// The qualification InReview.
    pub qualification: Qualification,
    /// Its vetting round.
    pub round: i64,
    /// The customer's partner.
    pub partner_tenant_id: Uuid,
    /// When the round started.
    pub created_at: Timestamp,
    /// Reads of the customer's qualifications since the round started.
    pub reads: i64,
}

table!(VettingJobRow in "vetting_jobs" {
    generated: [],
    columns: [customer_id, qualification, round, partner_tenant_id, created_at, reads],
});

impl Tx<'_> {
    /// Inserts or replaces the pending decision of a qualification.
    pub async fn put_vetting_job(&mut self, row: &VettingJobRow) -> StoreResult<()> {
        self.defer(
            sql!(
            "INSERT INTO vetting_jobs (",
            (VettingJobRow::INSERT_COLUMNS),
            ") VALUES (",
            [VettingJobRow: row],
            ") ON CONFLICT (customer_id, qualification) DO UPDATE SET round = excluded.round, \
             partner_tenant_id = excluded.partner_tenant_id, created_at = excluded.created_at, \
             reads = excluded.reads",
            ),
            false,
        )
        .await
    }

    /// Removes the pending decision of one round of a qualification.
    pub async fn delete_vetting_job(
        &mut self,
        customer: Uuid,
        qualification: Qualification,
        round: i64,
    ) -> StoreResult<()> {
        self.execute(sql!(
            "DELETE FROM vetting_jobs WHERE customer_id = ",
            { customer },
            " AND qualification = ",
            { qualification },
            " AND round = ",
            { round },
        ))
        .await?;
        Ok(())
    }

    /// Pending decisions started at or before `started_by` and read at least `min_reads`
    /// times, earliest first. Where writers run concurrently, rows another worker holds are
    /// skipped, never waited for.
    pub async fn due_vetting_jobs(
        &mut self,
        started_by: Timestamp,
        min_reads: i64,
        limit: i64,
    ) -> StoreResult<Vec<VettingJobRow>> {
        self.fetch_all(sql!(
            "SELECT ",
            (VettingJobRow::COLUMNS),
            " FROM vetting_jobs WHERE created_at <= ",
            {started_by},
            " AND reads >= ",
            {min_reads},
            " ORDER BY created_at, customer_id, qualification LIMIT ",
            {limit},
            (postgres " FOR UPDATE SKIP LOCKED"),
        ))
        .await
    }

    /// Counts a read of a customer's qualifications against its pending decisions; returns
    /// them as they are after the read.
    pub async fn count_vetting_read(&mut self, customer: Uuid) -> StoreResult<Vec<VettingJobRow>> {
        self.fetch_all(sql!(
            "UPDATE vetting_jobs SET reads = reads + 1 WHERE customer_id = ",
            { customer },
            " RETURNING ",
            (VettingJobRow::COLUMNS),
        ))
        .await
    }

    /// How many decisions are pending, and when the oldest one's round started.
    pub async fn vetting_backlog(&mut self) -> StoreResult<(i64, Option<Timestamp>)> {
        let count: Vec<i64> = self
            .fetch_all(sql!("SELECT COUNT(*) FROM vetting_jobs"))
            .await?;
        let oldest: Vec<i64> = self
            .fetch_all(sql!(
                "SELECT created_at FROM vetting_jobs ORDER BY created_at LIMIT 1"
            ))
            .await?;
        Ok((
            count.first().copied().unwrap_or(0),
            oldest.first().copied().map(Timestamp::from_micros),
        ))
    }
}
