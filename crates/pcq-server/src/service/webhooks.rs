//! Webhook registrations and the outbox of events to deliver.

use pcq_core::ApiFault;
use pcq_core::input::WebhookRegistrationInput;
use pcq_core::time::Timestamp;
use pcq_core::wire::WebhookRegistration;
use serde::Serialize;
use uuid::Uuid;

use crate::error::{Error, json_bytes};
use crate::store::{
    AttemptOutcome, ClaimQuery, DeliveryRow, DeliveryStatus, DeliveryWithAttempts, Isolation, Op,
    Reply, Tx, WebhookRegistrationRow,
};

/// The test event a partner can request to check its registration.
pub const TEST_CREATED: &str = "test-created";
/// A customer's qualification was requested or changed vetting status (a pcq event in the
/// Partner Center event shape).
pub const CUSTOMER_QUALIFICATION_UPDATED: &str = "customer-qualification-updated";
/// Every event pcq delivers.
pub const EVENTS: [&str; 2] = [TEST_CREATED, CUSTOMER_QUALIFICATION_UPDATED];

/// The body of an event, exactly as Partner Center posts it (PascalCase keys).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct EventBody<'a> {
    event_name: &'a str,
    resource_uri: &'a str,
    resource_name: &'a str,
    audit_uri: Option<&'a str>,
    resource_change_utc_date: String,
}

/// An event to announce.
pub struct Event<'a> {
    /// The partner whose registration receives it.
    pub partner: Uuid,
    /// `test-created`, `customer-qualification-updated`.
    pub name: &'a str,
    /// The URI of the resource that changed.
    pub resource_uri: &'a str,
    /// The URI of the audit record of the change.
    pub audit_uri: Option<&'a str>,
    /// For validation events: the correlation id to look the delivery up by.
    pub correlation_id: Option<&'a str>,
    /// When the change happened.
    pub at: Timestamp,
}

impl Event<'_> {
    /// The resource part of the event name (`customer-qualification` of
    /// `customer-qualification-updated`).
    fn resource_name(&self) -> &str {
        self.name
            .rsplit_once('-')
            .map_or(self.name, |(resource, _)| resource)
    }
}

/// Puts `event` in the outbox if the partner's registration subscribes to it (and wakes the
/// worker after the commit); `true` when it did. Runs in the transaction of the change, so an
/// event exists exactly when its change does.
pub async fn enqueue(tx: &mut Tx<'_>, event: Event<'_>) -> Result<bool, Error> {
    let registration = tx.webhook_registration(event.partner).await?;
    enqueue_to(tx, registration.as_ref(), event).await
}

/// [`enqueue`] with the partner's registration already read in this transaction (so that a
/// change can read everything it needs before it writes).
pub async fn enqueue_to(
    tx: &mut Tx<'_>,
    registration: Option<&WebhookRegistrationRow>,
    event: Event<'_>,
) -> Result<bool, Error> {
    let Some(registration) = registration else {
        return Ok(false);
    };
    if !registration.webhook_events.iter().any(|e| e == event.name) {
        return Ok(false);
    }
    let body = EventBody {
        event_name: event.name,
        resource_uri: event.resource_uri,
        resource_name: event.resource_name(),
        audit_uri: event.audit_uri,
        resource_change_utc_date: event.at.to_dotnet_round_trip(),
    };
    tx.insert_delivery(&DeliveryRow {
        seq: 0,
        id: Uuid::new_v4(),
        partner_tenant_id: event.partner,
        event_name: event.name.to_owned(),
        payload: json_bytes(&body)?,
        webhook_url: registration.webhook_url.clone(),
        correlation_id: event.correlation_id.map(str::to_owned),
        status: DeliveryStatus::Pending,
        attempts: 0,
        next_attempt_at: event.at,
        created_at: event.at,
        finished_at: None,
    })
    .await?;
    tx.wake_worker();
    Ok(true)
}

/// Leases due deliveries to one claim, a fair share of each partner's and never more than
/// `per_partner` of one partner's in flight across every claim (of this node and others); see
/// `Tx::claim_deliveries`.
#[derive(Clone)]
pub struct ClaimDeliveries(pub ClaimQuery);

impl Op for ClaimDeliveries {
    type Output = Vec<DeliveryRow>;
    // Serializable (the default): a claim counts the deliveries of a partner other claims hold,
    // so two claims racing for one partner must not both take its last free places.

    async fn run(self, tx: &mut Tx<'_>) -> Result<Vec<DeliveryRow>, Error> {
        Ok(tx.claim_deliveries(&self.0).await?)
    }
}

