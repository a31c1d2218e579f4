//! The OpenAPI schemas of the request bodies pcq parses (the `openapi` feature).
//!
//! Each parser type describes its own body: [`QualificationRequest`], [`NewCustomer`],
//! [`NewValidationCode`] and [`ReviewDecision`] implement [`ToSchema`] under the names the
//! document has always used (`QualificationRequestBody`, …); the bodies read without a parser
//! type of their own are schema-only types ([`LegacyQualificationBody`], [`PolicyChangesBody`],
//! [`AdvanceBody`], …). The limits come from [`crate::limits`], the enumerations from
//! [`crate::enums`] and [`crate::vetting`], so the published contract is what the parsers
//! accept. The parsers are tolerant (any key case, explicit nulls, bare enum values): the
//! schemas describe the canonical shape, not the only one accepted. The helpers and
//! [`schema_only!`] are public for the bodies only the server can describe.

use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, KnownFormat, Object, ObjectBuilder, OneOfBuilder, Ref,
    RefBuilder, Schema, SchemaFormat, SchemaType, Type,
};

use crate::enums::{EducationSegment, Qualification, VETTING_REASONS};
use crate::input::{NewCustomer, NewValidationCode, QualificationRequest, ReviewDecision};
use crate::limits::{
    ADDRESS_TEXT, BILLING_PROFILE_TEXT, COMPANY_PROFILE_TEXT, DEFAULT_MAX_CREATES,
    MAX_ACADEMIC_SUFFIX_LEN, MAX_ACADEMIC_SUFFIXES, MAX_CREATES_LIMIT, MAX_DOMAIN_CHARS,
    MAX_DOMAIN_LABEL_CHARS, MAX_ORGANIZATION_NAME_CHARS, MAX_PROFILE_OTHER_BYTES,
    MAX_VALIDATION_CODE_CHARS, MAX_VALIDATION_ID_DIGITS, MAX_WEBSITE_CHARS, TextLimit,
};
use crate::vetting::{DURATION_PATTERN, Mode, Outcome};

/// The schemas a schema refers to, by name.
pub type Schemas = Vec<(String, RefOr<Schema>)>;

/// The most reads the document offers `after_reads` (the policy itself takes any `u32`).
const MAX_DOCUMENTED_AFTER_READS: u32 = 1_000_000;

/// `t`, or `t` and `null` when `nullable`.
fn of_type(t: Type, nullable: bool) -> SchemaType {
    if nullable {
        SchemaType::from_iter([t, Type::Null])
    } else {
        SchemaType::new(t)
    }
}

/// An object schema with a description.
pub fn object(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(description))
}

/// A property of type `t` with a description.
pub fn property(t: Type, nullable: bool, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(of_type(t, nullable))
        .description(Some(description))
}

/// A property holding the schema `T`, referred to by its name.
fn reference<T: ToSchema>(description: &str) -> RefOr<Schema> {
    RefBuilder::new()
        .ref_location_from_schema_name(T::name())
        .description(Some(description))
        .into()
}

/// An optional property holding the schema `T`.
fn optional_reference<T: ToSchema>(description: &str) -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(reference::<T>(description))
        .item(Object::with_type(Type::Null))
        .into()
}

/// A string enumeration.
pub fn names<'a>(description: &str, names: impl IntoIterator<Item = &'a str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(names))
        .into()
}

