//! Validation codes, audit records and webhooks: the rest of the Partner Center surface.

use std::fmt::Display;

use pcq_core::wire::{AuditRecord, ValidationCode, ValidationEventStatus, WebhookRegistration};
use reqwest::Method;
use serde::Deserialize;

use crate::PartnerClient;
use crate::client::{Operation, no_body};
use crate::paging::Pager;

/// The partner's GCC validation codes: `client.validation_codes()`.
#[derive(Debug, Clone)]
pub struct ValidationCodes {
    client: PartnerClient,
}

impl ValidationCodes {
    pub(crate) fn new(client: PartnerClient) -> Self {
        ValidationCodes { client }
    }

    /// `GET /v1/customers/all/validations`: the calling partner's codes.
    pub fn list(&self) -> Operation<Vec<ValidationCode>> {
        self.client
            .call(Method::GET, &["v1", "customers", "all", "validations"])
    }
}

/// Audit records: `client.audit_records()`.
#[derive(Debug, Clone)]
pub struct AuditRecords {
    client: PartnerClient,
}

/// The filters of an audit-record query; all optional.
///
/// ```
/// use pcq_client::AuditQuery;
///
/// let query = AuditQuery::new()
///     .start_date("2026-11-01")
///     .end_date("2026-11-30")
///     .operation_type("update_customer_qualification");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// First day (`yyyy-mm-dd`; RFC 3339 too).
    pub start_date: Option<String>,
    /// Last day, inclusive.
    pub end_date: Option<String>,
    /// Only this customer.
    pub customer_id: Option<String>,
    /// Only this operation type, e.g. `add_customer`.
    pub operation_type: Option<String>,
    /// A Partner Center filter: `{"Field":"CustomerId","Value":"…","Operator":"equals"}`.
    pub filter: Option<String>,
}

impl AuditQuery {
    /// No filter: every record of the default period.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the first day.
    #[must_use]
    pub fn start_date(mut self, date: impl Into<String>) -> Self {
        self.start_date = Some(date.into());
        self
    }

    /// Sets the last day (inclusive).
    #[must_use]
    pub fn end_date(mut self, date: impl Into<String>) -> Self {
        self.end_date = Some(date.into());
        self
    }

    /// Only this customer.
    #[must_use]
    pub fn customer_id(mut self, id: impl Display) -> Self {
        self.customer_id = Some(id.to_string());
        self
    }

    /// Only this operation type.
    #[must_use]
    pub fn operation_type(mut self, operation: impl Into<String>) -> Self {
        self.operation_type = Some(operation.into());
        self
    }

    /// A Partner Center filter document.
    #[must_use]
    pub fn filter(mut self, filter: impl Into<String>) -> Self {
        self.filter = Some(filter.into());
        self
    }
}

impl AuditRecords {
    pub(crate) fn new(client: PartnerClient) -> Self {
        AuditRecords { client }
    }

    /// `GET /v1/auditrecords`: the records matching `query`, paged.
    pub fn query(&self, query: AuditQuery) -> Pager<AuditRecord> {
        let mut url = self.client.url(&["v1", "auditrecords"]);
        {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in [
                ("startDate", &query.start_date),
                ("endDate", &query.end_date),
                ("customerId", &query.customer_id),
                ("operationType", &query.operation_type),
                ("filter", &query.filter),
            ] {
                if let Some(value) = value {
                    pairs.append_pair(key, value);
                }
            }
        }
        Pager::new(self.client.clone(), url)
    }

    /// One record, by its id.
    pub fn by_id(&self, id: impl Display) -> AuditRecordOperations {
        AuditRecordOperations {
            client: self.client.clone(),
            id: id.to_string(),
        }
    }
}

/// `client.audit_records().by_id(id)`.
#[derive(Debug, Clone)]
pub struct AuditRecordOperations {
    client: PartnerClient,
    id: String,
}

impl AuditRecordOperations {
    /// `GET /v1/auditrecords/{id}`.
    pub fn get(&self) -> Operation<AuditRecord> {
        self.client
            .call(Method::GET, &["v1", "auditrecords", &self.id])
    }
}

/// The partner's webhook registration: `client.webhooks()`.
#[derive(Debug, Clone)]
pub struct Webhooks {
    client: PartnerClient,
}

const REGISTRATION: [&str; 3] = ["webhooks", "v1", "registration"];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CorrelationIdBody {
    correlation_id: String,
}

impl Webhooks {
    pub(crate) fn new(client: PartnerClient) -> Self {
        Webhooks { client }
    }

    fn registration_body<I, S>(url: &str, events: I) -> serde_json::Value
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let registration = WebhookRegistration {
            subscriber_id: None,
            webhook_url: url.to_owned(),
            webhook_events: events.into_iter().map(Into::into).collect(),
        };
        serde_json::to_value(registration).unwrap_or_default()
    }

    /// `POST /webhooks/v1/registration`: registers `url` for `events`
    /// (`customer-qualification-updated`, `test-created`).
    pub fn register<I, S>(&self, url: &str, events: I) -> Operation<WebhookRegistration>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.client
            .call(Method::POST, &REGISTRATION)
            .json_body(&Self::registration_body(url, events))
    }

    /// `GET /webhooks/v1/registration`.
    pub fn get(&self) -> Operation<WebhookRegistration> {
        self.client.call(Method::GET, &REGISTRATION)
    }

    /// `PUT /webhooks/v1/registration`: replaces the registration.
    pub fn update<I, S>(&self, url: &str, events: I) -> Operation<WebhookRegistration>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.client
            .call(Method::PUT, &REGISTRATION)
            .json_body(&Self::registration_body(url, events))
    }

    /// `DELETE /webhooks/v1/registration` (204).
    pub fn delete(&self) -> Operation<()> {
        let url = self.client.url(&REGISTRATION);
        Operation::new(
            self.client.clone(),
            Method::DELETE,
            url,
            crate::client::Decoder::Json(no_body),
        )
    }

    /// `GET /webhooks/v1/registration/events`: the events a registration can receive.
    pub fn events(&self) -> Operation<Vec<String>> {
        self.client
            .call(Method::GET, &["webhooks", "v1", "registration", "events"])
    }

    /// `GET /webhooks/v1/registration/deliveries`: the latest deliveries (pcq's delivery log:
    /// `id`, `eventName`, `status`, `payload`, `results`, …), at most `size` of them.
    pub fn deliveries(&self, size: Option<u32>) -> Operation<Vec<serde_json::Value>> {
        let call = self.client.call(
            Method::GET,
            &["webhooks", "v1", "registration", "deliveries"],
        );
        match size {
            Some(size) => call.query("size", &size.to_string()),
            None => call,
        }
    }

    /// `POST /webhooks/v1/registration/validationEvents`: sends a `test-created` event; answers
    /// the correlation id to follow it by.
    pub fn send_validation_event(&self) -> Operation<String> {
        let url = self
            .client
            .url(&["webhooks", "v1", "registration", "validationEvents"]);
        Operation::new(
            self.client.clone(),
            Method::POST,
            url,
            crate::client::Decoder::Json(|body| {
                serde_json::from_slice::<CorrelationIdBody>(body).map(|b| b.correlation_id)
            }),
        )
    }

    /// `GET /webhooks/v1/registration/validationEvents/{correlation id}`: how the validation
    /// event went.
    pub fn validation_event(&self, correlation_id: &str) -> Operation<ValidationEventStatus> {
        self.client.call(
            Method::GET,
            &[
                "webhooks",
                "v1",
                "registration",
                "validationEvents",
                correlation_id,
            ],
        )
    }
}
