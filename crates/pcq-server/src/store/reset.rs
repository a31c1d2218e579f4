//! Emptying the store for a sandbox reset: every table a partner's data lives in, all of it or
//! one partner's rows, with one set-based `DELETE` per table (children before their parents).
//! `meta` (keys and settings) is left alone here, but for the faults' version.

use uuid::Uuid;

use super::sql::sql;
use super::{StoreResult, Tx};

/// How many rows of each kind a reset removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Removed {
    /// Customers.
    pub customers: u64,
    /// Qualifications (their current state).
    pub qualifications: u64,
    /// Steps of the qualifications' history.
    pub qualification_history: u64,
    /// GCC validation codes.
    pub validation_codes: u64,
    /// Pending vetting decisions.
    pub vetting_jobs: u64,
    /// Audit records.
    pub audit_records: u64,
    /// Webhook registrations.
    pub webhook_registrations: u64,
    /// Webhook events (the outbox), delivered or not.
    pub webhook_deliveries: u64,
    /// Attempts to deliver them.
    pub webhook_attempts: u64,
    /// Stored answers of idempotent requests.
    pub idempotency_records: u64,
    /// Injected faults (for one partner: those scoped to it).
    pub faults: u64,
}

impl Tx<'_> {
    /// Removes every partner's data.
    pub async fn remove_everything(&mut self) -> StoreResult<Removed> {
        Ok(Removed {
            webhook_attempts: self.execute(sql!("DELETE FROM webhook_attempts")).await?,
            webhook_deliveries: self.execute(sql!("DELETE FROM webhook_deliveries")).await?,
            webhook_registrations: self
                .execute(sql!("DELETE FROM webhook_registrations"))
                .await?,
            idempotency_records: self.execute(sql!("DELETE FROM idempotency")).await?,
            audit_records: self.execute(sql!("DELETE FROM audit_records")).await?,
            vetting_jobs: self.execute(sql!("DELETE FROM vetting_jobs")).await?,
            qualification_history: self
                .execute(sql!("DELETE FROM qualification_events"))
                .await?,
            qualifications: self
                .execute(sql!("DELETE FROM customer_qualifications"))
                .await?,
            validation_codes: self.execute(sql!("DELETE FROM validation_codes")).await?,
            customers: self.execute(sql!("DELETE FROM customers")).await?,
            faults: self.delete_faults(None).await?,
        })
    }

    /// Removes one partner's data: the rows with its tenant, and those of its customers and
    /// deliveries.
    pub async fn remove_partner(&mut self, partner: Uuid) -> StoreResult<Removed> {
        Ok(Removed {
            webhook_attempts: self
                .execute(sql!(
                    "DELETE FROM webhook_attempts WHERE delivery_id IN \
                     (SELECT id FROM webhook_deliveries WHERE partner_tenant_id = ",
                    { partner },
                    ")",
                ))
                .await?,
            webhook_deliveries: self
                .execute(sql!(
                    "DELETE FROM webhook_deliveries WHERE partner_tenant_id = ",
                    { partner },
                ))
                .await?,
            webhook_registrations: self
                .execute(sql!(
                    "DELETE FROM webhook_registrations WHERE partner_tenant_id = ",
                    { partner },
                ))
                .await?,
            idempotency_records: self
                .execute(sql!(
                    "DELETE FROM idempotency WHERE partner_tenant_id = ",
                    { partner },
                ))
                .await?,
            audit_records: self
                .execute(sql!(
                    "DELETE FROM audit_records WHERE partner_tenant_id = ",
                    { partner },
                ))
                .await?,
            vetting_jobs: self
                .execute(sql!(
                    "DELETE FROM vetting_jobs WHERE partner_tenant_id = ",
                    { partner },
                ))
                .await?,
            qualification_history: self
                .execute(sql!(
                    "DELETE FROM qualification_events WHERE customer_id IN \
                     (SELECT id FROM customers WHERE partner_tenant_id = ",
                    { partner },
                    ")",
                ))
                .await?,
            qualifications: self
                .execute(sql!(
                    "DELETE FROM customer_qualifications WHERE customer_id IN \
                     (SELECT id FROM customers WHERE partner_tenant_id = ",
                    { partner },
                    ")",
                ))
                .await?,
            validation_codes: self
                .execute(sql!(
                    "DELETE FROM validation_codes WHERE partner_tenant_id = ",
                    { partner },
                ))
                .await?,
            customers: self
                .execute(sql!("DELETE FROM customers WHERE partner_tenant_id = ", {
                    partner
                },))
                .await?,
            faults: self.delete_faults(Some(partner)).await?,
        })
    }
}
