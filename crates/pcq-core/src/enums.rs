//! The enumerations of the qualification API and their tolerant parsing.
//!
//! Real clients write enum values in several forms: PascalCase (`GovernmentCommunityCloud`, the
//! PowerShell module), JScript case with underscores (`government_community_cloud`, the .NET SDK's
//! converter), all lower case (`governmentcommunitycloud`, the legacy documentation) and, for the
//! legacy endpoint and one localised page, the integer value. All of them are accepted; responses
//! always use PascalCase.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fault::ApiFault;

/// Whether `c` may stand between the words of a name (`after_reads`, `K-12`, `In Review`).
fn is_separator(c: &char) -> bool {
    matches!(c, '_' | '-' | ' ')
}

/// `name` lower-cased, without separators: the form every spelling of a name compares in.
fn squashed(name: &str) -> impl Iterator<Item = char> + '_ {
    name.chars()
        .filter(|c| !is_separator(c))
        .flat_map(char::to_lowercase)
}

/// Whether `raw` spells `canonical` (a member name, PascalCase or snake_case) in any case, with
/// or without `_`, `-` and spaces between its words. Trims nothing. Allocates nothing: stored
/// values are parsed with it on every read.
pub(crate) fn spells(raw: &str, canonical: &str) -> bool {
    raw == canonical || squashed(raw).eq(squashed(canonical))
}

/// Gives a fieldless enum its names and their tolerant parsing, the one way every enumeration
/// of pcq is read: `ALL` and `NAMES` (declaration order), `as_str` (the name it is written
/// with), `from_name` (any case, with or without separators, see [`spells`]) and `Display`.
///
/// With `with Deserialize`, the enum also deserialises from any spelling of its names, failing
/// with "'raw' is not one of name, name, …".
macro_rules! tolerant_enum {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every member, in declaration order.
            pub const ALL: [$ty; [$($name),+].len()] = [$($ty::$variant),+];

            /// The names the members are written with, in the order of `ALL`.
            pub const NAMES: [&'static str; [$($name),+].len()] = [$($name),+];

            /// The name this member is written with.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }

            /// The member `raw` names, in any case and with or without `_`, `-` and spaces
            /// between its words; `raw` is not trimmed.
            pub fn from_name(raw: &str) -> Option<Self> {
                Self::ALL
                    .into_iter()
                    .find(|member| $crate::enums::spells(raw, member.as_str()))
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
    ($ty:ident with Deserialize { $($body:tt)* }) => {
        $crate::enums::tolerant_enum!($ty { $($body)* });

        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = <String as ::serde::Deserialize>::deserialize(deserializer)?;
                $ty::from_name(&raw).ok_or_else(|| {
                    ::serde::de::Error::custom(format!(
                        "'{raw}' is not one of {}",
                        $ty::NAMES.join(", ")
                    ))
                })
            }
        }
    };
}
pub(crate) use tolerant_enum;

/// Renders a JSON value for an error description.
fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The customer qualification enum (`CustomerQualification` in the .NET SDK), with its integer
/// values 0–4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Qualification {
    /// No qualification (0).
    None,
    /// Education (1); vetted asynchronously.
    Education,
    /// Nonprofit (2); comes from the nonprofit programme, never set through the API.
    Nonprofit,
    /// Government Community Cloud (3); needs a validation code.
    GovernmentCommunityCloud,
    /// State Owned Entity (4); may stack with Education or GCC.
    StateOwnedEntity,
}

tolerant_enum!(Qualification {
    None => "None",
    Education => "Education",
    Nonprofit => "Nonprofit",
    GovernmentCommunityCloud => "GovernmentCommunityCloud",
    StateOwnedEntity => "StateOwnedEntity",
});

impl Qualification {
    /// The members a partner can set through the API.
    pub const SETTABLE: [Qualification; 3] = [
        Qualification::Education,
        Qualification::GovernmentCommunityCloud,
        Qualification::StateOwnedEntity,
    ];

    /// The integer value of the .NET enum.
    pub fn index(self) -> i64 {
        match self {
            Qualification::None => 0,
            Qualification::Education => 1,
            Qualification::Nonprofit => 2,
            Qualification::GovernmentCommunityCloud => 3,
            Qualification::StateOwnedEntity => 4,
        }
    }

    /// Whether a partner may set this qualification.
    pub fn is_settable(self) -> bool {
        Self::SETTABLE.contains(&self)
    }

    /// Whether this qualification goes through vetting (carries `vettingStatus`).
    pub fn is_vetted(self) -> bool {
        matches!(
            self,
            Qualification::Education | Qualification::GovernmentCommunityCloud
        )
    }

