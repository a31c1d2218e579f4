//! The reviewer's pages: the queue of qualifications waiting for a decision (filtered by
//! partner, qualification and age, paged) and the decision itself (role `Pcq.Reviewer` or
//! `Pcq.Admin`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use pcq_core::enums::VETTING_REASONS;
use pcq_core::input::ReviewDecision;
use pcq_core::vetting::Duration;
use pcq_core::{ApiFault, Qualification};
use serde_json::json;
use uuid::Uuid;

use super::session::{Guarded, Session, SignedIn};
use super::{
    BASE, Console, QueryFields, csrf_field, encode, failure, field, html_response, page, see_other,
};
use crate::auth::ROLE_REVIEWER;
use crate::error::Error;
use crate::http::review::{ReviewFilters, decode_position, encode_position};
use crate::service::Actor;
use crate::service::ClientWrite;
use crate::service::review::Queue;
use crate::service::vetting::ReviewDecide;
use crate::store::ReviewQuery;

/// Queue entries on one page.
const PAGE_SIZE: u32 = 25;

/// The decision form of a qualification in review: approve, or deny with a documented reason.
pub fn decision_form(
    session: &Session,
    customer: Uuid,
    qualification: Qualification,
    round: i64,
    back: &str,
) -> Markup {
    let reason_id = format!("reason-{customer}-{}", qualification.as_str());
    html! {
        form.decision method="post" action={ (BASE) "/review/decision" } {
            (csrf_field(session))
            input type="hidden" name="customer" value=(customer);
            input type="hidden" name="qualification" value=(qualification.as_str());
            input type="hidden" name="round" value=(round);
            input type="hidden" name="back" value=(back);
            button.approve type="submit" name="decision" value="Approved" { "Approve" }
            label for=(reason_id) { "Reason for a denial" }
            select id=(reason_id) name="reason" {
                option value="" { "Choose a reason…" }
                @for reason in VETTING_REASONS {
                    option value=(reason) { (reason) }
                }
            }
            button.deny type="submit" name="decision" value="Denied" { "Deny" }
        }
    }
}

fn bad_filter(session: &Session, description: String) -> Response {
    super::fault_page(Some(session), &ApiFault::invalid_input(description))
}

