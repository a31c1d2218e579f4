//! The OpenAPI document, generated from the handlers.
//!
//! Request bodies are described here by schema-only types: pcq parses bodies tolerantly (any
//! key case, explicit nulls, bare enum values), so the documented shape is the canonical one,
//! not the only one accepted. Error responses, the bearer scheme and the Partner Center request
//! headers are added to every operation in one place ([`CommonParts`]).

use pcq_core::EducationSegment;
use pcq_core::fault::Envelope;
use serde::{Deserialize, Serialize};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, Required};
use utoipa::{Modify, OpenApi, ToSchema};

/// The qualifications a partner can request.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub enum SettableQualification {
    /// Education; vetted asynchronously.
    Education,
    /// Government Community Cloud; needs a validation code.
    GovernmentCommunityCloud,
    /// State Owned Entity; may stack with Education or GCC.
    StateOwnedEntity,
}

/// The qualifications that go through vetting (and so through review).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub enum VettedQualification {
    /// Education.
    Education,
    /// Government Community Cloud (vetted when the policy's `gcc_review` is on).
    GovernmentCommunityCloud,
}

/// Body of `POST /v1/customers/{id}/qualifications`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QualificationRequestBody {
    /// Education, GovernmentCommunityCloud or StateOwnedEntity (None and Nonprofit cannot be set).
    pub qualification: SettableQualification,
    /// K12 or HigherEducation; required for Education under the 2023 contract.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub education_segment: Option<EducationSegment>,
    /// Website of the education entity (Education only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 2048)]
    pub website: Option<String>,
    /// The partner's validation code (GovernmentCommunityCloud only, and required for it, here
    /// or as `?code=`); one of the partner's codes with creates left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 64)]
    pub validation_code: Option<String>,
}

/// Body of the legacy `PUT /v1/customers/{id}/qualification`: the enum as a string (any case
/// is accepted) or as its integer (1 Education, 3 GovernmentCommunityCloud, 4 StateOwnedEntity).
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LegacyQualificationBody {
    /// The enum name.
    Name(SettableQualification),
    /// The enum's integer value.
    Value(i64),
}

impl utoipa::PartialSchema for LegacyQualificationBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(Ref::from_schema_name("SettableQualification"))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .enum_values(Some([1, 3, 4]))
                    .description(Some(
                        "1 Education, 3 GovernmentCommunityCloud, 4 StateOwnedEntity",
                    )),
            )
            .description(Some(
                "The qualification to set, by name (any case) or by its integer value.",
            ))
            .into()
    }
}

impl ToSchema for LegacyQualificationBody {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((
            "SettableQualification".to_owned(),
            <SettableQualification as utoipa::PartialSchema>::schema(),
        ));
    }
}

/// Company profile of a new customer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompanyProfileBody {
    /// The customer's domain, e.g. `contoso.onmicrosoft.com`: at least two labels of letters,
    /// digits and inner hyphens.
    #[schema(
        max_length = 253,
        pattern = r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
    )]
    pub domain: String,
    /// The company name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
}

/// Body of `POST /v1/customers`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerCreateBody {
    /// Company profile; `domain` is required.
    pub company_profile: CompanyProfileBody,
    /// Billing profile (email, culture, language, companyName, defaultAddress, …), kept as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub billing_profile: Option<serde_json::Value>,
}

/// Body of `POST /_pcq/admin/partners/{id}/validation-codes`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidationCodeIssueBody {
    /// The organisation the code was validated for.
    #[schema(max_length = 256, pattern = r"\S")]
    pub organization_name: String,
    /// How many customers the code may qualify (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub max_creates: Option<i64>,
    /// A chosen code (digits); generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[0-9]{1,18}$")]
    pub validation_id: Option<String>,
}

/// The documented reasons of a vetting denial.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub enum VettingReason {
    /// Not an Education Customer.
    #[serde(rename = "Not an Education Customer")]
    NotAnEducationCustomer,
    /// No longer an Education Customer.
    #[serde(rename = "No longer an Education Customer")]
    NoLongerAnEducationCustomer,
    /// Not an Education Customer - After Review.
    #[serde(rename = "Not an Education Customer - After Review")]
    NotAnEducationCustomerAfterReview,
    /// Restricted being an Education Customer.
    #[serde(rename = "Restricted being an Education Customer")]
    RestrictedBeingAnEducationCustomer,
    /// Not an Academic Domain.
    #[serde(rename = "Not an Academic Domain")]
    NotAnAcademicDomain,
    /// Not an eligible Library.
    #[serde(rename = "Not an eligible Library")]
    NotAnEligibleLibrary,
    /// Not an eligible Museum.
    #[serde(rename = "Not an eligible Museum")]
    NotAnEligibleMuseum,
}

/// A vetting policy mode.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PolicyMode {
    /// A reviewer decides.
    Manual,
    /// Decided at once.
    Immediate,
    /// Decided `after` a delay.
    After,
    /// Decided on the `after_reads`-th read.
    AfterReads,
    /// Decided at once by the academic suffixes.
    DomainRules,
}

/// A vetting policy outcome.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PolicyOutcome {
    /// Approve.
    Approve,
    /// Deny with `deny_reason`.
    Deny,
    /// Decide by the academic suffixes.
    DomainRules,
}

