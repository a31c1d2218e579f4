//! The business rules of customer qualifications, as pure functions over the stored state.

use crate::enums::{Qualification, VettingStatus};
use crate::fault::ApiFault;
use crate::input::QualificationRequest;

/// A qualification the customer holds, as far as the rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// The qualification.
    pub qualification: Qualification,
    /// Its vetting status (`None` for StateOwnedEntity).
    pub status: Option<VettingStatus>,
}

impl Held {
    fn is_denied(self) -> bool {
        self.status == Some(VettingStatus::Denied)
    }
}

/// The state of the validation code a GCC request names, as the store found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeState {
    /// Creates the code allows in all.
    pub max_creates: i64,
    /// Creates still left.
    pub remaining_creates: i64,
}

/// What to store for an accepted qualification request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Its initial vetting status (`None` for StateOwnedEntity).
    pub status: Option<VettingStatus>,
    /// Whether the request uses up one create of its validation code.
    pub consumes_code: bool,
    /// Whether this starts a new vetting round of a Denied qualification.
    pub new_round: bool,
}

/// Decides a request to add a qualification, given what the customer holds and, for GCC, the
/// state of the named validation code (`None` when the partner has no such code). GCC starts
/// `InReview` when `review_gcc` (the vetting policy routes it to review), else `Approved`.
///
/// Order of checks: the customer's own state first (409), then the validation code (400).
pub fn decide(
    held: &[Held],
    request: &QualificationRequest,
    code: Option<&CodeState>,
    review_gcc: bool,
) -> Result<Decision, ApiFault> {
    let wanted = request.qualification;
    debug_assert!(wanted.is_settable());

    let mut new_round = false;
    if let Some(same) = held.iter().find(|h| h.qualification == wanted) {
        if same.is_denied() {
            new_round = true;
        } else {
            return Err(ApiFault::qualification_exists(
                wanted.as_str(),
                same.status.map(VettingStatus::as_str),
            ));
        }
    }

    let exclusive = |q: Qualification| match q {
        Qualification::Education => Some(Qualification::GovernmentCommunityCloud),
        Qualification::GovernmentCommunityCloud => Some(Qualification::Education),
        _ => None,
    };
    if let Some(other) = exclusive(wanted) {
        if let Some(conflict) = held
            .iter()
            .find(|h| h.qualification == other && !h.is_denied())
        {
            return Err(ApiFault::qualification_conflict(
                wanted.as_str(),
                conflict.qualification.as_str(),
            ));
        }
    }

    let status = match wanted {
        Qualification::Education => Some(VettingStatus::InReview),
        Qualification::GovernmentCommunityCloud => {
            let name = request.validation_code.as_deref().unwrap_or_default();
            let code = code.ok_or_else(|| ApiFault::validation_code_not_found(name))?;
            if code.remaining_creates <= 0 {
                return Err(ApiFault::validation_code_exhausted(name, code.max_creates));
            }
            Some(if review_gcc {
                VettingStatus::InReview
            } else {
                VettingStatus::Approved
            })
        }
        _ => None,
    };

    Ok(Decision {
        status,
        consumes_code: wanted == Qualification::GovernmentCommunityCloud,
        new_round,
    })
}

/// Whether a legacy `PUT …/qualification` of `wanted` changes nothing: the customer already
/// holds it and it was not denied (PUT sets a value, so setting it again succeeds as is).
pub fn legacy_put_is_noop(held: &[Held], wanted: Qualification) -> bool {
    held.iter()
        .any(|h| h.qualification == wanted && !h.is_denied())
}

/// The single value the legacy `GET …/qualification` reports: the Education or GCC
/// qualification unless it was denied, else StateOwnedEntity, else None.
pub fn legacy_qualification(held: &[Held]) -> Qualification {
    let usable = |q: Qualification| held.iter().any(|h| h.qualification == q && !h.is_denied());
    [
        Qualification::Education,
        Qualification::GovernmentCommunityCloud,
        Qualification::StateOwnedEntity,
    ]
    .into_iter()
    .find(|q| usable(*q))
    .unwrap_or(Qualification::None)
}

