//! Tolerant parsing of request bodies into domain requests.
//!
//! Clients differ: the old .NET SDK sends PascalCase keys and explicit nulls, the current one
//! camelCase keys without nulls, one localised page a bare integer. Parsing here is
//! "parse, don't validate": a body either becomes a typed request or an [`ApiFault`] that says
//! exactly what is wrong.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::enums::{EducationSegment, Qualification};
use crate::fault::{ApiFault, truncate};
use crate::limits::{
    ADDRESS_TEXT, BILLING_PROFILE_TEXT, COMPANY_PROFILE_TEXT, DEFAULT_MAX_CREATES,
    MAX_CREATES_LIMIT, MAX_DOMAIN_CHARS, MAX_DOMAIN_LABEL_CHARS, MAX_ORGANIZATION_NAME_CHARS,
    MAX_PROFILE_OTHER_BYTES, MAX_VALIDATION_CODE_CHARS, MAX_VALIDATION_ID_DIGITS,
    MAX_WEBHOOK_URL_CHARS, MAX_WEBSITE_CHARS, TextLimit,
};

/// The generation of the POST qualifications contract pcq enforces. Written `"2021"` or
/// `"2023"` (the year, as a string or a number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Contract {
    /// The 2021 contract of the seed documents: `{"Qualification": "Education"}` alone is valid.
    #[default]
    V2021,
    /// The contract Partner Center enforces since May 2023: Education needs `educationSegment`.
    V2023,
}

impl Contract {
    /// The year that names the contract.
    pub fn year(self) -> u16 {
        match self {
            Contract::V2021 => 2021,
            Contract::V2023 => 2023,
        }
    }

    fn from_year(year: u64) -> Option<Self> {
        match year {
            2021 => Some(Contract::V2021),
            2023 => Some(Contract::V2023),
            _ => None,
        }
    }
}

impl Serialize for Contract {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.year().to_string())
    }
}

impl<'de> Deserialize<'de> for Contract {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Contract;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("the contract year, 2021 or 2023")
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Contract, E> {
                Contract::from_year(v)
                    .ok_or_else(|| E::custom(format!("unknown contract {v}; use 2021 or 2023")))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Contract, E> {
                self.visit_u64(u64::try_from(v).unwrap_or(0))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Contract, E> {
                v.trim()
                    .parse::<u64>()
                    .ok()
                    .and_then(Contract::from_year)
                    .ok_or_else(|| {
                        E::custom(format!("unknown contract {v:?}; use \"2021\" or \"2023\""))
                    })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A JSON object whose keys are looked up case-insensitively; `null` values count as absent.
#[derive(Debug, Clone, Copy)]
pub struct LooseObject<'a>(&'a Map<String, Value>);

impl<'a> LooseObject<'a> {
    /// Wraps a JSON object.
    pub fn new(map: &'a Map<String, Value>) -> Self {
        LooseObject(map)
    }

    /// The value under `key` in any letter case, ignoring nulls.
    ///
    /// Two non-null values under spellings of the same key that differ are ambiguous and
    /// rejected, rather than one of them silently winning.
    pub fn get(&self, key: &str) -> Result<Option<&'a Value>, ApiFault> {
        let mut found: Option<&'a Value> = None;
        for (k, v) in self.0 {
            if v.is_null() || !k.eq_ignore_ascii_case(key) {
                continue;
            }
            match found {
                Some(prev) if prev != v => {
                    return Err(ApiFault::invalid_input(format!(
                        "The property '{key}' appears more than once with different values."
                    )));
                }
                _ => found = Some(v),
            }
        }
        Ok(found)
    }

    /// A string property; other JSON types are rejected. Empty strings count as absent.
    pub fn get_str(&self, key: &str) -> Result<Option<&'a str>, ApiFault> {
        match self.get(key)? {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(ApiFault::invalid_input(format!(
                "The property '{key}' must be a string, not {}.",
                json_type(other)
            ))),
        }
    }

    /// A nested object property; other JSON types are rejected.
    pub fn get_object(&self, key: &str) -> Result<Option<LooseObject<'a>>, ApiFault> {
        match self.get(key)? {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(LooseObject(map))),
            Some(other) => Err(ApiFault::invalid_input(format!(
                "The property '{key}' must be an object, not {}.",
                json_type(other)
            ))),
        }
    }

    /// The underlying map.
    pub fn map(&self) -> &'a Map<String, Value> {
        self.0
    }
}

/// A short name for a JSON value's type, for error descriptions.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A request to add a qualification to a customer, checked against the contract in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualificationRequest {
    /// The qualification; always one of [`Qualification::SETTABLE`].
    pub qualification: Qualification,
    /// The education segment, when given (required for Education under the 2023 contract).
    pub education_segment: Option<EducationSegment>,
    /// The education entity's website; kept for Education only.
    pub website: Option<String>,
    /// The partner's validation code; kept for GovernmentCommunityCloud only.
    pub validation_code: Option<String>,
}

impl QualificationRequest {
    /// Parses a POST qualifications (or legacy PUT) body.
    ///
    /// `body` may be an object (`{"qualification": ...}` in any key case), a bare enum string or
    /// a bare integer. `query_code` is the older contract's `?code=` parameter.
    pub fn parse(
        body: &Value,
        query_code: Option<&str>,
        contract: Contract,
    ) -> Result<Self, ApiFault> {
        let (raw_qualification, object) = match body {
            Value::Object(map) => {
                let object = LooseObject::new(map);
                let q = object.get("qualification")?.ok_or_else(|| {
                    ApiFault::property_required(
                        "qualification",
                        ", for example {\"qualification\": \"Education\"}.",
                    )
                })?;
                (q, Some(object))
            }
            Value::String(_) | Value::Number(_) => (body, None),
            Value::Null => {
                return Err(ApiFault::invalid_input(
                    "The request body is empty; send {\"qualification\": \"Education\"} or another \
                     qualification.",
                ));
            }
            other => {
                return Err(ApiFault::invalid_input(format!(
                    "The request body must be a JSON object such as {{\"qualification\": \"Education\"}}, \
                     not {}.",
                    json_type(other)
                )));
            }
        };

        let qualification = Qualification::parse_value(raw_qualification)?;
        if !qualification.is_settable() {
            return Err(ApiFault::unsettable_qualification(qualification.as_str()));
        }

        let mut education_segment = None;
        let mut website = None;
        let mut body_code = None;
        if let Some(object) = object {
            if let Some(raw) = object.get("educationSegment")? {
                // A segment that is present is validated whatever the qualification.
                education_segment = Some(EducationSegment::parse_value(raw)?);
            }
            if let Some(site) = object.get_str("website")? {
                if site.chars().count() > MAX_WEBSITE_CHARS {
                    return Err(ApiFault::invalid_input(format!(
                        "The website is longer than {MAX_WEBSITE_CHARS} characters."
                    )));
                }
                website = Some(site.trim().to_owned());
            }
            body_code = match object.get("validationCode")? {
                None => None,
                Some(Value::String(s)) if s.trim().is_empty() => None,
                Some(Value::String(s)) => Some(s.trim().to_owned()),
                Some(Value::Number(n)) if n.is_u64() => Some(n.to_string()),
                Some(other) => {
                    return Err(ApiFault::invalid_input(format!(
                        "The property 'validationCode' must be a string of digits, not {}.",
                        json_type(other)
                    )));
                }
            };
        }

        let query_code = query_code.map(str::trim).filter(|c| !c.is_empty());
        let validation_code = if qualification == Qualification::GovernmentCommunityCloud {
            let code = match (body_code, query_code) {
                (Some(b), Some(q)) if b != q => {
                    return Err(ApiFault::validation_code_mismatch(&b, q));
                }
                (Some(b), _) => b,
                (None, Some(q)) => q.to_owned(),
                (None, None) => return Err(ApiFault::validation_code_required()),
            };
            if code.chars().count() > MAX_VALIDATION_CODE_CHARS {
                return Err(ApiFault::validation_code_not_found(&code));
            }
            Some(code)
        } else {
            None
        };

        if qualification == Qualification::Education {
            if contract == Contract::V2023 && education_segment.is_none() {
                return Err(ApiFault::education_segment_required());
            }
        } else {
            website = None;
        }

        Ok(QualificationRequest {
            qualification,
            education_segment: if qualification == Qualification::Education {
                education_segment
            } else {
                None
            },
            website,
            validation_code,
        })
    }
}

