//! pcq's reviewer workflow (`/_pcq/review`, role `Pcq.Reviewer`).

use std::fmt::Display;

use pcq_core::Qualification;
use pcq_core::wire::CustomerQualification;
use reqwest::Method;
use serde_json::{Value, json};

use crate::PartnerClient;
use crate::client::Operation;
use crate::paging::Pager;

/// The review queue and decisions: `client.review()`.
#[derive(Debug, Clone)]
pub struct Review {
    client: PartnerClient,
}

/// The filters of the review queue; all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReviewQuery {
    /// Only this partner's customers.
    pub partner_id: Option<String>,
    /// Only this qualification (Education or GovernmentCommunityCloud).
    pub qualification: Option<Qualification>,
    /// Only those waiting longer than this, e.g. `72h`.
    pub older_than: Option<String>,
}

impl ReviewQuery {
    /// Every qualification waiting for a decision.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only this partner's customers.
    #[must_use]
    pub fn partner_id(mut self, partner: impl Display) -> Self {
        self.partner_id = Some(partner.to_string());
        self
    }

    /// Only this qualification.
    #[must_use]
    pub fn qualification(mut self, qualification: Qualification) -> Self {
        self.qualification = Some(qualification);
        self
    }

    /// Only those waiting longer than `age` (e.g. `72h`, `3d`).
    #[must_use]
    pub fn older_than(mut self, age: impl Into<String>) -> Self {
        self.older_than = Some(age.into());
        self
    }
}

impl Review {
    pub(crate) fn new(client: PartnerClient) -> Self {
        Review { client }
    }

    /// `GET /_pcq/review/queue`: the qualifications waiting for a decision, oldest first, paged.
    /// Each item is pcq's `ReviewItem` document (`customerId`, `partnerId`, `domain`,
    /// `qualification`, `round`, `vettingCreateDate`, `waiting`, …).
    pub fn queue(&self, query: ReviewQuery) -> Pager<Value> {
        let mut url = self.client.url(&["_pcq", "review", "queue"]);
        {
            let mut pairs = url.query_pairs_mut();
            if let Some(partner) = &query.partner_id {
                pairs.append_pair("partnerId", partner);
            }
            if let Some(q) = query.qualification {
                pairs.append_pair("qualification", q.as_str());
            }
            if let Some(age) = &query.older_than {
                pairs.append_pair("olderThan", age);
            }
        }
        Pager::new(self.client.clone(), url)
    }

    fn decide(
        &self,
        customer: impl Display,
        qualification: Qualification,
        body: Value,
    ) -> Operation<CustomerQualification> {
        let customer = customer.to_string();
        self.client
            .call(
                Method::POST,
                &[
                    "_pcq",
                    "review",
                    "customers",
                    &customer,
                    "qualifications",
                    qualification.as_str(),
                    "decision",
                ],
            )
            .json_body(&body)
    }

    /// Approves the customer's qualification in review.
    pub fn approve(
        &self,
        customer: impl Display,
        qualification: Qualification,
    ) -> Operation<CustomerQualification> {
        self.decide(customer, qualification, json!({"decision": "Approved"}))
    }

    /// Denies it with a documented reason (e.g. `Not an Academic Domain`; see
    /// [`pcq_core::enums::VETTING_REASONS`]).
    pub fn deny(
        &self,
        customer: impl Display,
        qualification: Qualification,
        reason: impl Into<String>,
    ) -> Operation<CustomerQualification> {
        self.decide(
            customer,
            qualification,
            json!({"decision": "Denied", "reason": reason.into()}),
        )
    }
}
