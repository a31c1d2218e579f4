//! The OpenAPI document, generated from the handlers.
//!
//! Request bodies are described by the parsers' own types and the schema-only bodies of
//! [`pcq_core::schema`], which reads the parsers' limits from [`pcq_core::limits`], or, for the
//! webhook registration, whose events only the server knows, by the schema-only type here. pcq parses bodies tolerantly
//! (any key case, explicit nulls, bare enum values), so the documented shape is the canonical
//! one, not the only one accepted. Error responses, the bearer scheme and the Partner Center
//! request headers are added to every operation in one place ([`CommonParts`]).

use pcq_core::Qualification;
use pcq_core::fault::Envelope;
use pcq_core::input::WEBHOOK_URL_PATTERN;
use pcq_core::limits::MAX_WEBHOOK_URL_CHARS;
use pcq_core::schema::{names, object, property, schema_only};
use serde::{Deserialize, Serialize};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ArrayBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, Required};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::service::webhooks::EVENTS;

schema_only!(
    /// The qualifications that go through vetting, and so through review
    /// ([`Qualification::is_vetted`]).
    VettedQualification {
        names(
            "The qualifications that go through vetting (and so through review).",
            Qualification::ALL
                .into_iter()
                .filter(|q| q.is_vetted())
                .map(Qualification::as_str),
        )
    }
);

schema_only!(
    /// Body of `POST` and `PUT /webhooks/v1/registration`, read by
    /// [`WebhookRegistrationInput`](pcq_core::input::WebhookRegistrationInput).
    WebhookRegistrationBody {
        object(
            "Body of `POST` and `PUT /webhooks/v1/registration`, with Partner Center's \
             PascalCase keys.",
        )
        .property(
            "WebhookUrl",
            property(
                Type::String,
                false,
                "Where events are posted: an absolute http or https URL.",
            )
            .max_length(Some(MAX_WEBHOOK_URL_CHARS))
            .pattern(Some(WEBHOOK_URL_PATTERN)),
        )
        .required("WebhookUrl")
        .property(
            "WebhookEvents",
            ArrayBuilder::new()
                .items(names("An event a registration can receive.", EVENTS))
                .description(Some("The events to receive."))
                .min_items(Some(1)),
        )
        .required("WebhookEvents")
        .into()
    }
);

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