/// Records the outcomes of attempts, of one claim or several, in one transaction. Outcomes of
/// deliveries their claim no longer holds are dropped; returns how many were recorded.
#[derive(Clone)]
pub struct FinishAttempts(pub Vec<AttemptOutcome>);

impl Op for FinishAttempts {
    type Output = usize;
    /// Each outcome is recorded by a conditional update on its claim's token.
    const ISOLATION: Isolation = Isolation::ReadCommitted;

    async fn run(self, tx: &mut Tx<'_>) -> Result<usize, Error> {
        let recorded = tx.finish_delivery_attempts(&self.0).await?;
        for (outcome, _) in self.0.iter().zip(&recorded).filter(|(_, r)| !**r) {
            tracing::warn!(delivery = %outcome.attempt.delivery_id, "a delivery attempt finished after its lease was taken over; its result is dropped");
        }
        Ok(recorded.into_iter().filter(|r| *r).count())
    }
}

/// Creates (or, with `replace`, changes) a partner's registration.
#[derive(Clone)]
pub struct Register {
    /// The partner.
    pub partner: Uuid,
    /// The checked request.
    pub input: WebhookRegistrationInput,
    /// `false` for POST (there must be none yet), `true` for PUT (there must be one).
    pub replace: bool,
    /// Now.
    pub now: Timestamp,
}

impl Register {
    /// The registration `input` asks for, refused when it names a target pcq does not post to
    /// (loopback, private and other non-public addresses, unless `allow_private_targets`).
    pub fn new(
        partner: Uuid,
        input: WebhookRegistrationInput,
        replace: bool,
        allow_private_targets: bool,
        now: Timestamp,
    ) -> Result<Self, ApiFault> {
        if !allow_private_targets {
            if let Some(why) = crate::webhook_targets::refused_literal(&input.url) {
                return Err(ApiFault::webhook_target_refused(&why));
            }
        }
        Ok(Register {
            partner,
            input,
            replace,
            now,
        })
    }
}

impl Op for Register {
    type Output = Reply;

    async fn run(self, tx: &mut Tx<'_>) -> Result<Reply, Error> {
        let existing = tx.webhook_registration(self.partner).await?;
        let (subscriber_id, created_at) = match (&existing, self.replace) {
            (Some(_), false) => return Err(ApiFault::webhook_registration_exists().into()),
            (None, true) => return Err(ApiFault::webhook_registration_not_found().into()),
            (Some(r), true) => (r.subscriber_id, r.created_at),
            (None, false) => (Uuid::new_v4(), self.now),
        };
        let row = WebhookRegistrationRow {
            partner_tenant_id: self.partner,
            subscriber_id,
            webhook_url: self.input.url,
            webhook_events: self.input.events,
            created_at,
            updated_at: self.now,
        };
        tx.put_webhook_registration(&row).await?;
        Reply::ok(&render_registration(&row))
    }
}

/// A registration in its wire shape.
pub fn render_registration(row: &WebhookRegistrationRow) -> WebhookRegistration {
    WebhookRegistration {
        subscriber_id: Some(row.subscriber_id),
        webhook_url: row.webhook_url.clone(),
        webhook_events: row.webhook_events.clone(),
    }
}

/// Sends a `test-created` event to the partner's registration.
#[derive(Clone)]
pub struct SendValidationEvent {
    /// The partner.
    pub partner: Uuid,
    /// The request's correlation id (the event's handle).
    pub correlation_id: String,
    /// The URI the event names.
    pub resource_uri: String,
    /// Now.
    pub now: Timestamp,
}

impl Op for SendValidationEvent {
    type Output = Reply;

    async fn run(self, tx: &mut Tx<'_>) -> Result<Reply, Error> {
        tx.registration(self.partner).await?;
        let queued = enqueue(
            tx,
            Event {
                partner: self.partner,
                name: TEST_CREATED,
                resource_uri: &self.resource_uri,
                audit_uri: None,
                correlation_id: Some(&self.correlation_id),
                at: self.now,
            },
        )
        .await?;
        if !queued {
            return Err(ApiFault::not_registered_for_test_events().into());
        }
        Reply::ok(&serde_json::json!({"correlationId": self.correlation_id}))
    }
}

/// The latest delivery of one of a partner's validation events, with its attempts (404 when
/// there is none).
#[derive(Clone)]
pub struct ValidationDelivery {
    /// The partner.
    pub partner: Uuid,
    /// The event's correlation id.
    pub correlation_id: String,
}

impl Op for ValidationDelivery {
    type Output = DeliveryWithAttempts;
    const BRIEF_READ: bool = true;

