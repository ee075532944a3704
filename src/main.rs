//! The `lbrecon` binary: parses arguments, loads the config, sets up logging, and calls into
//! the library.

use lbrecon::app::cli::{self, Command};
use lbrecon::app::commands::{self, Printed, Progress, recovery};
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// jemalloc, not glibc's allocator: the daemon frees most of what a cycle allocates, and
/// glibc's heap grew from cycle to cycle where jemalloc's stays flat (docs/benchmarks.md).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options: a background thread returns pages freed for a second to the system
/// (`dirty_decay_ms`) at once rather than keeping them as lazily freed (`muzzy_decay_ms`), so
/// what a cycle freed does not stay resident while the daemon waits for the next one.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

fn main() {
    std::process::exit(run());
}

/// Prints what a command gave back, stdout then stderr, and gives its exit code.
fn print(done: &impl Printed) -> i32 {
    print!("{}", done.stdout());
    eprint!("{}", done.stderr());
    done.exit_code()
}

/// Prints what a command says while it runs, at once.
fn progress(said: Progress) {
    eprintln!("{}", said.stderr_line());
}

fn run() -> i32 {
    let args = match cli::parse_args() {
        Ok(args) => args,
        Err(err) => {
            let _ = err.print();
            return cli::parse_error_code(&err);
        }
    };
    init_logging();
    lbrecon::aws::set_command(args.command.name());
    let config = match cli::load_config(&args.config) {
        Ok(config) => config,
        Err(err) => return print(&err),
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
        Command::Validate => print(&cli::validate(&config)),
        Command::Check { target, format } => {
            print(&runtime.block_on(cli::check(&config, target.as_deref(), format)))
        }
        Command::Run => runtime.block_on(run_daemon(config)),
        Command::Status { format } => {
            print(&runtime.block_on(commands::status(&config, format == cli::Format::Json)))
        }
        Command::Pause { target, reason } => match cli::named_target(&config, &target) {
            Ok(target) => {
                print(&runtime.block_on(commands::pause(&config, target, &reason, &mut progress)))
            }
            Err(err) => print(&err),
        },
        Command::Resume {
            target,
            reason,
            force,
        } => match cli::named_target(&config, &target) {
            Ok(target) => print(&runtime.block_on(commands::resume(
                &config,
                target,
                &reason,
                force,
                &mut progress,
            ))),
            Err(err) => print(&err),
        },
        Command::Snapshots { target, format } => {
            if let Some(name) = &target
                && let Err(err) = cli::named_target(&config, name)
            {
                return print(&err);
            }
            print(&runtime.block_on(recovery::snapshots(
                &config,
                target.as_deref(),
                format == cli::Format::Json,
            )))
        }
        Command::Restore {
            target,
            at,
            snapshot,
            dry_run,
            replace_invalid,
            include_gone,
            allow_gap,
            approve,
        } => {
            let target = match cli::named_target(&config, &target) {
                Ok(target) => target,
                Err(err) => return print(&err),
            };
            let pick = match (at, snapshot) {
                (Some(at), _) => recovery::Pick::At(at),
                (None, Some(id)) => recovery::Pick::Id(id),
                (None, None) => return lbrecon::reconcile::report::exit::USAGE,
            };
            let options = lbrecon::recovery::restore::RestoreOptions {
                replace_invalid,
                include_gone,
            };
            let pending = runtime.block_on(recovery::prepare_restore(
                &config, target, pick, options, allow_gap,
            ));
            write(&runtime, target, pending, dry_run, approve.as_deref())
        }
        Command::Adopt {
            target,
            all,
            names,
            dry_run,
            approve,
        } => {
            let target = match cli::named_target(&config, &target) {
                Ok(target) => target,
                Err(err) => return print(&err),
            };
            let pending = runtime.block_on(recovery::prepare_adopt(&config, target, all, &names));
            write(&runtime, target, pending, dry_run, approve.as_deref())
        }
        Command::History {
            target,
            name,
            format,
        } => match cli::named_target(&config, &target) {
            Ok(target) => print(&runtime.block_on(recovery::history(
                &config,
                target,
                &name,
                format == cli::Format::Json,
            ))),
            Err(err) => print(&err),
        },
        Command::Init { target, approve } => match cli::named_target(&config, &target) {
            Ok(target) => {
                print(&runtime.block_on(commands::init(&config, target, approve.as_deref())))
            }
            Err(err) => print(&err),
        },
    }
}

/// `restore` and `adopt`: prints the plan before anything is written, then writes it when
/// approved and prints what was written.
fn write(
    runtime: &tokio::runtime::Runtime,
    target: &lbrecon::runtime::config::TargetConfig,
    pending: Result<recovery::Pending, commands::CommandError>,
    dry_run: bool,
    approve: Option<&str>,
) -> i32 {
    let pending = match pending {
        Ok(pending) => pending,
        Err(err) => return print(&err),
    };
    print!("{}", pending.plan.to_text());
    print(&runtime.block_on(pending.apply(target, dry_run, approve)))
}

async fn run_daemon(config: lbrecon::runtime::config::Config) -> i32 {
    let recorder = lbrecon::runtime::telemetry::recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        eprintln!("lbrecon: a metrics recorder is already installed");
        return 1;
    }
    lbrecon::runtime::telemetry::describe();
    match lbrecon::app::daemon::run(config, handle, shutdown_signal()).await {
        Ok(()) => 0,
        Err(err) => {
            tracing::error!(kind = err.kind(), "{err}");
            eprintln!("lbrecon: {err}");
            err.exit_code()
        }
    }
}

/// Resolves on the first SIGTERM or SIGINT; a second one exits the process at once.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop lbrecon with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::warn!("second signal: exiting at once");
        std::process::exit(130);
    });
}

/// Logs go to stderr, so reports on stdout stay machine-readable. `LBRECON_LOG` is an
/// env-filter (default `info`); `LBRECON_LOG_FORMAT` is `json` or `text` (default).
fn init_logging() {
    let filter = EnvFilter::try_from_env("LBRECON_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match std::env::var("LBRECON_LOG_FORMAT").as_deref() {
        Ok("json") => builder.json().flatten_event(true).init(),
        _ => builder.init(),
    }
}