    /// Parses any accepted spelling: a string in any case, with or without underscores, the
    /// integer 0–4, or that integer as a string.
    pub fn parse_value(value: &Value) -> Result<Self, ApiFault> {
        let fail = || {
            ApiFault::invalid_enum(
                "qualification",
                &describe(value),
                &Self::SETTABLE.map(Self::as_str).join(", "),
            )
        };
        match value {
            Value::String(s) => Self::parse_str(s).ok_or_else(fail),
            Value::Number(n) => n.as_i64().and_then(Self::from_index).ok_or_else(fail),
            _ => Err(fail()),
        }
    }

    /// Parses a string spelling (names or digits); `None` when it names no member.
    pub fn parse_str(raw: &str) -> Option<Self> {
        let trimmed = raw.trim();
        if let Ok(i) = trimmed.parse::<i64>() {
            return Self::from_index(i);
        }
        Self::from_name(trimmed)
    }

    /// The member with the given integer value.
    pub fn from_index(i: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|q| q.index() == i)
    }
}

/// The education segment of an Education qualification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EducationSegment {
    /// Primary and secondary education.
    K12,
    /// Universities and colleges.
    HigherEducation,
}

tolerant_enum!(EducationSegment {
    K12 => "K12",
    HigherEducation => "HigherEducation",
});

impl EducationSegment {
    /// Parses any accepted spelling (case-insensitive, with or without separators).
    pub fn parse_str(raw: &str) -> Option<Self> {
        Self::from_name(raw.trim())
    }

    /// Parses a JSON value; anything but a known string is a 900126 fault.
    pub fn parse_value(value: &Value) -> Result<Self, ApiFault> {
        value.as_str().and_then(Self::parse_str).ok_or_else(|| {
            ApiFault::invalid_enum(
                "educationSegment",
                &describe(value),
                &Self::NAMES.join(", "),
            )
        })
    }
}

/// The vetting status of an Education or GCC qualification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum VettingStatus {
    /// Waiting for a decision.
    InReview,
    /// Vetting approved the qualification.
    Approved,
    /// Vetting denied the qualification; `vettingReason` says why.
    Denied,
}

tolerant_enum!(VettingStatus {
    InReview => "InReview",
    Approved => "Approved",
    Denied => "Denied",
});

impl VettingStatus {
    /// Parses any accepted spelling.
    pub fn parse_str(raw: &str) -> Option<Self> {
        Self::from_name(raw.trim())
    }
}

/// The documented reasons a vetting decision may give for a denial.
pub const VETTING_REASONS: [&str; 7] = [
    "Not an Education Customer",
    "No longer an Education Customer",
    "Not an Education Customer - After Review",
    "Restricted being an Education Customer",
    "Not an Academic Domain",
    "Not an eligible Library",
    "Not an eligible Museum",
];

