//! The OpenAPI document, generated from the handlers.
//!
//! Request bodies are described here by schema-only types: pcq parses bodies tolerantly (any
//! key case, explicit nulls, bare enum values), so the documented shape is the canonical one,
//! not the only one accepted. Error responses, the bearer scheme and the Partner Center request
//! headers are added to every operation in one place ([`CommonParts`]).

use pcq_core::fault::Envelope;
use pcq_core::{EducationSegment, Qualification};
use serde::{Deserialize, Serialize};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, Required};
use utoipa::{Modify, OpenApi, ToSchema};

/// Body of `POST /v1/customers/{id}/qualifications`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QualificationRequestBody {
    /// Education, GovernmentCommunityCloud or StateOwnedEntity (None and Nonprofit cannot be set).
    pub qualification: Qualification,
    /// K12 or HigherEducation; required for Education under the 2023 contract.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub education_segment: Option<EducationSegment>,
    /// Website of the education entity (Education only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// The partner's validation code (GovernmentCommunityCloud only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_code: Option<String>,
}

/// Body of the legacy `PUT /v1/customers/{id}/qualification`: the enum as a string or integer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum LegacyQualificationBody {
    /// The enum name in any case (`Education`, `government_community_cloud`, …).
    Name(Qualification),
    /// The enum's integer value (1 Education, 3 GovernmentCommunityCloud, 4 StateOwnedEntity).
    Value(i64),
}

/// Company profile of a new customer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompanyProfileBody {
    /// The customer's domain, e.g. `contoso.onmicrosoft.com`.
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
    pub organization_name: String,
    /// How many customers the code may qualify (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_creates: Option<i64>,
    /// A chosen code (digits); generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_id: Option<String>,
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
    components(schemas(Envelope))
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
                        ("403", "Credentials, role or relationship do not allow this"),
                        ("404", "Unknown customer"),
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

/// The OpenAPI document as JSON text.
pub fn document_json(api: &utoipa::openapi::OpenApi) -> String {
    api.to_pretty_json().unwrap_or_else(|_| "{}".to_owned())
}