/// A request to create a customer.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCustomer {
    /// The customer's domain, lower-cased (unique per partner).
    pub domain: String,
    /// The company name, from the company profile or else the billing profile.
    pub company_name: Option<String>,
    /// The company profile as sent, with camelCase keys and without nulls, `domain`,
    /// `tenantId`, `links` or `attributes` (those are pcq's to set).
    pub company_profile: Map<String, Value>,
    /// The billing profile as sent, with camelCase keys and without nulls, `id`, `links` or
    /// `attributes`; `None` when not sent.
    pub billing_profile: Option<Map<String, Value>>,
}

impl NewCustomer {
    /// Parses a create-customer body (PascalCase or camelCase keys, explicit nulls allowed).
    pub fn parse(body: &Value) -> Result<Self, ApiFault> {
        let Value::Object(map) = body else {
            return Err(ApiFault::invalid_input(format!(
                "The request body must be a Customer object with a companyProfile, not {}.",
                json_type(body)
            )));
        };
        let object = LooseObject::new(map);
        let company = object.get_object("companyProfile")?.ok_or_else(|| {
            ApiFault::property_required(
                "companyProfile",
                ", for example {\"companyProfile\": {\"domain\": \"contoso.onmicrosoft.com\"}}.",
            )
        })?;
        let raw_domain = company.get_str("domain")?.ok_or_else(|| {
            ApiFault::property_required(
                "companyProfile.domain",
                ", for example \"contoso.onmicrosoft.com\".",
            )
        })?;
        let domain = parse_domain(raw_domain)?;
        check_text(company, "companyProfile", COMPANY_PROFILE_TEXT)?;

        let billing = object.get_object("billingProfile")?;
        if let Some(billing) = billing {
            check_text(billing, "billingProfile", BILLING_PROFILE_TEXT)?;
            match billing.get("defaultAddress")? {
                None => {}
                Some(Value::Object(address)) => check_text(
                    LooseObject::new(address),
                    "billingProfile.defaultAddress",
                    ADDRESS_TEXT,
                )?,
                Some(other) => {
                    return Err(ApiFault::invalid_input(format!(
                        "The property 'billingProfile.defaultAddress' must be an Address object, \
                         not {}.",
                        json_type(other)
                    ))
                    .with_param("field", "billingProfile.defaultAddress"));
                }
            }
        }
        let company_name = match company.get_str("companyName")? {
            Some(name) => Some(name.trim().to_owned()),
            None => match billing {
                Some(b) => b.get_str("companyName")?.map(|s| s.trim().to_owned()),
                None => None,
            },
        };

        let mut company_profile = camel_case_object(company.map());
        for owned_by_pcq in ["domain", "tenantId", "links", "attributes", "companyName"] {
            company_profile.remove(owned_by_pcq);
        }
        let billing_profile = billing.map(|b| {
            let mut profile = camel_case_object(b.map());
            for owned_by_pcq in ["id", "links", "attributes"] {
                profile.remove(owned_by_pcq);
            }
            profile
        });

        check_other_bytes(
            &company_profile,
            "companyProfile",
            COMPANY_PROFILE_TEXT,
            None,
        )?;
        if let Some(profile) = &billing_profile {
            check_other_bytes(
                profile,
                "billingProfile",
                BILLING_PROFILE_TEXT,
                Some(("defaultAddress", ADDRESS_TEXT)),
            )?;
        }

        Ok(NewCustomer {
            domain,
            company_name,
            company_profile,
            billing_profile,
        })
    }
}

/// Checks the limited text properties of a profile at `path`: each, when present, a string of
/// at most its characters as sent (whitespace counts: the profiles are kept as sent).
fn check_text(profile: LooseObject<'_>, path: &str, limits: &[TextLimit]) -> Result<(), ApiFault> {
    for limit in limits {
        let field = || format!("{path}.{}", limit.name);
        match profile.get(limit.name)? {
            None => {}
            // A character takes one to four bytes: most texts need no counting.
            Some(Value::String(text))
                if text.len() > limit.max_chars && text.chars().count() > limit.max_chars =>
            {
                return Err(ApiFault::invalid_input(format!(
                    "The property '{}' is longer than {} characters.",
                    field(),
                    limit.max_chars
                ))
                .with_param("field", field())
                .with_param("maxLength", limit.max_chars.to_string()));
            }
            Some(Value::String(_)) => {}
            Some(other) => {
                return Err(ApiFault::invalid_input(format!(
                    "The property '{}' must be a string, not {}.",
                    field(),
                    json_type(other)
                ))
                .with_param("field", field()));
            }
        }
    }
    Ok(())
}

