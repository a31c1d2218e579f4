//! Audit records, written in the transaction of the change they record.

use pcq_core::time::Timestamp;
use uuid::Uuid;

use super::Actor;
use crate::error::Error;
use crate::store::{AuditQuery, AuditRecordRow, CustomerRow, Op, StoreResult, Tx};

/// `operationType` of a new customer.
pub const ADD_CUSTOMER: &str = "add_customer";
/// `operationType` of every qualification request and vetting transition.
pub const UPDATE_CUSTOMER_QUALIFICATION: &str = "update_customer_qualification";

/// `operationStatus` values.
pub mod status {
    /// The operation completed.
    pub const SUCCEEDED: &str = "succeeded";
    /// The operation is under way (a qualification InReview).
    pub const PROGRESS: &str = "progress";
}

/// Ticks of .NET's `DateTime` (100 ns since 0001-01-01), as Partner Center audit ids use them.
fn dotnet_ticks(at: Timestamp) -> i64 {
    at.as_micros()
        .saturating_mul(10)
        .saturating_add(621_355_968_000_000_000)
}

/// What happened, for an audit record.
pub struct Entry<'a> {
    /// The customer acted on.
    pub customer: &'a CustomerRow,
    /// Who acted.
    pub actor: &'a Actor,
    /// `add_customer`, `update_customer_qualification`.
    pub operation: &'static str,
    /// `succeeded` or `progress`.
    pub status: &'static str,
    /// JSON of the resource before.
    pub old_value: Option<String>,
    /// JSON of the resource after.
    pub new_value: Option<String>,
    /// Further details.
    pub data: Vec<(String, String)>,
    /// When.
    pub at: Timestamp,
}

/// Appends the audit record of `entry` to the customer's partner's records; returns its id.
pub async fn record(tx: &mut Tx<'_>, entry: Entry<'_>) -> StoreResult<String> {
    let customer = entry.customer;
    let id = format!(
        "{}_{}_{}_{}_{}",
        customer.partner_tenant_id,
        customer.id,
        entry.operation.replace('_', ""),
        dotnet_ticks(entry.at),
        &Uuid::new_v4().simple().to_string()[..8]
    );
    tx.insert_audit_record(&AuditRecordRow {
        seq: 0,
        id: id.clone(),
        partner_tenant_id: customer.partner_tenant_id,
        customer_id: Some(customer.id),
        customer_name: customer.company_name.clone(),
        user_principal_name: entry.actor.user.clone(),
        application_id: entry.actor.application.clone(),
        resource_type: "customer".to_owned(),
        resource_old_value: entry.old_value,
        resource_new_value: entry.new_value,
        operation_type: entry.operation.to_owned(),
        operation_date: entry.at,
        operation_status: entry.status.to_owned(),
        customized_data: entry.data,
    })
    .await?;
    Ok(id)
}

/// A page of a partner's audit records.
#[derive(Clone)]
pub struct AuditPage(pub AuditQuery);

impl Op for AuditPage {
    type Output = Vec<AuditRecordRow>;

    async fn run(self, tx: &mut Tx<'_>) -> Result<Vec<AuditRecordRow>, Error> {
        Ok(tx.audit_records(&self.0).await?)
    }
}

/// One of a partner's audit records (404 for any other).
#[derive(Clone)]
pub struct FindAuditRecord(pub Uuid, pub String);

impl Op for FindAuditRecord {
    type Output = AuditRecordRow;
    const BRIEF_READ: bool = true;

    async fn run(self, tx: &mut Tx<'_>) -> Result<AuditRecordRow, Error> {
        tx.audit_record(self.0, &self.1).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_match_dotnet() {
        // 2017-06-15T22:56:05Z is 636331641650000000 ticks.
        let at = Timestamp::parse_rfc3339("2017-06-15T22:56:05Z").unwrap();
        assert_eq!(dotnet_ticks(at), 636_331_641_650_000_000);
    }
}
