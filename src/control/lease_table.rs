//! The lease table's shape and timing, shared by the leases ([`crate::control::lease`]) and
//! the roster of replicas ([`crate::control::roster`]).

use std::time::Duration;

/// The lease table's partition key, as `lbrecon init` creates it.
pub const KEY_ATTRIBUTE: &str = "target";

/// How often the holder renews and a rival reads.
pub fn heartbeat(lease: Duration) -> Duration {
    lease / 3
}

/// How often a replica without the lease reads it: often enough that a takeover comes at most
/// a sixth of a lease after the lease ran out on this replica's clock.
pub fn standby_poll(lease: Duration) -> Duration {
    lease / 6
}

/// A random version, new on every write.
pub fn new_version() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A lease that can be handed over to another replica, as the roster asks of one.
pub trait HandOver {
    /// The target the lease is for.
    fn target(&self) -> &str;
    /// Hands the lease over if this replica holds it and its target is between cycles;
    /// whether it did.
    fn hand_over(&self) -> impl std::future::Future<Output = bool> + Send;
}
