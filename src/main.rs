//! The `lbrecon` binary: parses arguments, loads the config, sets up logging, and calls into
//! the library.

use lbrecon::cli::{self, Command};
use tracing_subscriber::EnvFilter;

fn main() {
    std::process::exit(run());
}

fn run() -> i32 {
    let args = match cli::parse_args() {
        Ok(args) => args,
        Err(code) => return code,
    };
    init_logging();
    let config = match cli::load_config(&args.config) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("lbrecon: cannot start the async runtime: {err}");
            return 1;
        }
    };
    match args.command {
        Command::Validate => cli::validate(&config),
        Command::Check { target, format } => {
            runtime.block_on(cli::check(&config, target.as_deref(), format))
        }
    }
}

/// Logs go to stderr, so reports on stdout stay machine-readable. `LBRECON_LOG` is an
/// env-filter (default `info`); `LBRECON_LOG_FORMAT` is `json` or `text` (default).
fn init_logging() {
    let filter = EnvFilter::try_from_env("LBRECON_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match std::env::var("LBRECON_LOG_FORMAT").as_deref() {
        Ok("json") => builder.json().flatten_event(true).init(),
        _ => builder.init(),
    }
}
