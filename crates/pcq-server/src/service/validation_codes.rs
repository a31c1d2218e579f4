//! GCC validation codes: issuing (sandbox) and listing.

use pcq_core::time::Timestamp;
use pcq_core::{ApiFault, NewValidationCode};
use uuid::Uuid;

use super::render;
use crate::error::Error;
use crate::store::{Op, Reply, StoreError, Tx, ValidationCodeRow};

/// Issues a validation code to a partner.
#[derive(Clone)]
pub struct IssueValidationCode {
    /// The partner receiving the code.
    pub partner: Uuid,
    /// The parsed request.
    pub code: NewValidationCode,
    /// When.
    pub now: Timestamp,
}

/// A random validation id of `digits` digits (no leading zero).
fn random_validation_id(digits: u32) -> String {
    let low = 10u128.pow(digits - 1);
    let span = 9 * low;
    (low + Uuid::new_v4().as_u128() % span).to_string()
}

impl IssueValidationCode {
    fn row(&self, validation_id: String) -> ValidationCodeRow {
        ValidationCodeRow {
            validation_id,
            partner_tenant_id: self.partner,
            organization_name: self.code.organization_name.clone(),
            max_creates: self.code.max_creates,
            remaining_creates: self.code.max_creates,
            etag: self.now.to_table_etag(),
            created_at: self.now,
            updated_at: self.now,
        }
    }
}

impl Op for IssueValidationCode {
    type Output = Reply;

    async fn run(self, tx: &mut Tx<'_>) -> Result<Reply, Error> {
        if let Some(id) = &self.code.validation_id {
            let row = self.row(id.clone());
            if !tx.insert_validation_code(&row).await? {
                return Err(ApiFault::validation_code_exists(id).into());
            }
            return Reply::created(&render::validation_code(&row));
        }
        // Random ids, longer after repeated collisions.
        for attempt in 0..30u32 {
            let row = self.row(random_validation_id(6 + attempt / 10 * 3));
            if tx.insert_validation_code(&row).await? {
                return Reply::created(&render::validation_code(&row));
            }
        }
        Err(StoreError::Corrupt("no free validation id found".to_owned()).into())
    }
}

/// A partner's validation codes.
#[derive(Clone)]
pub struct PartnerValidationCodes(pub Uuid);

impl Op for PartnerValidationCodes {
    type Output = Vec<ValidationCodeRow>;
    const BRIEF_READ: bool = true;

    async fn run(self, tx: &mut Tx<'_>) -> Result<Vec<ValidationCodeRow>, Error> {
        Ok(tx.validation_codes(self.0).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_have_the_asked_length() {
        for digits in [6, 9, 12] {
            for _ in 0..100 {
                let id = random_validation_id(digits);
                assert_eq!(id.len() as u32, digits, "{id}");
            }
        }
    }
}
