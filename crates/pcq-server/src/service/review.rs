//! What reviewers read: the queue of qualifications waiting for a decision, and histories.

use uuid::Uuid;

use crate::auth::Principal;
use crate::error::Error;
use crate::store::{CustomerRow, Op, QualificationEvent, ReviewItemRow, ReviewQuery, Scope, Tx};

/// A page of the review queue.
#[derive(Clone)]
pub struct Queue(pub ReviewQuery);

impl Op for Queue {
    type Output = Vec<ReviewItemRow>;

    async fn run(self, tx: &mut Tx<'_>) -> Result<Vec<ReviewItemRow>, Error> {
        Ok(tx.review_queue(&self.0).await?)
    }
}

/// A customer and every step of its qualifications: for the customer's partner, and for
/// reviewers (whose role covers every partner's customers).
#[derive(Clone)]
pub struct History {
    /// Whose customers the caller may see.
    pub scope: Scope,
    /// The customer.
    pub customer: Uuid,
}

impl History {
    /// The history of `customer` as `caller` may read it.
    pub fn for_caller(caller: &Principal, customer: Uuid) -> Self {
        History {
            scope: if caller.is_reviewer() {
                Scope::AnyPartner
            } else {
                Scope::Partner(caller.tenant_id)
            },
            customer,
        }
    }
}

impl Op for History {
    type Output = (CustomerRow, Vec<QualificationEvent>);
    const BRIEF_READ: bool = true;

    async fn run(self, tx: &mut Tx<'_>) -> Result<Self::Output, Error> {
        let customer = tx.customer(self.scope, self.customer).await?;
        let events = tx.qualification_events(self.customer).await?;
        Ok((customer, events))
    }
}
