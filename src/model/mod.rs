//! Plain data: the state table's items and records, the load-balancer document and its
//! schema, the live side, and time. No I/O, and nothing here imports from another layer.

pub mod clock;
pub mod document;
pub mod item;
pub mod live;
pub mod node;
pub mod record;
pub mod schema;
pub mod stream;