/// Checks that the other properties of a stored profile (those without a limit of their own,
/// and those of its `nested` object) take at most [`MAX_PROFILE_OTHER_BYTES`] of JSON.
fn check_other_bytes(
    profile: &Map<String, Value>,
    path: &str,
    limited: &[TextLimit],
    nested: Option<(&str, &[TextLimit])>,
) -> Result<(), ApiFault> {
    if other_bytes(profile, limited, nested) > MAX_PROFILE_OTHER_BYTES {
        return Err(ApiFault::invalid_input(format!(
            "The other properties of '{path}' take more than {MAX_PROFILE_OTHER_BYTES} bytes of \
             JSON; pcq keeps them as sent, up to that size."
        ))
        .with_param("field", path)
        .with_param("maxBytes", MAX_PROFILE_OTHER_BYTES.to_string()));
    }
    Ok(())
}

/// The bytes of JSON the keys and values of `profile` take, but for its limited properties, and
/// for the `nested` object those of its own other properties.
fn other_bytes(
    profile: &Map<String, Value>,
    limited: &[TextLimit],
    nested: Option<(&str, &[TextLimit])>,
) -> usize {
    profile
        .iter()
        .filter(|(key, _)| !limited.iter().any(|l| l.name.eq_ignore_ascii_case(key)))
        .map(|(key, value)| match (nested, value) {
            (Some((name, inner)), Value::Object(map)) if name.eq_ignore_ascii_case(key) => {
                other_bytes(map, inner, None)
            }
            _ => json_len(key.as_str()) + json_len(value),
        })
        .fold(0, usize::saturating_add)
}

/// The length of a value's JSON, without writing it anywhere.
fn json_len<T: Serialize + ?Sized>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a string or a JSON value to a counter cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// Checks and lower-cases a domain name such as `contoso.onmicrosoft.com`.
pub fn parse_domain(raw: &str) -> Result<String, ApiFault> {
    let domain = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let invalid = |why: &str| {
        ApiFault::invalid_input(format!(
            "The domain '{}' is not valid: {why}. Use a name such as contoso.onmicrosoft.com.",
            truncate(raw, 80)
        ))
        .with_param("field", "companyProfile.domain")
    };
    if domain.len() > MAX_DOMAIN_CHARS {
        return Err(invalid(&format!(
            "it is longer than {MAX_DOMAIN_CHARS} characters"
        )));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err(invalid("it needs at least two labels separated by a dot"));
    }
    for label in labels {
        if label.is_empty() || label.len() > MAX_DOMAIN_LABEL_CHARS {
            return Err(invalid(&format!(
                "each label must have 1 to {MAX_DOMAIN_LABEL_CHARS} characters"
            )));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(invalid(
                "only letters, digits, hyphens and dots are allowed",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid("a label cannot start or end with a hyphen"));
        }
    }
    Ok(domain)
}

/// Copies an object, lower-casing the first letter of every key (PascalCase → camelCase) and
/// dropping nulls, recursively.
pub fn camel_case_object(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (camel_case_key(k), camel_case_value(v)))
        .collect()
}

fn camel_case_value(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(camel_case_object(map)),
        Value::Array(items) => Value::Array(items.iter().map(camel_case_value).collect()),
        other => other.clone(),
    }
}

fn camel_case_key(key: &str) -> String {
    let mut chars = key.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A sandbox request to issue a GCC validation code to a partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewValidationCode {
    /// The organisation the code was validated for.
    pub organization_name: String,
    /// How many customers the code may qualify.
    pub max_creates: i64,
    /// A chosen validation id (digits); generated when absent.
    pub validation_id: Option<String>,
}

/// A reviewer's decision on a qualification in review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewDecision {
    /// Approved or Denied.
    pub decision: crate::enums::VettingStatus,
    /// The documented reason of a denial (in its documented spelling).
    pub reason: Option<String>,
    /// The vetting round the reviewer decides, when given.
    pub round: Option<i64>,
}

impl ReviewDecision {
    /// Parses `{"decision": "Approved" | "Denied", "reason": "..."}`; a denial needs a documented
    /// reason, an approval takes none.
    pub fn parse(body: &Value) -> Result<Self, ApiFault> {
        use crate::enums::{VettingStatus, documented_vetting_reason};
        let Value::Object(map) = body else {
            return Err(ApiFault::invalid_input(
                "The request body must be an object such as {\"decision\": \"Denied\", \
                 \"reason\": \"Not an Academic Domain\"}.",
            ));
        };
        let object = LooseObject::new(map);
        let raw = object
            .get_str("decision")?
            .ok_or_else(|| ApiFault::property_required("decision", ": Approved or Denied."))?;
        let decision = match VettingStatus::parse_str(raw) {
            Some(d @ (VettingStatus::Approved | VettingStatus::Denied)) => d,
            _ => return Err(ApiFault::invalid_enum("decision", raw, "Approved, Denied")),
        };
        let reason = object.get_str("reason")?;
        let reason = match (decision, reason) {
            (VettingStatus::Denied, Some(r)) => Some(
                documented_vetting_reason(r)
                    .ok_or_else(|| ApiFault::undocumented_reason(Some(r)))?
                    .to_owned(),
            ),
            (VettingStatus::Denied, None) => return Err(ApiFault::undocumented_reason(None)),
            (_, Some(_)) => {
                return Err(ApiFault::invalid_input(
                    "A reason is only given with a Denied decision.",
                )
                .with_param("field", "reason"));
            }
            (_, None) => None,
        };
        let round = match object.get("round")? {
            None => None,
            Some(v) => Some(v.as_i64().filter(|r| *r >= 1).ok_or_else(|| {
                ApiFault::invalid_input("The property 'round' must be a positive integer.")
                    .with_param("field", "round")
            })?),
        };
        Ok(ReviewDecision {
            decision,
            reason,
            round,
        })
    }
}

/// A webhook registration request: `{"WebhookUrl": "...", "WebhookEvents": ["..."]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRegistrationInput {
    /// Where events go (http or https).
    pub url: String,
    /// The events, in their canonical spelling, without duplicates.
    pub events: Vec<String>,
}

impl WebhookRegistrationInput {
    /// Parses a registration body; `supported` lists the event names that can be registered.
    pub fn parse(body: &Value, supported: &[&str]) -> Result<Self, ApiFault> {
        let Value::Object(map) = body else {
            return Err(ApiFault::invalid_input(
                "The request body must be an object such as {\"WebhookUrl\": \"https://…\", \
                 \"WebhookEvents\": [\"test-created\"]}.",
            ));
        };
        let object = LooseObject::new(map);
        let url = object
            .get_str("webhookUrl")?
            .ok_or_else(|| ApiFault::property_required("WebhookUrl", "."))?
            .trim()
            .to_owned();
        check_webhook_url(&url)?;
        let raw_events = match object.get("webhookEvents")? {
            Some(Value::Array(items)) => items,
            Some(other) => {
                return Err(ApiFault::invalid_input(format!(
                    "The property 'WebhookEvents' must be an array of event names, not {}.",
                    json_type(other)
                )));
            }
            None => {
                return Err(ApiFault::property_required(
                    "WebhookEvents",
                    &format!("; supported events: {}.", supported.join(", ")),
                ));
            }
        };
        let mut events: Vec<String> = Vec::new();
        for item in raw_events {
            let name = item.as_str().unwrap_or_default();
            let known = supported
                .iter()
                .find(|s| s.eq_ignore_ascii_case(name.trim()))
                .ok_or_else(|| {
                    ApiFault::invalid_enum(
                        "WebhookEvents",
                        &truncate(&item.to_string(), 80),
                        &supported.join(", "),
                    )
                })?;
            if !events.iter().any(|e| e == known) {
                events.push((*known).to_owned());
            }
        }
        if events.is_empty() {
            return Err(ApiFault::invalid_input(format!(
                "'WebhookEvents' is empty; register at least one of: {}.",
                supported.join(", ")
            )));
        }
        Ok(WebhookRegistrationInput { url, events })
    }
}

