//! # pcq-core
//!
//! The Partner Center customer-qualification contract, free of I/O: wire types, tolerant input
//! parsing, enumerations, the business rules and the `ApiFault` error envelope. Used by the pcq
//! server and by clients; it depends only on serde, serde_json, time and uuid.

pub mod enums;
pub mod fault;
pub mod ids;
pub mod input;
pub mod limits;
pub mod rules;
#[cfg(feature = "openapi")]
pub mod schema;
pub mod time;
pub mod vetting;
pub mod wire;

pub use enums::{EducationSegment, Qualification, VettingStatus};
pub use fault::ApiFault;
pub use input::{Contract, NewCustomer, NewValidationCode, QualificationRequest};
