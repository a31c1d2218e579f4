//! Webhooks: each partner's registration, the outbox of events to deliver (written in the
//! transaction of the change they announce), and every delivery attempt.

use pcq_core::ApiFault;
use pcq_core::time::Timestamp;
use uuid::Uuid;

use super::sql::{Statement, Table, sql, table};
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
    /// Most deliveries of one partner in flight at once: held by this claim and by any other
    /// (of this node or another) whose lease still runs.
    pub per_partner: i64,
    /// Where the round over partners resumes: the partners after this one (in id order) come
    /// first, then the others from the start. `None` starts from the first.
    pub after: Option<Uuid>,
}

/// How one attempt ended, to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// The token of the claim the attempt was made under.
    pub token: String,
    /// The attempt (its number is set when it is recorded).
    pub attempt: AttemptRow,
    /// The delivery's new state.
    pub status: DeliveryStatus,
    /// When to try next, if it is still pending.
    pub next_attempt_at: Timestamp,
}

/// A partner with pending deliveries, as the round over partners finds it.
struct PartnerDue {
    partner: Uuid,
    /// Its deliveries whose lease still runs (attempts in flight).
    in_flight: i64,
}

impl super::sql::FromRow for PartnerDue {
    fn from_row(row: &dyn super::sql::Row) -> StoreResult<Self> {
        use super::sql::Column;
        Ok(PartnerDue {
            partner: Column::read(row, 0)?,
            in_flight: Column::read(row, 1)?,
        })
    }
}

/// Most outcomes one update records (five values each).
pub const FINISH_ROWS: usize = 200;

/// A delivery an update recorded an attempt of, and its count of attempts.
struct Finished {
    id: Uuid,
    attempts: i64,
}

impl super::sql::FromRow for Finished {
    fn from_row(row: &dyn super::sql::Row) -> StoreResult<Self> {
        use super::sql::Column;
        Ok(Finished {
            id: Column::read(row, 0)?,
            attempts: Column::read(row, 1)?,
        })
    }
}

/// The update that records `outcomes` (each delivery once), releasing their leases: each
/// outcome's values, typed, in a list joined to the row of its delivery that its claim still
/// holds.
fn finish_statement(outcomes: &[AttemptOutcome]) -> Statement<'_> {
    use super::sql::{Arg, Sql, TextBuilder};
    let mut text = TextBuilder::default();
    let mut args = Vec::with_capacity(outcomes.len() * 5);
    text.push("WITH v (id, token, status, next_attempt_at, finished_at) AS (VALUES ");
    for (n, o) in outcomes.iter().enumerate() {
        text.push(if n == 0 { "(" } else { ", (" });
        for (i, ty) in ["TEXT", "TEXT", "TEXT", "BIGINT", "BIGINT"]
            .iter()
            .enumerate()
        {
            text.push(if i == 0 { "CAST(" } else { ", CAST(" });
            text.bind();
            text.push(" AS ");
            text.push(ty);
            text.push(")");
        }
        text.push(")");
        let finished = (o.status != DeliveryStatus::Pending).then_some(o.attempt.at);
        args.extend([
            Arg::from(o.attempt.delivery_id),
            Arg::from(&o.token),
            Arg::from(o.status),
            Arg::from(o.next_attempt_at),
            Arg::from(finished),
        ]);
    }
    text.push(
        ") UPDATE webhook_deliveries SET status = v.status, \
         attempts = webhook_deliveries.attempts + 1, next_attempt_at = v.next_attempt_at, \
         finished_at = v.finished_at, lease_until = NULL, lease_owner = NULL FROM v \
         WHERE webhook_deliveries.id = v.id AND webhook_deliveries.lease_owner = v.token \
         AND webhook_deliveries.status = 'pending' \
         RETURNING webhook_deliveries.id, webhook_deliveries.attempts",
    );
    Statement {
        sql: Sql::Built(text.finish()),
        args,
    }
}

/// A delivery and its attempts.
pub type DeliveryWithAttempts = (DeliveryRow, Vec<AttemptRow>);