    async fn run(self, tx: &mut Tx<'_>) -> Result<DeliveryWithAttempts, Error> {
        tx.validation_event(self.partner, &self.correlation_id)
            .await
    }
}

/// A partner's most recent deliveries.
#[derive(Clone)]
pub struct RecentDeliveries {
    /// The partner.
    pub partner: Uuid,
    /// Most deliveries.
    pub limit: i64,
}

impl Op for RecentDeliveries {
    type Output = Vec<DeliveryWithAttempts>;

    async fn run(self, tx: &mut Tx<'_>) -> Result<Vec<DeliveryWithAttempts>, Error> {
        Ok(tx.recent_deliveries(self.partner, self.limit).await?)
    }
}

/// A partner's registration (404 when it has none).
#[derive(Clone)]
pub struct FindRegistration(pub Uuid);

impl Op for FindRegistration {
    type Output = WebhookRegistrationRow;
    const BRIEF_READ: bool = true;

    async fn run(self, tx: &mut Tx<'_>) -> Result<Self::Output, Error> {
        tx.registration(self.0).await
    }
}

/// Every partner's webhook registration, by partner tenant: at most `limit` from the first after
/// `after`.
#[derive(Clone)]
pub struct Registrations {
    /// Where the page starts (exclusive).
    pub after: Option<Uuid>,
    /// Most registrations.
    pub limit: i64,
}

impl Op for Registrations {
    type Output = Vec<WebhookRegistrationRow>;

    async fn run(self, tx: &mut Tx<'_>) -> Result<Self::Output, Error> {
        Ok(tx.webhook_registrations(self.after, self.limit).await?)
    }
}

/// Removes a partner's registration (its queued deliveries still go out); 404 when there was
/// none.
#[derive(Clone)]
pub struct Unregister(pub Uuid);

impl Op for Unregister {
    type Output = ();

    async fn run(self, tx: &mut Tx<'_>) -> Result<(), Error> {
        tx.delete_webhook_registration(self.0).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::sqlite::{SqliteOptions, SqliteStore};
    use crate::store::{Store, StoreError};

    #[derive(Clone)]
    struct Setup(Uuid);
    impl Op for Setup {
        type Output = ();
        async fn run(self, tx: &mut Tx<'_>) -> Result<(), Error> {
            tx.put_webhook_registration(&WebhookRegistrationRow {
                partner_tenant_id: self.0,
                subscriber_id: Uuid::new_v4(),
                webhook_url: "http://127.0.0.1:9/x".into(),
                webhook_events: vec![TEST_CREATED.into()],
                created_at: Timestamp::from_micros(0),
                updated_at: Timestamp::from_micros(0),
            })
            .await?;
            Ok(())
        }
    }

    /// Enqueues an event, then fails like a change that cannot complete.
    #[derive(Clone)]
    struct EnqueueThenFail(Uuid, bool);
    impl Op for EnqueueThenFail {
        type Output = bool;
        async fn run(self, tx: &mut Tx<'_>) -> Result<bool, Error> {
            let queued = enqueue(
                tx,
                Event {
                    partner: self.0,
                    name: TEST_CREATED,
                    resource_uri: "http://pcq/x",
                    audit_uri: None,
                    correlation_id: None,
                    at: Timestamp::from_micros(1),
                },
            )
            .await?;
            if self.1 {
                return Err(StoreError::Corrupt("the change failed".into()).into());
            }
            Ok(queued)
        }
    }

    #[tokio::test]
    async fn an_event_exists_exactly_when_its_transaction_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::sqlite(
            SqliteStore::open(SqliteOptions {
                path: Some(dir.path().join("pcq.db")),
                readers: 1,
                max_batch: 8,
                cache_mib: 0,
            })
            .await
            .unwrap(),
        );
        let partner = Uuid::new_v4();
        let () = store.write(Setup(partner)).await.unwrap().output;
        assert!(store.write(EnqueueThenFail(partner, true)).await.is_err());
        assert!(
            store
                .read(RecentDeliveries { partner, limit: 10 })
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            store
                .write(EnqueueThenFail(partner, false))
                .await
                .unwrap()
                .output
        );
        assert_eq!(
            store
                .read(RecentDeliveries { partner, limit: 10 })
                .await
                .unwrap()
                .len(),
            1
        );
        // Unsubscribed events and unregistered partners produce nothing.
        assert!(
            !store
                .write(EnqueueThenFail(Uuid::new_v4(), false))
                .await
                .unwrap()
                .output
        );
        store.close().await;
    }
}
