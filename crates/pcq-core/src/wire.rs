//! Response shapes, exactly as Partner Center clients read them: camelCase keys, PascalCase
//! enum values, absent values omitted.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::enums::{Qualification, VettingStatus};

/// One qualification of a customer (`CustomerQualification` V2 in the .NET SDK).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CustomerQualification {
    /// The qualification.
    pub qualification: Qualification,
    /// Vetting status; absent for StateOwnedEntity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vetting_status: Option<VettingStatus>,
    /// Why vetting denied the qualification; present only when Denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vetting_reason: Option<String>,
    /// When the current vetting round started (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vetting_create_date: Option<String>,
}

/// A link to a related resource or page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Link {
    /// Path of the resource, relative to the service root.
    pub uri: String,
    /// HTTP method to use.
    pub method: String,
    /// Headers to send with the request (the continuation token for a next page).
    pub headers: Vec<LinkHeader>,
}

impl Link {
    /// A GET link without headers.
    pub fn get(uri: impl Into<String>) -> Self {
        Link {
            uri: uri.into(),
            method: "GET".to_owned(),
            headers: Vec::new(),
        }
    }
}

/// A header attached to a [`Link`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkHeader {
    /// Header name.
    pub key: String,
    /// Header value.
    pub value: String,
}

/// The links of a resource or collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Links {
    /// This resource or page.
    #[serde(rename = "self")]
    pub self_link: Link,
    /// The next page, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<Link>,
}

/// Resource metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Attributes {
    /// The resource's type name, e.g. `Customer` or `Collection`.
    pub object_type: String,
    /// Version tag of the resource, where it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

impl Attributes {
    /// Attributes with only an object type.
    pub fn of(object_type: &str) -> Self {
        Attributes {
            object_type: object_type.to_owned(),
            etag: None,
        }
    }
}

/// A customer's company profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CompanyProfile {
    /// The customer's tenant id (same as the customer id).
    pub tenant_id: Uuid,
    /// The customer's domain, e.g. `contoso.onmicrosoft.com`.
    pub domain: String,
    /// The company or organisation name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    /// Further company-profile properties, as sent at creation.
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub extra: Map<String, Value>,
    /// Metadata (`objectType: CustomerCompanyProfile`).
    pub attributes: Attributes,
}

/// A customer (`Customer` in the .NET SDK).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    /// The customer's tenant id.
    pub id: Uuid,
    /// The commerce id.
    pub commerce_id: Uuid,
    /// Company profile.
    pub company_profile: CompanyProfile,
    /// Billing profile as sent at creation (camelCase keys), with `id` and `attributes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub billing_profile: Option<Value>,
    /// Always `reseller`: the customer was created by the calling partner.
    pub relationship_to_partner: String,
    /// Whether the partner holds delegated admin rights; only when getting one customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_delegated_access: Option<bool>,
    /// Links (`self`).
    pub links: Links,
    /// Metadata (`objectType: Customer`).
    pub attributes: Attributes,
}

/// A page of resources (`ResourceCollection` / `SeekBasedResourceCollection`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Collection<T> {
    /// Number of items in this page.
    pub total_count: u64,
    /// The items.
    pub items: Vec<T>,
    /// Continuation token for the next page (also in `links.next`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuation_token: Option<String>,
    /// Links (`self`, and `next` when there are more items).
    pub links: Links,
    /// Metadata (`objectType: Collection`).
    pub attributes: Attributes,
}

/// A partner's GCC validation code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ValidationCode {
    /// The partner's tenant id.
    pub partner_id: Uuid,
    /// The organisation name given during validation.
    pub organization_name: String,
    /// The code itself: send it as `validationCode` (or `?code=`) with a GCC qualification.
    pub validation_id: String,
    /// How many customers the code may qualify.
    pub max_creates: i64,
    /// How many it may still qualify.
    pub remaining_creates: i64,
    /// Version tag; changes whenever the code is used.
    #[serde(rename = "eTag")]
    pub etag: String,
}

/// A key-value pair (`customizedData` of audit records).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
}

/// A record of an operation (`AuditRecord`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// Record id.
    pub id: String,
    /// The partner.
    pub partner_id: Uuid,
    /// The customer acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<Uuid>,
    /// The customer's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    /// The acting user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_principal_name: Option<String>,
    /// The acting application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_id: Option<String>,
    /// The type of resource acted on (`customer`).
    pub resource_type: String,
    /// The resource before, as JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_old_value: Option<String>,
    /// The resource after, as JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_new_value: Option<String>,
    /// `add_customer`, `update_customer_qualification`, …
    pub operation_type: String,
    /// When (RFC 3339, UTC).
    pub operation_date: String,
    /// `succeeded`, `failed` or `progress`.
    pub operation_status: String,
    /// Further details.
    pub customized_data: Vec<KeyValue>,
    /// Metadata (`objectType: AuditRecord`).
    pub attributes: Attributes,
}

/// A webhook registration, with Partner Center's PascalCase keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
pub struct WebhookRegistration {
    /// The registration's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber_id: Option<Uuid>,
    /// Where events are posted.
    pub webhook_url: String,
    /// The events received.
    pub webhook_events: Vec<String>,
}

/// One delivery attempt of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DeliveryResult {
    /// The receiver's answer as an HTTP status name (`OK`, `InternalServerError`); empty when
    /// it did not answer.
    pub response_code: String,
    /// The receiver's answer body (shortened), or why there was no answer.
    pub response_message: String,
    /// Whether the attempt failed before an answer.
    pub system_error: bool,
    /// When (UTC, .NET round-trip form without offset).
    pub date_time_utc: String,
}

/// The state of a validation (test) event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ValidationEventStatus {
    /// The correlation id the event was requested with.
    pub correlation_id: String,
    /// The partner.
    pub partner_id: Uuid,
    /// `completed`, `pending` or `failed`.
    pub status: String,
    /// Where the event was posted.
    pub callback_url: String,
    /// Every attempt so far.
    pub results: Vec<DeliveryResult>,
}
