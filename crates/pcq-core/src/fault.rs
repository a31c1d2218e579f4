//! The Partner Center error envelope (`ApiFault`) and the faults pcq raises.
//!
//! Every failure a client can cause is one of the constructors below, so the status, the numeric
//! code and the `errorName` of each situation are decided in exactly one place. Numeric codes come
//! from the Partner Center error-code table where one fits; the `9504xx` codes are pcq's own for
//! HTTP-level failures that Partner Center documents no code for.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Numeric error codes used in the envelope's `code` field.
pub mod codes {
    /// 401: the token was rejected ("Access denied").
    pub const ACCESS_DENIED: u32 = 400;
    /// 404: the route does not exist.
    pub const NOT_FOUND: u32 = 1000;
    /// 403: the partner has no relationship with the customer.
    pub const NO_RELATIONSHIP: u32 = 20002;
    /// 404: the customer tenant does not exist.
    pub const TENANT_NOT_FOUND: u32 = 60003;
    /// 401: no bearer token in the request.
    pub const TOKEN_MISSING: u32 = 800001;
    /// 400: the request input is invalid.
    pub const INVALID_INPUT: u32 = 800002;
    /// 500: unexpected service error.
    pub const UNEXPECTED: u32 = 800003;
    /// 400: the customer id is not a GUID.
    pub const INVALID_CUSTOMER_ID: u32 = 900118;
    /// 400: an enum value could not be parsed or is not allowed.
    pub const INVALID_ENUM: u32 = 900126;
    /// 403: the credentials do not carry the rights for this operation.
    pub const ROLE_NOT_PERMITTED: u32 = 900150;
    /// 401: the token's audience is not the configured one.
    pub const INVALID_AUDIENCE: u32 = 900420;
    /// 405: the route exists but not for this method (pcq).
    pub const METHOD_NOT_ALLOWED: u32 = 950405;
    /// 408: the request took too long to arrive or to answer (pcq).
    pub const REQUEST_TIMEOUT: u32 = 950408;
    /// 409: the request conflicts with the stored state (pcq).
    pub const CONFLICT: u32 = 950409;
    /// 413: the request body is larger than the configured limit (pcq).
    pub const PAYLOAD_TOO_LARGE: u32 = 950413;
    /// 415: the request body is not JSON (pcq).
    pub const UNSUPPORTED_MEDIA_TYPE: u32 = 950415;
    /// 429: the partner sent more requests than its limit (pcq).
    pub const TOO_MANY_REQUESTS: u32 = 950429;
    /// 431: the request headers are larger than the configured limit (pcq).
    pub const HEADERS_TOO_LARGE: u32 = 950431;
}

/// A failure answered to the client in the Partner Center error envelope.
///
/// Serialises as the envelope `{"code", "description", "message", "errorName", "isRetryable",
/// "parameters", "data", "source"}` (see [`Envelope`]); the HTTP status travels beside the body,
/// not in it, and is 0 after deserialising until the receiver sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFault {
    /// HTTP status of the response that carries this fault.
    pub status: u16,
    /// Numeric error code (see [`codes`]).
    pub code: u32,
    /// A stable, machine-readable name for the situation.
    pub error_name: Cow<'static, str>,
    /// What went wrong and, where possible, what to do about it.
    pub description: String,
    /// Whether repeating the same request may succeed.
    pub is_retryable: bool,
    /// Values the description refers to: strings, or numbers where the value is a quantity.
    pub parameters: BTreeMap<String, serde_json::Value>,
}

// The schema of the values in `Envelope::parameters` (which holds `serde_json::Value`s), for the
// OpenAPI document only.
/// A string, or a whole number where the value is a quantity (`retryAfterSeconds`).
#[cfg(feature = "openapi")]
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum ParameterValue {
    Text(String),
    Number(u64),
}