/// Body of `PUT /_pcq/admin/vetting-policy`: the settings to change (keys in any case).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyChangesBody {
    /// How decisions are made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyMode>,
    /// The delay of `after`, e.g. `72h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^([0-9]{1,3}(d|h|m|s|ms)){1,3}$")]
    pub after: Option<String>,
    /// The reads of `after_reads` (at least 1 with that policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub after_reads: Option<u32>,
    /// What the decision is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<PolicyOutcome>,
    /// The reason of the `deny` outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_reason: Option<VettingReason>,
    /// Suffixes the domain rules treat as academic, e.g. `.edu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 1000, inline)]
    pub academic_suffixes: Option<Vec<AcademicSuffix>>,
    /// Whether GCC requests are vetted too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcc_review: Option<bool>,
}

/// A domain suffix, e.g. `.edu` or `ac.uk`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(value_type = String, max_length = 253, pattern = r"\S")]
pub struct AcademicSuffix(pub String);

/// Body of `POST` and `PUT /webhooks/v1/registration`, with Partner Center's PascalCase keys.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct WebhookRegistrationBody {
    /// Where events are posted: an absolute http or https URL.
    #[schema(
        max_length = 2048,
        pattern = r"^https?://[A-Za-z0-9.-]+(/[A-Za-z0-9._~/-]*)?$"
    )]
    pub webhook_url: String,
    /// The events to receive.
    #[schema(min_items = 1, inline)]
    pub webhook_events: Vec<WebhookEventName>,
}

/// An event a registration can receive.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WebhookEventName {
    /// The validation event (`POST /webhooks/v1/registration/validationEvents`).
    TestCreated,
    /// A customer's qualification changed (a pcq extension).
    CustomerQualificationUpdated,
}

/// Body of the health and readiness endpoints.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HealthBody {
    /// `ok` or `ready`.
    pub status: String,
    /// pcq version.
    pub version: String,
    /// The storage backend.
    pub store: String,
}

/// The top of the document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "pcq",
        description = "A self-hostable implementation of the Partner Center customer-qualification \
                       API: customers, qualifications (Education vetting, GCC validation codes, \
                       State Owned Entity) and sandbox controls.",
        license(name = "MIT OR Apache-2.0")
    ),
    components(schemas(Envelope, VettedQualification))
)]
pub struct ApiDoc;

/// Adds the bearer scheme, the Partner Center headers and the error responses to every
/// operation; applied once all routes are collected.
pub struct CommonParts;

fn header(name: &str, description: &str) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(utoipa::openapi::schema::Object::with_type(
            utoipa::openapi::schema::Type::String,
        )))
        .build()
}

impl Modify for CommonParts {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        let fault = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ApiFault")))
                        .build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let public = path.starts_with("/_pcq/health")
                || path.starts_with("/_pcq/ready")
                || path.starts_with("/_pcq/openapi");
            for operation in [
                item.get.as_mut(),
                item.put.as_mut(),
                item.post.as_mut(),
                item.delete.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                let params = operation.parameters.get_or_insert_with(Vec::new);
                params.push(utoipa::openapi::RefOr::T(header("MS-RequestId", "Request id; the idempotency key of POST and PUT requests. Echoed, or generated when absent.")));
                params.push(utoipa::openapi::RefOr::T(header(
                    "MS-CorrelationId",
                    "Correlation id for logs. Echoed, or generated when absent.",
                )));
                let mut statuses = vec![
                    ("400", "Invalid input (bad id, body, enum value or header)"),
                    ("405", "Method not allowed on this route"),
                    ("408", "The request took too long"),
                    ("431", "Request line and headers too large"),
                    ("500", "Unexpected service error"),
                ];
                if !public {
                    statuses.extend([
                        ("401", "Missing or invalid token"),
                        (
                            "403",
                            "Credentials or role do not allow this, or the customer is another \
                             partner's (code 20002)",
                        ),
                        ("404", "No such customer (or other resource)"),
                        (
                            "409",
                            "Conflicts with the stored state, or MS-RequestId reused",
                        ),
                        ("413", "Body too large"),
                        ("415", "Body is not JSON"),
                        ("429", "Too many requests (Retry-After says when to retry)"),
                    ]);
                }
                for (status, description) in statuses {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| fault(description).into());
                }
            }
        }
    }
}

/// Sets the largest page size the configuration allows as the maximum of every `size` query
/// parameter.
pub struct PageSizeLimit(pub u32);

impl Modify for PageSizeLimit {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::Schema;
        for item in openapi.paths.paths.values_mut() {
            for operation in [item.get.as_mut(), item.put.as_mut(), item.post.as_mut()]
                .into_iter()
                .flatten()
            {
                for parameter in operation.parameters.iter_mut().flatten() {
                    let RefOr::T(parameter) = parameter else {
                        continue;
                    };
                    if parameter.name != "size"
                        || !matches!(parameter.parameter_in, ParameterIn::Query)
                    {
                        continue;
                    }
                    if let Some(RefOr::T(Schema::Object(object))) = parameter.schema.as_mut() {
                        object.maximum = Some(self.0.into());
                    }
                }
            }
        }
    }
}

/// The OpenAPI document as JSON text.
pub fn document_json(api: &utoipa::openapi::OpenApi) -> String {
    api.to_pretty_json().unwrap_or_else(|_| "{}".to_owned())
}
