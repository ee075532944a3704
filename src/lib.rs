//! lbrecon guards load-balancer state data. It reads the configuration a control plane
//! recorded in DynamoDB and the live Elastic Load Balancing v2 state, diffs them, and reports
//! drift.
//!
//! The modules, from the edge inwards:
//!
//! - [`config`]: the TOML configuration, validated as a whole (exit 78 on any problem).
//! - [`aws`]: SDK clients; the only module that sees SDK types. It maps ELBv2 and DynamoDB
//!   answers into plain data ([`live`], [`item`]) and classifies errors.
//! - [`budget`]: the token buckets every ELB and DynamoDB request waits on.
//! - [`reader`]: one target's presence pass and deep reads, with bounded concurrency.
//! - [`item`], [`record`]: state-table items, kept verbatim, and read as documents; a record
//!   that manages nothing or lacks a field `[records]` requires is invalid.
//! - [`schema`]: the document's fields, their types and how each compares (plain data).
//! - [`document`]: validation of the load-balancer document and its keyed form, held as
//!   compact [`node`]s.
//! - [`live`]: the live side as plain data and its assembly into documents.
//! - [`diff`]: the pure diff of a recorded and a live document.
//! - [`ignore`]: `[[ignore]]` rules applied to changes.
//! - [`scope`]: which live load balancers a target owns (`[targets.scope]`).
//! - [`reconcile`]: matching records with load balancers and classifying each.
//! - [`report`]: the report's JSON and table forms, and exit codes.
//! - [`telemetry`]: metric names, and one function per event for its metrics and log line.
//! - [`guard`]: the guard's pure decision: quarantine, thresholds, mass loss, resume.
//! - [`pause`]: the pausers (control flag, Auto Scaling, command) and how each is undone.
//! - [`enforce`]: carrying out the guard's decisions against the control item and pausers.
//! - [`protection`]: the state table's protection, and the pure judgement of its resource
//!   policy (`delete_policy`).
//! - [`snapshot`]: point-in-time snapshots of the state table, local or in S3.
//! - [`restore`]: `restore` and `adopt`: planning and conditional, batched writes.
//! - [`recovery`]: `snapshots`, `restore`, `adopt`, and the daemon's snapshot step.
//! - [`control`]: the control item that workflows read before acting.
//! - [`cycle`]: one reconciliation of one target: presence pass, deep reads, diff.
//! - [`clock`]: time as lbrecon writes it (RFC 3339).
//! - [`check`]: the `check` command.
//! - [`daemon`]: `run`: one loop per target, shutdown, systemd notification.
//! - [`http`]: the listener: `/metrics`, `/healthz`, `/readyz`, `/drift`.
//! - [`commands`]: `status`, `pause`, `resume`, `init`.
//! - [`cli`]: the command line.

pub mod aws;
pub mod budget;
pub mod check;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod control;
pub mod cycle;
pub mod daemon;
pub mod diff;
pub mod document;
pub mod enforce;
pub mod guard;
pub mod http;
pub mod ignore;
pub mod item;
pub mod lease;
pub mod live;
pub mod node;
pub mod pause;
pub mod protection;
pub mod reader;
pub mod reconcile;
pub mod record;
pub mod recovery;
pub mod report;
pub mod restore;
pub mod schema;
pub mod scope;
pub mod snapshot;
pub mod telemetry;
