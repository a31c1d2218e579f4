//! The reviewer workflow (`/_pcq/review`, role `Pcq.Reviewer`) and qualification histories.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use pcq_core::input::ReviewDecision;
use pcq_core::time::Timestamp;
use pcq_core::vetting::Duration;
use pcq_core::wire::{Collection, CustomerQualification};
use pcq_core::{ApiFault, EducationSegment, Qualification, VettingStatus};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::{Caller, Ctx, CustomerId, JsonBody, QueryParams, ReviewerCaller};
use super::paging::{self, ContinuationToken, List, page_size};
use crate::AppState;
use crate::error::Error;
use crate::service::Actor;
use crate::service::review::{History, Queue};
use crate::service::vetting::ReviewDecide;
use crate::store::{Reply, ReviewItemRow, ReviewQuery};

/// A qualification waiting for a decision.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewItem {
    /// The customer.
    pub customer_id: Uuid,
    /// The customer's partner.
    pub partner_id: Uuid,
    /// The customer's company name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    /// The customer's domain.
    pub domain: String,
    /// The qualification in review.
    pub qualification: Qualification,
    /// Its education segment, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub education_segment: Option<EducationSegment>,
    /// Its website, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// The vetting round (2 and more after a denial).
    pub round: i64,
    /// When the round started (RFC 3339).
    pub vetting_create_date: String,
    /// How long it has been waiting, e.g. `3d4h`.
    pub waiting: String,
}

fn review_item(row: &ReviewItemRow, now: Timestamp) -> ReviewItem {
    let started = row
        .qualification
        .vetting_create_date
        .unwrap_or(row.qualification.created_at);
    ReviewItem {
        customer_id: row.qualification.customer_id,
        partner_id: row.partner_tenant_id,
        company_name: row.company_name.clone(),
        domain: row.domain.clone(),
        qualification: row.qualification.qualification,
        education_segment: row.qualification.education_segment,
        website: row.qualification.website.clone(),
        round: row.qualification.round,
        vetting_create_date: started.to_rfc3339(),
        waiting: Duration::from_micros(
            (now.as_micros() - started.as_micros()).max(0) / 1_000_000 * 1_000_000,
        )
        .to_string(),
    }
}

pub(crate) fn encode_position(row: &ReviewItemRow) -> String {
    let q = &row.qualification;
    let started = q.vetting_create_date.unwrap_or(q.created_at);
    format!(
        "{}|{}|{}",
        started.as_micros(),
        q.customer_id,
        q.qualification.as_str()
    )
}

pub(crate) fn decode_position(raw: &str) -> Option<(Timestamp, Uuid, Qualification)> {
    let mut parts = raw.splitn(3, '|');
    let at = parts.next()?.parse().ok().map(Timestamp::from_micros)?;
    let customer = Uuid::parse_str(parts.next()?).ok()?;
    let qualification = Qualification::parse_str(parts.next()?)?;
    Some((at, customer, qualification))
}

/// Lists the qualifications waiting for a decision, oldest first.
#[utoipa::path(
    get,
    path = "/_pcq/review/queue",
    tag = "review",
    params(
        ("partnerId" = Option<uuid::Uuid>, Query, description = "Only this partner's customers"),
        ("qualification" = Option<super::openapi::VettedQualification>, Query, description = "Only this qualification"),
        ("olderThan" = Option<String>, Query, pattern = r"^([0-9]{1,3}(d|h|m|s|ms)){1,3}$", description = "Only those waiting longer than this, e.g. 72h"),
        ("size" = Option<u32>, Query, minimum = 1, description = "Page size"),
        ContinuationToken,
    ),
    responses((status = 200, description = "A page of the queue", body = Collection<ReviewItem>)),
    security(("bearer" = []))
)]
pub async fn queue(
    State(state): State<AppState>,
    ReviewerCaller(reviewer): ReviewerCaller,
    query: QueryParams,
    headers: HeaderMap,
) -> Result<Reply, Error> {
    let size = page_size(&query, &state.config.paging)?;
    let lister = state.pager.lister(List::ReviewQueue, reviewer.tenant_id);
    let now = state.pipeline.now();
    let filters = ReviewFilters::parse(
        query.get("partnerId"),
        query.get("qualification"),
        query.get("olderThan"),
        now,
    )?;
    let after = match lister.position(&headers)? {
        None => None,
        Some(p) => Some(decode_position(&p).ok_or_else(ApiFault::invalid_continuation_token)?),
    };
    let rows = state
        .pipeline
        .read(Queue(ReviewQuery {
            partner: filters.partner,
            qualification: filters.qualification,
            started_before: filters.started_before,
            after,
            limit: paging::limit(size),
        }))
        .await?;
    Reply::ok(&lister.page(
        rows,
        size,
        paging::self_uri("/_pcq/review/queue", query.raw()),
        encode_position,
        |r| review_item(r, now),
    ))
}

/// The filters of the review queue, as the API and the console take them.
pub(crate) struct ReviewFilters {
    /// Only this partner's customers.
    pub partner: Option<Uuid>,
    /// Only this qualification (Education or GovernmentCommunityCloud).
    pub qualification: Option<Qualification>,
    /// Only those in review since before this.
    pub started_before: Option<Timestamp>,
}

