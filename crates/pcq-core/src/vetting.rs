//! Vetting policies: when an InReview qualification is decided, and how.
//!
//! A policy has a **mode** (when a pending qualification becomes due) and an **outcome** (what a
//! due qualification becomes). Partner Center's own behaviour is the default: `manual`, an
//! Education request stays InReview until a reviewer decides it.

use serde::{Deserialize, Serialize};

use crate::enums::{Qualification, VettingStatus, documented_vetting_reason, tolerant_enum};
use crate::limits::{MAX_ACADEMIC_SUFFIX_LEN, MAX_ACADEMIC_SUFFIXES};
use crate::time::Timestamp;

/// When a pending qualification becomes due for a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Never by itself: a reviewer decides.
    Manual,
    /// At once (by the worker, right after the request).
    Immediate,
    /// A fixed time after the request (`after`).
    After,
    /// When the customer's qualifications have been read `after_reads` times.
    AfterReads,
    /// By the worker right after the request (the request answers InReview), by the
    /// academic-domain rules (outcome `domain_rules`).
    DomainRules,
}

/// What a due qualification becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Approved.
    Approve,
    /// Denied with `deny_reason`.
    Deny,
    /// Approved when the customer's domain or website ends with an academic suffix, otherwise
    /// Denied with "Not an Academic Domain" (Education only; GCC is approved).
    DomainRules,
}

// Read from the configuration and the policy API in any case and with or without separators
// (`after_reads`, `afterReads`, `AfterReads`).
tolerant_enum!(Mode with Deserialize {
    Manual => "manual",
    Immediate => "immediate",
    After => "after",
    AfterReads => "after_reads",
    DomainRules => "domain_rules",
});

tolerant_enum!(Outcome with Deserialize {
    Approve => "approve",
    Deny => "deny",
    DomainRules => "domain_rules",
});

/// The suffixes the domain rules treat as academic, unless configured otherwise.
pub const DEFAULT_ACADEMIC_SUFFIXES: &[&str] = &[
    ".edu", ".ac.uk", ".edu.pl", ".edu.tr", ".edu.pt", ".ac.at", ".edu.au", ".ac.nz", ".ac.jp",
    ".ac.kr", ".edu.cn", ".ac.in", ".edu.in", ".edu.br", ".edu.mx", ".edu.ar", ".edu.co", ".ac.za",
    ".ac.il", ".edu.sg", ".edu.hk", ".edu.my", ".ac.id", ".ac.th", ".edu.es", ".edu.it", ".ac.be",
    ".ac.cy", ".edu.gr", ".ac.rs",
];

/// The reason the domain rules give for a denial.
pub const NOT_AN_ACADEMIC_DOMAIN: &str = "Not an Academic Domain";

/// A vetting policy. Serialises with snake_case keys (the config file's form); parsing accepts
/// any key case (`afterReads`, `after_reads`). Settings left out take their defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VettingPolicy {
    /// When pending qualifications become due.
    pub policy: Mode,
    /// Delay of the `after` mode, e.g. `72h`.
    pub after: Duration,
    /// Reads of the `after_reads` mode.
    pub after_reads: u32,
    /// What due qualifications become (ignored by `domain_rules`, which always uses the rules).
    pub outcome: Outcome,
    /// The reason of the `deny` outcome; one of the documented reasons.
    pub deny_reason: String,
    /// Suffixes the domain rules treat as academic.
    pub academic_suffixes: Vec<String>,
    /// Whether GovernmentCommunityCloud requests are vetted too (otherwise approved at once).
    pub gcc_review: bool,
}

impl Default for VettingPolicy {
    fn default() -> Self {
        VettingPolicy {
            policy: Mode::Manual,
            after: Duration::from_secs(72 * 3600),
            after_reads: 3,
            outcome: Outcome::Approve,
            deny_reason: "Not an Education Customer".to_owned(),
            academic_suffixes: DEFAULT_ACADEMIC_SUFFIXES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            gcc_review: false,
        }
    }
}

impl VettingPolicy {
    /// Checks the values serde cannot; returns the problem in words.
    pub fn validate(&mut self) -> Result<(), String> {
        match documented_vetting_reason(&self.deny_reason) {
            Some(r) => self.deny_reason = r.to_owned(),
            None => {
                return Err(format!(
                    "deny_reason '{}' is not a documented vetting reason; use one of: {}",
                    self.deny_reason,
                    crate::enums::VETTING_REASONS.join(", ")
                ));
            }
        }
        if self.policy == Mode::AfterReads && self.after_reads == 0 {
            return Err("after_reads must be at least 1".to_owned());
        }
        if self.academic_suffixes.len() > MAX_ACADEMIC_SUFFIXES {
            return Err(format!(
                "academic_suffixes has more than {MAX_ACADEMIC_SUFFIXES} entries"
            ));
        }
        for suffix in &mut self.academic_suffixes {
            let s = suffix.trim().to_ascii_lowercase();
            if s.is_empty() || s.len() > MAX_ACADEMIC_SUFFIX_LEN {
                return Err(format!(
                    "the academic suffix '{suffix}' is empty or too long"
                ));
            }
            *suffix = if s.starts_with('.') {
                s
            } else {
                format!(".{s}")
            };
        }
        Ok(())
    }