/// Adds `extra` and a nullable string property for each of `limits` (with its `maxLength`) to
/// `object`, in the order of their names.
fn with_text(
    object: ObjectBuilder,
    limits: &[TextLimit],
    extra: Vec<(&'static str, RefOr<Schema>)>,
) -> ObjectBuilder {
    let mut properties: Vec<(&'static str, RefOr<Schema>)> = limits
        .iter()
        .map(|limit| {
            let text =
                property(Type::String, true, limit.description).max_length(Some(limit.max_chars));
            (limit.name, text.into())
        })
        .chain(extra)
        .collect();
    properties.sort_by_key(|(name, _)| *name);
    properties
        .into_iter()
        .fold(object, |object, (name, schema)| {
            object.property(name, schema)
        })
}

/// Pushes the schema `T` and the schemas it refers to, under the names they are referred to by.
pub fn push<T: ToSchema>(schemas: &mut Schemas) {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
}

/// Implements [`ToSchema`] for `$ty`: the schema `$schema`, published under the name `as`
/// gives (the type's own name without it), with the schemas it refers to (`uses`). The calling
/// crate needs `utoipa`.
#[macro_export]
macro_rules! schema_of {
    ($ty:ident $(as $name:literal)? $(uses [$($used:ty),+ $(,)?])? $schema:block) => {
        impl ::utoipa::PartialSchema for $ty {
            fn schema() -> ::utoipa::openapi::RefOr<::utoipa::openapi::schema::Schema> $schema
        }

        impl ::utoipa::ToSchema for $ty {
            $(
                fn name() -> ::std::borrow::Cow<'static, str> {
                    ::std::borrow::Cow::Borrowed($name)
                }
            )?
            $(
                fn schemas(schemas: &mut $crate::schema::Schemas) {
                    $($crate::schema::push::<$used>(schemas);)+
                }
            )?
        }
    };
}

/// Declares a type that stands for a schema of the document only, and its schema (see
/// [`schema_of!`]).
#[macro_export]
macro_rules! schema_only {
    ($(#[$doc:meta])* $ty:ident $(uses [$($used:ty),+ $(,)?])? $schema:block) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub enum $ty {}

        $crate::schema_of!($ty $(uses [$($used),+])? $schema);
    };
}

pub use crate::{schema_of, schema_only};

// Descriptions with a `\n` mid-text keep the line breaks of the doc comments the document was
// first generated from: the published snapshot holds them.

schema_only!(
    /// The qualifications a partner can request ([`Qualification::SETTABLE`]).
    SettableQualification {
        names(
            "The qualifications a partner can request.",
            Qualification::SETTABLE.map(Qualification::as_str),
        )
    }
);

schema_only!(
    /// Body of the legacy `PUT /v1/customers/{id}/qualification`: the enum as a string (any
    /// case is accepted) or as its integer (1 Education, 3 GovernmentCommunityCloud,
    /// 4 StateOwnedEntity), read by [`QualificationRequest`].
    LegacyQualificationBody uses [SettableQualification] {
        OneOfBuilder::new()
            .item(Ref::from_schema_name(SettableQualification::name()))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .enum_values(Some(Qualification::SETTABLE.map(Qualification::index)))
                    .description(Some(
                        Qualification::SETTABLE
                            .map(|q| format!("{} {q}", q.index()))
                            .join(", "),
                    )),
            )
            .description(Some(
                "The qualification to set, by name (any case) or by its integer value.",
            ))
            .into()
    }
);

schema_only!(
    /// The documented reasons of a vetting denial ([`VETTING_REASONS`]).
    VettingReason {
        names("The documented reasons of a vetting denial.", VETTING_REASONS)
    }
);

schema_only!(
    /// The modes of a vetting policy ([`Mode`]).
    PolicyMode {
        names("A vetting policy mode.", Mode::NAMES)
    }
);

schema_only!(
    /// The outcomes of a vetting policy ([`Outcome`]).
    PolicyOutcome {
        names("A vetting policy outcome.", Outcome::NAMES)
    }
);

schema_of!(QualificationRequest as "QualificationRequestBody"
    uses [SettableQualification, EducationSegment]
{
    object("Body of `POST /v1/customers/{id}/qualifications`.")
        .property(
            "educationSegment",
            optional_reference::<EducationSegment>(
                "K12 or HigherEducation; required for Education under the 2023 contract.",
            ),
        )
        .property(
            "qualification",
            reference::<SettableQualification>(
                "Education, GovernmentCommunityCloud or StateOwnedEntity (None and Nonprofit \
                 cannot be set).",
            ),
        )
        .required("qualification")
        .property(
            "validationCode",
            property(
                Type::String,
                true,
                "The partner's validation code (GovernmentCommunityCloud only, and required \
                 for it, here\nor as `?code=`); one of the partner's codes with creates left.",
            )
            .max_length(Some(MAX_VALIDATION_CODE_CHARS)),
        )
        .property(
            "website",
            property(
                Type::String,
                true,
                "Website of the education entity (Education only).",
            )
            .max_length(Some(MAX_WEBSITE_CHARS)),
        )
        .into()
});

schema_only!(
    /// The company profile of a new customer (`companyProfile` of [`NewCustomer`]).
    CompanyProfileBody {
        let label = format!(
            "[A-Za-z0-9]([A-Za-z0-9-]{{0,{}}}[A-Za-z0-9])?",
            MAX_DOMAIN_LABEL_CHARS - 2
        );
        let domain = property(
            Type::String,
            false,
            "The customer's domain, e.g. `contoso.onmicrosoft.com`: at least two labels \
             of letters,\ndigits and inner hyphens.",
        )
        .max_length(Some(MAX_DOMAIN_CHARS))
        .pattern(Some(format!("^({label}\\.)+{label}$")));
        with_text(
            object(&format!(
                "Company profile of a new customer. Other properties are kept as sent, up to \
                 {MAX_PROFILE_OTHER_BYTES} bytes of JSON."
            )),
            COMPANY_PROFILE_TEXT,
            vec![("domain", domain.into())],
        )
        .required("domain")
        .into()
    }
);

schema_only!(
    /// The billing profile's address (`defaultAddress` of [`BillingProfileBody`]).
    AddressBody {
        with_text(
            object("The address bills are sent to (Partner Center's `Address`)."),
            ADDRESS_TEXT,
            Vec::new(),
        )
        .into()
    }
);

schema_only!(
    /// The billing profile of a new customer (`billingProfile` of [`NewCustomer`]).
    BillingProfileBody uses [AddressBody] {
        with_text(
            object(&format!(
                "Billing profile of a new customer, kept as sent. Other properties (its own and \
                 its address's) take at most {MAX_PROFILE_OTHER_BYTES} bytes of JSON together."
            )),
            BILLING_PROFILE_TEXT,
            vec![(
                "defaultAddress",
                optional_reference::<AddressBody>("The address bills are sent to."),
            )],
        )
        .into()
    }
);

schema_of!(NewCustomer as "CustomerCreateBody" uses [CompanyProfileBody, BillingProfileBody] {
    object("Body of `POST /v1/customers`.")
        .property(
            "billingProfile",
            optional_reference::<BillingProfileBody>(
                "Billing profile (email, culture, language, companyName, defaultAddress, …), \
                 kept as sent.",
            ),
        )
        .property(
            "companyProfile",
            reference::<CompanyProfileBody>("Company profile; `domain` is required."),
        )
        .required("companyProfile")
        .into()
});

schema_of!(NewValidationCode as "ValidationCodeIssueBody" {
    object("Body of `POST /_pcq/admin/partners/{id}/validation-codes`.")
        .property(
            "maxCreates",
            property(
                Type::Integer,
                true,
                &format!("How many customers the code may qualify (default {DEFAULT_MAX_CREATES})."),
            )
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(1))
            .maximum(Some(MAX_CREATES_LIMIT)),
        )
        .property(
            "organizationName",
            property(
                Type::String,
                false,
                "The organisation the code was validated for.",
            )
            .max_length(Some(MAX_ORGANIZATION_NAME_CHARS))
            .pattern(Some(r"\S")),
        )
        .required("organizationName")
        .property(
            "validationId",
            property(
                Type::String,
                true,
                "A chosen code (digits); generated when absent.",
            )
            .pattern(Some(format!("^[0-9]{{1,{MAX_VALIDATION_ID_DIGITS}}}$"))),
        )
        .into()
});

