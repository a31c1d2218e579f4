//! `/v1/auditrecords`: the calling partner's audit records.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use pcq_core::ApiFault;
use pcq_core::input::LooseObject;
use pcq_core::time::Timestamp;
use pcq_core::wire::{Attributes, AuditRecord, Collection, KeyValue};
use serde_json::Value;

use super::extract::{Caller, QueryParams};
use super::paging::{self, ContinuationToken, List, page_size};
use crate::AppState;
use crate::error::Error;
use crate::service::audit::{AuditPage, FindAuditRecord};
use crate::store::{AuditQuery, AuditRecordRow, Reply};

/// The default window of a query without `startDate`.
const DEFAULT_WINDOW_MICROS: i64 = 30 * 86_400 * 1_000_000;

fn render(row: &AuditRecordRow) -> AuditRecord {
    AuditRecord {
        id: row.id.clone(),
        partner_id: row.partner_tenant_id,
        customer_id: row.customer_id,
        customer_name: row.customer_name.clone(),
        user_principal_name: row.user_principal_name.clone(),
        application_id: row.application_id.clone(),
        resource_type: row.resource_type.clone(),
        resource_old_value: row.resource_old_value.clone(),
        resource_new_value: row.resource_new_value.clone(),
        operation_type: row.operation_type.clone(),
        operation_date: row.operation_date.to_rfc3339(),
        operation_status: row.operation_status.clone(),
        customized_data: row
            .customized_data
            .iter()
            .map(|(key, value)| KeyValue {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
        attributes: Attributes::of("AuditRecord"),
    }
}

fn date(query: &QueryParams, name: &str, end_of_day: bool) -> Result<Option<Timestamp>, ApiFault> {
    query
        .get(name)
        .filter(|v| !v.trim().is_empty())
        .map(|raw| {
            Timestamp::parse_query_date(raw, end_of_day).ok_or_else(|| {
                ApiFault::invalid_input(format!(
                    "The {name} '{}' is not a date; use yyyy-mm-dd, for example 2020-09-02.",
                    raw.chars().take(40).collect::<String>()
                ))
                .with_param("field", name)
            })
        })
        .transpose()
}

/// The position after a record: its operation date (microseconds) and its seq, the key the
/// list is ordered by.
fn encode_position(row: &AuditRecordRow) -> String {
    format!("{}.{}", row.operation_date.as_micros(), row.seq)
}

fn decode_position(raw: &str) -> Option<(Timestamp, i64)> {
    let (date, seq) = raw.split_once('.')?;
    let date = date.parse().ok().map(Timestamp::from_micros)?;
    let seq = seq.parse::<i64>().ok().filter(|s| *s >= 0)?;
    Some((date, seq))
}

/// Applies the documented `filter` parameter:
/// `{"Field": "CustomerId" | "CompanyName" | "ResourceType" | "OperationType", "Value": "...",
/// "Operator": "equals" | "substring"}`.
fn apply_filter(raw: &str, q: &mut AuditQuery) -> Result<(), ApiFault> {
    let invalid = |why: &str| {
        ApiFault::invalid_input(format!(
            "The filter is not valid: {why}. Use {{\"Field\":\"CustomerId\",\"Value\":\"<id>\",\"Operator\":\"equals\"}}."
        ))
        .with_param("field", "filter")
    };
    let value: Value = serde_json::from_str(raw).map_err(|_| invalid("it is not JSON"))?;
    let Value::Object(map) = &value else {
        return Err(invalid("it is not an object"));
    };
    let filter = LooseObject::new(map);
    let field = filter
        .get_str("field")?
        .ok_or_else(|| invalid("Field is missing"))?;
    let wanted = filter
        .get_str("value")?
        .ok_or_else(|| invalid("Value is missing"))?;
    let operator = filter
        .get_str("operator")?
        .unwrap_or("equals")
        .to_ascii_lowercase();
    match (field.to_ascii_lowercase().as_str(), operator.as_str()) {
        ("customerid", "equals") => {
            let id = pcq_core::ids::parse_customer_id(wanted)?;
            if q.customer_id.is_some_and(|given| given != id) {
                return Err(invalid("it names another customer than customerId"));
            }
            q.customer_id = Some(id);
        }
        ("companyname", "substring") => q.customer_name_contains = Some(wanted.to_owned()),
        ("companyname", "equals") => q.customer_name_is = Some(wanted.to_owned()),
        ("resourcetype", "equals") => q.resource_type = Some(wanted.to_ascii_lowercase()),
        ("operationtype", "equals") => q.operation_type = Some(wanted.to_ascii_lowercase()),
        _ => {
            return Err(invalid(
                "supported are CustomerId, ResourceType and OperationType with equals, and \
                 CompanyName with substring or equals",
            ));
        }
    }
    Ok(())
}

/// Lists the calling partner's audit records between two dates, a page at a time.
///
/// `startDate` defaults to 30 days ago and `endDate` (inclusive) to now. Narrow down with the
/// documented `filter` or with `customerId` and `operationType`.
#[utoipa::path(
    get,
    path = "/v1/auditrecords",
    tag = "audit records",
    params(
        ("startDate" = Option<String>, Query, format = Date, description = "First day (yyyy-mm-dd; also RFC 3339 or 6/1/2017); before endDate"),
        ("endDate" = Option<String>, Query, format = Date, description = "Last day, inclusive (yyyy-mm-dd; also RFC 3339 or 6/1/2017)"),
        ("size" = Option<u32>, Query, minimum = 1, description = "Page size"),
        ("filter" = Option<String>, Query, description = "{\"Field\":\"CustomerId\",\"Value\":\"…\",\"Operator\":\"equals\"}"),
        ("customerId" = Option<uuid::Uuid>, Query, description = "Only this customer"),
        ("operationType" = Option<String>, Query, description = "Only this operation type, e.g. update_customer_qualification"),
        ContinuationToken,
    ),
    responses((status = 200, description = "A page of audit records", body = Collection<AuditRecord>)),
    security(("bearer" = []))
)]
pub async fn list_audit_records(
    State(state): State<AppState>,
    Caller(caller): Caller,
    query: QueryParams,
    headers: HeaderMap,
) -> Result<Reply, Error> {
    let size = page_size(&query, &state.config.paging)?;
    let lister = state.pager.lister(List::AuditRecords, caller.tenant_id);
    let now = state.pipeline.now();
    let from = date(&query, "startDate", false)?.unwrap_or(now.plus_micros(-DEFAULT_WINDOW_MICROS));
    let until = date(&query, "endDate", true)?.unwrap_or(Timestamp::from_micros(i64::MAX));
    if from >= until {
        return Err(
            ApiFault::invalid_input("The startDate is after the endDate.")
                .with_param("field", "startDate")
                .into(),
        );
    }
    let mut audit = AuditQuery {
        partner: caller.tenant_id,
        from,
        until,
        customer_id: None,
        operation_type: query
            .get("operationType")
            .map(|o| o.trim().to_ascii_lowercase()),
        resource_type: None,
        customer_name_contains: None,
        customer_name_is: None,
        after: match lister.position(&headers)? {
            None => None,
            Some(p) => Some(decode_position(&p).ok_or_else(ApiFault::invalid_continuation_token)?),
        },
        limit: paging::limit(size),
    };
    if let Some(id) = query.get("customerId") {
        audit.customer_id = Some(pcq_core::ids::parse_customer_id(id)?);
    }
    if let Some(filter) = query.get("filter") {
        apply_filter(filter, &mut audit)?;
    }
    let rows = state.pipeline.read(AuditPage(audit)).await?;
    Reply::ok(&lister.page(
        rows,
        size,
        paging::self_uri("/v1/auditrecords", query.raw()),
        encode_position,
        render,
    ))
}

/// Gets one of the calling partner's audit records (the `AuditUri` of webhook events).
#[utoipa::path(
    get,
    path = "/v1/auditrecords/{audit_record_id}",
    tag = "audit records",
    params(("audit_record_id" = String, Path, description = "The audit record's id")),
    responses((status = 200, description = "The audit record", body = AuditRecord)),
    security(("bearer" = []))
)]
pub async fn get_audit_record(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Reply, Error> {
    let row = state
        .pipeline
        .read(FindAuditRecord(caller.tenant_id, id))
        .await?;
    Reply::ok(&render(&row))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_reject_junk() {
        let at = Timestamp::from_micros(1_796_303_665_412_697);
        let raw = format!("{}.42", at.as_micros());
        assert_eq!(decode_position(&raw), Some((at, 42)));
        // A seq alone (the form of earlier tokens), and other junk.
        for junk in ["", "42", "x.1", "1.x", "1.-1", "1.2.3"] {
            assert!(decode_position(junk).is_none(), "{junk}");
        }
    }
}
