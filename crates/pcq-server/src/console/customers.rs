//! Customers: a partner's list (search, pages) and validation codes, one customer with its
//! qualifications, every vetting round and transition and its audit records, and requesting a
//! qualification. Partners see their own customers only; reviewers may open any customer.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use pcq_core::time::Timestamp;
use pcq_core::{ApiFault, QualificationRequest, VettingStatus};
use serde_json::{Value, json};
use uuid::Uuid;

use super::session::{Guarded, Session, SignedIn};
use super::{
    BASE, Console, QueryFields, Segment, csrf_field, encode, failure, field, html_response, page,
    see_other,
};
use crate::error::Error;
use crate::service::ClientWrite;
use crate::service::audit::AuditPage;
use crate::service::customers::{CustomerPage, FindCustomer};
use crate::service::qualifications::{self, CreateQualification, Endpoint, ReadQualifications};
use crate::service::review::History;
use crate::service::validation_codes::PartnerValidationCodes;
use crate::store::{AuditQuery, CustomerRow, Scope};

/// Customers on one page.
const PAGE_SIZE: usize = 25;
/// Customers read per step of a search.
const SEARCH_STEP: i64 = 500;
/// Most customers a search reads before it answers with what it found.
const SEARCH_LIMIT: usize = 20_000;
/// Audit records shown on a customer's page.
const AUDIT_LIMIT: i64 = 100;

fn matches(row: &CustomerRow, needle: &str) -> bool {
    row.domain.to_lowercase().contains(needle)
        || row
            .company_name
            .as_deref()
            .is_some_and(|n| n.to_lowercase().contains(needle))
        || row.id.to_string().contains(needle)
}

/// A page of the partner's customers after `after_seq`, those matching `search` only; and
/// whether more follow.
async fn customers_page(
    console: &Console,
    partner: Uuid,
    after_seq: i64,
    search: Option<&str>,
) -> Result<(Vec<CustomerRow>, bool, bool), Error> {
    let pipeline = &console.app.pipeline;
    let Some(search) = search else {
        let mut rows = pipeline
            .read(CustomerPage {
                partner,
                after_seq,
                limit: PAGE_SIZE as i64 + 1,
            })
            .await?;
        let more = rows.len() > PAGE_SIZE;
        rows.truncate(PAGE_SIZE);
        return Ok((rows, more, false));
    };
    let needle = search.to_lowercase();
    let mut found = Vec::new();
    let mut position = after_seq;
    let mut read = 0usize;
    loop {
        let rows = pipeline
            .read(CustomerPage {
                partner,
                after_seq: position,
                limit: SEARCH_STEP,
            })
            .await?;
        let exhausted = (rows.len() as i64) < SEARCH_STEP;
        read += rows.len();
        for row in rows {
            position = row.seq;
            if matches(&row, &needle) {
                if found.len() == PAGE_SIZE {
                    return Ok((found, true, false));
                }
                found.push(row);
            }
        }
        if exhausted {
            return Ok((found, false, false));
        }
        if read >= SEARCH_LIMIT {
            return Ok((found, false, true));
        }
    }
}

