//! What reviewers read: the queue of qualifications waiting for a decision, and histories.

use uuid::Uuid;

use crate::store::{
    CustomerRow, Op, QualificationEvent, ReviewItemRow, ReviewQuery, StoreResult, Tx,
};

/// A page of the review queue.
#[derive(Clone)]
pub struct Queue(pub ReviewQuery);

impl Op for Queue {
    type Output = Vec<ReviewItemRow>;

    async fn run<T: Tx>(self, tx: &mut T) -> StoreResult<Vec<ReviewItemRow>> {
        tx.review_queue(&self.0).await
    }
}

/// A customer and every step of its qualifications.
#[derive(Clone)]
pub struct History(pub Uuid);

impl Op for History {
    type Output = Option<(CustomerRow, Vec<QualificationEvent>)>;
    const BRIEF_READ: bool = true;

    async fn run<T: Tx>(self, tx: &mut T) -> StoreResult<Self::Output> {
        let Some(customer) = tx.customer(self.0).await? else {
            return Ok(None);
        };
        let events = tx.qualification_events(self.0).await?;
        Ok(Some((customer, events)))
    }
}
