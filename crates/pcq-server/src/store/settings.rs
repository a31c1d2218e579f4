//! Node-wide settings and keys, in the key-value `meta` table: the development partner tenant,
//! the sandbox clock offset, the run-time vetting policy, the signing keys every node of a
//! shared store must agree on, and the key of continuation tokens.

use pcq_core::vetting::VettingPolicy;
use uuid::Uuid;

use super::sql::sql;
use super::{StoreError, StoreResult, Tx};

/// Meta key of the development partner tenant.
const DEV_PARTNER_KEY: &str = "dev_partner_tenant_id";
/// Meta key of the clock offset in microseconds.
const OFFSET_KEY: &str = "clock_offset_micros";
/// Meta key of how many times the clock was reset (other nodes take a smaller offset up only
/// under a larger epoch).
const CLOCK_EPOCH_KEY: &str = "clock_epoch";
/// Meta key of the vetting policy set at run time (with its version).
const POLICY_KEY: &str = "vetting_policy";
/// Meta key of the development issuer's Ed25519 key (PKCS#8 PEM).
pub const DEV_ISSUER_KEY: &str = "dev_issuer_key_pem";
/// Meta key of the webhook signing RSA key (PKCS#8 PEM).
pub const WEBHOOK_SIGNING_KEY: &str = "webhook_signing_key_pem";
/// Meta key of the key continuation tokens are sealed with (AES-256, base64), on every store:
/// nodes sharing a database must open each other's tokens.
pub const CONTINUATION_TOKEN_KEY: &str = "continuation_token_key";

/// What the store holds about the run-time policy: a version that grows with every change, and
/// the policy (`None`: the configured one is in force).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PolicyState {
    /// Grows with every change.
    pub version: u64,
    /// The run-time policy, if one is set.
    pub policy: Option<VettingPolicy>,
}

impl Tx<'_> {
    /// A value from the key-value `meta` table.
    pub async fn meta_get(&mut self, key: &str) -> StoreResult<Option<String>> {
        self.fetch_optional(sql!("SELECT value FROM meta WHERE key = ", { key }))
            .await
    }

    /// Stores `value` under `key` unless the key exists; returns the value now stored.
    pub async fn meta_insert_default(&mut self, key: &str, value: &str) -> StoreResult<String> {
        self.execute(sql!(
            "INSERT INTO meta (key, value) VALUES (",
            { key },
            ", ",
            { value },
            ") ON CONFLICT (key) DO NOTHING",
        ))
        .await?;
        self.meta_get(key)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("meta key {key} vanished")))
    }

    /// Stores `value` under `key`, replacing any value.
    pub async fn meta_put(&mut self, key: &str, value: &str) -> StoreResult<()> {
        self.execute(sql!(
            "INSERT INTO meta (key, value) VALUES (",
            { key },
            ", ",
            { value },
            ") ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        ))
        .await?;
        Ok(())
    }

    /// The store's development partner tenant, chosen by the first node to ask.
    pub async fn dev_partner(&mut self) -> StoreResult<Uuid> {
        let value = self
            .meta_insert_default(DEV_PARTNER_KEY, &Uuid::new_v4().to_string())
            .await?;
        Uuid::parse_str(&value)
            .map_err(|_| StoreError::Corrupt(format!("invalid {DEV_PARTNER_KEY}")))
    }

    /// The sandbox clock's offset in microseconds (0 when never advanced).
    pub async fn clock_offset(&mut self) -> StoreResult<i64> {
        Ok(self
            .meta_get(OFFSET_KEY)
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Stores the sandbox clock's offset; the node takes it up once the transaction commits.
    pub async fn set_clock_offset(&mut self, offset: i64) -> StoreResult<()> {
        self.meta_put(OFFSET_KEY, &offset.to_string()).await?;
        self.clock_moved(offset);
        Ok(())
    }

    /// How many times the sandbox clock was reset (0 when never).
    pub async fn clock_epoch(&mut self) -> StoreResult<u64> {
        Ok(self
            .meta_get(CLOCK_EPOCH_KEY)
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Returns the sandbox clock to the system's time under the next epoch; the node takes it
    /// up once the transaction commits, other nodes on their next refresh.
    pub async fn reset_clock(&mut self) -> StoreResult<()> {
        let epoch = self.clock_epoch().await? + 1;
        self.meta_put(CLOCK_EPOCH_KEY, &epoch.to_string()).await?;
        self.meta_put(OFFSET_KEY, "0").await?;
        self.clock_moved(0);
        Ok(())
    }

    /// The stored run-time policy state.
    pub async fn policy_state(&mut self) -> StoreResult<PolicyState> {
        let Some(text) = self.meta_get(POLICY_KEY).await? else {
            return Ok(PolicyState::default());
        };
        serde_json::from_str(&text).map_err(|e| {
            StoreError::Corrupt(format!("the stored vetting policy is unreadable: {e}"))
        })
    }

    /// Sets (or, with `None`, clears) the run-time policy under the next version; the node
    /// takes it up once the transaction commits.
    pub async fn set_policy(&mut self, policy: Option<VettingPolicy>) -> StoreResult<PolicyState> {
        let state = PolicyState {
            version: self.policy_state().await?.version + 1,
            policy,
        };
        let text = serde_json::to_string(&state)
            .map_err(|e| StoreError::Corrupt(format!("encoding the policy: {e}")))?;
        self.meta_put(POLICY_KEY, &text).await?;
        self.policy_changed(state.clone());
        Ok(state)
    }

    /// A stored key ([`DEV_ISSUER_KEY`], [`WEBHOOK_SIGNING_KEY`], [`CONTINUATION_TOKEN_KEY`]).
    pub async fn signing_key(&mut self, name: &'static str) -> StoreResult<Option<String>> {
        self.meta_get(name).await
    }

    /// Stores `pem` under `name` unless a key is stored there already; returns the stored key
    /// (which is `pem` only for the first node to get there).
    pub async fn keep_signing_key(&mut self, name: &'static str, pem: &str) -> StoreResult<String> {
        self.meta_insert_default(name, pem).await
    }
}