    /// This policy with the fields of a JSON object replaced (keys in any case: `afterReads`,
    /// `after_reads`), checked. Unknown keys and bad values are errors in words.
    pub fn with_changes(&self, changes: &serde_json::Value) -> Result<VettingPolicy, String> {
        let serde_json::Value::Object(changes) = changes else {
            return Err(
                "the policy must be a JSON object such as {\"policy\": \"immediate\"}".to_owned(),
            );
        };
        let serde_json::Value::Object(mut fields) =
            serde_json::to_value(self).map_err(|e| e.to_string())?
        else {
            return Err("the policy is not an object".to_owned());
        };
        let squash = |k: &str| -> String {
            k.chars()
                .filter(|c| *c != '_')
                .flat_map(char::to_lowercase)
                .collect()
        };
        for (key, value) in changes {
            let field = fields
                .keys()
                .find(|f| squash(f) == squash(key))
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "'{key}' is not a vetting policy setting; use {}",
                        fields.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                })?;
            fields.insert(field, value.clone());
        }
        let mut policy: VettingPolicy =
            serde_json::from_value(serde_json::Value::Object(fields)).map_err(|e| e.to_string())?;
        policy.validate()?;
        Ok(policy)
    }

    /// Whether a new request for `qualification` starts InReview (and gets a vetting job).
    pub fn vets(&self, qualification: Qualification) -> bool {
        match qualification {
            Qualification::Education => true,
            Qualification::GovernmentCommunityCloud => self.gcc_review,
            _ => false,
        }
    }

    /// Which pending qualifications are due at `now`: those requested at or before the first
    /// value and read at least the second number of times; `None` when none are (a reviewer
    /// decides).
    pub fn due_window(&self, now: Timestamp) -> Option<(Timestamp, i64)> {
        match self.policy {
            Mode::Manual => None,
            Mode::Immediate | Mode::DomainRules => Some((now, 0)),
            Mode::After => Some((now.plus_micros(-self.after.as_micros()), 0)),
            Mode::AfterReads => Some((
                Timestamp::from_micros(i64::MAX),
                i64::from(self.after_reads),
            )),
        }
    }

    /// Whether a pending qualification requested at `requested` and read `reads` times is due
    /// at `now`.
    pub fn is_due(&self, requested: Timestamp, reads: i64, now: Timestamp) -> bool {
        self.due_window(now)
            .is_some_and(|(by, min_reads)| requested <= by && reads >= min_reads)
    }

    /// The decision for a due qualification of a customer with `domain`, requested with
    /// `website`.
    pub fn decide(
        &self,
        qualification: Qualification,
        domain: &str,
        website: Option<&str>,
    ) -> (VettingStatus, Option<String>) {
        let outcome = if self.policy == Mode::DomainRules {
            Outcome::DomainRules
        } else {
            self.outcome
        };
        match outcome {
            Outcome::Approve => (VettingStatus::Approved, None),
            Outcome::Deny => (VettingStatus::Denied, Some(self.deny_reason.clone())),
            Outcome::DomainRules if qualification != Qualification::Education => {
                (VettingStatus::Approved, None)
            }
            Outcome::DomainRules => {
                let academic = std::iter::once(domain)
                    .chain(website.map(website_host))
                    .any(|host| self.is_academic(host));
                if academic {
                    (VettingStatus::Approved, None)
                } else {
                    (
                        VettingStatus::Denied,
                        Some(NOT_AN_ACADEMIC_DOMAIN.to_owned()),
                    )
                }
            }
        }
    }

    fn is_academic(&self, host: &str) -> bool {
        let host = format!(
            ".{}",
            host.trim().trim_end_matches('.').to_ascii_lowercase()
        );
        self.academic_suffixes
            .iter()
            .any(|s| host.ends_with(s.as_str()))
    }
}

/// The host of a website given as a bare domain or a URL (`https://www.school.edu/about`).
pub fn website_host(website: &str) -> &str {
    let rest = website.split_once("://").map_or(website, |(_, rest)| rest);
    let rest = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    rest.split(':').next().unwrap_or(rest)
}

/// The pattern the OpenAPI document gives durations: up to three units (`d`, `h`, `m`, `s`,
/// `ms`) of up to three digits each, the forms in use. [`Duration::parse`] takes longer ones too.
pub const DURATION_PATTERN: &str = r"^([0-9]{1,3}(d|h|m|s|ms)){1,3}$";

