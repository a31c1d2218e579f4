//! Seed files: customers, their qualifications and validation codes loaded at start
//! (`pcq serve --seed FILE`). The format is documented in `docs/seed.md`.
//!
//! Loading is idempotent: customers and codes that already exist (by id) are left as they are,
//! so the same file can be given at every start.

use std::path::Path;

use anyhow::Context;
use pcq_core::enums::documented_vetting_reason;
use pcq_core::rules::{self, CodeState, Held};
use pcq_core::time::Timestamp;
use pcq_core::{
    Contract, EducationSegment, NewCustomer, Qualification, QualificationRequest, VettingStatus,
};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::customers::CreateCustomer;
use crate::error::{Error, Found};
use crate::store::{Op, QualificationEvent, QualificationRow, Scope, Tx, ValidationCodeRow};

/// The partner placeholder that stands for the node's development partner.
pub const DEV_PARTNER_ALIAS: &str = "dev";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SeedFile {
    #[serde(default)]
    partners: Vec<SeedPartner>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SeedPartner {
    tenant_id: String,
    #[serde(default)]
    customers: Vec<Value>,
    #[serde(default)]
    validation_codes: Vec<SeedCode>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SeedCode {
    validation_id: String,
    organization_name: String,
    max_creates: i64,
    remaining_creates: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SeedQualification {
    qualification: Value,
    education_segment: Option<String>,
    website: Option<String>,
    vetting_status: Option<String>,
    vetting_reason: Option<String>,
}

/// Which partner a seed entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedPartnerId {
    /// The node's development partner.
    Dev,
    /// A given tenant.
    Tenant(Uuid),
}

impl SeedPartnerId {
    fn resolve(self, dev: Uuid) -> Uuid {
        match self {
            SeedPartnerId::Dev => dev,
            SeedPartnerId::Tenant(t) => t,
        }
    }
}

/// A seed customer, checked.
#[derive(Debug, Clone)]
pub struct SeedCustomer {
    partner: SeedPartnerId,
    id: Option<Uuid>,
    customer: NewCustomer,
    qualifications: Vec<SeedQualificationRow>,
}

#[derive(Debug, Clone)]
struct SeedQualificationRow {
    qualification: Qualification,
    status: Option<VettingStatus>,
    reason: Option<String>,
    segment: Option<EducationSegment>,
    website: Option<String>,
}

/// A checked seed file, ready to load.
#[derive(Debug, Clone, Default)]
pub struct Seed {
    customers: Vec<SeedCustomer>,
    codes: Vec<(SeedPartnerId, SeedCode)>,
}

/// What loading a seed did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeedSummary {
    /// Customers created.
    pub customers_created: usize,
    /// Customers already present (by id or domain) and left alone.
    pub customers_skipped: usize,
    /// Validation codes created.
    pub codes_created: usize,
    /// Validation codes already present and left alone.
    pub codes_skipped: usize,
}

impl Seed {
    /// Reads and checks a seed file (JSON).
    pub fn from_file(path: &Path) -> anyhow::Result<Seed> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the seed file {}", path.display()))?;
        Self::from_json(&text).with_context(|| format!("in the seed file {}", path.display()))
    }

    /// Parses and checks seed JSON.
    pub fn from_json(text: &str) -> anyhow::Result<Seed> {
        let file: SeedFile = serde_json::from_str(text).context("the seed is not valid")?;
        let mut seed = Seed::default();
        for (p, partner) in file.partners.into_iter().enumerate() {
            let pid = if partner.tenant_id.eq_ignore_ascii_case(DEV_PARTNER_ALIAS) {
                SeedPartnerId::Dev
            } else {
                SeedPartnerId::Tenant(pcq_core::ids::parse_guid(&partner.tenant_id).with_context(
                    || {
                        format!(
                            "partners[{p}].tenantId {:?} is neither a GUID nor \"dev\"",
                            partner.tenant_id
                        )
                    },
                )?)
            };
            for (c, raw) in partner.customers.into_iter().enumerate() {
                let at = format!("partners[{p}].customers[{c}]");
                seed.customers
                    .push(parse_customer(pid, raw).with_context(|| at.clone())?);
            }
            for (i, code) in partner.validation_codes.into_iter().enumerate() {
                let at = format!("partners[{p}].validationCodes[{i}]");
                anyhow::ensure!(
                    !code.validation_id.is_empty()
                        && code.validation_id.len() <= 18
                        && code.validation_id.bytes().all(|b| b.is_ascii_digit()),
                    "{at}: validationId must be 1 to 18 digits"
                );
                anyhow::ensure!(code.max_creates >= 1, "{at}: maxCreates must be at least 1");
                let remaining = code.remaining_creates.unwrap_or(code.max_creates);
                anyhow::ensure!(
                    (0..=code.max_creates).contains(&remaining),
                    "{at}: remainingCreates must be between 0 and maxCreates"
                );
                seed.codes.push((pid, code));
            }
        }
        Ok(seed)
    }

    /// The part of the seed that belongs to `partner` (`dev_partner` stands for the
    /// development partner's placeholder).
    pub fn for_partner(&self, partner: Uuid, dev_partner: Uuid) -> Seed {
        Seed {
            customers: self
                .customers
                .iter()
                .filter(|c| c.partner.resolve(dev_partner) == partner)
                .cloned()
                .collect(),
            codes: self
                .codes
                .iter()
                .filter(|(p, _)| p.resolve(dev_partner) == partner)
                .cloned()
                .collect(),
        }
    }

    /// The partners the seed's entries belong to (`dev_partner` for the placeholder), once per
    /// entry.
    pub fn partners(&self, dev_partner: Uuid) -> impl Iterator<Item = Uuid> + '_ {
        self.customers
            .iter()
            .map(|c| c.partner)
            .chain(self.codes.iter().map(|(p, _)| *p))
            .map(move |p| p.resolve(dev_partner))
    }

    /// Number of customers and codes in the seed.
    pub fn len(&self) -> usize {
        self.customers.len() + self.codes.len()
    }

    /// Whether the seed is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn parse_customer(partner: SeedPartnerId, raw: Value) -> anyhow::Result<SeedCustomer> {
    let Value::Object(mut map) = raw else {
        anyhow::bail!("a customer must be an object");
    };
    let id = match map.remove("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            Some(pcq_core::ids::parse_guid(&s).with_context(|| format!("id {s:?} is not a GUID"))?)
        }
        Some(_) => anyhow::bail!("id must be a GUID string"),
    };
    let qualifications: Vec<SeedQualification> = match map.remove("qualifications") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v).context("qualifications")?,
    };
    let customer =
        NewCustomer::parse(&Value::Object(map)).map_err(|f| anyhow::anyhow!(f.description))?;

    let mut held: Vec<Held> = Vec::new();
    let mut rows = Vec::new();
    for (i, q) in qualifications.into_iter().enumerate() {
        let at = format!("qualifications[{i}]");
        let mut body =
            serde_json::json!({ "qualification": q.qualification, "validationCode": "0" });
        if let Some(segment) = &q.education_segment {
            body["educationSegment"] = Value::String(segment.clone());
        }
        let request = QualificationRequest::parse(&body, None, Contract::V2021)
            .map_err(|f| anyhow::anyhow!("{at}: {}", f.description))?;
        let any_code = CodeState {
            max_creates: 1,
            remaining_creates: 1,
        };
        let decision = rules::decide(&held, &request, Some(&any_code), false)
            .map_err(|f| anyhow::anyhow!("{at}: {}", f.description))?;
        let status = match &q.vetting_status {
            None => decision.status,
            Some(raw) => {
                anyhow::ensure!(
                    request.qualification.is_vetted(),
                    "{at}: {} has no vetting status",
                    request.qualification
                );
                Some(VettingStatus::parse_str(raw).with_context(|| {
                    format!("{at}: vettingStatus {raw:?} is not InReview, Approved or Denied")
                })?)
            }
        };
        let reason = match (status, &q.vetting_reason) {
            (Some(VettingStatus::Denied), Some(raw)) => Some(
                documented_vetting_reason(raw)
                    .with_context(|| {
                        format!("{at}: vettingReason {raw:?} is not a documented reason")
                    })?
                    .to_owned(),
            ),
            (Some(VettingStatus::Denied), None) => {
                anyhow::bail!("{at}: a Denied qualification needs a vettingReason")
            }
            (_, Some(_)) => anyhow::bail!("{at}: vettingReason is only for Denied qualifications"),
            (_, None) => None,
        };
        held.push(Held {
            qualification: request.qualification,
            status,
        });
        rows.push(SeedQualificationRow {
            qualification: request.qualification,
            status,
            reason,
            segment: request.education_segment,
            website: q
                .website
                .filter(|_| request.qualification == Qualification::Education),
        });
    }
    Ok(SeedCustomer {
        partner,
        id,
        customer,
        qualifications: rows,
    })
}