/// The pattern the OpenAPI document gives webhook URLs: an absolute http or https URL of a
/// named host and a plain path. [`WebhookRegistrationInput::parse`] accepts more (ports, IPv6
/// hosts, queries).
pub const WEBHOOK_URL_PATTERN: &str = r"^https?://[A-Za-z0-9.-]+(/[A-Za-z0-9._~/-]*)?$";

fn check_webhook_url(url: &str) -> Result<(), ApiFault> {
    let invalid = |why: &str| {
        ApiFault::invalid_input(format!(
            "The WebhookUrl '{}' is not usable: {why}.",
            truncate(url, 120)
        ))
        .with_param("field", "WebhookUrl")
    };
    if url.chars().count() > MAX_WEBHOOK_URL_CHARS {
        return Err(invalid(&format!(
            "it is longer than {MAX_WEBHOOK_URL_CHARS} characters"
        )));
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return Err(invalid("it must be an absolute http:// or https:// URL"));
    };
    // Checked before anything that would echo the URL back: it holds a password.
    if rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default()
        .contains('@')
    {
        return Err(ApiFault::invalid_input(
            "The WebhookUrl must not carry a user name or password ('user:password@host'). \
             pcq signs every event in its Authorization header, and receivers authenticate \
             pcq by that signature; register the URL without credentials.",
        )
        .with_param("field", "WebhookUrl"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("it contains spaces or control characters"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let Some((host, after)) = bracketed.split_once(']') else {
            return Err(invalid("its IPv6 address is missing the closing ']'"));
        };
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| invalid("only a port may follow the bracketed IPv6 address"))?,
            ),
        };
        (host, port)
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err(invalid("it has no host"));
    }
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| (1..=65_535).contains(&p));
        if !valid {
            return Err(invalid("its port must be a number from 1 to 65535"));
        }
    }
    Ok(())
}

impl NewValidationCode {
    /// Parses `{"organizationName": "...", "maxCreates": 5, "validationId": "123456"?}`.
    pub fn parse(body: &Value) -> Result<Self, ApiFault> {
        let Value::Object(map) = body else {
            return Err(ApiFault::invalid_input(format!(
                "The request body must be an object such as {{\"organizationName\": \"Contoso\", \
                 \"maxCreates\": 5}}, not {}.",
                json_type(body)
            )));
        };
        let object = LooseObject::new(map);
        let organization_name = object
            .get_str("organizationName")?
            .ok_or_else(|| ApiFault::property_required("organizationName", "."))?
            .trim()
            .to_owned();
        if organization_name.chars().count() > MAX_ORGANIZATION_NAME_CHARS {
            return Err(ApiFault::invalid_input(format!(
                "The organizationName is longer than {MAX_ORGANIZATION_NAME_CHARS} characters."
            )));
        }
        let max_creates = match object.get("maxCreates")? {
            None => DEFAULT_MAX_CREATES,
            Some(v) => v
                .as_i64()
                .filter(|n| (1..=MAX_CREATES_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiFault::invalid_input(format!(
                        "The property 'maxCreates' must be an integer from 1 to {MAX_CREATES_LIMIT}."
                    ))
                    .with_param("field", "maxCreates")
                })?,
        };
        let validation_id = match object.get("validationId")? {
            None => None,
            Some(Value::String(s)) => Some(s.trim().to_owned()),
            Some(Value::Number(n)) if n.is_u64() => Some(n.to_string()),
            Some(other) => {
                return Err(ApiFault::invalid_input(format!(
                    "The property 'validationId' must be a string of digits, not {}.",
                    json_type(other)
                )));
            }
        };
        if let Some(id) = &validation_id {
            if id.is_empty()
                || id.len() > MAX_VALIDATION_ID_DIGITS
                || !id.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(ApiFault::invalid_input(format!(
                    "The property 'validationId' must be 1 to {MAX_VALIDATION_ID_DIGITS} digits."
                ))
                .with_param("field", "validationId"));
            }
        }
        Ok(NewValidationCode {
            organization_name,
            max_creates,
            validation_id,
        })
    }
}

// What a client sends: the builders below make the request values the parsers above read, and
// `to_json` writes the body a client posts (camelCase keys, absent values left out), so that a
// client and the server share one type per request and `parse(&x.to_json()) == x` holds.

impl QualificationRequest {
    /// An Education request with its segment (required under the 2023 contract).
    pub fn education(segment: EducationSegment) -> Self {
        QualificationRequest {
            qualification: Qualification::Education,
            education_segment: Some(segment),
            website: None,
            validation_code: None,
        }
    }

    /// An Education request without a segment, as the 2021 contract allows.
    pub fn education_without_segment() -> Self {
        QualificationRequest {
            education_segment: None,
            ..Self::education(EducationSegment::K12)
        }
    }

    /// A Government Community Cloud request with the partner's validation code.
    pub fn gcc(validation_code: impl Into<String>) -> Self {
        QualificationRequest {
            qualification: Qualification::GovernmentCommunityCloud,
            education_segment: None,
            website: None,
            validation_code: Some(validation_code.into()),
        }
    }

    /// A State Owned Entity request.
    pub fn state_owned_entity() -> Self {
        QualificationRequest {
            qualification: Qualification::StateOwnedEntity,
            education_segment: None,
            website: None,
            validation_code: None,
        }
    }

    /// Adds the education entity's website (kept for Education only).
    #[must_use]
    pub fn website(mut self, website: impl Into<String>) -> Self {
        self.website = Some(website.into());
        self
    }