/// `GET /_pcq/console/customers`: the signed-in partner's customers and validation codes.
pub async fn list_page(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    QueryFields(query): QueryFields,
) -> Response {
    let partner = session.principal.tenant_id;
    let search = field(&query, "q");
    let after = field(&query, "after")
        .and_then(|a| a.parse::<i64>().ok())
        .unwrap_or(0);
    let (rows, more, cut_short) = match customers_page(&console, partner, after, search).await {
        Ok(found) => found,
        Err(e) => return failure(Some(&session), &e),
    };
    let codes = match console
        .app
        .pipeline
        .read(PartnerValidationCodes(partner))
        .await
    {
        Ok(codes) => codes,
        Err(e) => return failure(Some(&session), &e),
    };
    let search_part = search
        .map(|s| format!("&q={}", encode(s)))
        .unwrap_or_default();
    let next = rows
        .last()
        .filter(|_| more)
        .map(|last| format!("{BASE}/customers?after={}{search_part}", last.seq));
    let body = html! {
        p { "The customers of partner " code { (partner) } "." }
        form.filters role="search" method="get" action={ (BASE) "/customers" } {
            div {
                label for="q" { "Search by name, domain or id" }
                input #q type="search" name="q" value=[search] autocomplete="off";
            }
            button type="submit" { "Search" }
            @if search.is_some() {
                a href={ (BASE) "/customers" } { "Show all" }
            }
        }
        @if rows.is_empty() {
            p.empty { "No customers" @if search.is_some() { " match this search" } "." }
        } @else {
            div.table-wrap {
                table {
                    (super::table_head("Customers", &["Company", "Domain", "Customer id", "Created"]))
                    tbody {
                        @for row in &rows {
                            tr {
                                td { a href={ (BASE) "/customers/" (row.id) } {
                                    (row.company_name.as_deref().unwrap_or("(no company name)"))
                                } }
                                td { (row.domain) }
                                td { code.id { (row.id) } }
                                td { (super::when(row.created_at)) }
                            }
                        }
                    }
                }
            }
        }
        @if cut_short {
            p.muted { "The search stopped after " (SEARCH_LIMIT) " customers; narrow it down." }
        }
        nav.pager aria-label="Pages" {
            @if after > 0 {
                a href={ (BASE) "/customers" @if let Some(s) = search { "?q=" (encode(s)) } } { "First page" }
            }
            @if let Some(next) = next {
                a href=(next) { "Next page" }
            }
        }
        h2 { "Validation codes" }
        @if codes.is_empty() {
            p.empty { "This partner holds no validation code for GovernmentCommunityCloud requests." }
        } @else {
            div.table-wrap {
                table {
                    (super::table_head("Validation codes for GovernmentCommunityCloud", &["Validation id", "Organization", "Creates left"]))
                    tbody {
                        @for code in &codes {
                            tr {
                                td { code { (code.validation_id) } }
                                td { (code.organization_name) }
                                td { (code.remaining_creates) " of " (code.max_creates) }
                            }
                        }
                    }
                }
            }
        }
    };
    html_response(StatusCode::OK, page("Customers", Some(&session), body))
}

fn text(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("")
}

fn status_class(status: Option<VettingStatus>) -> &'static str {
    match status {
        Some(VettingStatus::Approved) => "status approved",
        Some(VettingStatus::Denied) => "status denied",
        Some(VettingStatus::InReview) => "status inreview",
        _ => "status",
    }
}

fn request_form(session: &Session, customer: Uuid, codes: &[String]) -> Markup {
    html! {
        form.card.request method="post" action={ (BASE) "/customers/" (customer) "/qualifications" } {
            (csrf_field(session))
            div {
                label for="r-qualification" { "Qualification" }
                select #r-qualification name="qualification" required {
                    option value="Education" { "Education" }
                    option value="GovernmentCommunityCloud" { "GovernmentCommunityCloud (GCC)" }
                    option value="StateOwnedEntity" { "StateOwnedEntity" }
                }
            }
            div {
                label for="r-segment" { "Education segment (Education)" }
                select #r-segment name="educationSegment" {
                    option value="" { "Not given" }
                    option value="K12" { "K12" }
                    option value="HigherEducation" { "HigherEducation" }
                }
            }
            div {
                label for="r-website" { "Website (Education, optional)" }
                input #r-website type="text" name="website" autocomplete="off";
            }
            div {
                label for="r-code" { "Validation code (GCC)" }
                input #r-code type="text" name="validationCode" list="r-codes" autocomplete="off";
                datalist #r-codes {
                    @for code in codes { option value=(code) {} }
                }
            }
            button type="submit" { "Request" }
        }
    }
}

/// `GET /_pcq/console/customers/{id}`: one customer, for its partner or a reviewer.
pub async fn customer_page(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    Segment(raw): Segment,
    QueryFields(query): QueryFields,
) -> Response {
    let id = match pcq_core::ids::parse_customer_id(&raw) {
        Ok(id) => id,
        Err(fault) => return super::fault_page(Some(&session), &fault),
    };
    match render_customer(&console, &session, id, &query).await {
        Ok(response) => response,
        Err(e) => failure(Some(&session), &e),
    }
}

