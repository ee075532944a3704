//! The gate every client of a target checks before each request (docs/architecture.md#replicas): open while this
//! replica holds the target's lease and the lease is young enough. The lease sets it.

use std::time::Instant;

/// Whether this replica may send requests for a target: open while it holds the lease and the
/// lease is young enough. Every client of the target checks it before each request.
#[derive(Debug, Default)]
pub struct Gate {
    until: std::sync::Mutex<Option<Instant>>,
}

impl Gate {
    pub fn open(&self) -> bool {
        self.until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_some_and(|until| Instant::now() < until)
    }

    /// Opens the gate until `until`, or closes it (`None`); only the lease sets it.
    pub(crate) fn set(&self, until: Option<Instant>) {
        *self
            .until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = until;
    }
}

/// The error of a request the [`Gate`] kept back.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("not sent: this replica does not hold the target's lease")]
pub struct NotLeader;