schema_of!(ReviewDecision as "DecisionBody" uses [VettingReason] {
    let decision = |name: &str| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some([name]))
    };
    let round = || {
        property(Type::Integer, true, "The vetting round decided.")
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(1))
    };
    OneOfBuilder::new()
        .item(
            object("Approve; no reason is given.")
                .property("round", round())
                .property("decision", decision("Approved"))
                .required("decision"),
        )
        .item(
            object("Deny, with a documented reason.")
                .property("reason", reference::<VettingReason>("Why."))
                .required("reason")
                .property("round", round())
                .property("decision", decision("Denied"))
                .required("decision"),
        )
        .description(Some(
            "A reviewer's decision: `{\"decision\": \"Approved\"}` or\n`{\"decision\": \
             \"Denied\", \"reason\": \"Not an Academic Domain\"}` (a documented reason, any \
             case).\nWith `round` (as the queue shows it) the decision is refused with 409 \
             when the qualification\nhas moved on to another round.",
        ))
        .into()
});

schema_only!(
    /// Body of `PUT /_pcq/admin/vetting-policy`, read by
    /// [`VettingPolicy::with_changes`](crate::vetting::VettingPolicy::with_changes).
    PolicyChangesBody uses [PolicyMode, PolicyOutcome, VettingReason] {
        let suffix = property(Type::String, false, "A domain suffix, e.g. `.edu` or `ac.uk`.")
            .max_length(Some(MAX_ACADEMIC_SUFFIX_LEN))
            .pattern(Some(r"\S"));
        object(
            "Body of `PUT /_pcq/admin/vetting-policy`: the settings to change (keys in any \
             case).",
        )
        .property(
            "academic_suffixes",
            ArrayBuilder::new()
                .schema_type(of_type(Type::Array, true))
                .items(suffix)
                .description(Some(
                    "Suffixes the domain rules treat as academic, e.g. `.edu`.",
                ))
                .max_items(Some(MAX_ACADEMIC_SUFFIXES)),
        )
        .property(
            "after",
            property(Type::String, true, "The delay of `after`, e.g. `72h`.")
                .pattern(Some(DURATION_PATTERN)),
        )
        .property(
            "after_reads",
            property(
                Type::Integer,
                true,
                "The reads of `after_reads` (at least 1 with that policy).",
            )
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
            .minimum(Some(1))
            .maximum(Some(MAX_DOCUMENTED_AFTER_READS)),
        )
        .property(
            "deny_reason",
            optional_reference::<VettingReason>("The reason of the `deny` outcome."),
        )
        .property(
            "gcc_review",
            property(Type::Boolean, true, "Whether GCC requests are vetted too."),
        )
        .property(
            "outcome",
            optional_reference::<PolicyOutcome>("What the decision is."),
        )
        .property(
            "policy",
            optional_reference::<PolicyMode>("How decisions are made."),
        )
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .into()
    }
);

schema_only!(
    /// Body of `POST /_pcq/admin/clock`, `{"advance": "72h"}`: moves pcq's clock forward for the
    /// whole server by a [`Duration`](crate::vetting::Duration).
    AdvanceBody {
        object("`{\"advance\": \"72h\"}`: moves pcq's clock forward for the whole server.")
            .property(
                "advance",
                property(
                    Type::String,
                    false,
                    "How far, e.g. `72h`, `30m`, `1d12h` (pcq's clock cannot pass 9999-12-31).",
                )
                .pattern(Some(DURATION_PATTERN)),
            )
            .required("advance")
            .into()
    }
);
