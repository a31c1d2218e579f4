//! Qualifications: the current state of each qualification of a customer, every step of its
//! history, and the queue of those waiting for a reviewer.
//!
//! Qualifications belong to their customer: an op admits the customer for its caller first
//! ([`Tx::customer`], [`Tx::admit_customer`]) and reads them by the customer's id after.

use pcq_core::time::Timestamp;
use pcq_core::{EducationSegment, Qualification, VettingStatus};
use uuid::Uuid;

use super::sql::{BULK_ROWS, Column, FromRow, Row, Statement, Table, sql, table};
use super::{StoreResult, Tx};

/// The current state of one qualification of a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualificationRow {
    /// Customer tenant id.
    pub customer_id: Uuid,
    /// The qualification.
    pub qualification: Qualification,
    /// Vetting status (`None` for StateOwnedEntity).
    pub vetting_status: Option<VettingStatus>,
    /// Reason of a denial.
    pub vetting_reason: Option<String>,
    /// Start of the current vetting round.
    pub vetting_create_date: Option<Timestamp>,
    /// Education segment, when given.
    pub education_segment: Option<EducationSegment>,
    /// Website, when given.
    pub website: Option<String>,
    /// The validation code a GCC qualification used.
    pub validation_id: Option<String>,
    /// Vetting round, from 1.
    pub round: i64,
    /// When the qualification was first requested.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

table!(QualificationRow in "customer_qualifications" {
    generated: [],
    columns: [
        customer_id, qualification, vetting_status, vetting_reason, vetting_create_date,
        education_segment, website, validation_id, round, created_at, updated_at,
    ],
});

/// One step in a qualification's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualificationEvent {
    /// Customer tenant id.
    pub customer_id: Uuid,
    /// The qualification.
    pub qualification: Qualification,
    /// Vetting round.
    pub round: i64,
    /// Status before (`None` when the round starts).
    pub from_status: Option<VettingStatus>,
    /// Status after (`None` for StateOwnedEntity).
    pub to_status: Option<VettingStatus>,
    /// Reason given with the step.
    pub reason: Option<String>,
    /// Who caused it (user principal name, application id or `pcq`).
    pub actor: String,
    /// The `MS-RequestId` of the request that caused it.
    pub request_id: Option<String>,
    /// When.
    pub at: Timestamp,
}

table!(QualificationEvent in "qualification_events" {
    generated: [],
    columns: [
        customer_id, qualification, round, from_status, to_status, reason, actor, request_id,
        at,
    ],
});

/// A qualification waiting for a decision, with its customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewItemRow {
    /// The qualification.
    pub qualification: QualificationRow,
    /// The customer's partner.
    pub partner_tenant_id: Uuid,
    /// The customer's domain.
    pub domain: String,
    /// The customer's company name.
    pub company_name: Option<String>,
}

impl FromRow for ReviewItemRow {
    fn from_row(row: &dyn Row) -> StoreResult<Self> {
        // The qualification's columns, then the three of its customer.
        const AT: usize = 11;
        Ok(ReviewItemRow {
            qualification: QualificationRow::read(row, 0)?,
            partner_tenant_id: Column::read(row, AT)?,
            domain: Column::read(row, AT + 1)?,
            company_name: Column::read(row, AT + 2)?,
        })
    }
}

/// Which pending qualifications to list for review, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewQuery {
    /// Only this partner's customers.
    pub partner: Option<Uuid>,
    /// Only this qualification.
    pub qualification: Option<Qualification>,
    /// Only rounds started before this time.
    pub started_before: Option<Timestamp>,
    /// Position after which the page starts: (round start, customer, qualification).
    pub after: Option<(Timestamp, Uuid, Qualification)>,
    /// Page size.
    pub limit: i64,
}

