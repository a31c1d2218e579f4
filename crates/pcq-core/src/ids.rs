//! Tenant and customer identifiers.

use uuid::Uuid;

use crate::fault::ApiFault;

/// Parses a customer (tenant) id from a path segment.
///
/// Accepts the hyphenated GUID form in any case, optionally wrapped in braces, as the PowerShell
/// module's own check does (`{…}`); anything else is a 400 with code 900118.
pub fn parse_customer_id(raw: &str) -> Result<Uuid, ApiFault> {
    parse_guid(raw).ok_or_else(|| ApiFault::invalid_customer_id(raw))
}

/// Parses a hyphenated GUID, optionally wrapped in braces; `None` for anything else.
pub fn parse_guid(raw: &str) -> Option<Uuid> {
    let inner = raw.strip_prefix('{').unwrap_or(raw);
    let inner = inner.strip_suffix('}').unwrap_or(inner);
    let bytes = inner.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    let hyphens_ok = bytes
        .iter()
        .enumerate()
        .all(|(i, b)| matches!(i, 8 | 13 | 18 | 23) == (*b == b'-'));
    if !hyphens_ok {
        return None;
    }
    Uuid::try_parse(inner).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ID: &str = "0c39a7b4-2b49-4b0e-9b6c-7b5e0d3f8a11";

    #[test]
    fn accepts_plain_braced_and_upper_case() {
        let want = Uuid::parse_str(ID).unwrap();
        for raw in [
            ID.to_owned(),
            format!("{{{ID}}}"),
            ID.to_uppercase(),
            format!("{{{}}}", ID.to_uppercase()),
        ] {
            assert_eq!(parse_customer_id(&raw).unwrap(), want, "{raw}");
        }
    }

    #[test]
    fn rejects_everything_else_with_900118() {
        for raw in [
            "",
            "all",
            "0c39a7b42b494b0e9b6c7b5e0d3f8a11",
            "urn:uuid:0c39a7b4-2b49-4b0e-9b6c-7b5e0d3f8a11",
            "0c39a7b4-2b49-4b0e-9b6c-7b5e0d3f8a1",
            "0c39a7b4-2b49-4b0e-9b6c-7b5e0d3f8a11x",
            "{{0c39a7b4-2b49-4b0e-9b6c-7b5e0d3f8a11}}",
            "0c39a7b4_2b49_4b0e_9b6c_7b5e0d3f8a11",
            "zc39a7b4-2b49-4b0e-9b6c-7b5e0d3f8a11",
        ] {
            let fault = parse_customer_id(raw).unwrap_err();
            assert_eq!((fault.status, fault.code), (400, 900118), "{raw}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in ".*") {
            let _ = parse_customer_id(&s);
        }

        #[test]
        fn only_hyphenated_guids_are_accepted(
            s in prop_oneof![
                ".*",
                "\\{?[0-9a-fA-F-]{30,40}\\}?",
                "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}[\\x00-\\x7f]?",
            ],
        ) {
            if let Some(id) = parse_guid(&s) {
                let inner = s.strip_prefix('{').unwrap_or(&s);
                let inner = inner.strip_suffix('}').unwrap_or(inner);
                prop_assert_eq!(inner.to_ascii_lowercase(), id.to_string());
            } else {
                let fault = parse_customer_id(&s).unwrap_err();
                prop_assert_eq!((fault.status, fault.code), (400, 900118));
            }
        }

        #[test]
        fn guids_in_mixed_case_parse(bytes in any::<[u8; 16]>(), flips in any::<[bool; 36]>()) {
            let id = Uuid::from_bytes(bytes);
            let mixed: String = id
                .to_string()
                .chars()
                .zip(flips)
                .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c })
                .collect();
            prop_assert_eq!(parse_guid(&mixed), Some(id));
        }

        #[test]
        fn any_uuid_round_trips(bytes in any::<[u8; 16]>(), braces in any::<bool>()) {
            let id = Uuid::from_bytes(bytes);
            let raw = if braces { format!("{{{id}}}") } else { id.to_string() };
            prop_assert_eq!(parse_customer_id(&raw).unwrap(), id);
        }
    }
}
