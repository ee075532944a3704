//! Recovery: point-in-time snapshots of the state table (local or S3), the journal of its
//! stream (kept beside them) and its replay, and the planning and conditional, batched writes
//! of `restore` and `adopt`.

pub mod journal;
pub mod restore;
pub mod snapshot;
