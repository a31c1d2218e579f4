//! Signing keys kept in the store, for stores that several nodes share: every node must sign
//! development tokens and webhook events with the same keys, and no node-local file can hold
//! them. The first node to need a key stores one; the others take that one.

use crate::store::{Op, StoreResult, Tx};

/// Meta key of the development issuer's Ed25519 key (PKCS#8 PEM).
pub const DEV_ISSUER_KEY: &str = "dev_issuer_key_pem";
/// Meta key of the webhook signing RSA key (PKCS#8 PEM).
pub const WEBHOOK_SIGNING_KEY: &str = "webhook_signing_key_pem";

/// Reads a stored key.
#[derive(Clone)]
pub struct StoredKey(pub &'static str);

impl Op for StoredKey {
    type Output = Option<String>;
    const BRIEF_READ: bool = true;

    async fn run<T: Tx>(self, tx: &mut T) -> StoreResult<Option<String>> {
        tx.meta_get(self.0).await
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

    async fn run<T: Tx>(self, tx: &mut T) -> StoreResult<String> {
        tx.meta_insert_default(self.name, &self.pem).await
    }
}
