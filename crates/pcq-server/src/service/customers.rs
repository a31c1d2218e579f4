//! Creating, listing and reading customers.

use pcq_core::time::Timestamp;
use pcq_core::{ApiFault, NewCustomer};
use uuid::Uuid;

use super::audit::{self, ADD_CUSTOMER};
use super::render::{self, CustomerView};
use super::{Actor, json_text};
use crate::error::Error;
use crate::store::{CustomerRow, Isolation, Op, Reply, Scope, Tx};

/// Creates a customer for a partner.
#[derive(Clone)]
pub struct CreateCustomer {
    /// The creating partner.
    pub partner: Uuid,
    /// The parsed request.
    pub customer: NewCustomer,
    /// Creation time.
    pub now: Timestamp,
    /// Who creates it.
    pub actor: Actor,
}

impl CreateCustomer {
    /// The row this request stores, with fresh ids.
    pub fn row(&self, id: Uuid) -> CustomerRow {
        CustomerRow {
            seq: 0,
            id,
            partner_tenant_id: self.partner,
            commerce_id: Uuid::new_v4(),
            domain: self.customer.domain.clone(),
            company_name: self.customer.company_name.clone(),
            company_profile: self.customer.company_profile.clone(),
            billing_profile: self.customer.billing_profile.clone(),
            billing_profile_id: Uuid::new_v4(),
            created_at: self.now,
        }
    }
}

// Read committed is enough: the domain's uniqueness is the insert's conflict clause.
impl Op for CreateCustomer {
    type Output = Reply;
    const ISOLATION: Isolation = Isolation::ReadCommitted;

    async fn run(self, tx: &mut Tx<'_>) -> Result<Reply, Error> {
        let row = self.row(Uuid::new_v4());
        if !tx.insert_customer(&row).await? {
            return Err(ApiFault::domain_taken(&row.domain).into());
        }
        let customer = render::customer(&row, CustomerView::Detail);
        audit::record(
            tx,
            audit::Entry {
                customer: &row,
                actor: &self.actor,
                operation: ADD_CUSTOMER,
                status: audit::status::SUCCEEDED,
                old_value: None,
                new_value: Some(json_text(&customer)?),
                data: vec![("CustomerDomain".to_owned(), row.domain.clone())],
                at: self.now,
            },
        )
        .await?;
        Reply::created(&customer)
    }
}

/// One of a partner's customers.
#[derive(Clone)]
pub struct FindCustomer {
    /// The calling partner.
    pub partner: Uuid,
    /// The customer.
    pub id: Uuid,
}

impl Op for FindCustomer {
    type Output = CustomerRow;
    const BRIEF_READ: bool = true;

    async fn run(self, tx: &mut Tx<'_>) -> Result<CustomerRow, Error> {
        tx.customer(Scope::Partner(self.partner), self.id).await
    }
}

/// A page of a partner's customers.
#[derive(Clone)]
pub struct CustomerPage {
    /// The partner.
    pub partner: Uuid,
    /// Position after which the page starts (0 for the first page).
    pub after_seq: i64,
    /// How many customers at most.
    pub limit: i64,
}

impl Op for CustomerPage {
    type Output = Vec<CustomerRow>;
    // A page is at most a few hundred rows, found by the partner's index.
    const BRIEF_READ: bool = true;

    async fn run(self, tx: &mut Tx<'_>) -> Result<Vec<CustomerRow>, Error> {
        Ok(tx
            .customers_page(self.partner, self.after_seq, self.limit)
            .await?)
    }
}
