//! The one error of pcq's request path: what an op, a store read, an extractor or a handler
//! fails with. A fault is the client's doing (or a condition it may retry) and is answered with
//! its Partner Center envelope; anything else is pcq's own failure and is answered 500 (503
//! when the store cannot be reached).

use pcq_core::ApiFault;

use crate::store::StoreError;

/// Why a request did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is refused; the fault says why, with its status and code.
    #[error("{}", .0.description)]
    Fault(ApiFault),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug in pcq (an answer that cannot be encoded, an op that broke a rule).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<ApiFault> for Error {
    fn from(fault: ApiFault) -> Self {
        Error::Fault(fault)
    }
}

impl Error {
    /// The fault, if the request was refused (rather than failed inside pcq).
    pub fn fault(&self) -> Option<&ApiFault> {
        match self {
            Error::Fault(fault) => Some(fault),
            _ => None,
        }
    }
}

/// `value` as JSON bytes (answers, audit values, webhook bodies). A value that cannot be
/// encoded is pcq's error, never an empty body.
pub fn json_bytes<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|e| Error::Internal(format!("encoding JSON failed: {e}")))
}

/// `value` as JSON text (see [`json_bytes`]).
pub fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::Internal(format!("encoding JSON failed: {e}")))
}

/// Turns a refusal into `None`: for lookups where a missing or foreign row is an ordinary
/// outcome (the worker meeting a customer that no longer qualifies, say), while store failures
/// stay errors.
pub trait Found<T> {
    /// `Ok(None)` for a fault, the value or the failure otherwise.
    fn found(self) -> Result<Option<T>, Error>;
}

impl<T> Found<T> for Result<T, Error> {
    fn found(self) -> Result<Option<T>, Error> {
        match self {
            Ok(value) => Ok(Some(value)),
            Err(Error::Fault(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
