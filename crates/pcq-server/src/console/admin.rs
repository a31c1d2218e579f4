//! The sandbox admin's pages (role `Pcq.Admin`, as `/_pcq/admin`): the clock, the vetting
//! policy, reset, injected faults and a summary of the metrics; the request journal as a live
//! tail; webhook registrations with every delivery and its attempts.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use pcq_core::ApiFault;
use serde_json::{Value, json};
use uuid::Uuid;

use super::session::{Guarded, Session, SignedIn};
use super::{
    BASE, Console, QueryFields, csrf_field, failure, field, html_response, page, see_other,
};
use crate::auth::ROLE_ADMIN;
use crate::error::Error;
use crate::faults::{AddFault, FaultSpec, ListFaults, RemoveFault};
use crate::journal::{EntryView, Filter};
use crate::service::webhooks::{FindRegistration, RecentDeliveries, Registrations};
use crate::store::webhooks::DeliveryStatus;

/// Journal entries on the page, and most sent to the live tail at once.
const JOURNAL_ENTRIES: usize = 50;
/// Webhook deliveries shown.
const DELIVERIES: i64 = 50;

fn refuse_non_admin(session: &Session) -> Option<Response> {
    (!session.principal.is_admin()).then(|| super::role_required(session, ROLE_ADMIN))
}

fn subnav() -> Markup {
    html! {
        nav.subnav aria-label="Sandbox pages" {
            a href={ (BASE) "/admin" } { "Clock, policy, faults, metrics" }
            a href={ (BASE) "/admin/journal" } { "Request journal" }
            a href={ (BASE) "/admin/webhooks" } { "Webhooks" }
        }
    }
}

fn notice_of(query: &[(String, String)]) -> Option<&'static str> {
    Some(match field(query, "done")? {
        "clock" => "The clock moved.",
        "policy" => "The vetting policy changed.",
        "policy-restored" => "The configured vetting policy is back in force.",
        "reset" => "The sandbox was reset.",
        "fault" => "The fault was added.",
        "fault-removed" => "The fault was removed.",
        "faults-cleared" => "Every fault was removed.",
        _ => return None,
    })
}

/// The node's metrics, each family summed over its labels (histograms by their count and sum).
fn metrics_summary(text: &str) -> BTreeMap<String, f64> {
    let mut sums = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = &line[..name_end];
        if name.ends_with("_bucket") {
            continue;
        }
        let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        if value.is_finite() {
            *sums.entry(name.to_owned()).or_insert(0.0) += value;
        }
    }
    sums
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value:.3}")
    }
}