    /// The POST body of this request:
    /// `{"qualification", "educationSegment"?, "website"?, "validationCode"?}`.
    pub fn to_json(&self) -> Value {
        let mut body = Map::new();
        body.insert(
            "qualification".to_owned(),
            Value::from(self.qualification.as_str()),
        );
        if let Some(segment) = self.education_segment {
            body.insert("educationSegment".to_owned(), Value::from(segment.as_str()));
        }
        if let Some(website) = &self.website {
            body.insert("website".to_owned(), Value::from(website.as_str()));
        }
        if let Some(code) = &self.validation_code {
            body.insert("validationCode".to_owned(), Value::from(code.as_str()));
        }
        Value::Object(body)
    }
}

impl NewCustomer {
    /// A customer with only its domain (e.g. `contoso.onmicrosoft.com`); the server checks it
    /// and lower-cases it.
    pub fn new(domain: impl Into<String>) -> Self {
        NewCustomer {
            domain: domain.into(),
            company_name: None,
            company_profile: Map::new(),
            billing_profile: None,
        }
    }

    /// Sets the company name.
    #[must_use]
    pub fn company_name(mut self, name: impl Into<String>) -> Self {
        self.company_name = Some(name.into());
        self
    }

    /// Adds a further company-profile property, kept as sent (camelCase key).
    #[must_use]
    pub fn company_profile_property(mut self, key: impl Into<String>, value: Value) -> Self {
        self.company_profile.insert(key.into(), value);
        self
    }

    /// Sets the billing profile (`email`, `culture`, `language`, `companyName`,
    /// `defaultAddress`, …), kept as sent.
    #[must_use]
    pub fn billing_profile(mut self, profile: Map<String, Value>) -> Self {
        self.billing_profile = Some(profile);
        self
    }

    /// The POST body: `{"companyProfile": {"domain", "companyName"?, …}, "billingProfile"?}`.
    pub fn to_json(&self) -> Value {
        let mut company = self.company_profile.clone();
        company.insert("domain".to_owned(), Value::from(self.domain.as_str()));
        if let Some(name) = &self.company_name {
            company.insert("companyName".to_owned(), Value::from(name.as_str()));
        }
        let mut body = Map::new();
        body.insert("companyProfile".to_owned(), Value::Object(company));
        if let Some(billing) = &self.billing_profile {
            body.insert("billingProfile".to_owned(), Value::Object(billing.clone()));
        }
        Value::Object(body)
    }
}

impl NewValidationCode {
    /// A code for `organization_name` that may qualify `max_creates` customers; its digits are
    /// chosen by the server unless [`NewValidationCode::validation_id`] sets them.
    pub fn new(organization_name: impl Into<String>, max_creates: i64) -> Self {
        NewValidationCode {
            organization_name: organization_name.into(),
            max_creates,
            validation_id: None,
        }
    }

    /// Chooses the code's digits.
    #[must_use]
    pub fn validation_id(mut self, id: impl Into<String>) -> Self {
        self.validation_id = Some(id.into());
        self
    }