/// The wire form of an [`ApiFault`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = ApiFault))]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Numeric error code.
    pub code: u32,
    /// What went wrong and what to do about it.
    pub description: String,
    /// The same text as `description` (newer Partner Center services send both).
    #[serde(default)]
    pub message: String,
    /// A stable, machine-readable name for the situation.
    #[serde(default)]
    pub error_name: String,
    /// Whether repeating the same request may succeed.
    #[serde(default)]
    pub is_retryable: bool,
    /// Values the description refers to: strings, or numbers where the value is a quantity
    /// (`retryAfterSeconds`).
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = BTreeMap<String, ParameterValue>, inline)
    )]
    pub parameters: BTreeMap<String, serde_json::Value>,
    /// Always empty; present because Partner Center clients expect the key.
    #[serde(default)]
    pub data: Vec<serde_json::Value>,
    /// The service that raised the fault (`pcq`).
    #[serde(default)]
    pub source: String,
}

impl Envelope {
    /// The keys every envelope carries, whatever the fault: clients read them unconditionally.
    pub const KEYS: [&'static str; 8] = [
        "code",
        "description",
        "message",
        "errorName",
        "isRetryable",
        "parameters",
        "data",
        "source",
    ];
}

impl Serialize for ApiFault {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Envelope {
            code: self.code,
            description: self.description.clone(),
            message: self.description.clone(),
            error_name: self.error_name.to_string(),
            is_retryable: self.is_retryable,
            parameters: self.parameters.clone(),
            data: Vec::new(),
            source: "pcq".to_owned(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ApiFault {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let envelope = Envelope::deserialize(deserializer)?;
        Ok(ApiFault {
            status: 0,
            code: envelope.code,
            error_name: Cow::Owned(envelope.error_name),
            description: envelope.description,
            is_retryable: envelope.is_retryable,
            parameters: envelope.parameters,
        })
    }
}

impl ApiFault {
    /// A fault with the given status, code, name and description.
    pub fn new(
        status: u16,
        code: u32,
        error_name: &'static str,
        description: impl Into<String>,
    ) -> Self {
        ApiFault {
            status,
            code,
            description: description.into(),
            error_name: Cow::Borrowed(error_name),
            is_retryable: false,
            parameters: BTreeMap::new(),
        }
    }

    /// Adds a named parameter that the description refers to.
    #[must_use]
    pub fn with_param(mut self, key: &str, value: impl Into<String>) -> Self {
        self.parameters
            .insert(key.to_owned(), serde_json::Value::String(value.into()));
        self
    }

    /// Adds a numeric parameter (a JSON number on the wire), such as `retryAfterSeconds`.
    #[must_use]
    pub fn with_number_param(mut self, key: &str, value: u64) -> Self {
        self.parameters.insert(key.to_owned(), value.into());
        self
    }

    /// Marks the fault as retryable.
    #[must_use]
    pub fn retryable(mut self) -> Self {
        self.is_retryable = true;
        self
    }

    // ---- 400 -----------------------------------------------------------------------------

    /// The request body or a parameter is malformed or incomplete.
    pub fn invalid_input(description: impl Into<String>) -> Self {
        Self::new(
            400,
            codes::INVALID_INPUT,
            "InvalidRequestInput",
            description,
        )
    }

    /// A required body property is missing: "The property '{field}' is required" and `then`
    /// (an example or the allowed values, with its punctuation), naming the field.
    pub fn property_required(field: &str, then: &str) -> Self {
        Self::invalid_input(format!("The property '{field}' is required{then}"))
            .with_param("field", field)
    }

    /// The customer id in the path is not a GUID.
    pub fn invalid_customer_id(raw: &str) -> Self {
        Self::new(
            400,
            codes::INVALID_CUSTOMER_ID,
            "InvalidCustomerId",
            format!(
                "Invalid Customer Id: '{}' is not a GUID. Use the customer's tenant id, for example \
                 0c39a7b4-2b49-4b0e-9b6c-7b5e0d3f8a11 (braces are allowed).",
                truncate(raw, 80)
            ),
        )
        .with_param("customerId", truncate(raw, 80))
    }

