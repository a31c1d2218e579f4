//! Customers: each created by one partner, whose data it is.

use pcq_core::ApiFault;
use pcq_core::time::Timestamp;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::sql::{BULK_ROWS, Statement, Table, sql, table};
use super::{Scope, StoreResult, Tx};
use crate::error::Error;

/// A customer as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerRow {
    /// Insertion order, used for paging.
    pub seq: i64,
    /// Customer tenant id.
    pub id: Uuid,
    /// The partner that created the customer.
    pub partner_tenant_id: Uuid,
    /// Commerce id.
    pub commerce_id: Uuid,
    /// Lower-cased domain, unique per partner.
    pub domain: String,
    /// Company name.
    pub company_name: Option<String>,
    /// Further company-profile properties.
    pub company_profile: Map<String, Value>,
    /// Billing profile as sent.
    pub billing_profile: Option<Map<String, Value>>,
    /// Id of the billing profile.
    pub billing_profile_id: Uuid,
    /// Creation time.
    pub created_at: Timestamp,
}

table!(CustomerRow in "customers" {
    generated: [seq],
    columns: [
        id, partner_tenant_id, commerce_id, domain, company_name, company_profile,
        billing_profile, billing_profile_id, created_at,
    ],
});

impl Scope {
    /// Whether the customer `id`, whose partner is `owner` (`None`: no such customer), may be
    /// seen in this scope: otherwise 404 for a customer that does not exist and 403 for
    /// another partner's, as Partner Center answers a customer without a relationship.
    pub fn admit(self, owner: Option<Uuid>, id: Uuid) -> Result<(), Error> {
        match (owner, self) {
            (None, _) => Err(ApiFault::customer_not_found(&id.to_string()).into()),
            (Some(owner), Scope::Partner(partner)) if owner != partner => {
                Err(ApiFault::no_relationship(&partner.to_string(), &id.to_string()).into())
            }
            (Some(_), _) => Ok(()),
        }
    }

    fn customer(self, row: Option<CustomerRow>, id: Uuid) -> Result<CustomerRow, Error> {
        self.admit(row.as_ref().map(|c| c.partner_tenant_id), id)?;
        row.ok_or_else(|| ApiFault::customer_not_found(&id.to_string()).into())
    }
}

impl Tx<'_> {
    /// Inserts a customer; `false` when the partner already has a customer with its domain.
    pub async fn insert_customer(&mut self, row: &CustomerRow) -> StoreResult<bool> {
        let inserted = self
            .execute(sql!(
                "INSERT INTO customers (",
                (CustomerRow::INSERT_COLUMNS),
                ") VALUES (",
                [CustomerRow: row],
                ") ON CONFLICT (partner_tenant_id, domain) DO NOTHING",
            ))
            .await?;
        Ok(inserted == 1)
    }

    /// Inserts many customers with few statements (bulk loading); a conflict fails the whole
    /// transaction.
    pub async fn insert_customers(&mut self, rows: &[CustomerRow]) -> StoreResult<()> {
        for chunk in rows.chunks(BULK_ROWS) {
            self.execute(Statement::insert_rows(chunk, "")).await?;
        }
        Ok(())
    }

    /// A customer the scope may see.
    pub async fn customer(&mut self, scope: Scope, id: Uuid) -> Result<CustomerRow, Error> {
        let row = self
            .fetch_optional(sql!(
                "SELECT ",
                (CustomerRow::COLUMNS),
                " FROM customers WHERE id = ",
                { id },
            ))
            .await?;
        scope.customer(row, id)
    }

    /// A customer the scope may see, locked until the transaction ends where writers run
    /// concurrently: an op that decides a write from the customer's state reads it this way
    /// first, so that writes for one customer run one after another.
    pub async fn lock_customer(&mut self, scope: Scope, id: Uuid) -> Result<CustomerRow, Error> {
        let row = self
            .fetch_optional(sql!(
                "SELECT ",
                (CustomerRow::COLUMNS),
                " FROM customers WHERE id = ",
                {id},
                (postgres " FOR UPDATE"),
            ))
            .await?;
        scope.customer(row, id)
    }

    /// Whether the scope may see the customer (reading only its partner).
    pub async fn admit_customer(&mut self, scope: Scope, id: Uuid) -> Result<(), Error> {
        let owner: Option<Uuid> = self
            .fetch_optional(sql!(
                "SELECT partner_tenant_id FROM customers WHERE id = ",
                { id },
            ))
            .await?;
        scope.admit(owner, id)
    }

    /// A partner's customers after `after_seq`, in creation order, at most `limit`.
    pub async fn customers_page(
        &mut self,
        partner: Uuid,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<CustomerRow>> {
        self.fetch_all(sql!(
            "SELECT ",
            (CustomerRow::COLUMNS),
            " FROM customers WHERE partner_tenant_id = ",
            { partner },
            " AND seq > ",
            { after_seq },
            // The same bound as one on customers_by_partner's key: PostgreSQL then weighs the
            // page along that index rather than a walk of every partner's customers in seq
            // order (SQLite seeks it as it is).
            (postgres " AND (partner_tenant_id, seq) > ($1, $2)"),
            " ORDER BY seq LIMIT ",
            { limit },
        ))
        .await
    }
}
