//! Audit records (Partner Center's AuditRecord), each belonging to one partner.

use pcq_core::ApiFault;
use pcq_core::time::Timestamp;
use uuid::Uuid;

use super::sql::{Table, like_escape, sql, table};
use super::{StoreResult, Tx};
use crate::error::Error;

/// An audit record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecordRow {
    /// Insertion order, used for paging.
    pub seq: i64,
    /// Record id.
    pub id: String,
    /// The partner the record belongs to.
    pub partner_tenant_id: Uuid,
    /// The customer acted on.
    pub customer_id: Option<Uuid>,
    /// Its company name at the time.
    pub customer_name: Option<String>,
    /// The acting user.
    pub user_principal_name: Option<String>,
    /// The acting application.
    pub application_id: Option<String>,
    /// `customer`, …
    pub resource_type: String,
    /// JSON of the resource before.
    pub resource_old_value: Option<String>,
    /// JSON of the resource after.
    pub resource_new_value: Option<String>,
    /// `add_customer`, `update_customer_qualification`, …
    pub operation_type: String,
    /// When.
    pub operation_date: Timestamp,
    /// `succeeded`, `failed` or `progress`.
    pub operation_status: String,
    /// Further key-value details.
    pub customized_data: Vec<(String, String)>,
}

// The table also keeps `customer_name_lower`, written with each record for case-insensitive
// filters (pcq lower-cases, since the backends' lower() differ outside ASCII).
table!(AuditRecordRow in "audit_records" {
    generated: [seq],
    columns: [
        id, partner_tenant_id, customer_id, customer_name, user_principal_name, application_id,
        resource_type, resource_old_value, resource_new_value, operation_type, operation_date,
        operation_status, customized_data,
    ],
});

/// Which audit records to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// The calling partner (only its records are listed).
    pub partner: Uuid,
    /// Earliest operation date (inclusive).
    pub from: Timestamp,
    /// Latest operation date (exclusive).
    pub until: Timestamp,
    /// Only this customer.
    pub customer_id: Option<Uuid>,
    /// Only this operation type.
    pub operation_type: Option<String>,
    /// Only this resource type.
    pub resource_type: Option<String>,
    /// Only customers whose name contains this (case-insensitive).
    pub customer_name_contains: Option<String>,
    /// Only customers with exactly this name (case-insensitive).
    pub customer_name_is: Option<String>,
    /// Position after which the page starts: the (operation date, seq) of the last record of
    /// the previous page; `None` for the first page.
    pub after: Option<(Timestamp, i64)>,
    /// Page size.
    pub limit: i64,
}

impl Tx<'_> {
    /// Appends an audit record.
    pub async fn insert_audit_record(&mut self, row: &AuditRecordRow) -> StoreResult<()> {
        let lower = row.customer_name.as_deref().map(str::to_lowercase);
        self.defer(
            sql!(
            "INSERT INTO audit_records (",
            (AuditRecordRow::INSERT_COLUMNS),
            ", customer_name_lower) VALUES (",
            [AuditRecordRow: row],
            ", ",
            {lower},
            ")",
            ),
            false,
        )
        .await
    }

    /// A page of a partner's audit records, oldest first (by operation date, then insertion).
    ///
    /// The page is read from its position on along the index of its most selective equality
    /// filter: `audit_records_by_customer` for one customer's records, `audit_records_by_name`
    /// for one company name's, `audit_records_by_operation` for one operation type's,
    /// `audit_records_by_resource` for one resource type's, `audit_records_by_partner` with
    /// none. So it costs the same wherever it starts and however many records the store holds;
    /// the other filters (a company-name substring among them) are checked on the records of
    /// that index in the date range only.
    pub async fn audit_records(&mut self, q: &AuditQuery) -> StoreResult<Vec<AuditRecordRow>> {
        // Pages start after their position, and never before the first record of `from` (seqs
        // start at 1): one lower bound, which SQLite weighs the indexes by correctly.
        let start = (q.from, 0);
        let (after_date, after_seq) = q.after.map_or(start, |after| after.max(start));
        let contains = q
            .customer_name_contains
            .as_deref()
            .map(|n| format!("%{}%", like_escape(n)));
        let named = q.customer_name_is.as_deref().map(str::to_lowercase);
        // One statement per index; SQLite is told it, since with no statistics it would walk
        // the partner's records.
        macro_rules! page_along {
            ($index:literal, $($filter:tt),*) => {
                self.fetch_all(sql!(
                    "SELECT ",
                    (AuditRecordRow::COLUMNS),
                    " FROM audit_records ",
                    (sqlite concat!("INDEXED BY ", $index, " ")),
                    "WHERE partner_tenant_id = ",
                    { q.partner },
                    $($filter,)*
                    " AND operation_date < ",
                    { q.until },
                    " AND (operation_date, seq) > (",
                    { after_date },
                    ", ",
                    { after_seq },
                    ")",
                    " AND (",
                    { &q.operation_type },
                    " IS NULL OR operation_type = ",
                    { &q.operation_type },
                    ") AND (",
                    { &q.resource_type },
                    " IS NULL OR resource_type = ",
                    { &q.resource_type },
                    ") AND (",
                    { &contains },
                    " IS NULL OR customer_name_lower LIKE ",
                    { &contains },
                    " ESCAPE '\\') AND (",
                    { &named },
                    " IS NULL OR customer_name_lower = ",
                    { &named },
                    ") ORDER BY operation_date, seq LIMIT ",
                    { q.limit },
                ))
                .await
            };
        }
        if let Some(customer) = q.customer_id {
            return page_along!("audit_records_by_customer", " AND customer_id = ", {
                customer
            });
        }
        if let Some(named) = &named {
            return page_along!("audit_records_by_name", " AND customer_name_lower = ", {
                named
            });
        }
        if let Some(operation) = &q.operation_type {
            return page_along!("audit_records_by_operation", " AND operation_type = ", {
                operation
            });
        }
        if let Some(resource) = &q.resource_type {
            return page_along!("audit_records_by_resource", " AND resource_type = ", {
                resource
            });
        }
        page_along!("audit_records_by_partner",)
    }

    /// One of a partner's audit records; 404 when the partner has none with this id.
    pub async fn audit_record(&mut self, partner: Uuid, id: &str) -> Result<AuditRecordRow, Error> {
        let row: Option<AuditRecordRow> = self
            .fetch_optional(sql!(
                "SELECT ",
                (AuditRecordRow::COLUMNS),
                " FROM audit_records WHERE partner_tenant_id = ",
                { partner },
                " AND id = ",
                { id },
            ))
            .await?;
        row.ok_or_else(|| ApiFault::audit_record_not_found(id).into())
    }
}
