//! Recovery: point-in-time snapshots of the state table (local or S3), and the planning and
//! conditional, batched writes of `restore` and `adopt`.

pub mod restore;
pub mod snapshot;