    /// A value could not be parsed as one of an enum's members.
    pub fn invalid_enum(field: &str, raw: &str, allowed: &str) -> Self {
        Self::new(
            400,
            codes::INVALID_ENUM,
            "InvalidEnumValue",
            format!(
                "Unable to parse enum: '{}' is not a valid value for {field}. Allowed values: {allowed}.",
                truncate(raw, 80)
            ),
        )
        .with_param("field", field)
        .with_param("value", truncate(raw, 80))
    }

    /// A qualification that exists but cannot be set through the API (None, Nonprofit).
    pub fn unsettable_qualification(name: &str) -> Self {
        Self::new(
            400,
            codes::INVALID_ENUM,
            "QualificationNotSettable",
            format!(
                "Unable to parse enum: the qualification '{name}' cannot be set through the API. \
                 Settable values: Education, GovernmentCommunityCloud, StateOwnedEntity."
            ),
        )
        .with_param("field", "qualification")
        .with_param("value", name)
    }

    /// Education under the 2023 contract needs `educationSegment`.
    pub fn education_segment_required() -> Self {
        Self::new(
            400,
            codes::INVALID_INPUT,
            "EducationSegmentRequired",
            "An Education qualification requires educationSegment (K12 or HigherEducation), \
             for example {\"qualification\": \"Education\", \"educationSegment\": \"HigherEducation\"}.",
        )
        .with_param("field", "educationSegment")
    }

    /// GCC without any validation code.
    pub fn validation_code_required() -> Self {
        Self::new(
            400,
            codes::INVALID_INPUT,
            "ValidationCodeRequired",
            "A GovernmentCommunityCloud qualification requires the partner's validation code, in the \
             body as \"validationCode\" or in the query as ?code=. List your codes with \
             GET /v1/customers/all/validations.",
        )
        .with_param("field", "validationCode")
    }

    /// GCC with a code that is unknown to the calling partner.
    pub fn validation_code_not_found(code: &str) -> Self {
        Self::new(
            400,
            codes::INVALID_INPUT,
            "ValidationCodeNotFound",
            format!(
                "The validation code '{}' is not one of this partner's validation codes. List your \
                 codes with GET /v1/customers/all/validations.",
                truncate(code, 80)
            ),
        )
        .with_param("validationCode", truncate(code, 80))
    }

    /// GCC with a code whose `remainingCreates` is 0.
    pub fn validation_code_exhausted(code: &str, max_creates: i64) -> Self {
        Self::new(
            400,
            codes::INVALID_INPUT,
            "ValidationCodeExhausted",
            format!(
                "The validation code '{code}' has no remaining creates (all {max_creates} have been \
                 used). Use another validation code."
            ),
        )
        .with_param("validationCode", code)
    }

    /// The body's `validationCode` and the `?code=` query parameter name different codes.
    pub fn validation_code_mismatch(body: &str, query: &str) -> Self {
        Self::new(
            400,
            codes::INVALID_INPUT,
            "ValidationCodeMismatch",
            format!(
                "The body's validationCode '{}' and the query's code '{}' differ; send one of them.",
                truncate(body, 80),
                truncate(query, 80)
            ),
        )
    }

    // ---- 401 / 403 -----------------------------------------------------------------------

    /// No bearer token.
    pub fn token_missing() -> Self {
        Self::new(
            401,
            codes::TOKEN_MISSING,
            "TokenMissing",
            "Partner Token missing in request context: send an Authorization: Bearer <token> header.",
        )
    }

    /// The `Authorization` header is not a bearer token.
    pub fn invalid_authorization_header(reason: &str) -> Self {
        Self::new(
            401,
            codes::ACCESS_DENIED,
            "InvalidAuthorizationHeader",
            format!("Access denied: {reason}"),
        )
    }

