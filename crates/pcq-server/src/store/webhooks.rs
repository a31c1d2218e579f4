//! Webhooks: each partner's registration, the outbox of events to deliver (written in the
//! transaction of the change they announce), and every delivery attempt.

use pcq_core::ApiFault;
use pcq_core::time::Timestamp;
use uuid::Uuid;

use super::sql::{Table, sql, table};
use super::{StoreResult, Tx};
use crate::error::Error;

/// A partner's webhook registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRegistrationRow {
    /// The partner.
    pub partner_tenant_id: Uuid,
    /// The registration's id.
    pub subscriber_id: Uuid,
    /// Where events go.
    pub webhook_url: String,
    /// The events it receives.
    pub webhook_events: Vec<String>,
    /// Registration time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

table!(WebhookRegistrationRow in "webhook_registrations" {
    generated: [],
    columns: [
        partner_tenant_id, subscriber_id, webhook_url, webhook_events, created_at, updated_at,
    ],
});

/// State of a webhook delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Not delivered yet; more attempts follow.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed.
    Failed,
}

impl DeliveryStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// The status of a stored name.
    pub fn parse_str(raw: &str) -> Option<Self> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Delivered,
            DeliveryStatus::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

/// An event in the outbox. The lease columns (`lease_until`, `lease_owner`) are not part of
/// it: only the claims that set and release them use them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    /// Insertion order.
    pub seq: i64,
    /// Delivery id.
    pub id: Uuid,
    /// The partner it belongs to.
    pub partner_tenant_id: Uuid,
    /// `test-created`, `customer-qualification-updated`.
    pub event_name: String,
    /// The exact body to POST (the signature covers these bytes).
    pub payload: Vec<u8>,
    /// Where to POST it.
    pub webhook_url: String,
    /// The correlation id of a validation event.
    pub correlation_id: Option<String>,
    /// Delivery state.
    pub status: DeliveryStatus,
    /// Attempts so far.
    pub attempts: i64,
    /// When the next attempt is due.
    pub next_attempt_at: Timestamp,
    /// When the event was written.
    pub created_at: Timestamp,
    /// When it was delivered or given up.
    pub finished_at: Option<Timestamp>,
}

table!(DeliveryRow in "webhook_deliveries" {
    generated: [seq],
    columns: [
        id, partner_tenant_id, event_name, payload, webhook_url, correlation_id, status,
        attempts, next_attempt_at, created_at, finished_at,
    ],
});

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRow {
    /// The delivery.
    pub delivery_id: Uuid,
    /// 1 for the first attempt.
    pub attempt: i64,
    /// When.
    pub at: Timestamp,
    /// The receiver's HTTP status, when it answered.
    pub response_code: Option<i64>,
    /// What happened, in words.
    pub response_message: String,
    /// Whether the attempt failed before an answer (refused connection, timeout).
    pub system_error: bool,
}

table!(AttemptRow in "webhook_attempts" {
    generated: [],
    columns: [delivery_id, attempt, at, response_code, response_message, system_error],
});

/// Which due deliveries a claim takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimQuery {
    /// Now, on pcq's clock (what is due).
    pub now: Timestamp,
    /// Now, in real time (which leases ran out).
    pub real_now: Timestamp,
    /// Until when, in real time, the lease holds.
    pub lease_until: Timestamp,
    /// The claim's token.
    pub token: String,
    /// Most deliveries.
    pub limit: i64,
    /// Most deliveries of one partner (the earliest).
    pub per_partner: i64,
}

/// A delivery and its attempts.
pub type DeliveryWithAttempts = (DeliveryRow, Vec<AttemptRow>);