impl ReviewFilters {
    /// Reads the filters `partnerId`, `qualification` and `olderThan` (a duration back from
    /// `now`); a value that is not one of them is the client's 400.
    pub(crate) fn parse(
        partner: Option<&str>,
        qualification: Option<&str>,
        older_than: Option<&str>,
        now: Timestamp,
    ) -> Result<Self, ApiFault> {
        let partner = partner
            .map(|p| {
                pcq_core::ids::parse_guid(p).ok_or_else(|| {
                    ApiFault::invalid_input("The partnerId is not a GUID.")
                        .with_param("field", "partnerId")
                })
            })
            .transpose()?;
        let qualification = qualification
            .map(|q| {
                // Only these two are ever vetted.
                Qualification::parse_str(q)
                    .filter(|q| {
                        matches!(
                            q,
                            Qualification::Education | Qualification::GovernmentCommunityCloud
                        )
                    })
                    .ok_or_else(|| {
                        ApiFault::invalid_enum(
                            "qualification",
                            q,
                            "Education, GovernmentCommunityCloud",
                        )
                    })
            })
            .transpose()?;
        let started_before = older_than
            .map(|d| {
                Duration::parse(d)
                    .map(|d| now.plus_micros(-d.as_micros()))
                    .map_err(|e| {
                        ApiFault::invalid_input(format!("olderThan: {e}."))
                            .with_param("field", "olderThan")
                    })
            })
            .transpose()?;
        Ok(ReviewFilters {
            partner,
            qualification,
            started_before,
        })
    }
}

/// Approves or denies a qualification in review (409 when it is not in review).
#[utoipa::path(
    post,
    path = "/_pcq/review/customers/{customer_tenant_id}/qualifications/{qualification}/decision",
    tag = "review",
    params(
        CustomerId,
        ("qualification" = super::openapi::VettedQualification, Path, description = "The qualification in review"),
    ),
    request_body = ReviewDecision,
    responses((status = 200, description = "The decided qualification", body = CustomerQualification)),
    security(("bearer" = []))
)]
pub async fn decide(
    State(state): State<AppState>,
    ReviewerCaller(reviewer): ReviewerCaller,
    Ctx(ctx): Ctx,
    Path((raw_customer, raw_qualification)): Path<(String, String)>,
    body: JsonBody,
) -> Result<Reply, Error> {
    let customer = pcq_core::ids::parse_customer_id(&raw_customer)?;
    let qualification = Qualification::parse_str(&raw_qualification).ok_or_else(|| {
        ApiFault::invalid_enum(
            "qualification",
            &raw_qualification,
            "Education, GovernmentCommunityCloud",
        )
    })?;
    let route =
        format!("/_pcq/review/customers/{customer}/qualifications/{qualification}/decision");
    let pipeline = &state.pipeline;
    let write = ctx.client_write(reviewer.tenant_id, "POST", route, "", &body.raw);
    let op = ReviewDecision::parse(&body.value).map(|decision| ReviewDecide {
        customer,
        qualification,
        round: decision.round,
        decision: decision.decision,
        reason: decision.reason,
        actor: Actor::caller(&reviewer),
        request_id: ctx.request_id.clone(),
        now: pipeline.now(),
        links: pipeline.links.clone(),
    });
    pipeline.request(write, op).await
}

/// One step of a qualification's history.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// The qualification.
    pub qualification: Qualification,
    /// Its vetting round.
    pub round: i64,
    /// Status before the step (absent when a round starts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_status: Option<VettingStatus>,
    /// Status after the step (absent for StateOwnedEntity).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_status: Option<VettingStatus>,
    /// The reason given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who caused it: a user, an application, `pcq-vetting` or `pcq-seed`.
    pub actor: String,
    /// The request that caused it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// When (RFC 3339).
    pub at: String,
}

/// Every round and transition of a customer's qualifications, oldest first. For the
/// customer's partner, and for reviewers.
#[utoipa::path(
    get,
    path = "/_pcq/customers/{customer_tenant_id}/qualifications/history",
    tag = "review",
    params(CustomerId),
    responses((status = 200, description = "The history", body = Vec<HistoryEntry>)),
    security(("bearer" = []))
)]
pub async fn history(
    State(state): State<AppState>,
    Caller(caller): Caller,
    CustomerId(customer): CustomerId,
) -> Result<Reply, Error> {
    let (_, events) = state
        .pipeline
        .read(History::for_caller(&caller, customer))
        .await?;
    let entries: Vec<HistoryEntry> = events
        .into_iter()
        .map(|e| HistoryEntry {
            qualification: e.qualification,
            round: e.round,
            from_status: e.from_status,
            to_status: e.to_status,
            reason: e.reason,
            actor: e.actor,
            request_id: e.request_id,
            at: e.at.to_rfc3339(),
        })
        .collect();
    Reply::ok(&entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_positions_round_trip() {
        let customer = Uuid::new_v4();
        let raw = format!("12345|{customer}|Education");
        assert_eq!(
            decode_position(&raw),
            Some((
                Timestamp::from_micros(12345),
                customer,
                Qualification::Education
            ))
        );
        for junk in [
            "",
            "x|y|z",
            "1|not-a-guid|Education",
            &format!("1|{customer}|Bogus"),
        ] {
            assert!(decode_position(junk).is_none(), "{junk}");
        }
    }
}
