//! The sandbox reset: every partner's data removed (or one partner's), the sandbox clock and
//! the vetting policy back to the configured ones, and the seed loaded again, in one
//! transaction. Keys and the store's own settings stay.

use pcq_core::time::Timestamp;
use pcq_core::vetting::VettingPolicy;
use uuid::Uuid;

use super::seed::{ApplySeed, Seed};
use crate::error::Error;
use crate::store::reset::Removed;
use crate::store::{Op, Tx};

/// What a reset did.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResetOutcome {
    /// How many rows of each kind were removed.
    pub removed: Removed,
    /// The partner whose data was removed, or null when everything was.
    pub partner: Option<Uuid>,
    /// Whether the node's seed was loaded again.
    pub seeded: bool,
}

/// Removes one partner's data, or every partner's; for every partner's, also starts the clock
/// over (a new epoch, which every node takes up, offset 0) and puts `policy` in force as the
/// run-time vetting policy (`None`: the configured one). What a reset and a load of a state
/// document or seed have in common.
pub(crate) async fn start_over(
    tx: &mut Tx<'_>,
    partner: Option<Uuid>,
    policy: Option<VettingPolicy>,
) -> Result<Removed, Error> {
    if let Some(partner) = partner {
        return Ok(tx.remove_partner(partner).await?);
    }
    let removed = tx.remove_everything().await?;
    tx.reset_clock().await?;
    if tx.policy_state().await?.policy != policy {
        tx.set_policy(policy).await?;
    }
    Ok(removed)
}

/// Removes every partner's data, or one partner's, and loads the node's seed again.
#[derive(Clone)]
pub struct Reset {
    /// Only this partner's data (global settings are then left alone).
    pub partner: Option<Uuid>,
    /// The seed the node started with, if any.
    pub seed: Option<Seed>,
    /// The development partner (the seed's `dev`).
    pub dev_partner: Uuid,
    /// When the seed is loaded.
    pub now: Timestamp,
}

impl Op for Reset {
    type Output = ResetOutcome;

    async fn run(self, tx: &mut Tx<'_>) -> Result<ResetOutcome, Error> {
        let removed = start_over(tx, self.partner, None).await?;
        let seed = match (self.seed, self.partner) {
            (Some(seed), Some(partner)) => Some(seed.for_partner(partner, self.dev_partner)),
            (seed, _) => seed,
        };
        let seeded = seed.as_ref().is_some_and(|s| !s.is_empty());
        if let Some(seed) = seed.filter(|s| !s.is_empty()) {
            ApplySeed {
                seed,
                dev_partner: self.dev_partner,
                now: self.now,
            }
            .run(tx)
            .await?;
        }
        tx.wake_worker();
        Ok(ResetOutcome {
            removed,
            partner: self.partner,
            seeded,
        })
    }
}