impl Tx<'_> {
    /// A partner's webhook registration, if it has one.
    pub async fn webhook_registration(
        &mut self,
        partner: Uuid,
    ) -> StoreResult<Option<WebhookRegistrationRow>> {
        self.fetch_optional(sql!(
            "SELECT ",
            (WebhookRegistrationRow::COLUMNS),
            " FROM webhook_registrations WHERE partner_tenant_id = ",
            { partner },
        ))
        .await
    }

    /// A partner's webhook registration; 404 when it has none.
    pub async fn registration(&mut self, partner: Uuid) -> Result<WebhookRegistrationRow, Error> {
        self.webhook_registration(partner)
            .await?
            .ok_or_else(|| ApiFault::webhook_registration_not_found().into())
    }

    /// Inserts or replaces a partner's webhook registration.
    pub async fn put_webhook_registration(
        &mut self,
        row: &WebhookRegistrationRow,
    ) -> StoreResult<()> {
        self.execute(sql!(
            "INSERT INTO webhook_registrations (",
            (WebhookRegistrationRow::INSERT_COLUMNS),
            ") VALUES (",
            [WebhookRegistrationRow: row],
            ") ON CONFLICT (partner_tenant_id) DO UPDATE SET subscriber_id = excluded.subscriber_id, \
             webhook_url = excluded.webhook_url, webhook_events = excluded.webhook_events, \
             updated_at = excluded.updated_at",
        ))
        .await?;
        Ok(())
    }

    /// Removes a partner's webhook registration; 404 when there was none.
    pub async fn delete_webhook_registration(&mut self, partner: Uuid) -> Result<(), Error> {
        let deleted = self
            .execute(sql!(
                "DELETE FROM webhook_registrations WHERE partner_tenant_id = ",
                { partner },
            ))
            .await?;
        if deleted == 1 {
            Ok(())
        } else {
            Err(ApiFault::webhook_registration_not_found().into())
        }
    }

    /// Adds an event to the outbox.
    pub async fn insert_delivery(&mut self, row: &DeliveryRow) -> StoreResult<()> {
        self.execute(sql!(
            "INSERT INTO webhook_deliveries (",
            (DeliveryRow::INSERT_COLUMNS),
            ") VALUES (",
            [DeliveryRow: row],
            ")",
        ))
        .await?;
        Ok(())
    }

    /// Leases up to `limit` deliveries due at `now` (pcq's clock), at most `per_partner` of any
    /// one partner (the earliest) and none of a partner another claim holds deliveries of, to
    /// the claim `token` until `lease_until` (real time; a lease that ran out by `real_now` may
    /// be taken over).
    pub async fn claim_deliveries(&mut self, q: &ClaimQuery) -> StoreResult<Vec<DeliveryRow>> {
        // The conditions are repeated outside the subquery so that a concurrent claimer that
        // waited on a row re-checks it and leaves it alone.
        let mut claimed: Vec<DeliveryRow> = self
            .fetch_all(sql!(
                "UPDATE webhook_deliveries SET lease_until = ",
                { q.lease_until },
                ", lease_owner = ",
                { &q.token },
                " WHERE status = 'pending' AND next_attempt_at <= ",
                { q.now },
                " AND (lease_until IS NULL OR lease_until <= ",
                { q.real_now },
                ") AND id IN (SELECT id FROM ( \
                     SELECT id, next_attempt_at, seq, ROW_NUMBER() OVER ( \
                         PARTITION BY partner_tenant_id ORDER BY next_attempt_at, seq) AS nth \
                     FROM webhook_deliveries d WHERE status = 'pending' AND next_attempt_at <= ",
                { q.now },
                " AND (lease_until IS NULL OR lease_until <= ",
                { q.real_now },
                ") AND NOT EXISTS (SELECT 1 FROM webhook_deliveries busy \
                         WHERE busy.partner_tenant_id = d.partner_tenant_id \
                         AND busy.status = 'pending' AND busy.lease_until > ",
                { q.real_now },
                ")) due WHERE nth <= ",
                { q.per_partner },
                " ORDER BY next_attempt_at, seq LIMIT ",
                { q.limit },
                ") RETURNING ",
                (DeliveryRow::COLUMNS),
            ))
            .await?;
        claimed.sort_by_key(|d| d.seq);
        Ok(claimed)
    }

    /// Records an attempt made under the claim `token` and the delivery's new state, releasing
    /// the lease; the attempt's number is the delivery's count of attempts. `false` (and
    /// nothing recorded) when the claim no longer holds the delivery.
    pub async fn finish_delivery_attempt(
        &mut self,
        attempt: &AttemptRow,
        token: &str,
        status: DeliveryStatus,
        next_attempt_at: Timestamp,
    ) -> StoreResult<bool> {
        let finished = (status != DeliveryStatus::Pending).then_some(attempt.at);
        let number: Option<i64> = self
            .fetch_optional(sql!(
                "UPDATE webhook_deliveries SET status = ",
                { status },
                ", attempts = attempts + 1, next_attempt_at = ",
                { next_attempt_at },
                ", finished_at = ",
                { finished },
                ", lease_until = NULL, lease_owner = NULL WHERE id = ",
                { attempt.delivery_id },
                " AND lease_owner = ",
                { token },
                " AND status = 'pending' RETURNING attempts",
            ))
            .await?;
        let Some(number) = number else {
            return Ok(false);
        };
        let recorded = AttemptRow {
            attempt: number,
            ..attempt.clone()
        };
        self.execute(sql!(
            "INSERT INTO webhook_attempts (",
            (AttemptRow::INSERT_COLUMNS),
            ") VALUES (",
            [AttemptRow: &recorded],
            ")",
        ))
        .await?;
        Ok(true)
    }

    /// The latest delivery of one of a partner's validation events, with its attempts; 404
    /// when the partner has none under that correlation id.
    pub async fn validation_event(
        &mut self,
        partner: Uuid,
        correlation_id: &str,
    ) -> Result<DeliveryWithAttempts, Error> {
        let delivery: Option<DeliveryRow> = self
            .fetch_optional(sql!(
                "SELECT ",
                (DeliveryRow::COLUMNS),
                " FROM webhook_deliveries WHERE partner_tenant_id = ",
                { partner },
                " AND correlation_id = ",
                { correlation_id },
                " ORDER BY seq DESC LIMIT 1",
            ))
            .await?;
        let delivery =
            delivery.ok_or_else(|| ApiFault::validation_event_not_found(correlation_id))?;
        let attempts = self.delivery_attempts(delivery.id).await?;
        Ok((delivery, attempts))
    }

    /// A partner's most recent deliveries, newest first, with their attempts.
    pub async fn recent_deliveries(
        &mut self,
        partner: Uuid,
        limit: i64,
    ) -> StoreResult<Vec<DeliveryWithAttempts>> {
        let deliveries: Vec<DeliveryRow> = self
            .fetch_all(sql!(
                "SELECT ",
                (DeliveryRow::COLUMNS),
                " FROM webhook_deliveries WHERE partner_tenant_id = ",
                { partner },
                " ORDER BY seq DESC LIMIT ",
                { limit },
            ))
            .await?;
        let mut out = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            let attempts = self.delivery_attempts(delivery.id).await?;
            out.push((delivery, attempts));
        }
        Ok(out)
    }

    /// The attempts of a delivery, in order.
    async fn delivery_attempts(&mut self, delivery: Uuid) -> StoreResult<Vec<AttemptRow>> {
        self.fetch_all(sql!(
            "SELECT ",
            (AttemptRow::COLUMNS),
            " FROM webhook_attempts WHERE delivery_id = ",
            { delivery },
            " ORDER BY attempt",
        ))
        .await
    }
}
