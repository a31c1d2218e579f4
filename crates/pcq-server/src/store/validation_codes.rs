//! GCC validation codes, each issued to one partner.

use pcq_core::time::Timestamp;
use uuid::Uuid;

use super::sql::{Table, sql, table};
use super::{StoreResult, Tx};

/// A partner's GCC validation code as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationCodeRow {
    /// The code.
    pub validation_id: String,
    /// The owning partner.
    pub partner_tenant_id: Uuid,
    /// Organisation name.
    pub organization_name: String,
    /// Creates allowed in all.
    pub max_creates: i64,
    /// Creates left.
    pub remaining_creates: i64,
    /// Version tag.
    pub etag: String,
    /// Issue time.
    pub created_at: Timestamp,
    /// Last change; strictly increases with every change.
    pub updated_at: Timestamp,
}

table!(ValidationCodeRow in "validation_codes" {
    generated: [],
    columns: [
        validation_id, partner_tenant_id, organization_name, max_creates, remaining_creates,
        etag, created_at, updated_at,
    ],
});

impl Tx<'_> {
    /// One of a partner's validation codes (`None` when the partner has no such code), locked
    /// like [`Tx::lock_customer`].
    pub async fn lock_validation_code(
        &mut self,
        partner: Uuid,
        validation_id: &str,
    ) -> StoreResult<Option<ValidationCodeRow>> {
        self.fetch_optional(sql!(
            "SELECT ",
            (ValidationCodeRow::COLUMNS),
            " FROM validation_codes WHERE partner_tenant_id = ",
            {partner},
            " AND validation_id = ",
            {validation_id},
            (postgres " FOR UPDATE"),
        ))
        .await
    }

    /// A partner's validation codes, oldest first.
    pub async fn validation_codes(&mut self, partner: Uuid) -> StoreResult<Vec<ValidationCodeRow>> {
        self.fetch_all(sql!(
            "SELECT ",
            (ValidationCodeRow::COLUMNS),
            " FROM validation_codes WHERE partner_tenant_id = ",
            { partner },
            " ORDER BY created_at, validation_id",
        ))
        .await
    }

    /// Inserts a code; `false` when the id is taken.
    pub async fn insert_validation_code(&mut self, row: &ValidationCodeRow) -> StoreResult<bool> {
        let inserted = self
            .execute(sql!(
                "INSERT INTO validation_codes (",
                (ValidationCodeRow::INSERT_COLUMNS),
                ") VALUES (",
                [ValidationCodeRow: row],
                ") ON CONFLICT (validation_id) DO NOTHING",
            ))
            .await?;
        Ok(inserted == 1)
    }

    /// Uses one create of a partner's code if it has any left, setting its new eTag and change
    /// time; `false` when none was left.
    pub async fn consume_validation_code(
        &mut self,
        partner: Uuid,
        validation_id: &str,
        etag: &str,
        at: Timestamp,
    ) -> StoreResult<bool> {
        let used = self
            .execute(sql!(
                "UPDATE validation_codes SET remaining_creates = remaining_creates - 1, etag = ",
                { etag },
                ", updated_at = ",
                { at },
                " WHERE partner_tenant_id = ",
                { partner },
                " AND validation_id = ",
                { validation_id },
                " AND remaining_creates > 0",
            ))
            .await?;
        Ok(used == 1)
    }
}
