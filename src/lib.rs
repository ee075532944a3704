//! lbrecon guards load-balancer state data. It reads the configuration a control plane
//! recorded in DynamoDB and the live Elastic Load Balancing v2 state, diffs them, reports
//! drift, pauses scaling workflows when records go missing, and restores them from snapshots
//! and the journal of the state table's stream.
//!
//! The tree is the architecture. Each folder is a layer; a layer imports only from the layers
//! below it, never from one above (docs/architecture.md#layers):
//!
//! ```text
//! main.rs     parses arguments, prints, chooses exit codes
//!   app/        reader, cycle, daemon, stream (the tailer), http, cli, commands/ (check,
//!   |           status, pause, resume, init, snapshots, restore, history, adopt)
//!   +-> control/    the control item, the lease, the roster, the pausers, carrying out guard
//!   |               steps
//!   +-> recovery/   snapshots and the journal (local or S3), replay, restore and adopt
//!   |               planning and writes
//!         +-> aws/        the AWS edge: the only place that sees SDK types; the lease's gate
//!               +-> runtime/    configuration, the API budget, telemetry
//!                     +-> reconcile/  pure: diff, ignore rules, scope, matching, report, the
//!                     |               guard's decision, the resource policy's judgement, the
//!                     |               replicas' shares of the leases, the stream's shard plan
//!                     +-> model/      plain data: items, records, documents, live state,
//!                                     stream records, time
//! ```
//!
//! - [`model`]: state-table items kept verbatim ([`model::item`]), read as records
//!   ([`model::record`]); the load-balancer document ([`model::document`], [`model::schema`],
//!   held as compact [`model::node`]s); the live side ([`model::live`]); the stream's records
//!   and shards ([`model::stream`]); time ([`model::clock`]).
//! - [`reconcile`]: the pure core. [`reconcile::diff`] compares a recorded and a live document,
//!   [`reconcile::ignore`] applies `[[ignore]]` rules, [`reconcile::scope`] decides which load
//!   balancers a target owns, [`reconcile`] itself matches records with load balancers,
//!   [`reconcile::report`] shapes the report and exit codes, [`reconcile::guard`] is the
//!   guard's decision, [`reconcile::protection`] judges the state table's resource policy,
//!   [`reconcile::share`] decides a replica's share of the leases, [`reconcile::lineage`] which
//!   shards of the stream to read, parents first.
//! - [`runtime`]: [`runtime::config`] (validated as a whole, exit 78 on any problem),
//!   [`runtime::budget`] (the token buckets every AWS request waits on),
//!   [`runtime::telemetry`] (metric names, one function per event).
//! - [`aws`]: SDK clients, one pagination policy ([`aws::pages`]), one error classifier, and
//!   [`aws::Api`], where every request waits on the budget and is counted and timed;
//!   [`aws::reads`] names the reads the layers above make, as traits a test answers from memory;
//!   [`aws::streams`] reads the state table's stream on a budget of its own.
//! - [`control`]: the control item workflows read before acting, [`control::lease`] (leader
//!   election), [`control::roster`] (the replicas sharing a lease table), [`control::pause`]
//!   (the pausers and how each is undone),
//!   [`control::enforce`] (carrying out the guard's steps, written ahead).
//! - [`recovery`]: [`recovery::snapshot`], [`recovery::journal`] (the stream's records in
//!   sealed segments, replay, gaps, the recovery check) and [`recovery::restore`].
//! - [`app`]: [`app::reader`] (one target's reads, bounded concurrency), [`app::cycle`] (one
//!   reconciliation), [`app::daemon`] (one loop per target), [`app::stream`] (tailing the
//!   state table's stream: checkpoints, the journal, detection), [`app::http`], [`app::cli`],
//!   [`app::commands`].

pub mod app;
pub mod aws;
pub mod control;
pub mod model;
pub mod reconcile;
pub mod recovery;
pub mod runtime;