    /// The token could not be accepted (signature, expiry, format, issuer, claims).
    pub fn access_denied(reason: impl Into<String>) -> Self {
        Self::new(
            401,
            codes::ACCESS_DENIED,
            "AccessDenied",
            format!("Access denied: {}", reason.into()),
        )
    }

    /// The token was issued for another audience.
    pub fn invalid_audience(audience: &str, expected: &str) -> Self {
        Self::new(
            401,
            codes::INVALID_AUDIENCE,
            "InvalidTokenAudience",
            format!(
                "Invalid Token: the audience '{}' in the token is not accepted; request a token for \
                 '{expected}'.",
                truncate(audience, 120)
            ),
        )
        .with_param("audience", truncate(audience, 120))
    }

    /// An App-only token on an App+User-only route.
    pub fn app_only_not_allowed() -> Self {
        Self::new(
            403,
            codes::ROLE_NOT_PERMITTED,
            "ApplicationCredentialsNotAllowed",
            "This resource can't be accessed by application credentials.",
        )
    }

    /// The token lacks a role the route requires.
    pub fn role_required(role: &str) -> Self {
        Self::new(
            403,
            codes::ROLE_NOT_PERMITTED,
            "RoleNotPermitted",
            format!(
                "The supplied role does not have the rights to perform the requested operation: \
                 this route requires the role '{role}'."
            ),
        )
        .with_param("role", role)
    }

    /// A GovernmentCommunityCloud request from a token without a GDAP directory role.
    pub fn gdap_role_required() -> Self {
        Self::new(
            403,
            codes::ROLE_NOT_PERMITTED,
            "GdapRoleRequired",
            "The supplied role does not have the rights to perform the requested operation: \
             GovernmentCommunityCloud qualifications need one of the GDAP roles Directory \
             Readers, Directory Writers, License Administrator or User Administrator in the \
             token (its wids or roles claim).",
        )
    }

    /// The customer exists but belongs to another partner.
    pub fn no_relationship(partner: &str, customer: &str) -> Self {
        Self::new(
            403,
            codes::NO_RELATIONSHIP,
            "NoRelationship",
            format!(
                "The partner id {partner} has no commerce relationship with the customer id {customer}."
            ),
        )
        .with_param("partnerId", partner)
        .with_param("customerId", customer)
    }

    // ---- 404 / 405 -----------------------------------------------------------------------

    /// The customer tenant does not exist.
    pub fn customer_not_found(customer: &str) -> Self {
        Self::new(
            404,
            codes::TENANT_NOT_FOUND,
            "TenantNotFound",
            format!("Tenant not found: no customer with id {customer} exists."),
        )
        .with_param("customerId", customer)
    }

    /// No route matches the path.
    pub fn route_not_found(method: &str, path: &str) -> Self {
        Self::new(
            404,
            codes::NOT_FOUND,
            "NotFound",
            format!(
                "Not found: {method} {} is not a pcq route. See /_pcq/openapi.json for the routes pcq serves.",
                truncate(path, 200)
            ),
        )
    }

    /// The route exists but not for this method.
    pub fn method_not_allowed(method: &str, path: &str, allowed: &str) -> Self {
        Self::new(
            405,
            codes::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!(
                "The method {method} is not allowed on {}; allowed: {allowed}.",
                truncate(path, 200)
            ),
        )
        .with_param("allow", allowed)
    }

    // ---- 409 -----------------------------------------------------------------------------

    /// The customer already holds this qualification.
    pub fn qualification_exists(name: &str, status: Option<&str>) -> Self {
        let state = status.map(|s| format!(" ({s})")).unwrap_or_default();
        Self::new(
            409,
            codes::CONFLICT,
            "QualificationAlreadyExists",
            format!(
                "The customer already has the {name} qualification{state}; read it with \
                 GET /v1/customers/{{customer-tenant-id}}/qualifications."
            ),
        )
        .with_param("qualification", name)
    }