impl Tx<'_> {
    /// A customer's current qualifications.
    pub async fn qualifications(&mut self, customer: Uuid) -> StoreResult<Vec<QualificationRow>> {
        self.fetch_all(sql!(
            "SELECT ",
            (QualificationRow::COLUMNS),
            " FROM customer_qualifications WHERE customer_id = ",
            { customer },
        ))
        .await
    }

    /// Inserts or replaces the current state of a qualification.
    pub async fn put_qualification(&mut self, row: &QualificationRow) -> StoreResult<()> {
        self.defer(
            sql!(
            "INSERT INTO customer_qualifications (",
            (QualificationRow::INSERT_COLUMNS),
            ") VALUES (",
            [QualificationRow: row],
            ") ON CONFLICT (customer_id, qualification) DO UPDATE SET \
             vetting_status = excluded.vetting_status, vetting_reason = excluded.vetting_reason, \
             vetting_create_date = excluded.vetting_create_date, \
             education_segment = excluded.education_segment, website = excluded.website, \
             validation_id = excluded.validation_id, round = excluded.round, \
             updated_at = excluded.updated_at",
            ),
            false,
        )
        .await
    }

    /// Inserts many qualifications with few statements (bulk loading).
    pub async fn insert_qualifications(&mut self, rows: &[QualificationRow]) -> StoreResult<()> {
        for chunk in rows.chunks(BULK_ROWS) {
            self.execute(Statement::insert_rows(chunk, "")).await?;
        }
        Ok(())
    }

    /// Moves a qualification that is in review, in the round `current` shows, to `to` (with
    /// `reason`); `false` when it is no longer there (someone decided it already).
    pub async fn decide_in_review(
        &mut self,
        current: &QualificationRow,
        to: VettingStatus,
        reason: Option<&str>,
        at: Timestamp,
    ) -> StoreResult<bool> {
        let moved = self
            .execute(sql!(
                "UPDATE customer_qualifications SET vetting_status = ",
                { to },
                ", vetting_reason = ",
                { reason },
                ", updated_at = ",
                { at },
                " WHERE customer_id = ",
                { current.customer_id },
                " AND qualification = ",
                { current.qualification },
                " AND round = ",
                { current.round },
                " AND vetting_status = 'InReview'",
            ))
            .await?;
        Ok(moved == 1)
    }

    /// Appends a history step.
    pub async fn insert_qualification_event(&mut self, e: &QualificationEvent) -> StoreResult<()> {
        self.defer(
            sql!(
                "INSERT INTO qualification_events (",
                (QualificationEvent::INSERT_COLUMNS),
                ") VALUES (",
                [QualificationEvent: e],
                ")",
            ),
            false,
        )
        .await
    }

    /// Appends many history steps with few statements (bulk loading).
    pub async fn insert_qualification_events(
        &mut self,
        rows: &[QualificationEvent],
    ) -> StoreResult<()> {
        for chunk in rows.chunks(BULK_ROWS) {
            self.execute(Statement::insert_rows(chunk, "")).await?;
        }
        Ok(())
    }

    /// A customer's qualification history, oldest first.
    pub async fn qualification_events(
        &mut self,
        customer: Uuid,
    ) -> StoreResult<Vec<QualificationEvent>> {
        self.fetch_all(sql!(
            "SELECT ",
            (QualificationEvent::COLUMNS),
            " FROM qualification_events WHERE customer_id = ",
            { customer },
            " ORDER BY id",
        ))
        .await
    }

    /// A page of the qualifications waiting for a decision.
    ///
    /// The page is read from its position on (a row-value comparison both backends seek to)
    /// along `customer_qualifications_in_review`, or for one partner's queue along
    /// `customer_qualifications_in_review_by_partner`, for one qualification's along
    /// `customer_qualifications_in_review_by_qualification`: it costs the same wherever it
    /// starts and however many requests wait, since only the rows it lists are read (one
    /// partner's queue of one qualification reads the partner's queue). The age bound ends the
    /// walk along the index.
    pub async fn review_queue(&mut self, q: &ReviewQuery) -> StoreResult<Vec<ReviewItemRow>> {
        // The first page starts before every key: no time is earlier, no text sorts before ''.
        let (at, customer, qualification) = match &q.after {
            Some((at, customer, qualification)) => {
                (*at, customer.to_string(), qualification.as_str())
            }
            None => (Timestamp::from_micros(i64::MIN), String::new(), ""),
        };
        // Every round starts before the end of time: the bound is always there to end the walk.
        let before = q.started_before.unwrap_or(Timestamp::from_micros(i64::MAX));
        // One statement per index; SQLite is told it, since with no statistics it would walk
        // the whole queue's.
        macro_rules! page_along {
            ($index:literal, $($filter:tt),*) => {
                self.fetch_all(sql!(
                    "SELECT ",
                    (&qualified_columns()),
                    ", c.partner_tenant_id, c.domain, c.company_name \
                     FROM customer_qualifications q ",
                    (sqlite concat!("INDEXED BY ", $index, " ")),
                    "JOIN customers c ON c.id = q.customer_id \
                     WHERE q.vetting_status = 'InReview'",
                    $($filter,)*
                    " AND (",
                    { q.qualification },
                    " IS NULL OR q.qualification = ",
                    { q.qualification },
                    ") AND q.vetting_create_date < ",
                    { before },
                    " AND (q.vetting_create_date, q.customer_id, q.qualification) > (",
                    { at },
                    ", ",
                    { customer },
                    ", ",
                    { qualification },
                    ") ORDER BY q.vetting_create_date, q.customer_id, q.qualification LIMIT ",
                    { q.limit },
                ))
                .await
            };
        }
        match (q.partner, q.qualification) {
            (Some(partner), _) => page_along!(
                "customer_qualifications_in_review_by_partner",
                " AND q.partner_tenant_id = ",
                { partner }
            ),
            (None, Some(only)) => page_along!(
                "customer_qualifications_in_review_by_qualification",
                " AND q.qualification = ",
                { only }
            ),
            (None, None) => page_along!("customer_qualifications_in_review",),
        }
    }
}

/// The qualification columns of the review queue's join, each with its table's alias.
fn qualified_columns() -> String {
    QualificationRow::COLUMNS
        .split(", ")
        .map(|c| format!("q.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}