/// A length of time, written like `72h`, `90m`, `1h30m`, `45s`, `2d` or `500ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Duration(i64);

/// The longest accepted duration (about 100 years).
const MAX_DURATION_MICROS: i64 = 100 * 366 * 86_400 * 1_000_000;

impl Duration {
    /// From whole seconds.
    pub const fn from_secs(secs: i64) -> Self {
        Duration(secs * 1_000_000)
    }

    /// From microseconds.
    pub const fn from_micros(micros: i64) -> Self {
        Duration(micros)
    }

    /// In microseconds.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Parses `72h`, `1h30m`, `45s`, `2d`, `500ms` (units d, h, m, s, ms; no sign).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let text = raw.trim();
        let invalid = || {
            format!("'{text}' is not a duration; write it like 72h, 90m, 1h30m, 45s, 2d or 500ms")
        };
        if text.is_empty() {
            return Err(invalid());
        }
        let mut total: i64 = 0;
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(invalid());
            }
            let number: i64 = rest[..digits].parse().map_err(|_| invalid())?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let micros_per = match &rest[..unit_len] {
                "d" => 86_400_000_000,
                "h" => 3_600_000_000,
                "m" => 60_000_000,
                "s" => 1_000_000,
                "ms" => 1_000,
                _ => return Err(invalid()),
            };
            rest = &rest[unit_len..];
            total = number
                .checked_mul(micros_per)
                .and_then(|m| total.checked_add(m))
                .filter(|t| *t <= MAX_DURATION_MICROS)
                .ok_or_else(|| format!("'{text}' is longer than 100 years"))?;
        }
        Ok(Duration(total))
    }
}