    /// Education and GovernmentCommunityCloud exclude each other.
    pub fn qualification_conflict(requested: &str, existing: &str) -> Self {
        Self::new(
            409,
            codes::CONFLICT,
            "QualificationConflict",
            format!(
                "The customer has the {existing} qualification, which cannot be combined with \
                 {requested}: Education and GovernmentCommunityCloud exclude each other."
            ),
        )
        .with_param("qualification", requested)
        .with_param("existing", existing)
    }

    /// Another customer of this partner already uses the domain.
    pub fn domain_taken(domain: &str) -> Self {
        Self::new(
            409,
            codes::CONFLICT,
            "DomainAlreadyExists",
            format!("A customer with the domain '{domain}' already exists; choose another domain."),
        )
        .with_param("domain", domain)
    }

    /// The MS-RequestId was used before for a different request.
    pub fn request_id_reused(request_id: &str) -> Self {
        Self::new(
            409,
            codes::CONFLICT,
            "RequestIdReused",
            format!(
                "The MS-RequestId '{}' was already used for a different request on this route; \
                 send a new MS-RequestId for a new request.",
                truncate(request_id, 120)
            ),
        )
        .with_param("requestId", truncate(request_id, 120))
    }

    /// A validation id chosen for a new code is taken.
    pub fn validation_code_exists(validation_id: &str) -> Self {
        Self::new(
            409,
            codes::CONFLICT,
            "ValidationCodeExists",
            format!(
                "The validation id '{validation_id}' is already issued; omit validationId to get a new one."
            ),
        )
        .with_param("validationId", validation_id)
    }

    /// A continuation token pcq did not issue.
    pub fn invalid_continuation_token() -> Self {
        Self::new(
            400,
            codes::INVALID_INPUT,
            "InvalidContinuationToken",
            "The MS-ContinuationToken is not one pcq issued; list again from the first page \
             without it.",
        )
    }

    /// The customer has no such qualification.
    pub fn qualification_not_found(customer: &str, qualification: &str) -> Self {
        Self::new(
            404,
            codes::NOT_FOUND,
            "QualificationNotFound",
            format!("The customer {customer} has no {qualification} qualification."),
        )
        .with_param("customerId", customer)
        .with_param("qualification", qualification)
    }

    /// A decision for a qualification that is not waiting for one.
    pub fn not_in_review(qualification: &str, status: &str) -> Self {
        Self::new(
            409,
            codes::CONFLICT,
            "NotInReview",
            format!(
                "The {qualification} qualification is {status}, not InReview: only a qualification \
                 in review can be decided."
            ),
        )
        .with_param("qualification", qualification)
        .with_param("vettingStatus", status)
    }

    /// A decision for a vetting round that is over.
    pub fn round_changed(qualification: &str, expected: i64, current: i64) -> Self {
        Self::new(
            409,
            codes::CONFLICT,
            "VettingRoundChanged",
            format!(
                "The decision is for round {expected} of the {qualification} qualification, which is \
                 now in round {current}; look at the queue again."
            ),
        )
        .with_param("round", current.to_string())
    }

    /// A denial without a documented reason, or a reason that is not documented.
    pub fn undocumented_reason(given: Option<&str>) -> Self {
        let allowed = crate::enums::VETTING_REASONS.join("; ");
        let description = match given {
            None => format!("A Denied decision needs a reason, one of: {allowed}."),
            Some(r) => format!(
                "The reason '{}' is not a documented vetting reason; use one of: {allowed}.",
                truncate(r, 80)
            ),
        };
        Self::new(
            400,
            codes::INVALID_INPUT,
            "UndocumentedVettingReason",
            description,
        )
        .with_param("field", "reason")
    }

    /// A webhook registration is required first.
    pub fn webhook_registration_not_found() -> Self {
        Self::new(
            404,
            codes::NOT_FOUND,
            "WebhookRegistrationNotFound",
            "This partner has no webhook registration; create one with POST /webhooks/v1/registration.",
        )
    }

