//! Customers and their qualifications (`/v1/customers`).

use std::fmt::Display;

use pcq_core::wire::{Customer, CustomerQualification};
use pcq_core::{NewCustomer, Qualification, QualificationRequest};
use reqwest::Method;

use crate::PartnerClient;
use crate::client::Operation;
use crate::paging::Pager;

/// The partner's customers: `client.customers()`.
#[derive(Debug, Clone)]
pub struct Customers {
    client: PartnerClient,
}

impl Customers {
    pub(crate) fn new(client: PartnerClient) -> Self {
        Customers { client }
    }

    /// `POST /v1/customers`: creates a customer (201).
    ///
    /// Idempotent with [`Operation::with_request_id`]: the same id answers the customer created
    /// the first time.
    pub fn create(&self, customer: &NewCustomer) -> Operation<Customer> {
        self.client
            .call(Method::POST, &["v1", "customers"])
            .json_body(&customer.to_json())
    }

    /// One customer, by its tenant id (a GUID, or anything that displays as one).
    pub fn by_id(&self, id: impl Display) -> CustomerOperations {
        CustomerOperations {
            client: self.client.clone(),
            id: id.to_string(),
        }
    }

    /// `GET /v1/customers`: the partner's customers, paged.
    pub fn list(&self) -> Pager<Customer> {
        Pager::new(self.client.clone(), self.client.url(&["v1", "customers"]))
    }
}

/// What can be done with one customer: `client.customers().by_id(id)`.
#[derive(Debug, Clone)]
pub struct CustomerOperations {
    client: PartnerClient,
    id: String,
}

impl CustomerOperations {
    /// The customer's id as given.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `GET /v1/customers/{id}`.
    pub fn get(&self) -> Operation<Customer> {
        self.client
            .call(Method::GET, &["v1", "customers", &self.id])
    }

    /// The customer's qualifications (`/v1/customers/{id}/qualifications`).
    pub fn qualifications(&self) -> CustomerQualifications {
        CustomerQualifications {
            client: self.client.clone(),
            id: self.id.clone(),
        }
    }

    /// The legacy, singular qualification route (`/v1/customers/{id}/qualification`).
    pub fn qualification(&self) -> LegacyQualification {
        LegacyQualification {
            client: self.client.clone(),
            id: self.id.clone(),
        }
    }
}

/// `client.customers().by_id(id).qualifications()`.
#[derive(Debug, Clone)]
pub struct CustomerQualifications {
    client: PartnerClient,
    id: String,
}

impl CustomerQualifications {
    /// `GET /v1/customers/{id}/qualifications`: every qualification of the customer (empty
    /// when none).
    pub fn get(&self) -> Operation<Vec<CustomerQualification>> {
        self.client.call(
            Method::GET,
            &["v1", "customers", &self.id, "qualifications"],
        )
    }

    /// `POST /v1/customers/{id}/qualifications` (App+User credentials only): adds a
    /// qualification (201). Education answers `InReview`; GCC `Approved` once its code checks
    /// out.
    ///
    /// Idempotent with [`Operation::with_request_id`].
    pub fn create(&self, request: QualificationRequest) -> Operation<CustomerQualification> {
        self.client
            .call(
                Method::POST,
                &["v1", "customers", &self.id, "qualifications"],
            )
            .json_body(&request.to_json())
    }
}

/// `client.customers().by_id(id).qualification()`: the 2021 API, one qualification as a bare
/// string.
#[derive(Debug, Clone)]
pub struct LegacyQualification {
    client: PartnerClient,
    id: String,
}

impl LegacyQualification {
    /// `GET /v1/customers/{id}/qualification`: the customer's qualification
    /// ([`Qualification::None`] when it has none).
    pub fn get(&self) -> Operation<Qualification> {
        self.client
            .call(Method::GET, &["v1", "customers", &self.id, "qualification"])
    }

    /// `PUT /v1/customers/{id}/qualification` (App+User only): sets Education or
    /// StateOwnedEntity.
    pub fn update(&self, qualification: Qualification) -> Operation<Qualification> {
        self.client
            .call(Method::PUT, &["v1", "customers", &self.id, "qualification"])
            .json_body(&serde_json::Value::from(qualification.as_str()))
    }

    /// `PUT /v1/customers/{id}/qualification?code=CODE`: sets GovernmentCommunityCloud with
    /// the partner's validation code.
    pub fn update_gcc(&self, validation_code: &str) -> Operation<Qualification> {
        self.update(Qualification::GovernmentCommunityCloud)
            .query("code", validation_code)
    }
}
