//! What every layer that does I/O shares: the configuration, the API budget, and telemetry
//! (metric names, and one function per event for its metrics and log line).

pub mod budget;
pub mod config;
pub mod telemetry;