impl Tx<'_> {
    /// How many deliveries are still pending (the outbox).
    pub async fn outbox_depth(&mut self) -> StoreResult<i64> {
        let count: Vec<i64> = self
            .fetch_all(sql!(
                "SELECT COUNT(*) FROM webhook_deliveries WHERE status = ",
                { DeliveryStatus::Pending },
            ))
            .await?;
        Ok(count.first().copied().unwrap_or(0))
    }

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

    /// Every partner's registration, by partner tenant, from the first after `after`: at most
    /// `limit`.
    pub async fn webhook_registrations(
        &mut self,
        after: Option<Uuid>,
        limit: i64,
    ) -> StoreResult<Vec<WebhookRegistrationRow>> {
        self.fetch_all(sql!(
            "SELECT ",
            (WebhookRegistrationRow::COLUMNS),
            " FROM webhook_registrations WHERE partner_tenant_id > ",
            { after.map_or(String::new(), |p| p.to_string()) },
            " ORDER BY partner_tenant_id LIMIT ",
            { limit },
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
        self.defer(
            sql!(
                "INSERT INTO webhook_deliveries (",
                (DeliveryRow::INSERT_COLUMNS),
                ") VALUES (",
                [DeliveryRow: row],
                ")",
            ),
            false,
        )
        .await
    }

    /// Leases up to `limit` deliveries due at `now` (pcq's clock) to the claim `token` until
    /// `lease_until` (real time; a lease that ran out by `real_now` may be taken over).
    ///
    /// Partners are served in rounds: starting after `after`, the claim walks the partners
    /// that have pending deliveries in id order (one index probe each, wrapping around once),
    /// and gives each with a delivery due a fair share of `limit` — its earliest due
    /// deliveries, never more than leave `per_partner` of its deliveries in flight — then
    /// hands what is left to those that had more. The rows it reads are the partners it walks
    /// and the deliveries it takes (and the few in flight), however many are pending.
    ///
    /// The deliveries come back grouped by partner in the order of the walk (so the last one's
    /// partner is where the next round resumes), each partner's earliest first.
    pub async fn claim_deliveries(&mut self, q: &ClaimQuery) -> StoreResult<Vec<DeliveryRow>> {
        if q.limit <= 0 || q.per_partner <= 0 {
            return Ok(Vec::new());
        }
        let start = q.after.map(|a| a.to_string()).unwrap_or_default();
        let mut partners = self.partners_due(&start, q).await?;
        if !start.is_empty() && (partners.len() as i64) < q.limit {
            // Wrap around: the partners up to and including `after`.
            let wrapped = self.partners_due("", q).await?;
            let walked = partners.len();
            partners.extend(
                wrapped
                    .into_iter()
                    .filter(|p| p.partner.to_string() <= start)
                    .take(
                        usize::try_from(q.limit)
                            .unwrap_or(usize::MAX)
                            .saturating_sub(walked),
                    ),
            );
        }
        if partners.is_empty() {
            return Ok(Vec::new());
        }
        let share = (q.limit + partners.len() as i64 - 1) / partners.len() as i64;
        let mut left = q.limit;
        // First a fair share each; then what is left to those that got all they asked for (they
        // may have more due), in the same order.
        let mut taken: Vec<Vec<DeliveryRow>> = Vec::with_capacity(partners.len());
        let mut may_have_more = Vec::with_capacity(partners.len());
        for p in &partners {
            let want = share.min(q.per_partner - p.in_flight).min(left);
            let rows = if want > 0 {
                self.lease_partner_deliveries(p.partner, want, q).await?
            } else {
                Vec::new()
            };
            left -= rows.len() as i64;
            may_have_more.push(want > 0 && rows.len() as i64 == want);
            taken.push(rows);
        }
        for (n, p) in partners.iter().enumerate() {
            let want = (q.per_partner - p.in_flight - taken[n].len() as i64).min(left);
            if left <= 0 {
                break;
            }
            if !may_have_more[n] || want <= 0 {
                continue;
            }
            let mut rows = self.lease_partner_deliveries(p.partner, want, q).await?;
            left -= rows.len() as i64;
            taken[n].append(&mut rows);
        }
        let mut claimed = Vec::new();
        for mut rows in taken {
            rows.sort_by_key(|d| (d.next_attempt_at, d.seq));
            claimed.append(&mut rows);
        }
        Ok(claimed)
    }

    /// Up to `q.limit` partners with pending deliveries after `after` (text; empty for all), in
    /// id order, with how many of their deliveries are in flight; those with none due at
    /// `q.now` are walked but left out.
    async fn partners_due(&mut self, after: &str, q: &ClaimQuery) -> StoreResult<Vec<PartnerDue>> {
        self.fetch_all(sql!(
            "WITH RECURSIVE walk (partner, n) AS (SELECT (SELECT partner_tenant_id \
             FROM webhook_deliveries",
            (sqlite " INDEXED BY webhook_deliveries_pending"),
            " WHERE status = 'pending' AND partner_tenant_id > ",
            { after },
            " ORDER BY partner_tenant_id LIMIT 1), CAST(1 AS BIGINT) \
             UNION ALL SELECT (SELECT partner_tenant_id FROM webhook_deliveries",
            (sqlite " INDEXED BY webhook_deliveries_pending"),
            " WHERE status = 'pending' AND partner_tenant_id > walk.partner \
             ORDER BY partner_tenant_id LIMIT 1), walk.n + 1 FROM walk \
             WHERE walk.partner IS NOT NULL AND walk.n < ",
            { q.limit },
            ") SELECT walk.partner, (SELECT count(*) FROM webhook_deliveries",
            (sqlite " INDEXED BY webhook_deliveries_leased"),
            " WHERE partner_tenant_id = walk.partner AND lease_until > ",
            { q.real_now },
            ") FROM walk WHERE walk.partner IS NOT NULL AND EXISTS (SELECT 1 \
             FROM webhook_deliveries",
            (sqlite " INDEXED BY webhook_deliveries_pending"),
            " WHERE partner_tenant_id = walk.partner AND status = 'pending' \
             AND next_attempt_at <= ",
            { q.now },
            ")",
        ))
        .await
        .map(|mut partners: Vec<PartnerDue>| {
            // The walk yields them in order; sorting here keeps a sort out of the statement.
            partners.sort_by_key(|p| p.partner.to_string());
            partners
        })
    }

    /// Leases up to `n` of `partner`'s earliest due deliveries that no live lease holds.
    async fn lease_partner_deliveries(
        &mut self,
        partner: Uuid,
        n: i64,
        q: &ClaimQuery,
    ) -> StoreResult<Vec<DeliveryRow>> {
        // The rows are picked once, before the update (a subquery in its WHERE may be run again
        // for each row PostgreSQL considers, and take more than `n`); the conditions are
        // repeated in the update so that a concurrent claimer that waited on a row re-checks
        // it and leaves it alone.
        self.fetch_all(sql!(
            "WITH picked AS",
            (postgres " MATERIALIZED"),
            " (SELECT seq FROM webhook_deliveries",
            (sqlite " INDEXED BY webhook_deliveries_pending"),
            " WHERE partner_tenant_id = ",
            { partner },
            " AND status = 'pending' AND next_attempt_at <= ",
            { q.now },
            " AND (lease_until IS NULL OR lease_until <= ",
            { q.real_now },
            ") ORDER BY next_attempt_at, seq LIMIT ",
            { n },
            // Not SKIP LOCKED: a concurrent claim's rows are waited for (and the claim then runs
            // again), never skipped, so a partner's later deliveries cannot pass its earlier
            // ones and two claims cannot both take its last free places.
            (postgres " FOR UPDATE"),
            ") UPDATE webhook_deliveries SET lease_until = ",
            { q.lease_until },
            ", lease_owner = ",
            { &q.token },
            " WHERE seq IN (SELECT seq FROM picked) AND status = 'pending' \
             AND (lease_until IS NULL OR lease_until <= ",
            { q.real_now },
            ") RETURNING ",
            (DeliveryRow::COLUMNS),
        ))
        .await
    }

    /// Records attempts and their deliveries' new states, releasing the leases; an attempt's
    /// number is its delivery's count of attempts. An outcome whose claim no longer holds its
    /// delivery (the lease ran out and another claim took it) is dropped. Returns, for each
    /// outcome, whether it was recorded.
    ///
    /// One update records up to [`FINISH_ROWS`] outcomes (their values joined to the rows they
    /// change, each on its claim's token), and one insert adds their attempts.
    pub async fn finish_delivery_attempts(
        &mut self,
        outcomes: &[AttemptOutcome],
    ) -> StoreResult<Vec<bool>> {
        let mut recorded = vec![false; outcomes.len()];
        let mut rows = Vec::with_capacity(outcomes.len());
        let mut start = 0;
        while start < outcomes.len() {
            // A chunk names each delivery once: two outcomes of one delivery (a late one of a
            // claim whose lease was taken over, and the current one) go in different updates.
            let mut ids = std::collections::HashSet::new();
            let mut end = start;
            while end < outcomes.len()
                && end - start < FINISH_ROWS
                && ids.insert(outcomes[end].attempt.delivery_id)
            {
                end += 1;
            }
            let chunk = &outcomes[start..end];
            let finished: Vec<Finished> = self.fetch_all(finish_statement(chunk)).await?;
            for done in finished {
                if let Some(i) = chunk.iter().position(|o| o.attempt.delivery_id == done.id) {
                    recorded[start + i] = true;
                    rows.push(AttemptRow {
                        attempt: done.attempts,
                        ..chunk[i].attempt.clone()
                    });
                }
            }
            start = end;
        }
        for chunk in rows.chunks(super::sql::BULK_ROWS) {
            self.execute(Statement::insert_rows(chunk, "")).await?;
        }
        Ok(recorded)
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

#[cfg(test)]
mod tests {
    //! The statements the worker claims and records deliveries with read about as many rows as
    //! they take or change, whatever the backlog: each of them finds its rows through an index
    //! range that starts at what it wants, and none scans, sorts or windows the pending rows.

    use super::super::sql::{Text, registered};

    /// The statements that lease deliveries, count or walk the pending ones, or record them.
    fn delivery_claim_statements() -> Vec<&'static Text> {
        let texts: Vec<&'static Text> = registered()
            .filter(|t| {
                t.sqlite.contains("webhook_deliveries")
                    && (t.sqlite.contains("lease_") || t.sqlite.contains("status = 'pending'"))
            })
            .collect();
        assert!(texts.len() >= 2, "the claim and the record of an attempt");
        texts
    }

    #[test]
    fn claims_follow_an_index_on_sqlite() {
        let db = super::super::sqlite::migrated_memory();
        let mut failures = Vec::new();
        for text in delivery_claim_statements() {
            let mut plan = db
                .prepare(&format!("EXPLAIN QUERY PLAN {}", text.sqlite))
                .unwrap();
            let nulls = vec![rusqlite::types::Null; plan.parameter_count()];
            let lines: Vec<String> = plan
                .query_map(rusqlite::params_from_iter(nulls), |row| {
                    row.get::<_, String>(3)
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            // A SCAN reads a whole table or subquery result (except the statements' own common
            // table expressions, which hold the partners walked or the rows taken); a
            // temporary B-tree sorts every row a range holds.
            let bad = lines.iter().any(|l| {
                (l.starts_with("SCAN ")
                    && !["SCAN walk", "SCAN picked", "SCAN CONSTANT ROW"].contains(&l.as_str()))
                    || l.contains("TEMP B-TREE")
            });
            if bad {
                failures.push(format!("{}\n    {}", text.sqlite, lines.join("\n    ")));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    }

    #[tokio::test]
    async fn claims_follow_an_index_on_postgres() {
        use sqlx::{Connection, Executor, Row};
        let Some(server) =
            pcq_test_support::pg::database_or_skip("claims_follow_an_index_on_postgres")
        else {
            return;
        };
        let schema = pcq_test_support::pg::PgSchema::create(&server, "pcq_claim_plan").await;
        let mut db = sqlx::PgConnection::connect(&schema.url).await.unwrap();
        super::super::postgres::migrate_connection(&mut db).await;
        // The plan for any values (not one made for the NULLs bound below), and an index
        // wherever one can serve: a plan that still reads the table whole has none to use.
        db.execute("SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off")
            .await
            .unwrap();
        let mut failures = Vec::new();
        for text in delivery_claim_statements() {
            db.execute(sqlx::AssertSqlSafe(format!(
                "PREPARE plan_me AS {}",
                text.postgres
            )))
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", text.postgres));
            let nulls = vec!["NULL"; text.params].join(", ");
            let explain = if text.params == 0 {
                "EXPLAIN EXECUTE plan_me".to_owned()
            } else {
                format!("EXPLAIN EXECUTE plan_me({nulls})")
            };
            let lines: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(explain))
                .fetch_all(&mut db)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>(0))
                .collect();
            db.execute("DEALLOCATE plan_me").await.unwrap();
            let bad = lines.iter().any(|l| {
                l.contains("Seq Scan on webhook_deliveries")
                    || l.contains("WindowAgg")
                    || l.contains("Sort")
            });
            if bad {
                failures.push(format!("{}\n    {}", text.postgres, lines.join("\n    ")));
            }
        }
        let _ = db.close().await;
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    }
}