/// `GET /_pcq/console/review`: the queue, oldest first.
pub async fn queue_page(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    QueryFields(query): QueryFields,
) -> Response {
    if !session.principal.is_reviewer() {
        return super::role_required(&session, ROLE_REVIEWER);
    }
    let state = &console.app;
    let now = state.pipeline.now();
    let partner_raw = field(&query, "partner");
    let qualification_raw = field(&query, "qualification");
    let older_raw = field(&query, "olderThan");
    let wanted = match ReviewFilters::parse(partner_raw, qualification_raw, older_raw, now) {
        Ok(wanted) => wanted,
        Err(fault) => return super::fault_page(Some(&session), &fault),
    };
    let after = match field(&query, "after") {
        None => None,
        Some(raw) => match decode_position(raw) {
            Some(position) => Some(position),
            None => {
                return bad_filter(&session, "The page position is not one pcq wrote.".into());
            }
        },
    };
    let rows = match state
        .pipeline
        .read(Queue(ReviewQuery {
            partner: wanted.partner,
            qualification: wanted.qualification,
            started_before: wanted.started_before,
            after,
            limit: i64::from(PAGE_SIZE) + 1,
        }))
        .await
    {
        Ok(rows) => rows,
        Err(e) => return failure(Some(&session), &e),
    };
    let more = rows.len() > PAGE_SIZE as usize;
    let rows = &rows[..rows.len().min(PAGE_SIZE as usize)];
    let mut filters = String::new();
    for (name, value) in [
        ("partner", partner_raw),
        ("qualification", qualification_raw),
        ("olderThan", older_raw),
    ] {
        if let Some(value) = value {
            filters.push_str(&format!("&{name}={}", encode(value)));
        }
    }
    let here = format!("{BASE}/review?{}", filters.trim_start_matches('&'));
    let next = rows.last().filter(|_| more).map(|last| {
        format!(
            "{BASE}/review?after={}{filters}",
            encode(&encode_position(last))
        )
    });
    let notice_text = notice_of(&query);
    let body = html! {
        (super::notice(notice_text.as_deref()))
        form.filters method="get" action={ (BASE) "/review" } {
            div {
                label for="f-partner" { "Partner tenant" }
                input #f-partner type="text" name="partner" value=[partner_raw]
                    placeholder="any partner" inputmode="text" autocomplete="off";
            }
            div {
                label for="f-qualification" { "Qualification" }
                select #f-qualification name="qualification" {
                    option value="" { "Any" }
                    @for q in ["Education", "GovernmentCommunityCloud"] {
                        option value=(q) selected[wanted.qualification.is_some_and(|x| x.as_str() == q)] { (q) }
                    }
                }
            }
            div {
                label for="f-older" { "Waiting longer than" }
                input #f-older type="text" name="olderThan" value=[older_raw]
                    placeholder="e.g. 72h" autocomplete="off";
            }
            button type="submit" { "Filter" }
        }
        @if rows.is_empty() {
            p.empty { "Nothing is waiting for a decision" @if !filters.is_empty() { " with these filters" } "." }
        } @else {
            div.table-wrap {
                table.stack.queue {
                    (super::table_head("Waiting for a decision, oldest first", &["Customer", "Qualification", "Partner", "Round", "Waiting", "Decision"]))
                    tbody {
                        @for row in rows {
                            @let q = &row.qualification;
                            @let started = q.vetting_create_date.unwrap_or(q.created_at);
                            @let waiting = Duration::from_micros(
                                (now.as_micros() - started.as_micros()).max(0) / 1_000_000 * 1_000_000,
                            );
                            tr {
                                td data-label="Customer" {
                                    a href={ (BASE) "/customers/" (q.customer_id) } {
                                        (row.company_name.as_deref().unwrap_or("(no company name)"))
                                    }
                                    br;
                                    span.muted { (row.domain) }
                                    @if let Some(website) = &q.website {
                                        br;
                                        span.muted { "Website: " (website) }
                                    }
                                }
                                td data-label="Qualification" {
                                    (q.qualification.as_str())
                                    @if let Some(segment) = q.education_segment {
                                        br;
                                        span.muted { (segment.as_str()) }
                                    }
                                }
                                td data-label="Partner" { code.id { (row.partner_tenant_id) } }
                                td data-label="Round" { (q.round) }
                                td data-label="Waiting" title=(started.to_rfc3339()) { (waiting) }
                                td data-label="Decision" { (decision_form(&session, q.customer_id, q.qualification, q.round, &here)) }
                            }
                        }
                    }
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if after.is_some() {
                a href=(here) { "First page" }
            }
            @if let Some(next) = next {
                a href=(next) { "Next page" }
            }
        }
    };
    html_response(StatusCode::OK, page("Review queue", Some(&session), body))
}

/// The notice after a decision: the customer and the status it now has (both checked, so the
/// query string cannot put words on the page).
fn notice_of(query: &[(String, String)]) -> Option<String> {
    let customer = field(query, "decided").and_then(pcq_core::ids::parse_guid)?;
    let status = match field(query, "status")? {
        "Approved" => "Approved",
        "Denied" => "Denied",
        _ => return None,
    };
    Some(format!(
        "Customer {customer}: the qualification is now {status}."
    ))
}

/// `POST /_pcq/console/review/decision`: approves or denies, as `POST /_pcq/review/...`
/// does (history, audit record, webhook event).
pub async fn decide(State(console): State<Console>, guarded: Guarded) -> Response {
    let Guarded { session, form } = guarded;
    if !session.principal.is_reviewer() {
        return super::role_required(&session, ROLE_REVIEWER);
    }
    let state = &console.app;
    let pipeline = &state.pipeline;
    let customer = match field(&form, "customer").map(pcq_core::ids::parse_customer_id) {
        Some(Ok(id)) => id,
        Some(Err(fault)) => return super::fault_page(Some(&session), &fault),
        None => {
            return super::fault_page(
                Some(&session),
                &ApiFault::invalid_input("The form names no customer."),
            );
        }
    };
    let qualification = match field(&form, "qualification").and_then(Qualification::parse_str) {
        Some(q) => q,
        None => {
            return super::fault_page(
                Some(&session),
                &ApiFault::invalid_input("The form names no qualification in review."),
            );
        }
    };
    let decision = field(&form, "decision").unwrap_or("");
    let mut body = json!({"decision": decision});
    if decision.eq_ignore_ascii_case("Denied") {
        if let Some(reason) = field(&form, "reason") {
            body["reason"] = json!(reason);
        }
    }
    if let Some(round) = field(&form, "round").and_then(|r| r.parse::<i64>().ok()) {
        body["round"] = json!(round);
    }
    let raw = body.to_string();
    let route =
        format!("/_pcq/review/customers/{customer}/qualifications/{qualification}/decision");
    let write = ClientWrite::new(
        session.principal.tenant_id,
        None,
        "POST",
        route,
        "",
        raw.as_bytes(),
    );
    let request_id = Uuid::new_v4().to_string();
    let op = ReviewDecision::parse(&body).map(|decision| ReviewDecide {
        customer,
        qualification,
        round: decision.round,
        decision: decision.decision,
        reason: decision.reason,
        actor: Actor::caller(&session.principal),
        request_id,
        now: pipeline.now(),
        links: pipeline.links.clone(),
    });
    let decided = match super::reply_value(pipeline.request(write, op).await) {
        Ok(value) => value,
        Err(Error::Fault(fault)) => return super::fault_page(Some(&session), &fault),
        Err(e) => return failure(Some(&session), &e),
    };
    let status = decided["vettingStatus"].as_str().unwrap_or("decided");
    let back = field(&form, "back")
        .filter(|b| b.starts_with(&format!("{BASE}/")) && !b.contains("//"))
        .unwrap_or("");
    let back = if back.is_empty() {
        format!("{BASE}/review?")
    } else {
        back.to_owned()
    };
    let back = strip_notice(&back);
    let join = if back.ends_with('?') { "" } else { "&" };
    see_other(&format!(
        "{back}{join}decided={customer}&status={}",
        encode(status)
    ))
}

/// `back` without an earlier notice's parameters.
fn strip_notice(back: &str) -> String {
    let Some((path, query)) = back.split_once('?') else {
        return format!("{back}?");
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("decided=") && !p.starts_with("status="))
        .collect();
    format!("{path}?{}", kept.join("&"))
}