async fn render_customer(
    console: &Console,
    session: &Arc<Session>,
    id: Uuid,
    query: &[(String, String)],
) -> Result<Response, Error> {
    let pipeline = &console.app.pipeline;
    let principal = &session.principal;
    // The customer's own partner reads it as the API's GET does (counting the read where the
    // policy decides on reads); a reviewer reads any partner's without counting.
    let owner = pipeline
        .read(FindCustomer {
            partner: principal.tenant_id,
            id,
        })
        .await;
    let (customer, current) = match owner {
        Ok(customer) => {
            let current = qualifications::current(pipeline, principal.tenant_id, id).await?;
            (customer, current)
        }
        Err(Error::Fault(fault)) if principal.is_reviewer() && fault.status == 403 => {
            let (customer, _) = pipeline
                .read(History {
                    scope: Scope::AnyPartner,
                    customer: id,
                })
                .await?;
            let current = pipeline
                .read(ReadQualifications {
                    partner: customer.partner_tenant_id,
                    customer: id,
                    count_reads: false,
                    configured: pipeline.policy.configured().clone(),
                    now: pipeline.now(),
                    links: pipeline.links.clone(),
                })
                .await?;
            (customer, current)
        }
        Err(e) => return Err(e),
    };
    let is_owner = customer.partner_tenant_id == principal.tenant_id;
    let (_, events) = pipeline.read(History::for_caller(principal, id)).await?;
    let audit = pipeline
        .read(AuditPage(AuditQuery {
            partner: customer.partner_tenant_id,
            from: Timestamp::from_micros(0),
            until: Timestamp::from_micros(i64::MAX),
            customer_id: Some(id),
            operation_type: None,
            resource_type: None,
            customer_name_contains: None,
            customer_name_is: None,
            after: None,
            limit: AUDIT_LIMIT,
        }))
        .await?;
    let codes: Vec<String> = if is_owner {
        pipeline
            .read(PartnerValidationCodes(principal.tenant_id))
            .await?
            .into_iter()
            .filter(|c| c.remaining_creates > 0)
            .map(|c| c.validation_id)
            .collect()
    } else {
        Vec::new()
    };
    let back = format!("{BASE}/customers/{id}");
    let notice_text = match field(query, "requested") {
        Some("1") => Some("The qualification was requested."),
        _ => match field(query, "status") {
            Some("Approved") => Some("The qualification is now Approved."),
            Some("Denied") => Some("The qualification is now Denied."),
            _ => None,
        },
    };
    let title = customer
        .company_name
        .clone()
        .unwrap_or_else(|| customer.domain.clone());
    let body = html! {
        (super::notice(notice_text))
        dl.facts {
            dt { "Customer id" } dd { code.id { (customer.id) } }
            dt { "Company name" } dd { (text(&customer.company_name)) }
            dt { "Domain" } dd { (customer.domain) }
            dt { "Partner" } dd { code.id { (customer.partner_tenant_id) } }
            dt { "Created" } dd { (super::when(customer.created_at)) }
        }
        h2 { "Qualifications" }
        @if current.is_empty() {
            p.empty { "None." }
        } @else {
            div.table-wrap {
                table.stack.qualifications {
                    caption { "Current qualifications" }
                    thead { tr {
                        th scope="col" { "Qualification" }
                        th scope="col" { "Status" }
                        th scope="col" { "Reason" }
                        th scope="col" { "Since" }
                        th scope="col" { "Round" }
                        @if principal.is_reviewer() { th scope="col" { "Decision" } }
                    } }
                    tbody {
                        @for q in &current {
                            tr {
                                td data-label="Qualification" {
                                    (q.qualification.as_str())
                                    @if let Some(segment) = q.education_segment {
                                        br; span.muted { (segment.as_str()) }
                                    }
                                    @if let Some(website) = &q.website {
                                        br; span.muted { "Website: " (website) }
                                    }
                                }
                                td data-label="Status" { span class=(status_class(q.vetting_status)) {
                                    (q.vetting_status.map_or("—", |s| s.as_str()))
                                } }
                                td data-label="Reason" { (text(&q.vetting_reason)) }
                                td data-label="Since" { (super::when(q.vetting_create_date.unwrap_or(q.created_at))) }
                                td data-label="Round" { (q.round) }
                                @if principal.is_reviewer() {
                                    td data-label="Decision" {
                                        @if q.vetting_status == Some(VettingStatus::InReview) {
                                            (super::review::decision_form(session, id, q.qualification, q.round, &back))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if is_owner {
            h2 { "Request a qualification" }
            (request_form(session, id, &codes))
        }
        h2 { "Vetting rounds and transitions" }
        @if events.is_empty() {
            p.empty { "No transitions yet." }
        } @else {
            div.table-wrap {
                table.stack.history {
                    (super::table_head("Every step, oldest first", &["When", "Qualification", "Round", "From", "To", "Reason", "By"]))
                    tbody {
                        @for e in &events {
                            tr {
                                td data-label="When" { (super::when(e.at)) }
                                td data-label="Qualification" { (e.qualification.as_str()) }
                                td data-label="Round" { (e.round) }
                                td data-label="From" { (e.from_status.map_or("—", |s| s.as_str())) }
                                td data-label="To" { span class=(status_class(e.to_status)) { (e.to_status.map_or("—", |s| s.as_str())) } }
                                td data-label="Reason" { (text(&e.reason)) }
                                td data-label="By" { (e.actor) }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Audit records" }
        @if audit.is_empty() {
            p.empty { "No audit records." }
        } @else {
            div.table-wrap {
                table.stack.audit {
                    (super::table_head("Audit records of this customer, oldest first", &["When", "Operation", "Status", "By", "Details"]))
                    tbody {
                        @for r in &audit {
                            tr {
                                td data-label="When" { (super::when(r.operation_date)) }
                                td data-label="Operation" { (r.operation_type) }
                                td data-label="Status" { (r.operation_status) }
                                td data-label="By" { (r.user_principal_name.as_deref().or(r.application_id.as_deref()).unwrap_or("")) }
                                td data-label="Details" {
                                    @for (key, value) in &r.customized_data {
                                        span.kv { (key) ": " (value) } " "
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page(&title, Some(session), body),
    ))
}

/// `POST /_pcq/console/customers/{id}/qualifications`: requests a qualification as
/// `POST /v1/customers/{id}/qualifications` does.
pub async fn request_qualification(
    State(console): State<Console>,
    Segment(raw): Segment,
    guarded: Guarded,
) -> Response {
    let Guarded { session, form } = guarded;
    let state = &console.app;
    let customer = match pcq_core::ids::parse_customer_id(&raw) {
        Ok(id) => id,
        Err(fault) => return super::fault_page(Some(&session), &fault),
    };
    let mut body = json!({});
    for name in [
        "qualification",
        "educationSegment",
        "website",
        "validationCode",
    ] {
        if let Some(value) = field(&form, name) {
            body[name] = Value::String(value.to_owned());
        }
    }
    // A segment or website belongs to Education only; the form offers them whatever is chosen.
    if body["qualification"] != "Education" {
        if let Some(object) = body.as_object_mut() {
            object.remove("educationSegment");
            object.remove("website");
        }
    }
    let raw_body = body.to_string();
    let (method, route) = Endpoint::Post.route(customer);
    let write = ClientWrite::new(
        session.principal.tenant_id,
        None,
        method,
        route,
        "",
        raw_body.as_bytes(),
    );
    let request_id = Uuid::new_v4().to_string();
    let op = QualificationRequest::parse(&body, None, state.config.contract).and_then(|request| {
        CreateQualification::new(
            &state.pipeline,
            &state.config.auth,
            &session.principal,
            &request_id,
            customer,
            Endpoint::Post,
            request,
        )
    });
    match super::reply_value(state.pipeline.request(write, op).await) {
        Ok(_) => see_other(&format!("{BASE}/customers/{customer}?requested=1")),
        Err(Error::Fault(fault)) => refused(&session, customer, &fault),
        Err(e) => failure(Some(&session), &e),
    }
}

fn refused(session: &Session, customer: Uuid, fault: &ApiFault) -> Response {
    super::error_page(
        StatusCode::from_u16(fault.status).unwrap_or(StatusCode::BAD_REQUEST),
        Some(session),
        &format!(
            "pcq refused the request for customer {customer}: {}",
            fault.description
        ),
    )
}