    /// No audit record with that id.
    pub fn audit_record_not_found(id: &str) -> Self {
        Self::new(
            404,
            codes::NOT_FOUND,
            "AuditRecordNotFound",
            format!(
                "No audit record of this partner has the id '{}'.",
                truncate(id, 200)
            ),
        )
    }

    /// No validation event with that correlation id.
    pub fn validation_event_not_found(correlation_id: &str) -> Self {
        Self::new(
            404,
            codes::NOT_FOUND,
            "ValidationEventNotFound",
            format!(
                "No validation event of this partner has the correlation id '{}'; send one with \
                 POST /webhooks/v1/registration/validationEvents.",
                truncate(correlation_id, 200)
            ),
        )
    }

    /// A validation event for a registration that does not receive `test-created`.
    pub fn not_registered_for_test_events() -> Self {
        Self::new(
            400,
            codes::INVALID_INPUT,
            "NotRegisteredForTestEvents",
            "Register for the test-created event (PUT /webhooks/v1/registration) before sending a \
             validation event.",
        )
    }

    /// A webhook URL this pcq does not deliver to.
    pub fn webhook_target_refused(why: &str) -> Self {
        Self::new(
            400,
            codes::INVALID_INPUT,
            "WebhookTargetNotAllowed",
            format!(
                "The WebhookUrl is not allowed: {why}. This pcq delivers events to public \
                 addresses only (webhooks.allow_private_targets)."
            ),
        )
        .with_param("field", "WebhookUrl")
    }

    /// A second registration where one exists.
    pub fn webhook_registration_exists() -> Self {
        Self::new(
            409,
            codes::CONFLICT,
            "WebhookRegistrationExists",
            "This partner already has a webhook registration; change it with PUT \
             /webhooks/v1/registration or remove it with DELETE.",
        )
    }

    // ---- 408 / 413 / 415 / 429 / 431 / 500 / 503 -------------------------------------------

    /// The request body exceeds the configured limit.
    pub fn payload_too_large(limit_bytes: usize) -> Self {
        Self::new(
            413,
            codes::PAYLOAD_TOO_LARGE,
            "PayloadTooLarge",
            format!("The request body is larger than the limit of {limit_bytes} bytes."),
        )
    }