/// Loads a seed into the store.
#[derive(Clone)]
pub struct ApplySeed {
    /// The checked seed.
    pub seed: Seed,
    /// The node's development partner (for `"dev"` entries).
    pub dev_partner: Uuid,
    /// Load time.
    pub now: Timestamp,
}

impl Op for ApplySeed {
    type Output = SeedSummary;

    async fn run(self, tx: &mut Tx<'_>) -> Result<SeedSummary, Error> {
        let mut summary = SeedSummary::default();
        for seeded in self.seed.customers {
            let partner = seeded.partner.resolve(self.dev_partner);
            let id = seeded
                .id
                .unwrap_or_else(|| Uuid::new_v5(&partner, seeded.customer.domain.as_bytes()));
            if tx.customer(Scope::AnyPartner, id).await.found()?.is_some() {
                summary.customers_skipped += 1;
                continue;
            }
            let create = CreateCustomer {
                partner,
                customer: seeded.customer,
                now: self.now,
                actor: super::Actor {
                    user: None,
                    application: Some("pcq-seed".to_owned()),
                },
            };
            let customer = create.row(id);
            if !tx.insert_customer(&customer).await? {
                summary.customers_skipped += 1;
                continue;
            }
            summary.customers_created += 1;
            for q in seeded.qualifications {
                let row = QualificationRow {
                    customer_id: id,
                    qualification: q.qualification,
                    vetting_status: q.status,
                    vetting_reason: q.reason.clone(),
                    vetting_create_date: q.status.map(|_| self.now),
                    education_segment: q.segment,
                    website: q.website,
                    validation_id: None,
                    round: 1,
                    created_at: self.now,
                    updated_at: self.now,
                };
                tx.put_qualification(&row).await?;
                if row.vetting_status == Some(VettingStatus::InReview) {
                    // Seeded qualifications in review wait for the policy like requested ones.
                    super::vetting::start(tx, &customer, &row).await?;
                }
                tx.insert_qualification_event(&QualificationEvent {
                    customer_id: id,
                    qualification: q.qualification,
                    round: 1,
                    from_status: None,
                    to_status: q.status,
                    reason: q.reason,
                    actor: "pcq seed".to_owned(),
                    request_id: None,
                    at: self.now,
                })
                .await?;
            }
        }
        for (pid, code) in self.seed.codes {
            let row = ValidationCodeRow {
                partner_tenant_id: pid.resolve(self.dev_partner),
                remaining_creates: code.remaining_creates.unwrap_or(code.max_creates),
                validation_id: code.validation_id,
                organization_name: code.organization_name,
                max_creates: code.max_creates,
                etag: self.now.to_table_etag(),
                created_at: self.now,
                updated_at: self.now,
            };
            if tx.insert_validation_code(&row).await? {
                summary.codes_created += 1;
            } else {
                summary.codes_skipped += 1;
            }
        }
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_entries_with_their_position() {
        let err = Seed::from_json(
            r#"{"partners": [{"tenantId": "dev", "customers": [
                {"companyProfile": {"domain": "a.example.com"},
                 "qualifications": [{"qualification": "Education"}, {"qualification": "GovernmentCommunityCloud"}]}
            ]}]}"#,
        )
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("partners[0].customers[0]"), "{text}");
        assert!(text.contains("exclude each other"), "{text}");

        assert!(Seed::from_json(r#"{"partners": [{"tenantId": "nope"}]}"#).is_err());
        assert!(Seed::from_json(r#"{"partners": [], "extra": 1}"#).is_err());
        let denied_without_reason = r#"{"partners": [{"tenantId": "dev", "customers": [
            {"companyProfile": {"domain": "b.example.com"},
             "qualifications": [{"qualification": "Education", "vettingStatus": "Denied"}]}]}]}"#;
        assert!(Seed::from_json(denied_without_reason).is_err());
    }

    #[test]
    fn accepts_a_full_seed() {
        let seed = Seed::from_json(
            r#"{"partners": [{"tenantId": "dev",
                "customers": [{"companyProfile": {"domain": "school.example.edu", "companyName": "School"},
                    "qualifications": [{"qualification": "Education", "educationSegment": "K12",
                        "vettingStatus": "Denied", "vettingReason": "not an academic domain"},
                        {"qualification": "state_owned_entity"}]}],
                "validationCodes": [{"validationId": "123456", "organizationName": "Contoso", "maxCreates": 5}]}]}"#,
        )
        .unwrap();
        assert_eq!(seed.len(), 2);
        assert_eq!(
            seed.customers[0].qualifications[0].reason.as_deref(),
            Some("Not an Academic Domain")
        );
    }
}
