//! Bulk loading: many generated customers, each with an approved qualification, written with
//! few statements per transaction (`pcq admin load`), to try pcq with a large store.
//!
//! Loaded customers look like ones created through the API (same company profile shape, ids,
//! billing profile id); each gets one qualification and one history step (`pcq load`). No audit
//! records, vetting jobs or webhook events are written: nobody requested anything.
//!
//! Their ids are time-ordered (UUID version 7) and their domains numbered with leading zeros,
//! so that every index takes the rows in order, at its end, instead of at random places: that
//! keeps a load of millions of rows from rewriting most of the index pages in every batch.

use pcq_core::time::Timestamp;
use pcq_core::{EducationSegment, NewCustomer, Qualification, VettingStatus};
use serde_json::json;
use uuid::Uuid;

use crate::error::Error;
use crate::store::{CustomerRow, Op, QualificationEvent, QualificationRow, Tx};

/// The actor of loaded history steps.
pub const LOAD_ACTOR: &str = "pcq load";

/// What each loaded customer gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadedQualification {
    /// Education, Approved (K12).
    Education,
    /// StateOwnedEntity (no vetting).
    StateOwnedEntity,
    /// No qualification.
    None,
}

/// One transaction's worth of generated rows.
#[derive(Clone)]
pub struct BulkLoad {
    /// The customers.
    pub customers: Vec<CustomerRow>,
    /// Their qualifications.
    pub qualifications: Vec<QualificationRow>,
    /// Their history steps.
    pub events: Vec<QualificationEvent>,
}

impl BulkLoad {
    /// Customers `first..first + count` of a load tagged `tag` for `partner`: domains
    /// `c{n:09}-{tag}.load.example.edu`, names `Loaded Customer {n}`.
    pub fn generate(
        partner: Uuid,
        tag: &str,
        first: u64,
        count: u64,
        qualification: LoadedQualification,
        now: Timestamp,
    ) -> BulkLoad {
        let template = NewCustomer::parse(&json!({
            "companyProfile": {"domain": "template.example.edu", "companyName": "Loaded Customer"}
        }))
        .expect("the template customer is valid");
        let mut load = BulkLoad {
            customers: Vec::with_capacity(count as usize),
            qualifications: Vec::with_capacity(count as usize),
            events: Vec::with_capacity(count as usize),
        };
        for n in first..first + count {
            let id = Uuid::now_v7();
            let domain = format!("c{n:09}-{tag}.load.example.edu");
            let name = format!("Loaded Customer {n}");
            // The name is the row's; the stored profile holds what pcq does not set itself.
            let profile = template.company_profile.clone();
            load.customers.push(CustomerRow {
                seq: 0,
                id,
                partner_tenant_id: partner,
                commerce_id: Uuid::new_v4(),
                domain,
                company_name: Some(name),
                company_profile: profile,
                billing_profile: None,
                billing_profile_id: Uuid::new_v4(),
                created_at: now,
            });
            let (q, status, segment) = match qualification {
                LoadedQualification::None => continue,
                LoadedQualification::Education => (
                    Qualification::Education,
                    Some(VettingStatus::Approved),
                    Some(EducationSegment::K12),
                ),
                LoadedQualification::StateOwnedEntity => {
                    (Qualification::StateOwnedEntity, None, None)
                }
            };
            load.qualifications.push(QualificationRow {
                customer_id: id,
                qualification: q,
                vetting_status: status,
                vetting_reason: None,
                vetting_create_date: status.map(|_| now),
                education_segment: segment,
                website: None,
                validation_id: None,
                round: 1,
                created_at: now,
                updated_at: now,
            });
            load.events.push(QualificationEvent {
                customer_id: id,
                qualification: q,
                round: 1,
                from_status: None,
                to_status: status,
                reason: None,
                actor: LOAD_ACTOR.to_owned(),
                request_id: None,
                at: now,
            });
        }
        load
    }

    /// Rows this load writes (customers, qualifications and history steps).
    pub fn rows(&self) -> usize {
        self.customers.len() + self.qualifications.len() + self.events.len()
    }
}

impl Op for BulkLoad {
    type Output = ();

    async fn run(self, tx: &mut Tx<'_>) -> Result<(), Error> {
        tx.insert_customers(&self.customers).await?;
        tx.insert_qualifications(&self.qualifications).await?;
        tx.insert_qualification_events(&self.events).await?;
        Ok(())
    }
}