/// `GET /_pcq/console/admin`.
pub async fn admin_page(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    QueryFields(query): QueryFields,
) -> Response {
    if let Some(refused) = refuse_non_admin(&session) {
        return refused;
    }
    let state = &console.app;
    let pipeline = &state.pipeline;
    let faults = match pipeline.read(ListFaults).await {
        Ok(faults) => faults,
        Err(e) => return failure(Some(&session), &e),
    };
    let metrics = if state.metrics.enabled() {
        match crate::http::metrics::backlog(state).await {
            Ok(backlog) => state.metrics.render(backlog).map(|t| metrics_summary(&t)),
            Err(e) => return failure(Some(&session), &e),
        }
    } else {
        None
    };
    let clock = &pipeline.clock;
    let offset = pcq_core::vetting::Duration::from_micros(clock.offset_micros());
    let policy = pipeline.policy.get();
    let overridden = pipeline.policy.is_overridden();
    let modes = [
        "manual",
        "immediate",
        "after",
        "after_reads",
        "domain_rules",
    ];
    let outcomes = ["approve", "deny", "domain_rules"];
    let body = html! {
        (subnav())
        (super::notice(notice_of(&query)))
        section.card aria-labelledby="clock-h" {
            h2 #clock-h { "Clock" }
            p { "Now on pcq's clock: " strong { (clock.now().to_rfc3339()) }
                " (" (offset) " ahead of the system's clock)." }
            form.inline method="post" action={ (BASE) "/admin/clock" } {
                (csrf_field(&session))
                label for="advance" { "Advance by" }
                input #advance type="text" name="advance" required placeholder="e.g. 72h" autocomplete="off";
                button type="submit" { "Advance the clock" }
            }
        }
        section.card aria-labelledby="policy-h" {
            h2 #policy-h { "Vetting policy" }
            p { "In force: " strong { (policy.policy.as_str()) }
                @if overridden { " (set at run time)" } @else { " (as configured)" } "." }
            form.grid method="post" action={ (BASE) "/admin/policy" } {
                (csrf_field(&session))
                div {
                    label for="p-policy" { "Policy" }
                    select #p-policy name="policy" {
                        @for m in modes {
                            option value=(m) selected[policy.policy.as_str() == m] { (m) }
                        }
                    }
                }
                div {
                    label for="p-after" { "Decide after (policy after)" }
                    input #p-after type="text" name="after" value=(policy.after.to_string()) autocomplete="off";
                }
                div {
                    label for="p-reads" { "Decide on read number (after_reads)" }
                    input #p-reads type="number" min="1" name="afterReads" value=(policy.after_reads);
                }
                div {
                    label for="p-outcome" { "Outcome" }
                    select #p-outcome name="outcome" {
                        @for o in outcomes {
                            option value=(o) selected[policy.outcome.as_str() == o] { (o) }
                        }
                    }
                }
                div {
                    label for="p-gcc" { "GCC requests go to review" }
                    select #p-gcc name="gccReview" {
                        option value="false" selected[!policy.gcc_review] { "No" }
                        option value="true" selected[policy.gcc_review] { "Yes" }
                    }
                }
                div.actions {
                    button type="submit" name="action" value="set" { "Set the policy" }
                    @if overridden {
                        button type="submit" name="action" value="restore" { "Restore the configured policy" }
                    }
                }
            }
        }
        section.card aria-labelledby="faults-h" {
            h2 #faults-h { "Injected faults" }
            @if faults.is_empty() {
                p.empty { "No faults are injected." }
            } @else {
                div.table-wrap {
                    table.stack.faults {
                        caption { "Faults, oldest first" }
                        thead { tr {
                            th scope="col" { "Method" }
                            th scope="col" { "Path" }
                            th scope="col" { "Answer" }
                            th scope="col" { "When" }
                            th scope="col" { "Fired" }
                            th scope="col" { "Left" }
                            th scope="col" { span.visually-hidden { "Remove" } }
                        } }
                        tbody {
                            @for f in &faults {
                                tr {
                                    td data-label="Method" { (f.method) }
                                    td data-label="Path" { code { (f.path) } @if let Some(p) = f.partner { br; span.muted { "partner " (p) } } }
                                    td data-label="Answer" { (f.status.as_ref().map(|s| serde_json::to_value(s).map(|v| v.to_string().trim_matches('"').to_owned()).unwrap_or_default()).unwrap_or_else(|| format!("delay {} ms", f.delay_ms))) }
                                    td data-label="When" { (f.when) }
                                    td data-label="Fired" { (f.fired) }
                                    td data-label="Left" { (f.remaining.map_or("unlimited".to_owned(), |r| r.to_string())) }
                                    td data-label="Remove" {
                                        form method="post" action={ (BASE) "/admin/faults/delete" } {
                                            (csrf_field(&session))
                                            input type="hidden" name="id" value=(f.id);
                                            button type="submit" aria-label={ "Remove the fault on " (f.path) } { "Remove" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                form method="post" action={ (BASE) "/admin/faults/delete" } {
                    (csrf_field(&session))
                    input type="hidden" name="id" value="all";
                    button type="submit" data-confirm="Remove every injected fault?" { "Remove every fault" }
                }
            }
            h3 { "Add a fault" }
            form.grid method="post" action={ (BASE) "/admin/faults" } {
                (csrf_field(&session))
                div {
                    label for="f-method" { "Method" }
                    select #f-method name="method" {
                        @for m in ["*", "GET", "POST", "PUT", "DELETE"] { option value=(m) { (m) } }
                    }
                }
                div {
                    label for="f-path" { "Path (glob)" }
                    input #f-path type="text" name="path" required placeholder="/v1/customers/*/qualifications" autocomplete="off";
                }
                div {
                    label for="f-status" { "Answer with status" }
                    input #f-status type="text" name="status" placeholder="503, 429 or reset" autocomplete="off";
                }
                div {
                    label for="f-when" { "When" }
                    select #f-when name="when" {
                        option value="before" { "before the effect" }
                        option value="after" { "after the effect (a lost answer)" }
                    }
                }
                div {
                    label for="f-count" { "How many times" }
                    input #f-count type="number" min="1" name="count" placeholder="unlimited";
                }
                div {
                    label for="f-probability" { "Probability" }
                    input #f-probability type="text" name="probability" placeholder="1.0" inputmode="decimal" autocomplete="off";
                }
                div {
                    label for="f-delay" { "Delay (ms)" }
                    input #f-delay type="number" min="0" name="delayMs" placeholder="0";
                }
                div {
                    label for="f-retry" { "Retry-After (s, for 429)" }
                    input #f-retry type="number" min="0" name="retryAfterSeconds";
                }
                div {
                    label for="f-partner" { "Only for partner" }
                    input #f-partner type="text" name="partner" placeholder="any partner" autocomplete="off";
                }
                div.actions { button type="submit" { "Add the fault" } }
            }
        }
        section.card aria-labelledby="reset-h" {
            h2 #reset-h { "Reset" }
            p { "Removes every customer, qualification, validation code, audit record, webhook \
                 registration and fault (or one partner's), puts the clock back and loads the \
                 seed pcq started with." }
            form.inline method="post" action={ (BASE) "/admin/reset" } {
                (csrf_field(&session))
                label for="reset-partner" { "Only this partner (optional)" }
                input #reset-partner type="text" name="partner" autocomplete="off";
                button.danger type="submit" data-confirm="Reset the sandbox?" { "Reset" }
            }
        }
        section.card aria-labelledby="metrics-h" {
            h2 #metrics-h { "Metrics" }
            @match &metrics {
                None => p.empty { "Metrics are off on this node (metrics.enabled = false)." },
                Some(sums) => {
                    p { "This node's " a href="/_pcq/metrics" { "/_pcq/metrics" } ", each family summed over its labels." }
                    div.table-wrap {
                        table.metrics {
                            caption { "Metric families" }
                            thead { tr { th scope="col" { "Metric" } th scope="col" { "Total" } } }
                            tbody {
                                @for (name, value) in sums {
                                    tr { td { code { (name) } } td.num { (number(*value)) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    html_response(StatusCode::OK, page("Sandbox", Some(&session), body))
}

fn done(what: &str) -> Response {
    see_other(&format!("{BASE}/admin?done={what}"))
}

fn refused(session: &Session, error: &Error) -> Response {
    failure(Some(session), error)
}

/// `POST /_pcq/console/admin/clock`.
pub async fn advance_clock(State(console): State<Console>, guarded: Guarded) -> Response {
    let Guarded { session, form } = guarded;
    if let Some(refused) = refuse_non_admin(&session) {
        return refused;
    }
    let raw = field(&form, "advance").unwrap_or("");
    let by = match pcq_core::vetting::Duration::parse(raw) {
        Ok(by) => by,
        Err(e) => {
            return super::fault_page(
                Some(&session),
                &ApiFault::invalid_input(format!("Advance by: {e}.")),
            );
        }
    };
    match console
        .app
        .pipeline
        .write(crate::service::clock::Advance::from_now(by, raw))
        .await
    {
        Ok(_) => done("clock"),
        Err(e) => refused(&session, &e),
    }
}

/// `POST /_pcq/console/admin/policy`: sets the policy (as `PUT /_pcq/admin/vetting-policy`),
/// or restores the configured one.
pub async fn set_policy(State(console): State<Console>, guarded: Guarded) -> Response {
    let Guarded { session, form } = guarded;
    if let Some(refused) = refuse_non_admin(&session) {
        return refused;
    }
    let pipeline = &console.app.pipeline;
    if field(&form, "action") == Some("restore") {
        return match pipeline
            .write(crate::service::vetting::SetPolicy(None))
            .await
        {
            Ok(_) => done("policy-restored"),
            Err(e) => refused(&session, &e),
        };
    }
    let mut changes = json!({});
    for name in ["policy", "after", "outcome"] {
        if let Some(value) = field(&form, name) {
            changes[name] = json!(value);
        }
    }
    if let Some(reads) = field(&form, "afterReads") {
        match reads.parse::<u32>() {
            Ok(n) => changes["afterReads"] = json!(n),
            Err(_) => {
                return super::fault_page(
                    Some(&session),
                    &ApiFault::invalid_input("Decide on read number: a whole number from 1."),
                );
            }
        }
    }
    if let Some(gcc) = field(&form, "gccReview") {
        changes["gccReview"] = json!(gcc == "true");
    }
    let policy = match pipeline.policy.configured().with_changes(&changes) {
        Ok(policy) => policy,
        Err(e) => {
            return super::fault_page(
                Some(&session),
                &ApiFault::invalid_input(format!("The vetting policy is not valid: {e}.")),
            );
        }
    };
    match pipeline
        .write(crate::service::vetting::SetPolicy(Some(policy)))
        .await
    {
        Ok(_) => done("policy"),
        Err(e) => refused(&session, &e),
    }
}

/// `POST /_pcq/console/admin/reset`: as `POST /_pcq/admin/reset`.
pub async fn reset(State(console): State<Console>, guarded: Guarded) -> Response {
    let Guarded { session, form } = guarded;
    if let Some(refused) = refuse_non_admin(&session) {
        return refused;
    }
    let partner = match field(&form, "partner") {
        None => None,
        Some(raw) => match crate::http::extract::partner_tenant_id(raw) {
            Ok(p) => Some(p),
            Err(fault) => return super::fault_page(Some(&session), &fault),
        },
    };
    match crate::http::admin::reset_sandbox(&console.app, partner).await {
        Ok(_) => done("reset"),
        Err(e) => refused(&session, &e),
    }
}

/// `POST /_pcq/console/admin/faults`: adds a fault, as `POST /_pcq/admin/faults`.
pub async fn add_fault(State(console): State<Console>, guarded: Guarded) -> Response {
    let Guarded { session, form } = guarded;
    if let Some(refused) = refuse_non_admin(&session) {
        return refused;
    }
    let mut body = json!({});
    for name in ["method", "path", "when", "partner"] {
        if let Some(value) = field(&form, name) {
            body[name] = json!(value);
        }
    }
    if let Some(status) = field(&form, "status") {
        body["status"] = match status.parse::<u64>() {
            Ok(n) => json!(n),
            Err(_) => json!(status),
        };
    }
    for name in ["count", "delayMs", "retryAfterSeconds"] {
        if let Some(value) = field(&form, name) {
            body[name] = match value.parse::<u64>() {
                Ok(n) => json!(n),
                Err(_) => json!(value),
            };
        }
    }
    if let Some(p) = field(&form, "probability") {
        body["probability"] = match p.parse::<f64>() {
            Ok(n) => json!(n),
            Err(_) => json!(p),
        };
    }
    let spec = match FaultSpec::parse(&body) {
        Ok(spec) => spec,
        Err(fault) => return super::fault_page(Some(&session), &fault),
    };
    let pipeline = &console.app.pipeline;
    let row = spec.into_row(Uuid::new_v4(), pipeline.now());
    match pipeline.write(AddFault(row)).await {
        Ok(_) => done("fault"),
        Err(e) => refused(&session, &e),
    }
}

/// `POST /_pcq/console/admin/faults/delete`: removes one fault, or all (`id=all`).
pub async fn remove_fault(State(console): State<Console>, guarded: Guarded) -> Response {
    let Guarded { session, form } = guarded;
    if let Some(refused) = refuse_non_admin(&session) {
        return refused;
    }
    let pipeline = &console.app.pipeline;
    let raw = field(&form, "id").unwrap_or("");
    if raw == "all" {
        return match pipeline.write(crate::faults::ClearFaults).await {
            Ok(_) => done("faults-cleared"),
            Err(e) => refused(&session, &e),
        };
    }
    let Some(id) = pcq_core::ids::parse_guid(raw) else {
        return super::fault_page(
            Some(&session),
            &ApiFault::invalid_input("The form names no fault."),
        );
    };
    match pipeline.write(RemoveFault(id)).await {
        Ok(_) => done("fault-removed"),
        Err(e) => refused(&session, &e),
    }
}

fn journal_off(session: &Session) -> Response {
    super::error_page(
        StatusCode::CONFLICT,
        Some(session),
        "The request journal is off on this node (journal.enabled = false).",
    )
}

fn journal_filter(after: Option<u64>) -> Filter {
    Filter {
        partner: None,
        method: None,
        path_prefix: None,
        status: None,
        since: after,
        limit: JOURNAL_ENTRIES,
    }
}

/// `GET /_pcq/console/admin/journal`: the latest requests; the script adds newer ones as they
/// come (without it, the refresh link does).
pub async fn journal_page(State(console): State<Console>, SignedIn(session): SignedIn) -> Response {
    if let Some(refused) = refuse_non_admin(&session) {
        return refused;
    }
    let state = &console.app;
    if !state.journal.enabled() {
        return journal_off(&session);
    }
    let found = state.journal.find(&journal_filter(None));
    let node = state.pipeline.links.public_url.to_string();
    let entries: Vec<EntryView> = found
        .entries
        .iter()
        .map(|e| EntryView::new(e, &node))
        .collect();
    let body = html! {
        (subnav())
        p { "The requests this node served, newest first (the console's own pages are not \
             kept). " a href={ (BASE) "/admin/journal" } { "Refresh" } }
        p.muted #tail-status role="status" aria-live="polite" {}
        div.table-wrap {
            table.journal #journal
                data-tail={ (BASE) "/admin/journal/entries" }
                data-after=(found.next_since) {
                (super::table_head("Request journal", &["Time (pcq)", "Method", "Path", "Status", "Caller", "ms"]))
                tbody {
                    @for e in &entries { (journal_row(e)) }
                }
            }
        }
    };
    html_response(
        StatusCode::OK,
        page("Request journal", Some(&session), body),
    )
}

fn caller(e: &EntryView) -> String {
    match (&e.user, &e.application, e.partner) {
        (Some(user), _, _) => user.clone(),
        (None, Some(app), _) => format!("application {app}"),
        (None, None, Some(partner)) => partner.to_string(),
        _ => String::new(),
    }
}

fn journal_row(e: &EntryView) -> Markup {
    html! {
        tr {
            td { (e.pcq_time) }
            td { (e.method) }
            td { code { (e.path) } @if let Some(f) = &e.fault { br; span.muted { "fault " (f) } } }
            td { (e.status) @if e.replayed { " (replayed)" } }
            td { (caller(e)) }
            td.num { (format!("{:.1}", e.duration_micros as f64 / 1000.0)) }
        }
    }
}

/// `GET /_pcq/console/admin/journal/entries?after=N`: the entries after `N`, oldest first, as
/// JSON for the live tail (the script builds the rows as text, never as HTML).
pub async fn journal_entries(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    QueryFields(query): QueryFields,
) -> Response {
    if let Some(refused) = refuse_non_admin(&session) {
        return refused;
    }
    let state = &console.app;
    if !state.journal.enabled() {
        return journal_off(&session);
    }
    let after = field(&query, "after").and_then(|a| a.parse::<u64>().ok());
    let found = state.journal.find(&journal_filter(after));
    let node = state.pipeline.links.public_url.to_string();
    // Newest first, as the journal answers; the script adds them oldest first.
    let rows: Vec<Value> = found
        .entries
        .iter()
        .map(|e| {
            let v = EntryView::new(e, &node);
            json!({
                "time": v.pcq_time,
                "method": v.method,
                "path": v.path,
                "status": v.status,
                "replayed": v.replayed,
                "fault": v.fault,
                "caller": caller(&v),
                "ms": format!("{:.1}", v.duration_micros as f64 / 1000.0),
            })
        })
        .collect();
    Json(json!({"entries": rows, "after": found.next_since})).into_response()
}

fn delivery_status(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Delivered => "completed",
        DeliveryStatus::Failed => "failed",
    }
}

/// Registrations listed on one page of the webhooks page.
const REGISTRATIONS: i64 = 50;

/// `GET /_pcq/console/admin/webhooks?partner=&after=`: every partner's webhook registration (a
/// page of them, by partner tenant, after `after`), then one partner's registration and its
/// deliveries, each with its attempts (the development partner unless another is named).
pub async fn webhooks_page(
    State(console): State<Console>,
    SignedIn(session): SignedIn,
    QueryFields(query): QueryFields,
) -> Response {
    if let Some(refused) = refuse_non_admin(&session) {
        return refused;
    }
    let state = &console.app;
    let partner = match field(&query, "partner") {
        None => state.dev_partner,
        Some(raw) => match crate::http::extract::partner_tenant_id(raw) {
            Ok(p) => p,
            Err(fault) => return super::fault_page(Some(&session), &fault),
        },
    };
    let after = match field(&query, "after") {
        None => None,
        Some(raw) => match crate::http::extract::partner_tenant_id(raw) {
            Ok(p) => Some(p),
            Err(fault) => return super::fault_page(Some(&session), &fault),
        },
    };
    let registrations = match state
        .pipeline
        .read(Registrations {
            after,
            limit: REGISTRATIONS + 1,
        })
        .await
    {
        Ok(r) => r,
        Err(e) => return failure(Some(&session), &e),
    };
    let more = registrations.len() > REGISTRATIONS as usize;
    let registrations = &registrations[..registrations.len().min(REGISTRATIONS as usize)];
    let registration = match state.pipeline.read(FindRegistration(partner)).await {
        Ok(r) => Some(r),
        Err(Error::Fault(f)) if f.status == 404 => None,
        Err(e) => return failure(Some(&session), &e),
    };
    let deliveries = match state
        .pipeline
        .read(RecentDeliveries {
            partner,
            limit: DELIVERIES,
        })
        .await
    {
        Ok(d) => d,
        Err(e) => return failure(Some(&session), &e),
    };
    let body = html! {
        (subnav())
        h2 { "Registrations" }
        @if registrations.is_empty() {
            p.empty { "No partner has a webhook registration." }
        } @else {
            div.table-wrap {
                table.registrations {
                    (super::table_head("Webhook registrations, by partner tenant", &["Partner tenant", "Callback URL", "Events"]))
                    tbody {
                        @for r in registrations {
                            tr {
                                td data-label="Partner tenant" {
                                    a href={ (BASE) "/admin/webhooks?partner=" (r.partner_tenant_id) } {
                                        code.id { (r.partner_tenant_id) }
                                    }
                                }
                                td data-label="Callback URL" { code { (r.webhook_url) } }
                                td data-label="Events" { (r.webhook_events.join(", ")) }
                            }
                        }
                    }
                }
            }
            @if more {
                @if let Some(last) = registrations.last() {
                    p { a href={ (BASE) "/admin/webhooks?partner=" (partner) "&after=" (last.partner_tenant_id) } { "More registrations" } }
                }
            }
        }
        h2 { "One partner's deliveries" }
        form.filters method="get" action={ (BASE) "/admin/webhooks" } {
            div {
                label for="w-partner" { "Partner tenant" }
                input #w-partner type="text" name="partner" value=(partner) autocomplete="off";
            }
            button type="submit" { "Show" }
        }
        h3 { "Registration" }
        @match &registration {
            None => p.empty { "This partner has no webhook registration." },
            Some(r) => dl.facts {
                dt { "Callback URL" } dd { code { (r.webhook_url) } }
                dt { "Events" } dd { (r.webhook_events.join(", ")) }
                dt { "Subscriber id" } dd { code.id { (r.subscriber_id) } }
                dt { "Registered" } dd { (super::when(r.created_at)) }
                dt { "Updated" } dd { (super::when(r.updated_at)) }
            },
        }
        h3 { "Deliveries, newest first" }
        @if deliveries.is_empty() {
            p.empty { "No deliveries." }
        }
        @for (d, attempts) in &deliveries {
            section.card.delivery {
                h4 { (d.event_name) " " span class={ "status " (delivery_status(d.status)) } { (delivery_status(d.status)) } }
                dl.facts {
                    dt { "Delivery id" } dd { code.id { (d.id) } }
                    dt { "To" } dd { code { (d.webhook_url) } }
                    dt { "Created" } dd { (super::when(d.created_at)) }
                    @if d.status == DeliveryStatus::Pending {
                        dt { "Next attempt" } dd { (super::when(d.next_attempt_at)) }
                    }
                    @if let Some(f) = d.finished_at {
                        dt { "Finished" } dd { (super::when(f)) }
                    }
                }
                details {
                    summary { "Payload" }
                    pre { (String::from_utf8_lossy(&d.payload)) }
                }
                @if attempts.is_empty() {
                    p.empty { "No attempt yet." }
                } @else {
                    div.table-wrap {
                        table.attempts {
                            (super::table_head("Attempts", &["#", "At", "Answer", "Message"]))
                            tbody {
                                @for a in attempts {
                                    tr {
                                        td { (a.attempt) }
                                        td { (super::when(a.at)) }
                                        td { (a.response_code.map_or("none".to_owned(), |c| c.to_string()))
                                             @if a.system_error { " (pcq's side)" } }
                                        td { (a.response_message) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    html_response(StatusCode::OK, page("Webhooks", Some(&session), body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_summed_per_family() {
        let text = "# HELP a x\n# TYPE a counter\na{x=\"1\"} 2\na{x=\"2\"} 3\nb_bucket{le=\"1\"} 9\nb_sum 1.5\nb_count 4\nc 7\n";
        let sums = metrics_summary(text);
        assert_eq!(sums["a"], 5.0);
        assert_eq!(sums["b_sum"], 1.5);
        assert_eq!(sums["b_count"], 4.0);
        assert_eq!(sums["c"], 7.0);
        assert!(!sums.contains_key("b_bucket"));
    }
}
