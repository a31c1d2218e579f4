//! Node settings that can change at run time and are shared through the store: the vetting
//! policy and the sandbox clock offset. Each node keeps a copy for reading on the hot path and
//! takes up newer stored values when it refreshes; decisions themselves read the policy inside
//! their transaction (`service::vetting::current_policy`), so a stale copy never decides.

use std::sync::{Arc, RwLock};

use pcq_core::vetting::VettingPolicy;

use crate::error::Error;
use crate::service::Pipeline;
use crate::service::clock::StoredClock;
use crate::service::vetting::StoredPolicy;
use crate::store::PolicyState;

/// The vetting policy in force, as this node last saw it.
pub struct PolicyCell {
    configured: Arc<VettingPolicy>,
    current: RwLock<Seen>,
}

#[derive(Clone)]
struct Seen {
    version: u64,
    policy: Arc<VettingPolicy>,
    overridden: bool,
}

impl PolicyCell {
    /// A cell holding the configured policy.
    pub fn new(configured: VettingPolicy) -> Self {
        let configured = Arc::new(configured);
        PolicyCell {
            current: RwLock::new(Seen {
                version: 0,
                policy: configured.clone(),
                overridden: false,
            }),
            configured,
        }
    }

    fn seen(&self) -> Seen {
        match self.current.read() {
            Ok(seen) => seen.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The policy in force, as last seen.
    pub fn get(&self) -> Arc<VettingPolicy> {
        self.seen().policy
    }

    /// Whether that policy was set at run time (rather than configured).
    pub fn is_overridden(&self) -> bool {
        self.seen().overridden
    }

    /// The configured policy (the base of run-time changes).
    pub fn configured(&self) -> &Arc<VettingPolicy> {
        &self.configured
    }

    /// Takes up a stored state if it is newer than the one seen.
    pub fn observe(&self, stored: PolicyState) {
        let next = Seen {
            version: stored.version,
            overridden: stored.policy.is_some(),
            policy: stored
                .policy
                .map_or_else(|| self.configured.clone(), Arc::new),
        };
        let mut current = match self.current.write() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        if next.version > current.version {
            *current = next;
        }
    }
}

/// Takes up the stored clock offset, vetting policy and injected faults, if they are newer than
/// this node's.
/// Between resets the clock only moves forward, so the larger offset is the newer; a reset
/// counts up the clock's epoch, which replaces the offset whatever it is.
pub async fn refresh(pipeline: &Pipeline) -> Result<(), Error> {
    let (offset, epoch) = pipeline.read(StoredClock).await?;
    pipeline.clock.observe(offset, epoch);
    pipeline.policy.observe(pipeline.read(StoredPolicy).await?);
    pipeline.faults.refresh(pipeline).await?;
    Ok(())
}

/// Refreshes this node's settings every `worker.poll_interval_ms` until `stop` turns true.
pub async fn follow(state: crate::AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let interval = std::time::Duration::from_millis(state.config.worker.poll_interval_ms);
    loop {
        if let Err(e) = refresh(&state.pipeline).await {
            tracing::warn!(error = %e, "could not read the shared settings");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
    }
}