    /// The POST body: `{"organizationName", "maxCreates", "validationId"?}`.
    pub fn to_json(&self) -> Value {
        let mut body = Map::new();
        body.insert(
            "organizationName".to_owned(),
            Value::from(self.organization_name.as_str()),
        );
        body.insert("maxCreates".to_owned(), Value::from(self.max_creates));
        if let Some(id) = &self.validation_id {
            body.insert("validationId".to_owned(), Value::from(id.as_str()));
        }
        Value::Object(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn parse(body: Value) -> Result<QualificationRequest, ApiFault> {
        QualificationRequest::parse(&body, None, Contract::V2021)
    }

    #[test]
    fn client_built_requests_parse_back_to_themselves() {
        let requests = [
            QualificationRequest::education(EducationSegment::HigherEducation)
                .website("https://contoso.edu"),
            QualificationRequest::education_without_segment(),
            QualificationRequest::gcc("482913"),
            QualificationRequest::state_owned_entity(),
        ];
        for request in requests {
            let contract = if request.qualification == Qualification::Education
                && request.education_segment.is_none()
            {
                Contract::V2021
            } else {
                Contract::V2023
            };
            let parsed = QualificationRequest::parse(&request.to_json(), None, contract);
            assert_eq!(parsed.unwrap(), request);
        }
        assert_eq!(
            QualificationRequest::gcc("1").to_json(),
            json!({"qualification": "GovernmentCommunityCloud", "validationCode": "1"})
        );

        let mut billing = Map::new();
        billing.insert("email".to_owned(), json!("it@contoso.example"));
        let customer = NewCustomer::new("contoso.onmicrosoft.com")
            .company_name("Contoso")
            .company_profile_property("culture", json!("en-US"))
            .billing_profile(billing);
        assert_eq!(NewCustomer::parse(&customer.to_json()).unwrap(), customer);
        assert_eq!(
            NewCustomer::new("a.example").to_json(),
            json!({"companyProfile": {"domain": "a.example"}})
        );

        let code = NewValidationCode::new("Contoso Gov", 3).validation_id("123456");
        assert_eq!(NewValidationCode::parse(&code.to_json()).unwrap(), code);
    }

    #[test]
    fn seed_and_sdk_bodies_parse() {
        let edu = parse(json!({"Qualification": "Education"})).unwrap();
        assert_eq!(edu.qualification, Qualification::Education);

        let net_sdk = parse(json!({"Qualification": "education", "VettingStatus": null,
            "VettingReason": null, "VettingCreateDate": null}))
        .unwrap();
        assert_eq!(net_sdk.qualification, Qualification::Education);

        assert_eq!(
            parse(json!({"qualification": 1})).unwrap().qualification,
            Qualification::Education
        );
        assert_eq!(
            parse(json!("Education")).unwrap().qualification,
            Qualification::Education
        );
        assert_eq!(
            parse(json!(4)).unwrap().qualification,
            Qualification::StateOwnedEntity
        );
    }

    #[test]
    fn current_contract_bodies_parse() {
        let req = QualificationRequest::parse(
            &json!({"qualification": "Education", "educationSegment": "HigherEducation",
                    "website": "contoso.edu"}),
            None,
            Contract::V2023,
        )
        .unwrap();
        assert_eq!(
            req.education_segment,
            Some(EducationSegment::HigherEducation)
        );
        assert_eq!(req.website.as_deref(), Some("contoso.edu"));

        let gcc =
            parse(json!({"qualification": "GovernmentCommunityCloud", "validationCode": "123456"}))
                .unwrap();
        assert_eq!(gcc.validation_code.as_deref(), Some("123456"));
        let numeric =
            parse(json!({"qualification": "GovernmentCommunityCloud", "validationCode": 123456}))
                .unwrap();
        assert_eq!(numeric.validation_code.as_deref(), Some("123456"));
    }

    #[test]
    fn query_code_is_the_older_contract() {
        let gcc = QualificationRequest::parse(
            &json!({"qualification": "government_community_cloud"}),
            Some("987654"),
            Contract::V2021,
        )
        .unwrap();
        assert_eq!(gcc.validation_code.as_deref(), Some("987654"));

        // Education ignores a code, as in the seed request example.
        let edu = QualificationRequest::parse(
            &json!({"Qualification": "Education"}),
            Some("<validation-code>"),
            Contract::V2021,
        )
        .unwrap();
        assert_eq!(edu.validation_code, None);

        let mismatch = QualificationRequest::parse(
            &json!({"qualification": "GovernmentCommunityCloud", "validationCode": "1"}),
            Some("2"),
            Contract::V2021,
        )
        .unwrap_err();
        assert_eq!(mismatch.error_name, "ValidationCodeMismatch");
    }

    #[test]
    fn rules_of_the_contract_generations() {
        let body = json!({"qualification": "Education"});
        assert!(QualificationRequest::parse(&body, None, Contract::V2021).is_ok());
        let fault = QualificationRequest::parse(&body, None, Contract::V2023).unwrap_err();
        assert_eq!((fault.status, fault.code), (400, 800002));
        assert_eq!(fault.error_name, "EducationSegmentRequired");

        // A present segment is validated even when not required.
        let fault =
            parse(json!({"qualification": "Education", "educationSegment": "Kindergarten"}))
                .unwrap_err();
        assert_eq!(fault.code, 900126);
        let fault =
            parse(json!({"qualification": "StateOwnedEntity", "educationSegment": 7})).unwrap_err();
        assert_eq!(fault.code, 900126);
    }

    #[test]
    fn unsettable_and_missing_values() {
        for (body, code) in [
            (json!({"qualification": "None"}), 900126),
            (json!({"qualification": "Nonprofit"}), 900126),
            (json!({"qualification": 2}), 900126),
            (json!({"qualification": "Bogus"}), 900126),
            (json!({}), 800002),
            (json!({"qualification": null}), 800002),
            (json!(null), 800002),
            (json!([{"qualification": "Education"}]), 800002),
            (json!(true), 800002),
            (json!({"qualification": "GovernmentCommunityCloud"}), 800002),
            (json!({"qualification": "Education", "website": 5}), 800002),
            (
                json!({"qualification": "GovernmentCommunityCloud", "validationCode": {"a": 1}}),
                800002,
            ),
        ] {
            let fault = parse(body.clone()).unwrap_err();
            assert_eq!((fault.status, fault.code), (400, code), "{body}");
        }
        let fault = parse(json!({"qualification": "Nonprofit"})).unwrap_err();
        assert!(fault.description.contains("Nonprofit"));
    }

    #[test]
    fn conflicting_spellings_of_one_key_are_rejected() {
        let fault =
            parse(json!({"qualification": "Education", "Qualification": "StateOwnedEntity"}))
                .unwrap_err();
        assert_eq!(fault.code, 800002);
        // The same value twice is harmless, and a null twin is ignored.
        assert!(parse(json!({"qualification": "Education", "QUALIFICATION": "Education"})).is_ok());
        assert!(parse(json!({"qualification": "Education", "Qualification": null})).is_ok());
    }

    #[test]
    fn customer_bodies_in_both_cases() {
        let pascal = NewCustomer::parse(&json!({
            "Id": null,
            "CompanyProfile": {"Domain": "XYZ.ccsctp.net", "TenantId": null},
            "BillingProfile": {"Culture": "EN-US", "Email": "test@outlook.com", "Language": "en",
                "CompanyName": "test company", "DefaultAddress": {"FirstName": "Test", "City": "Redmond",
                "Region": null}, "Attributes": {"ObjectType": "CustomerBillingProfile"}}
        }))
        .unwrap();
        assert_eq!(pascal.domain, "xyz.ccsctp.net");
        assert_eq!(pascal.company_name.as_deref(), Some("test company"));
        let billing = pascal.billing_profile.unwrap();
        assert_eq!(billing["email"], "test@outlook.com");
        assert_eq!(billing["defaultAddress"]["firstName"], "Test");
        assert!(billing["defaultAddress"].get("region").is_none());
        assert!(billing.get("attributes").is_none());

        let camel = NewCustomer::parse(
            &json!({"companyProfile": {"domain": "contoso.onmicrosoft.com",
            "companyName": "Contoso"}}),
        )
        .unwrap();
        assert_eq!(camel.company_name.as_deref(), Some("Contoso"));
        assert!(camel.billing_profile.is_none());
    }

    #[test]
    fn customer_body_errors() {
        for body in [
            json!({}),
            json!({"companyProfile": {}}),
            json!({"companyProfile": "x"}),
            json!({"companyProfile": {"domain": "nodot"}}),
            json!({"companyProfile": {"domain": "bad_chars.com"}}),
            json!({"companyProfile": {"domain": "-lead.com"}}),
            json!({"companyProfile": {"domain": 42}}),
            json!([]),
        ] {
            let fault = NewCustomer::parse(&body).unwrap_err();
            assert_eq!((fault.status, fault.code), (400, 800002), "{body}");
        }
    }

    #[test]
    fn customer_fields_are_bounded_and_named() {
        let with = |path: &[&str], value: Value| {
            let mut body = json!({"companyProfile": {"domain": "bounded.example.com"}});
            let (last, parents) = path.split_last().unwrap();
            let mut at = &mut body;
            for key in parents {
                at = at
                    .as_object_mut()
                    .unwrap()
                    .entry(*key)
                    .or_insert_with(|| json!({}));
            }
            at.as_object_mut()
                .unwrap()
                .insert((*last).to_owned(), value);
            NewCustomer::parse(&body)
        };
        for (path, limits) in [
            (&["companyProfile"][..], COMPANY_PROFILE_TEXT),
            (&["billingProfile"][..], BILLING_PROFILE_TEXT),
            (&["billingProfile", "defaultAddress"][..], ADDRESS_TEXT),
        ] {
            for limit in limits {
                let mut at = path.to_vec();
                at.push(limit.name);
                let field = at.join(".");
                assert!(
                    with(&at, json!("ß".repeat(limit.max_chars))).is_ok(),
                    "{field}"
                );
                for long in ["ß", " "] {
                    let fault = with(&at, json!(long.repeat(limit.max_chars + 1))).unwrap_err();
                    assert_eq!(fault.parameters["field"], field);
                    assert_eq!(fault.parameters["maxLength"], limit.max_chars.to_string());
                }
                let fault = with(&at, json!(7)).unwrap_err();
                assert_eq!(fault.parameters["field"], field);
            }
        }
        // Other properties: their keys and values, up to the bound exactly.
        let note = |len: usize| json!("n".repeat(len));
        let exact = MAX_PROFILE_OTHER_BYTES - "\"note\"\"\"".len();
        for path in [
            &["companyProfile", "note"][..],
            &["billingProfile", "note"][..],
            &["billingProfile", "defaultAddress", "note"][..],
        ] {
            assert!(with(path, note(exact)).is_ok(), "{path:?}");
            let fault = with(path, note(exact + 1)).unwrap_err();
            assert_eq!(fault.parameters["field"], path[0]);
        }
        let fault = with(&["billingProfile", "defaultAddress"], json!("x")).unwrap_err();
        assert_eq!(fault.parameters["field"], "billingProfile.defaultAddress");
    }

    #[test]
    fn contract_years_as_strings_or_numbers() {
        for (raw, want) in [
            (json!("2021"), Contract::V2021),
            (json!(2023), Contract::V2023),
            (json!("2023"), Contract::V2023),
        ] {
            assert_eq!(serde_json::from_value::<Contract>(raw).unwrap(), want);
        }
        for bad in [json!("1999"), json!(2022), json!(-1), json!(true)] {
            assert!(serde_json::from_value::<Contract>(bad).is_err());
        }
        assert_eq!(
            serde_json::to_value(Contract::V2023).unwrap(),
            json!("2023")
        );
    }

    #[test]
    fn review_decisions() {
        use crate::enums::VettingStatus;
        let d = ReviewDecision::parse(&json!({"decision": "approved"})).unwrap();
        assert_eq!(
            (d.decision, d.reason, d.round),
            (VettingStatus::Approved, None, None)
        );
        assert_eq!(
            ReviewDecision::parse(&json!({"decision": "approved", "round": 2}))
                .unwrap()
                .round,
            Some(2)
        );
        assert!(ReviewDecision::parse(&json!({"decision": "approved", "round": 0})).is_err());
        let d = ReviewDecision::parse(
            &json!({"Decision": "Denied", "Reason": "not an academic domain"}),
        )
        .unwrap();
        assert_eq!(d.reason.as_deref(), Some("Not an Academic Domain"));
        for (body, name) in [
            (json!({"decision": "Denied"}), "UndocumentedVettingReason"),
            (
                json!({"decision": "Denied", "reason": "we felt like it"}),
                "UndocumentedVettingReason",
            ),
            (
                json!({"decision": "Approved", "reason": "Not an Academic Domain"}),
                "InvalidRequestInput",
            ),
            (json!({"decision": "InReview"}), "InvalidEnumValue"),
            (json!({}), "InvalidRequestInput"),
            (json!("Approved"), "InvalidRequestInput"),
        ] {
            let fault = ReviewDecision::parse(&body).unwrap_err();
            assert_eq!(
                (fault.status, fault.error_name.as_ref()),
                (400, name),
                "{body}"
            );
        }
    }

    #[test]
    fn webhook_registrations() {
        let events = ["test-created", "customer-qualification-updated"];
        let r = WebhookRegistrationInput::parse(
            &json!({"WebhookUrl": " https://hooks.example.com/pc ", "WebhookEvents": ["Test-Created", "test-created"]}),
            &events,
        )
        .unwrap();
        assert_eq!(r.url, "https://hooks.example.com/pc");
        assert_eq!(r.events, ["test-created"]);
        assert!(
            WebhookRegistrationInput::parse(
                &json!({"webhookUrl": "http://127.0.0.1:9/x", "webhookEvents": events}),
                &events
            )
            .is_ok()
        );
        for good in [
            "HTTPS://Hooks.Example.com:65535/pc",
            "https://hooks.example.com/pc?x=1&user=a@b",
            "https://[2001:db8::1]/pc",
        ] {
            assert!(
                WebhookRegistrationInput::parse(
                    &json!({"webhookUrl": good, "webhookEvents": events}),
                    &events
                )
                .is_ok(),
                "{good}"
            );
        }
        assert!(
            WebhookRegistrationInput::parse(
                &json!({"webhookUrl": "http://[::1]:9/x", "webhookEvents": events}),
                &events
            )
            .is_ok()
        );
        for bad in [
            json!({"WebhookEvents": ["test-created"]}),
            json!({"WebhookUrl": "ftp://x/y", "WebhookEvents": ["test-created"]}),
            json!({"WebhookUrl": "https:///nohost", "WebhookEvents": ["test-created"]}),
            json!({"WebhookUrl": "https://a b/", "WebhookEvents": ["test-created"]}),
            json!({"WebhookUrl": "https://x/", "WebhookEvents": []}),
            json!({"WebhookUrl": "https://x/", "WebhookEvents": ["subscription-updated"]}),
            json!({"WebhookUrl": "https://x/", "WebhookEvents": "test-created"}),
            json!({"WebhookUrl": "https://x/", "WebhookEvents": [5]}),
            json!({"WebhookUrl": "https://x:0/", "WebhookEvents": ["test-created"]}),
            json!({"WebhookUrl": "https://x:65536/", "WebhookEvents": ["test-created"]}),
            json!({"WebhookUrl": "https://x:/", "WebhookEvents": ["test-created"]}),
            json!({"WebhookUrl": "https://x:+80/", "WebhookEvents": ["test-created"]}),
            json!({"WebhookUrl": "https://[::1/", "WebhookEvents": ["test-created"]}),
            json!({"WebhookUrl": "https://[::1]x/", "WebhookEvents": ["test-created"]}),
            json!({"WebhookUrl": "https://user:secret@x/", "WebhookEvents": ["test-created"]}),
            json!({"WebhookUrl": "http://user@x/hooks", "WebhookEvents": ["test-created"]}),
            json!({"WebhookUrl": "https://:secret@x/", "WebhookEvents": ["test-created"]}),
        ] {
            let fault = WebhookRegistrationInput::parse(&bad, &events).unwrap_err();
            assert_eq!(fault.status, 400, "{bad}");
        }
    }

    #[test]
    fn validation_code_issue_bodies() {
        let code =
            NewValidationCode::parse(&json!({"organizationName": "Contoso", "maxCreates": 3}))
                .unwrap();
        assert_eq!(code.max_creates, 3);
        assert!(
            NewValidationCode::parse(&json!({"organizationName": "C", "maxCreates": 0})).is_err()
        );
        assert!(NewValidationCode::parse(&json!({"maxCreates": 3})).is_err());
        assert!(
            NewValidationCode::parse(&json!({"organizationName": "C", "validationId": "12a"}))
                .is_err()
        );
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            ".{0,20}".prop_map(Value::String),
            prop_oneof![
                Just("Education"),
                Just("GovernmentCommunityCloud"),
                Just("state_owned_entity"),
                Just("K12"),
                Just("HigherEducation"),
                Just("123456")
            ]
            .prop_map(|s| Value::String(s.to_owned())),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop_oneof![
                            Just("qualification".to_owned()),
                            Just("Qualification".to_owned()),
                            Just("educationSegment".to_owned()),
                            Just("website".to_owned()),
                            Just("validationCode".to_owned()),
                            Just("companyProfile".to_owned()),
                            Just("domain".to_owned()),
                            Just("billingProfile".to_owned()),
                            ".{0,8}"
                        ],
                        inner
                    ),
                    0..5
                )
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn parsers_never_panic_and_fail_with_client_errors(
            body in arb_json(), code in proptest::option::of(".{0,10}"), v2023 in any::<bool>()
        ) {
            let contract = if v2023 { Contract::V2023 } else { Contract::V2021 };
            if let Err(fault) = QualificationRequest::parse(&body, code.as_deref(), contract) {
                prop_assert_eq!(fault.status, 400);
            }
            if let Err(fault) = NewCustomer::parse(&body) {
                prop_assert_eq!(fault.status, 400);
            }
            if let Err(fault) = NewValidationCode::parse(&body) {
                prop_assert_eq!(fault.status, 400);
            }
            if let Err(fault) = ReviewDecision::parse(&body) {
                prop_assert_eq!(fault.status, 400);
            }
            if let Err(fault) = WebhookRegistrationInput::parse(&body, &["test-created"]) {
                prop_assert_eq!(fault.status, 400);
            }
        }

        #[test]
        fn key_case_unknown_keys_and_nulls_change_no_request(
            qualification in prop::sample::select(&[
                "Education", "education", "GOVERNMENTCOMMUNITYCLOUD", "government_community_cloud",
                "StateOwnedEntity", "state-owned-entity", "1", "3", "4",
            ][..]),
            segment in proptest::option::of(prop::sample::select(&["K12", "k-12", "higher_education"][..])),
            website in proptest::option::of("[a-z]{1,10}\\.edu"),
            code in proptest::option::of("[0-9]{6}"),
            flips in prop::collection::vec(any::<bool>(), 16),
            extra in prop::collection::vec(("[A-Za-z]{1,12}", arb_json()), 0..3),
            nulls in any::<bool>(),
        ) {
            let respell = |key: &str| -> String {
                key.chars()
                    .enumerate()
                    .map(|(j, c)| if flips[j % 16] { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
                    .collect()
            };
            let mut canonical = Map::new();
            let mut tolerant = Map::new();
            for (key, value) in [
                ("qualification", Some(qualification.to_owned())),
                ("educationSegment", segment.map(str::to_owned)),
                ("website", website),
                ("validationCode", code),
            ] {
                match value {
                    Some(v) => {
                        canonical.insert(key.to_owned(), json!(v));
                        tolerant.insert(respell(key), json!(v));
                    }
                    None if nulls => {
                        tolerant.insert(respell(key), Value::Null);
                    }
                    None => {}
                }
            }
            for (key, value) in extra {
                let known = ["qualification", "educationsegment", "website", "validationcode"];
                if !known.contains(&key.to_ascii_lowercase().as_str()) {
                    tolerant.insert(key, value);
                }
            }
            for contract in [Contract::V2021, Contract::V2023] {
                let want = QualificationRequest::parse(&Value::Object(canonical.clone()), None, contract);
                let got = QualificationRequest::parse(&Value::Object(tolerant.clone()), None, contract);
                prop_assert_eq!(got, want);
            }
        }

        #[test]
        fn customer_bodies_in_any_key_case(
            domain in "[a-z0-9]{1,12}(\\.[a-z0-9]{1,12}){1,3}",
            name in proptest::option::of("\\PC{1,40}"),
            flips in prop::collection::vec(any::<bool>(), 16),
            billing in arb_json(),
        ) {
            let respell = |key: &str| -> String {
                key.chars()
                    .enumerate()
                    .map(|(j, c)| if flips[j % 16] { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
                    .collect()
            };
            let mut company = Map::new();
            company.insert(respell("domain"), json!(domain.to_uppercase()));
            if let Some(name) = &name {
                company.insert(respell("companyName"), json!(name));
            }
            let mut body = Map::new();
            body.insert(respell("companyProfile"), Value::Object(company));
            if billing.is_object() {
                body.insert(respell("billingProfile"), billing);
            }
            let parsed = NewCustomer::parse(&Value::Object(body));
            prop_assert!(parsed.is_ok(), "{:?}", parsed);
            let parsed = parsed.unwrap_or_else(|_| unreachable!());
            prop_assert_eq!(parsed.domain, domain);
            let want_name = name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
            prop_assert_eq!(parsed.company_name.filter(|n| !n.is_empty()), want_name);
        }

        #[test]
        fn deep_nesting_huge_numbers_and_odd_text_never_panic(
            depth in 1usize..120,
            objects in any::<bool>(),
            leaf in prop_oneof![
                Just(json!(f64::MAX)),
                Just(json!(f64::MIN_POSITIVE)),
                Just(json!(u64::MAX)),
                Just(json!(i64::MIN)),
                Just(json!("\u{0}\u{0}")),
                Just(json!("\u{202e}\u{fe0f}\u{1f600}\u{10ffff}")),
                "\\PC{0,20}".prop_map(Value::String),
            ],
            place in 0usize..6,
        ) {
            let mut nested = leaf.clone();
            for _ in 0..depth {
                nested = if objects { json!({"companyProfile": nested}) } else { json!([nested]) };
            }
            let body = match place {
                0 => json!({"qualification": nested}),
                1 => json!({"qualification": "Education", "website": nested, "educationSegment": leaf}),
                2 => json!({"companyProfile": {"domain": leaf, "companyName": nested}}),
                3 => json!({"companyProfile": {"domain": "deep.example.com"}, "billingProfile": {"x": nested}}),
                4 => json!({"WebhookUrl": leaf, "WebhookEvents": [nested]}),
                _ => nested,
            };
            for outcome in [
                QualificationRequest::parse(&body, None, Contract::V2023).err(),
                NewCustomer::parse(&body).err(),
                NewValidationCode::parse(&body).err(),
                ReviewDecision::parse(&body).err(),
                WebhookRegistrationInput::parse(&body, &["test-created"]).err(),
            ]
            .into_iter()
            .flatten()
            {
                prop_assert_eq!(outcome.status, 400);
                prop_assert!(!outcome.description.is_empty());
            }
        }

        #[test]
        fn accepted_requests_are_settable(body in arb_json()) {
            if let Ok(req) = QualificationRequest::parse(&body, None, Contract::V2021) {
                prop_assert!(req.qualification.is_settable());
                prop_assert_eq!(
                    req.validation_code.is_some(),
                    req.qualification == Qualification::GovernmentCommunityCloud
                );
            }
        }
    }
}
