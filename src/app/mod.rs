//! The application: one target's reads and cycle, the daemon's loop, the HTTP listener, the
//! command line, and the operator commands.

pub mod cli;
pub mod commands;
pub mod cycle;
pub mod daemon;
#[cfg(test)]
mod fake_aws;
pub mod http;
pub mod reader;
pub mod stream;
