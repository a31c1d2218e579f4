//! # pcq-client
//!
//! A Rust client of the Partner Center customer-qualification API, as [pcq] serves it (and as
//! Partner Center does, for the routes they share): customers, their qualifications (Education
//! vetting, GCC validation codes, State Owned Entity), validation codes, audit records,
//! webhooks, and pcq's reviewer workflow and sandbox controls.
//!
//! Its shape is the .NET SDK's — `client.customers().by_id(id).qualifications().create(..)` —
//! and so is its retrying: the same `MS-RequestId` on every attempt of a call, so that a write
//! whose answer was lost is not applied twice. Throttled calls (429) wait their `Retry-After`.
//! The wire types are [`pcq_core`]'s, shared with the server.
//!
//! ```no_run
//! use pcq_client::{EducationSegment, NewCustomer, PartnerClient, QualificationRequest};
//!
//! # async fn run() -> Result<(), pcq_client::Error> {
//! let client = PartnerClient::builder("http://127.0.0.1:8080")
//!     .token(std::env::var("PCQ_TOKEN").unwrap_or_default())
//!     .build()?;
//!
//! let customer = client
//!     .customers()
//!     .create(&NewCustomer::new("contoso.onmicrosoft.com").company_name("Contoso"))
//!     .await?;
//! let qualification = client
//!     .customers()
//!     .by_id(customer.id)
//!     .qualifications()
//!     .create(
//!         QualificationRequest::education(EducationSegment::HigherEducation)
//!             .website("https://contoso.edu"),
//!     )
//!     .await?;
//! println!("{:?}", qualification.vetting_status); // Some(InReview)
//! # Ok(()) }
//! ```
//!
//! ## Operations, request ids and correlation ids
//!
//! Every call returns an [`Operation`], which does nothing until it is awaited. Before that,
//! [`Operation::with_request_id`] fixes its `MS-RequestId`, pcq's (and Partner Center's)
//! idempotency key for POST and PUT: an import that derives each row's id from the row can be
//! run again without creating anything twice.
//!
//! ```no_run
//! # use pcq_client::{NewCustomer, PartnerClient};
//! # async fn run(client: PartnerClient) -> Result<(), pcq_client::Error> {
//! let row = NewCustomer::new("fabrikam.onmicrosoft.com");
//! let created = client
//!     .customers()
//!     .create(&row)
//!     .with_request_id("import-2026-12-03-row-17")
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Each call sends an `MS-CorrelationId` of its own (the pages of one stream share one);
//! [`PartnerClient::with_correlation_id`] gives a client whose calls all send the one given,
//! for the calls of one logical operation.
//!
//! ## Lists
//!
//! Paged lists are [`Pager`]s: a page at a time, or every item as a stream that follows the
//! continuation tokens.
//!
//! ```no_run
//! use futures_util::TryStreamExt;
//! # async fn run(client: pcq_client::PartnerClient) -> Result<(), pcq_client::Error> {
//! let mut customers = client.customers().list().page_size(100).stream();
//! while let Some(customer) = customers.try_next().await? {
//!     println!("{} {}", customer.id, customer.company_profile.domain);
//! }
//! let first = client.customers().list().page_size(10).page(None).await?;
//! if let Some(token) = first.continuation_token {
//!     let second = client.customers().list().page_size(10).page(Some(token)).await?;
//! }
//! # Ok(()) }
//! ```
//!
//! ## Errors, retries and credentials
//!
//! Every failure is an [`Error`]: with the status, the decoded Partner Center error envelope
//! ([`ApiFault`]) and the ids of the call. [`RetryPolicy`] says what is retried;
//! [`TokenProvider`]s supply tokens: a fixed one ([`ClientBuilder::token`]), Entra ID client
//! credentials ([`ClientCredentials`], App only) or a refresh token ([`RefreshToken`],
//! App+User). On a 401 the client asks its provider once for a fresh token and repeats the call.
//!
//! The client brings its TLS: [`ClientBuilder::build`] installs rustls's ring provider for the
//! process unless one is installed already.
//!
//! [pcq]: https://example.invalid/pcq

#![warn(missing_docs)]

mod admin;
mod auth;
mod client;
mod customers;
mod error;
mod paging;
mod resources;
mod retry;
mod review;

pub use admin::{Admin, ByteStream, Clock, FaultSpec, Faults, RequestFilter, State, VettingPolicy};
pub use auth::{
    ClientCredentials, PARTNER_CENTER_SCOPE, RefreshToken, StaticToken, TokenProvider,
    entra_token_endpoint,
};
pub use client::{
    CONTINUATION_HEADER, CORRELATION_ID_HEADER, ClientBuilder, Operation, PartnerClient,
    REQUEST_ID_HEADER,
};
pub use customers::{CustomerOperations, CustomerQualifications, Customers, LegacyQualification};
pub use error::{CallIds, Error};
pub use paging::{Page, Pager};
pub use resources::{AuditQuery, AuditRecordOperations, AuditRecords, ValidationCodes, Webhooks};
pub use retry::{AttemptOutcome, RetryPolicy};
pub use review::{Review, ReviewQuery};

pub use pcq_core;
pub use pcq_core::wire::{
    AuditRecord, CompanyProfile, Customer, CustomerQualification, ValidationCode,
    ValidationEventStatus, WebhookRegistration,
};
pub use pcq_core::{
    ApiFault, EducationSegment, NewCustomer, NewValidationCode, Qualification,
    QualificationRequest, VettingStatus,
};

/// Installs rustls's ring provider as the process default, unless a provider is installed
/// already (by this client or by the application): reqwest is built without one of its own.
pub(crate) fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another installer is fine: a provider is installed either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
