//! Keys kept in the store, for stores that several nodes share: every node must sign
//! development tokens and webhook events with the same keys, and open the continuation tokens
//! the others seal, and no node-local file can hold them. The first node to need a key stores
//! one; the others take that one.

pub use crate::store::settings::{CONTINUATION_TOKEN_KEY, DEV_ISSUER_KEY, WEBHOOK_SIGNING_KEY};

use crate::error::Error;
use crate::store::{Op, Tx};

/// Reads a stored key.
#[derive(Clone)]
pub struct StoredKey(pub &'static str);

impl Op for StoredKey {
    type Output = Option<String>;
    const BRIEF_READ: bool = true;

    async fn run(self, tx: &mut Tx<'_>) -> Result<Option<String>, Error> {
        Ok(tx.signing_key(self.0).await?)
    }
}

/// Stores `pem` under `name` unless a key is stored there already; returns the stored key
/// (which is `pem` only for the first node to get there).
#[derive(Clone)]
pub struct KeepKey {
    /// Meta key.
    pub name: &'static str,
    /// The key this node would use.
    pub pem: String,
}

impl Op for KeepKey {
    type Output = String;

    async fn run(self, tx: &mut Tx<'_>) -> Result<String, Error> {
        Ok(tx.keep_signing_key(self.name, &self.pem).await?)
    }
}
