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