impl std::fmt::Display for Duration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut micros = self.0;
        if micros == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("d", 86_400_000_000),
            ("h", 3_600_000_000),
            ("m", 60_000_000),
            ("s", 1_000_000),
            ("ms", 1_000),
        ] {
            if micros >= size {
                write!(f, "{}{unit}", micros / size)?;
                micros %= size;
            }
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Duration::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn durations_parse_and_print() {
        for (raw, secs) in [
            ("72h", 259_200),
            ("90m", 5_400),
            ("1h30m", 5_400),
            ("45s", 45),
            ("2d", 172_800),
            ("1d12h", 129_600),
        ] {
            assert_eq!(
                Duration::parse(raw).unwrap(),
                Duration::from_secs(secs),
                "{raw}"
            );
        }
        assert_eq!(Duration::parse("500ms").unwrap().as_micros(), 500_000);
        assert_eq!(Duration::from_secs(5_400).to_string(), "1h30m");
        assert_eq!(Duration::parse("72h").unwrap().to_string(), "3d");
        for bad in [
            "",
            "h",
            "72",
            "72x",
            "-1h",
            "1.5h",
            "9999999999999999999d",
            "40000d",
        ] {
            assert!(Duration::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn due_times_by_mode() {
        let t = Timestamp::from_micros(1_000_000_000);
        let later = t.plus_micros(60_000_000);
        let mut p = VettingPolicy::default();
        assert!(!p.is_due(t, 99, later));
        p.policy = Mode::Immediate;
        assert!(p.is_due(t, 0, t));
        p.policy = Mode::After;
        p.after = Duration::from_secs(60);
        assert!(!p.is_due(t, 0, later.plus_micros(-1)));
        assert!(p.is_due(t, 0, later));
        p.policy = Mode::AfterReads;
        p.after_reads = 2;
        assert!(!p.is_due(t, 1, later));
        assert!(p.is_due(t, 2, t));
    }

    #[test]
    fn missing_settings_take_their_defaults() {
        let p: VettingPolicy =
            serde_json::from_value(serde_json::json!({"policy": "immediate"})).unwrap();
        assert_eq!(
            p,
            VettingPolicy {
                policy: Mode::Immediate,
                ..VettingPolicy::default()
            }
        );
    }

    #[test]
    fn domain_rules_look_at_domain_and_website() {
        let mut p = VettingPolicy {
            policy: Mode::DomainRules,
            ..VettingPolicy::default()
        };
        p.validate().unwrap();
        let edu = Qualification::Education;
        assert_eq!(
            p.decide(edu, "school.example.edu", None).0,
            VettingStatus::Approved
        );
        assert_eq!(p.decide(edu, "uni.ac.uk", None).0, VettingStatus::Approved);
        assert_eq!(
            p.decide(
                edu,
                "contoso.onmicrosoft.com",
                Some("https://www.contoso.edu.pl/about")
            )
            .0,
            VettingStatus::Approved
        );
        let denied = p.decide(edu, "contoso.onmicrosoft.com", Some("contoso.com"));
        assert_eq!(
            denied,
            (
                VettingStatus::Denied,
                Some(NOT_AN_ACADEMIC_DOMAIN.to_owned())
            )
        );
        // A suffix matches whole labels only.
        assert_eq!(p.decide(edu, "notedu", None).0, VettingStatus::Denied);
        assert_eq!(p.decide(edu, "fakeedu.com", None).0, VettingStatus::Denied);
        assert_eq!(
            p.decide(Qualification::GovernmentCommunityCloud, "agency.gov", None)
                .0,
            VettingStatus::Approved
        );
    }

    #[test]
    fn deny_outcome_uses_a_documented_reason() {
        let mut p = VettingPolicy {
            policy: Mode::Immediate,
            outcome: Outcome::Deny,
            deny_reason: "not an eligible museum".into(),
            ..VettingPolicy::default()
        };
        p.validate().unwrap();
        assert_eq!(
            p.decide(Qualification::Education, "x.edu", None),
            (VettingStatus::Denied, Some("Not an eligible Museum".into()))
        );
        let mut bad = VettingPolicy {
            deny_reason: "because".into(),
            ..VettingPolicy::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn changes_apply_in_any_key_case_and_are_checked() {
        let base = VettingPolicy::default();
        let p = base
            .with_changes(
                &serde_json::json!({"policy": "afterReads", "afterReads": 2, "Outcome": "DENY"}),
            )
            .unwrap();
        assert_eq!(
            (p.policy, p.after_reads, p.outcome),
            (Mode::AfterReads, 2, Outcome::Deny)
        );
        assert_eq!(p.academic_suffixes, base.academic_suffixes);
        let p = base
            .with_changes(&serde_json::json!({"policy": "after", "after": "90m"}))
            .unwrap();
        assert_eq!(p.after, Duration::from_secs(5400));
        for bad in [
            serde_json::json!({"policy": "sometimes"}),
            serde_json::json!({"after": "soon"}),
            serde_json::json!({"colour": "red"}),
            serde_json::json!({"deny_reason": "because"}),
            serde_json::json!({"policy": "after_reads", "after_reads": 0}),
            serde_json::json!([]),
        ] {
            assert!(base.with_changes(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn modes_and_outcomes_read_in_any_spelling() {
        for (raw, want) in [
            ("after_reads", Mode::AfterReads),
            ("afterReads", Mode::AfterReads),
            ("AfterReads", Mode::AfterReads),
            ("AFTER-READS", Mode::AfterReads),
            ("after reads", Mode::AfterReads),
            (" manual ", Mode::Manual),
            ("DomainRules", Mode::DomainRules),
        ] {
            assert_eq!(
                serde_json::from_value::<Mode>(serde_json::json!(raw)).unwrap(),
                want,
                "{raw}"
            );
        }
        assert_eq!(
            Outcome::from_name("DOMAIN_rules"),
            Some(Outcome::DomainRules)
        );
        // Whitespace other than spaces is not trimmed.
        assert_eq!(Mode::from_name("\tmanual"), None);
        let err = serde_json::from_value::<Mode>(serde_json::json!("sometimes")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'sometimes' is not one of manual, immediate, after, after_reads, domain_rules"
        );
        let err = serde_json::from_value::<Outcome>(serde_json::json!("maybe")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'maybe' is not one of approve, deny, domain_rules"
        );
        for mode in Mode::ALL {
            assert_eq!(
                serde_json::to_value(mode).unwrap(),
                serde_json::json!(mode.as_str())
            );
        }
        for outcome in Outcome::ALL {
            assert_eq!(
                serde_json::to_value(outcome).unwrap(),
                serde_json::json!(outcome.as_str())
            );
        }
    }

    #[test]
    fn website_hosts() {
        assert_eq!(website_host("contoso.edu"), "contoso.edu");
        assert_eq!(
            website_host("https://www.contoso.edu/a?b#c"),
            "www.contoso.edu"
        );
        assert_eq!(website_host("http://user@host.ac.uk:8080/x"), "host.ac.uk");
    }

    proptest! {
        #[test]
        fn duration_parsing_never_panics(s in ".{0,20}") {
            let _ = Duration::parse(&s);
        }

        #[test]
        fn durations_round_trip(secs in 0i64..10_000_000) {
            let d = Duration::from_secs(secs);
            prop_assert_eq!(Duration::parse(&d.to_string()).unwrap(), d);
        }

        #[test]
        fn domain_rules_never_panic(domain in ".{0,40}", site in proptest::option::of(".{0,40}")) {
            let p = VettingPolicy { policy: Mode::DomainRules, ..VettingPolicy::default() };
            let _ = p.decide(Qualification::Education, &domain, site.as_deref());
        }
    }
}