/// The order in which a customer's qualifications are listed: Education, GCC, then SOE, as in
/// the documented examples.
pub fn listing_order(q: Qualification) -> u8 {
    match q {
        Qualification::Education => 0,
        Qualification::GovernmentCommunityCloud => 1,
        Qualification::StateOwnedEntity => 2,
        Qualification::Nonprofit => 3,
        Qualification::None => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Contract;
    use serde_json::json;

    fn req(body: serde_json::Value) -> QualificationRequest {
        QualificationRequest::parse(&body, None, Contract::V2021).unwrap()
    }

    fn held(q: Qualification, s: Option<VettingStatus>) -> Held {
        Held {
            qualification: q,
            status: s,
        }
    }

    const CODE: CodeState = CodeState {
        max_creates: 5,
        remaining_creates: 5,
    };
    use Qualification as Q;
    use VettingStatus as S;

    #[test]
    fn initial_states() {
        let edu = req(json!({"qualification": "Education"}));
        let d = decide(&[], &edu, None, false).unwrap();
        assert_eq!(
            (d.status, d.consumes_code, d.new_round),
            (Some(S::InReview), false, false)
        );
        let gcc = req(json!({"qualification": "GovernmentCommunityCloud", "validationCode": "1"}));
        let d = decide(&[], &gcc, Some(&CODE), false).unwrap();
        assert_eq!((d.status, d.consumes_code), (Some(S::Approved), true));
        let d = decide(&[], &gcc, Some(&CODE), true).unwrap();
        assert_eq!((d.status, d.consumes_code), (Some(S::InReview), true));
        let soe = req(json!({"qualification": "StateOwnedEntity"}));
        let d = decide(&[], &soe, None, false).unwrap();
        assert_eq!(d.status, None);
    }

    #[test]
    fn education_and_gcc_exclude_each_other_soe_stacks() {
        let edu = req(json!({"qualification": "Education"}));
        let gcc = req(json!({"qualification": "GovernmentCommunityCloud", "validationCode": "1"}));
        let soe = req(json!({"qualification": "StateOwnedEntity"}));
        let f = decide(
            &[held(Q::GovernmentCommunityCloud, Some(S::Approved))],
            &edu,
            None,
            false,
        )
        .unwrap_err();
        assert_eq!(
            (f.status, f.error_name.as_ref()),
            (409, "QualificationConflict")
        );
        let f = decide(
            &[held(Q::Education, Some(S::InReview))],
            &gcc,
            Some(&CODE),
            false,
        )
        .unwrap_err();
        assert_eq!(f.status, 409);
        assert!(decide(&[held(Q::Education, Some(S::Approved))], &soe, None, false).is_ok());
        assert!(decide(&[held(Q::StateOwnedEntity, None)], &gcc, Some(&CODE), false).is_ok());
        // A denied Q::Education does not block GCC.
        assert!(
            decide(
                &[held(Q::Education, Some(S::Denied))],
                &gcc,
                Some(&CODE),
                false
            )
            .is_ok()
        );
    }

    #[test]
    fn duplicates_conflict_unless_denied() {
        let edu = req(json!({"qualification": "Education"}));
        for s in [S::InReview, S::Approved] {
            let f = decide(&[held(Q::Education, Some(s))], &edu, None, false).unwrap_err();
            assert_eq!(f.error_name, "QualificationAlreadyExists");
        }
        let d = decide(&[held(Q::Education, Some(S::Denied))], &edu, None, false).unwrap();
        assert!(d.new_round);
        assert_eq!(d.status, Some(S::InReview));
        let soe = req(json!({"qualification": "StateOwnedEntity"}));
        assert_eq!(
            decide(&[held(Q::StateOwnedEntity, None)], &soe, None, false)
                .unwrap_err()
                .status,
            409
        );
    }

    #[test]
    fn validation_code_checks() {
        let gcc = req(json!({"qualification": "GovernmentCommunityCloud", "validationCode": "77"}));
        let f = decide(&[], &gcc, None, false).unwrap_err();
        assert_eq!(
            (f.status, f.error_name.as_ref()),
            (400, "ValidationCodeNotFound")
        );
        let empty = CodeState {
            max_creates: 2,
            remaining_creates: 0,
        };
        let f = decide(&[], &gcc, Some(&empty), false).unwrap_err();
        assert_eq!(
            (f.status, f.error_name.as_ref()),
            (400, "ValidationCodeExhausted")
        );
        // The customer's state is checked before the code.
        let f = decide(
            &[held(Q::GovernmentCommunityCloud, Some(S::Approved))],
            &gcc,
            None,
            false,
        )
        .unwrap_err();
        assert_eq!(f.status, 409);
    }

    #[test]
    fn legacy_put_of_a_held_value_is_a_no_op() {
        assert!(legacy_put_is_noop(
            &[held(Q::Education, Some(S::InReview))],
            Q::Education
        ));
        assert!(!legacy_put_is_noop(
            &[held(Q::Education, Some(S::Denied))],
            Q::Education
        ));
        assert!(!legacy_put_is_noop(
            &[held(Q::StateOwnedEntity, None)],
            Q::Education
        ));
    }

    #[test]
    fn legacy_value() {
        assert_eq!(legacy_qualification(&[]), Q::None);
        assert_eq!(
            legacy_qualification(&[
                held(Q::StateOwnedEntity, None),
                held(Q::Education, Some(S::InReview))
            ]),
            Q::Education
        );
        assert_eq!(
            legacy_qualification(&[held(Q::Education, Some(S::Denied))]),
            Q::None
        );
        assert_eq!(
            legacy_qualification(&[
                held(Q::Education, Some(S::Denied)),
                held(Q::StateOwnedEntity, None)
            ]),
            Q::StateOwnedEntity
        );
    }
}