    /// The request body is not JSON.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            codes::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!(
                "The Content-Type '{}' is not supported; send the body as application/json.",
                truncate(content_type, 120)
            ),
        )
    }

    /// The request took too long. A write may still complete after the answer.
    pub fn request_timeout(limit: std::time::Duration) -> Self {
        let limit_seconds = limit.as_secs_f64();
        Self::new(
            408,
            codes::REQUEST_TIMEOUT,
            "RequestTimeout",
            format!(
                "The request took longer than {limit_seconds} seconds. A write may still have been \
                 carried out: retry with the same MS-RequestId to get its outcome (a write sent \
                 without an MS-RequestId may be carried out twice)."
            ),
        )
        .retryable()
    }

    /// The HTTP/1 server could not read the request at all and answered `status` (400, 414,
    /// 431, 505, …) on its own; the connection is closed after the answer.
    pub fn unreadable_request(status: u16, head_limit_bytes: usize) -> Self {
        let (code, name, description) = match status {
            431 => (
                codes::HEADERS_TOO_LARGE,
                "RequestHeaderFieldsTooLarge",
                format!(
                    "The request line and headers are larger than {head_limit_bytes} bytes or \
                     have more than 100 header fields, so the request was not read; send fewer \
                     or shorter headers."
                ),
            ),
            414 => (
                codes::INVALID_INPUT,
                "UriTooLong",
                "The request's URI is too long to be read; shorten the path and query.".to_owned(),
            ),
            505 => (
                codes::INVALID_INPUT,
                "HttpVersionNotSupported",
                "The request names an HTTP version pcq does not speak; use HTTP/1.1 or HTTP/2."
                    .to_owned(),
            ),
            _ => (
                codes::INVALID_INPUT,
                "MalformedRequest",
                "The request could not be read: its request line or headers break HTTP/1.1 \
                 (for example a header line folded onto the next, a bare CR or a NUL in a \
                 header, two Content-Length headers, or a Transfer-Encoding other than \
                 chunked). Send a well-formed request."
                    .to_owned(),
            ),
        };
        Self::new(status, code, name, description)
    }

    /// The request line and headers together exceed the configured limit.
    pub fn headers_too_large(size_bytes: usize, limit_bytes: usize) -> Self {
        Self::new(
            431,
            codes::HEADERS_TOO_LARGE,
            "RequestHeaderFieldsTooLarge",
            format!(
                "The request line and headers take {size_bytes} bytes, more than the limit of \
                 {limit_bytes} bytes; send fewer or shorter headers (a bearer token from Entra ID \
                 takes a few kilobytes)."
            ),
        )
        .with_param("limitBytes", limit_bytes.to_string())
    }

    /// The JSON body nests objects and arrays deeper than the configured limit.
    pub fn json_too_deep(limit: usize) -> Self {
        Self::new(
            400,
            codes::INVALID_INPUT,
            "JsonNestingTooDeep",
            format!(
                "The request body nests objects and arrays more than {limit} levels deep, the \
                 limit of this service; Partner Center request bodies need only a few levels."
            ),
        )
        .with_param("maxDepth", limit.to_string())
    }

    /// The partner used up a throttling limit. `limit` says which (for example "500 requests \
    /// per minute for customer resources"); the answer carries `Retry-After: retry_after_seconds`.
    pub fn too_many_requests(
        partner: &str,
        family: &str,
        limit: &str,
        retry_after_seconds: u64,
    ) -> Self {
        let retry_after_seconds = retry_after_seconds.max(1);
        Self::new(
            429,
            codes::TOO_MANY_REQUESTS,
            "TooManyRequests",
            format!(
                "Rate limit is exceeded: partner tenant {partner} has used its limit of {limit}. \
                 Try again in {retry_after_seconds} seconds (Retry-After), then back off \
                 exponentially if 429 persists."
            ),
        )
        .with_param("routeFamily", family)
        .with_number_param("retryAfterSeconds", retry_after_seconds)
        .retryable()
    }

    /// The Partner Center code and `errorName` pcq answers a bare `status` with (the codes of
    /// the table in docs/errors.md: `InvalidRequest` for a 4xx it has no code of its own for).
    pub fn status_code_and_name(status: u16) -> (u32, &'static str) {
        match status {
            401 | 403 => (codes::ACCESS_DENIED, "AccessDenied"),
            404 => (codes::NOT_FOUND, "NotFound"),
            405 => (codes::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            408 => (codes::REQUEST_TIMEOUT, "RequestTimeout"),
            409 => (codes::CONFLICT, "Conflict"),
            413 => (codes::PAYLOAD_TOO_LARGE, "PayloadTooLarge"),
            415 => (codes::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType"),
            429 => (codes::TOO_MANY_REQUESTS, "TooManyRequests"),
            431 => (codes::HEADERS_TOO_LARGE, "RequestHeaderFieldsTooLarge"),
            503 => (codes::UNEXPECTED, "ServiceUnavailable"),
            500..=599 => (codes::UNEXPECTED, "UnexpectedServiceError"),
            _ => (codes::INVALID_INPUT, "InvalidRequest"),
        }
    }

    /// A fault injected on purpose (sandbox control `/_pcq/admin/faults`): `status` with its
    /// Partner Center code, naming the fault; retryable as the status is (408, 429, 5xx). A 429
    /// carries `retryAfterSeconds` (1 when none is given), as throttling does. `carried_out`:
    /// the fault fired after the request took effect.
    pub fn injected(
        status: u16,
        fault_id: &str,
        retry_after_seconds: Option<u64>,
        carried_out: bool,
    ) -> Self {
        let (code, name) = Self::status_code_and_name(status);
        let what = if carried_out {
            "was carried out, and this answer replaces its own (a retry with the same \
             MS-RequestId gets the stored answer)"
        } else {
            "was not carried out"
        };
        let mut fault = Self::new(
            status,
            code,
            name,
            format!(
                "pcq answered {status} on purpose: the injected fault {fault_id} matched this \
                 request, which {what}. Remove the fault with DELETE \
                 /_pcq/admin/faults/{fault_id}."
            ),
        )
        .with_param("faultId", fault_id);
        let retry_after = match (status, retry_after_seconds) {
            (429, None) => Some(1),
            (_, given) => given.map(|s| s.max(1)),
        };
        if let Some(seconds) = retry_after {
            fault = fault.with_number_param("retryAfterSeconds", seconds);
        }
        if matches!(status, 408 | 429 | 500..=599) {
            fault = fault.retryable();
        }
        fault
    }

    /// Something failed inside pcq; the client did nothing wrong.
    pub fn unexpected() -> Self {
        Self::new(
            500,
            codes::UNEXPECTED,
            "UnexpectedServiceError",
            "Unexpected service error; retry the request (with the same MS-RequestId, if you sent \
             one). If it persists, the pcq log has the details under this request's \
             MS-CorrelationId.",
        )
        .retryable()
    }

    /// The node cannot serve this right now; `why` says what is missing.
    pub fn service_unavailable(why: &str) -> Self {
        Self::new(
            503,
            codes::UNEXPECTED,
            "ServiceUnavailable",
            format!("The service is not available: {why}; retry later."),
        )
        .retryable()
    }
}

impl std::fmt::Display for ApiFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} ({}): {}",
            self.status, self.code, self.error_name, self.description
        )
    }
}

