//! The limits of pcq's request bodies, in one place: the parsers of [`crate::input`] and
//! [`crate::vetting`] enforce them, and the OpenAPI schemas of those bodies (`pcq_core::schema`,
//! with the `openapi` feature) publish them, so the document cannot drift from what is
//! accepted.

/// Longest accepted website of an Education request, in characters.
pub const MAX_WEBSITE_CHARS: usize = 2048;

/// Longest accepted validation code of a GCC request, in characters (longer codes are
/// rejected as unknown).
pub const MAX_VALIDATION_CODE_CHARS: usize = 64;

/// Longest accepted customer domain, in characters (after trimming and the final dot).
pub const MAX_DOMAIN_CHARS: usize = 253;

/// Longest label of a customer domain, in characters.
pub const MAX_DOMAIN_LABEL_CHARS: usize = 63;

/// Longest organisation name of a validation code, in characters.
pub const MAX_ORGANIZATION_NAME_CHARS: usize = 256;

/// The creates of a validation code issued without `maxCreates`.
pub const DEFAULT_MAX_CREATES: i64 = 5;

/// Most creates one validation code may allow.
pub const MAX_CREATES_LIMIT: i64 = 1_000_000;

/// Most digits of a chosen validation id.
pub const MAX_VALIDATION_ID_DIGITS: usize = 18;

/// Longest accepted webhook URL, in characters.
pub const MAX_WEBHOOK_URL_CHARS: usize = 2048;

/// Most academic suffixes of a vetting policy.
pub const MAX_ACADEMIC_SUFFIXES: usize = 1000;

/// Longest academic suffix of a vetting policy, in bytes after trimming (suffixes are ASCII
/// domain labels, so the characters the schema counts): a domain's length.
pub const MAX_ACADEMIC_SUFFIX_LEN: usize = MAX_DOMAIN_CHARS;

/// A text property of a new customer's profile, and the most characters it may have. Partner
/// Center documents some of these (`Address` in its utility resources: address lines 200, first
/// and last names 50, state and country 2); pcq picks the others (docs/errors.md says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextLimit {
    /// The property's camelCase name (any key case is accepted).
    pub name: &'static str,
    /// Most characters, whitespace included.
    pub max_chars: usize,
    /// What it holds, for the OpenAPI document.
    pub description: &'static str,
}

/// Longest company name, in characters (company and billing profiles).
pub const MAX_COMPANY_NAME_CHARS: usize = 256;

/// Longest contact first or last name, in characters (documented for `Address`: 50).
pub const MAX_PERSON_NAME_CHARS: usize = 50;

/// Longest address line, in characters (documented for `Address`: 200).
pub const MAX_ADDRESS_LINE_CHARS: usize = 200;

/// Longest email address, in characters (RFC 5321's 256-octet path less its angle brackets).
pub const MAX_EMAIL_CHARS: usize = 254;

/// Longest culture or language tag, in characters (RFC 5646 asks for room for 35).
pub const MAX_LANGUAGE_TAG_CHARS: usize = 35;

/// The company profile's limited properties besides `domain` (see [`MAX_DOMAIN_CHARS`]).
pub const COMPANY_PROFILE_TEXT: &[TextLimit] = &[
    TextLimit {
        name: "companyName",
        max_chars: MAX_COMPANY_NAME_CHARS,
        description: "The company name.",
    },
    TextLimit {
        name: "organizationRegistrationNumber",
        max_chars: 64,
        description: "The organization registration number (INN), where the country requires one.",
    },
];

/// The billing profile's limited properties (its `defaultAddress`: [`ADDRESS_TEXT`]).
pub const BILLING_PROFILE_TEXT: &[TextLimit] = &[
    TextLimit {
        name: "firstName",
        max_chars: MAX_PERSON_NAME_CHARS,
        description: "First name of the billing contact.",
    },
    TextLimit {
        name: "lastName",
        max_chars: MAX_PERSON_NAME_CHARS,
        description: "Last name of the billing contact.",
    },
    TextLimit {
        name: "email",
        max_chars: MAX_EMAIL_CHARS,
        description: "Email address of the billing contact.",
    },
    TextLimit {
        name: "culture",
        max_chars: MAX_LANGUAGE_TAG_CHARS,
        description: "Preferred culture, e.g. `en-US`.",
    },
    TextLimit {
        name: "language",
        max_chars: MAX_LANGUAGE_TAG_CHARS,
        description: "Preferred language, e.g. `en`.",
    },
    TextLimit {
        name: "companyName",
        max_chars: MAX_COMPANY_NAME_CHARS,
        description: "The company name (used when the company profile has none).",
    },
];

/// The limited properties of the billing profile's `defaultAddress`.
pub const ADDRESS_TEXT: &[TextLimit] = &[
    TextLimit {
        name: "firstName",
        max_chars: MAX_PERSON_NAME_CHARS,
        description: "First name of a contact.",
    },
    TextLimit {
        name: "lastName",
        max_chars: MAX_PERSON_NAME_CHARS,
        description: "Last name of a contact.",
    },
    TextLimit {
        name: "addressLine1",
        max_chars: MAX_ADDRESS_LINE_CHARS,
        description: "First line of the address.",
    },
    TextLimit {
        name: "addressLine2",
        max_chars: MAX_ADDRESS_LINE_CHARS,
        description: "Second line of the address.",
    },
    TextLimit {
        name: "addressLine3",
        max_chars: MAX_ADDRESS_LINE_CHARS,
        description: "Third line of the address.",
    },
    TextLimit {
        name: "city",
        max_chars: 128,
        description: "The city.",
    },
    TextLimit {
        name: "state",
        max_chars: 2,
        description: "The state, as its code (e.g. `WA`).",
    },
    TextLimit {
        name: "postalCode",
        max_chars: 32,
        description: "The postal code.",
    },
    TextLimit {
        name: "country",
        max_chars: 2,
        description: "The country or region, as its ISO 3166 code (e.g. `US`).",
    },
    TextLimit {
        name: "region",
        max_chars: 64,
        description: "The region.",
    },
    TextLimit {
        name: "phoneNumber",
        max_chars: 40,
        description: "Phone number of a contact.",
    },
];

/// Most bytes the other properties of a customer profile (the company profile's, or the billing
/// profile's and its address's together) may take, counted as their keys and values in JSON.
/// pcq keeps such properties as sent.
pub const MAX_PROFILE_OTHER_BYTES: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_errors_document_lists_every_customer_field_limit() {
        let docs = include_str!("../../../docs/errors.md");
        for (path, limits) in [
            ("companyProfile", COMPANY_PROFILE_TEXT),
            ("billingProfile", BILLING_PROFILE_TEXT),
            ("billingProfile.defaultAddress", ADDRESS_TEXT),
        ] {
            for limit in limits {
                let row = format!("| `{path}.{}` | {} |", limit.name, limit.max_chars);
                assert!(docs.contains(&row), "docs/errors.md lacks {row}");
            }
        }
        let domain = format!("| `companyProfile.domain` | {MAX_DOMAIN_CHARS} |");
        assert!(docs.contains(&domain));
        let other = format!("most {MAX_PROFILE_OTHER_BYTES} bytes");
        assert!(docs.contains(&other));
    }
}
