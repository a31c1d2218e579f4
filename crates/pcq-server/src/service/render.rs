//! Stored rows in their Partner Center wire shapes.

use pcq_core::time::Timestamp;
use pcq_core::wire::{
    Attributes, CompanyProfile, Customer, CustomerQualification, Link, Links, ValidationCode,
};
use serde_json::{Value, json};

use crate::store::{CustomerRow, QualificationRow, ValidationCodeRow};

/// How much of a customer to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerView {
    /// One customer (create, get by id): includes `allowDelegatedAccess`.
    Detail,
    /// An item of a list.
    ListItem,
}

/// A customer as Partner Center sends it.
pub fn customer(row: &CustomerRow, view: CustomerView) -> Customer {
    let billing_profile = row.billing_profile.as_ref().map(|profile| {
        let mut profile = profile.clone();
        profile.insert("id".into(), json!(row.billing_profile_id));
        profile.insert(
            "attributes".into(),
            json!({"objectType": "CustomerBillingProfile"}),
        );
        Value::Object(profile)
    });
    Customer {
        id: row.id,
        commerce_id: row.commerce_id,
        company_profile: CompanyProfile {
            tenant_id: row.id,
            domain: row.domain.clone(),
            company_name: row.company_name.clone(),
            extra: row.company_profile.clone(),
            attributes: Attributes::of("CustomerCompanyProfile"),
        },
        billing_profile,
        relationship_to_partner: "reseller".to_owned(),
        allow_delegated_access: (view == CustomerView::Detail).then_some(true),
        links: Links {
            self_link: Link::get(format!("/v1/customers/{}", row.id)),
            next: None,
        },
        attributes: Attributes::of("Customer"),
    }
}

/// A qualification as the V2 qualifications API sends it.
pub fn qualification(row: &QualificationRow) -> CustomerQualification {
    CustomerQualification {
        qualification: row.qualification,
        vetting_status: row.vetting_status,
        vetting_reason: row.vetting_reason.clone(),
        vetting_create_date: row.vetting_create_date.map(Timestamp::to_rfc3339),
    }
}

/// A validation code.
pub fn validation_code(row: &ValidationCodeRow) -> ValidationCode {
    ValidationCode {
        partner_id: row.partner_tenant_id,
        organization_name: row.organization_name.clone(),
        validation_id: row.validation_id.clone(),
        max_creates: row.max_creates,
        remaining_creates: row.remaining_creates,
        etag: row.etag.clone(),
    }
}