/// Finds the documented reason matching `raw` (case-insensitive), in its documented spelling.
pub fn documented_vetting_reason(raw: &str) -> Option<&'static str> {
    let wanted = raw.trim();
    VETTING_REASONS
        .into_iter()
        .find(|r| r.eq_ignore_ascii_case(wanted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn every_client_spelling_parses() {
        let cases = [
            ("Education", Qualification::Education),
            ("education", Qualification::Education),
            ("EDUCATION", Qualification::Education),
            (
                "GovernmentCommunityCloud",
                Qualification::GovernmentCommunityCloud,
            ),
            (
                "governmentCommunityCloud",
                Qualification::GovernmentCommunityCloud,
            ),
            (
                "governmentcommunitycloud",
                Qualification::GovernmentCommunityCloud,
            ),
            (
                "government_community_cloud",
                Qualification::GovernmentCommunityCloud,
            ),
            ("state_owned_entity", Qualification::StateOwnedEntity),
            ("StateOwnedEntity", Qualification::StateOwnedEntity),
            ("none", Qualification::None),
            ("Nonprofit", Qualification::Nonprofit),
            ("1", Qualification::Education),
        ];
        for (raw, want) in cases {
            assert_eq!(
                Qualification::parse_value(&json!(raw)).unwrap(),
                want,
                "{raw}"
            );
        }
        for (i, want) in Qualification::ALL.into_iter().enumerate() {
            assert_eq!(Qualification::parse_value(&json!(i)).unwrap(), want);
        }
    }

    #[test]
    fn unknown_values_name_the_value() {
        for bad in [
            json!("Bogus"),
            json!(5),
            json!(-1),
            json!(1.5),
            json!(true),
            json!(null),
        ] {
            let fault = Qualification::parse_value(&bad).unwrap_err();
            assert_eq!((fault.status, fault.code), (400, 900126), "{bad}");
        }
        let fault = Qualification::parse_value(&json!("Bogus")).unwrap_err();
        assert!(fault.description.contains("'Bogus'"));
    }

    #[test]
    fn segments_parse_tolerantly() {
        for raw in [
            "K12",
            "k12",
            "K-12",
            "HigherEducation",
            "higher_education",
            "highereducation",
        ] {
            assert!(EducationSegment::parse_str(raw).is_some(), "{raw}");
        }
        assert!(EducationSegment::parse_value(&json!("Kindergarten")).is_err());
        assert!(EducationSegment::parse_value(&json!(1)).is_err());
    }

    #[test]
    fn written_names_are_the_serde_names() {
        fn check<T>(all: &[T], name: fn(&T) -> &'static str)
        where
            T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
        {
            for member in all {
                assert_eq!(serde_json::to_value(member).unwrap(), json!(name(member)));
                assert_eq!(
                    &serde_json::from_value::<T>(json!(name(member))).unwrap(),
                    member
                );
            }
        }
        check(&Qualification::ALL, |q| q.as_str());
        check(&EducationSegment::ALL, |s| s.as_str());
        check(&VettingStatus::ALL, |s| s.as_str());
    }

    #[test]
    fn names_compare_without_case_and_separators_but_untrimmed() {
        assert!(spells(
            "GovernmentCommunityCloud",
            "GovernmentCommunityCloud"
        ));
        assert!(spells(
            "government community-cloud",
            "GovernmentCommunityCloud"
        ));
        assert!(spells("AfterReads", "after_reads"));
        assert!(spells("after-reads", "after_reads"));
        assert!(!spells("\tEducation", "Education"));
        assert!(!spells("Educatio", "Education"));
        assert_eq!(
            Qualification::from_name(" education "),
            Some(Qualification::Education)
        );
        assert_eq!(Qualification::from_name("\neducation"), None);
        assert_eq!(
            Qualification::parse_str("\neducation\t"),
            Some(Qualification::Education)
        );
    }

    #[test]
    fn reasons_match_case_insensitively() {
        assert_eq!(
            documented_vetting_reason("not an academic domain"),
            Some("Not an Academic Domain")
        );
        assert_eq!(documented_vetting_reason("because"), None);
    }

    proptest! {
        #[test]
        fn parsing_never_panics(s in ".*") {
            let _ = Qualification::parse_str(&s);
            let _ = EducationSegment::parse_str(&s);
            let _ = VettingStatus::parse_str(&s);
        }

        #[test]
        fn every_casing_and_separation_of_a_name_parses(
            i in 0usize..5,
            flips in prop::collection::vec(any::<bool>(), 32),
            separators in prop::collection::vec(prop::sample::select(&["", "", "", "_", "-", " "][..]), 32),
            pad in prop::sample::select(&["", " ", "\t", "  \n"][..]),
        ) {
            let respell = |name: &str| -> String {
                let mut out = String::from(pad);
                for (j, c) in name.chars().enumerate() {
                    out.push(if flips[j % 32] { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() });
                    out.push_str(separators[j % 32]);
                }
                out.push_str(pad);
                out
            };
            let q = Qualification::ALL[i];
            prop_assert_eq!(Qualification::parse_str(&respell(q.as_str())), Some(q));
            prop_assert_eq!(Qualification::parse_value(&json!(respell(q.as_str()))).ok(), Some(q));
            let segment = EducationSegment::ALL[i % 2];
            prop_assert_eq!(EducationSegment::parse_str(&respell(segment.as_str())), Some(segment));
            let status = VettingStatus::ALL[i % 3];
            prop_assert_eq!(VettingStatus::parse_str(&respell(status.as_str())), Some(status));
        }

        #[test]
        fn any_json_value_is_a_member_or_a_900126(
            value in prop_oneof![
                any::<String>().prop_map(Value::String),
                any::<i64>().prop_map(|n| json!(n)),
                any::<u64>().prop_map(|n| json!(n)),
                any::<f64>().prop_map(|f| json!(f)),
                "[ ]{0,2}[+-]?[0-9]{1,30}[ ]{0,2}".prop_map(Value::String),
                Just(json!([1])),
                Just(json!({"qualification": "Education"})),
            ],
        ) {
            match Qualification::parse_value(&value) {
                Ok(q) => {
                    if let Some(n) = value.as_i64() {
                        prop_assert_eq!(q.index(), n);
                    }
                }
                Err(fault) => prop_assert_eq!((fault.status, fault.code), (400, 900126)),
            }
            if let Err(fault) = EducationSegment::parse_value(&value) {
                prop_assert_eq!((fault.status, fault.code), (400, 900126));
            }
        }

        #[test]
        fn wire_names_round_trip_in_any_case(i in 0usize..5, upper in any::<bool>()) {
            let q = Qualification::ALL[i];
            let s = if upper { q.as_str().to_uppercase() } else { q.as_str().to_lowercase() };
            prop_assert_eq!(Qualification::parse_str(&s), Some(q));
        }
    }
}