impl std::error::Error for ApiFault {}

/// Shortens client-supplied text before it is echoed in a description.
pub(crate) fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max_chars).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_every_key_with_numeric_code() {
        let fault = ApiFault::no_relationship("p", "c");
        let json = serde_json::to_value(&fault).unwrap();
        let obj = json.as_object().unwrap();
        for key in Envelope::KEYS {
            assert!(obj.contains_key(key), "missing {key}");
        }
        assert_eq!(obj.len(), Envelope::KEYS.len(), "{json}");
        assert_eq!(json["code"], 20002);
        assert_eq!(json["source"], "pcq");
        assert_eq!(json["data"], serde_json::json!([]));
        assert!(!obj.contains_key("status"));
        let back: ApiFault = serde_json::from_value(json).unwrap();
        assert_eq!(back.description, fault.description);
        assert_eq!(back.error_name, "NoRelationship");
    }

    #[test]
    fn long_client_text_is_truncated() {
        let long = "x".repeat(500);
        let fault = ApiFault::invalid_customer_id(&long);
        assert!(fault.description.len() < 400);
    }

    #[test]
    fn injected_faults_take_their_status_code() {
        let throttled = ApiFault::injected(429, "f", None, false);
        assert_eq!(
            (throttled.status, throttled.code),
            (429, codes::TOO_MANY_REQUESTS)
        );
        assert_eq!(
            throttled.parameters["retryAfterSeconds"],
            serde_json::json!(1)
        );
        assert!(throttled.is_retryable);
        let unavailable = ApiFault::injected(503, "f", Some(9), true);
        assert_eq!(unavailable.error_name, "ServiceUnavailable");
        assert_eq!(
            unavailable.parameters["retryAfterSeconds"],
            serde_json::json!(9)
        );
        assert_eq!(unavailable.parameters["faultId"], "f");
        assert!(unavailable.description.contains("was carried out"));
        let teapot = ApiFault::injected(418, "f", None, false);
        assert_eq!(
            (teapot.code, teapot.is_retryable),
            (codes::INVALID_INPUT, false)
        );
        assert!(!teapot.parameters.contains_key("retryAfterSeconds"));
        assert_eq!(
            ApiFault::injected(404, "f", None, false).code,
            codes::NOT_FOUND
        );
    }
}
