//! The command line (docs/architecture.md#commands): arguments, and each command's entry point.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::app::commands::{CommandError, Printed};
use crate::reconcile::ignore::IgnoreRules;
use crate::reconcile::report::{Report, exit};
use crate::runtime::config::{Config, DEFAULT_CONFIG_PATH, TargetConfig};

/// lbrecon: reconcile recorded load-balancer state with live ELBv2 state.
#[derive(Debug, Parser)]
#[command(name = "lbrecon", version, about, long_about = None)]
pub struct Cli {
    /// The config file.
    #[arg(long, global = true, env = "LBRECON_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The daemon: reconcile every target each interval, serve /metrics, /healthz, /readyz,
    /// /drift. The first SIGTERM or SIGINT finishes the cycle in flight and exits 0; a second
    /// exits at once.
    Run,
    /// One presence pass and one full deep pass per target, read-only; prints the report.
    Check {
        /// Only this target.
        #[arg(long)]
        target: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Pause state per target: paused or not, since, reason, by whom, what was paused.
    Status {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Pause a target's scaling workflows by hand, with every configured pauser.
    Pause {
        #[arg(long)]
        target: String,
        #[arg(long)]
        reason: String,
    },
    /// Resume what lbrecon paused, and nothing else.
    Resume {
        #[arg(long)]
        target: String,
        #[arg(long)]
        reason: String,
        /// Resume while records are still missing; those load balancers are acknowledged.
        #[arg(long)]
        force: bool,
    },
    /// Create the control table (and the lease table, when configured) if missing.
    Init {
        #[arg(long)]
        target: String,
        /// The change ticket that approves creating the tables; without it, only say what
        /// would be done.
        #[arg(long)]
        approve: Option<String>,
    },
    /// List snapshots.
    Snapshots {
        #[arg(long)]
        target: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Restore missing records from a snapshot (with --at and a journal, the table as it was at
    /// that instant); a record that exists always stands.
    Restore {
        #[arg(long)]
        target: String,
        /// Use the newest snapshot at or before this time (RFC 3339).
        #[arg(
            long,
            conflicts_with = "snapshot",
            required_unless_present = "snapshot"
        )]
        at: Option<String>,
        /// Use this snapshot (an id from `lbrecon snapshots`).
        #[arg(long)]
        snapshot: Option<String>,
        /// Print the plan; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Replace an invalid record the snapshot holds valid, conditioned on its version.
        #[arg(long)]
        replace_invalid: bool,
        /// Also restore records whose load balancer is gone or was recreated.
        #[arg(long)]
        include_gone: bool,
        /// With --at: when the journal has a gap between the snapshot and the instant, restore
        /// the snapshot alone.
        #[arg(long, conflicts_with = "snapshot")]
        allow_gap: bool,
        /// The change ticket that approves the writes; without it, only the plan is printed.
        #[arg(long)]
        approve: Option<String>,
    },
    /// A record's versions over time, from the snapshots and the journal: time, event,
    /// `version`, `updated_at`, and what changed between consecutive versions.
    History {
        #[arg(long)]
        target: String,
        /// The record's name (its load balancer's).
        name: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Write records from live state for load balancers that have none.
    Adopt {
        #[arg(long)]
        target: String,
        /// Every live load balancer without a record.
        #[arg(long, conflicts_with = "names", required_unless_present = "names")]
        all: bool,
        /// These load balancers.
        names: Vec<String>,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        approve: Option<String>,
    },
    /// Parse and check the config, print it resolved; no AWS call.
    Validate,
}

impl Command {
    /// The command's name, as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Run => "run",
            Command::Check { .. } => "check",
            Command::Status { .. } => "status",
            Command::Pause { .. } => "pause",
            Command::Resume { .. } => "resume",
            Command::Init { .. } => "init",
            Command::Snapshots { .. } => "snapshots",
            Command::Restore { .. } => "restore",
            Command::History { .. } => "history",
            Command::Adopt { .. } => "adopt",
            Command::Validate => "validate",
        }
    }
}

/// Parses the arguments; on an error, clap's message for `main.rs` to print, with
/// [`parse_error_code`] as the exit code.
pub fn parse_args() -> Result<Cli, clap::Error> {
    Cli::try_parse()
}

/// The exit code of an argument error: help and version are 0, any other problem is a usage
/// error, 64.
pub fn parse_error_code(err: &clap::Error) -> i32 {
    match err.kind() {
        clap::error::ErrorKind::DisplayHelp
        | clap::error::ErrorKind::DisplayVersion
        | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => exit::OK,
        _ => exit::USAGE,
    }
}

/// Loads the config; a problem is exit 78.
pub fn load_config(path: &std::path::Path) -> Result<Config, CommandError> {
    Config::load(path).map_err(|err| CommandError::config(err.to_string()))
}

/// The config as `lbrecon validate` prints it, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    pub text: String,
}

impl Printed for Validated {
    fn stdout(&self) -> String {
        self.text.clone()
    }
    fn exit_code(&self) -> i32 {
        exit::OK
    }
}

/// `lbrecon validate`: the resolved config.
pub fn validate(config: &Config) -> Result<Validated, CommandError> {
    toml::to_string_pretty(config)
        .map(|text| Validated { text })
        .map_err(|err| CommandError::error(format!("cannot print the config: {err}")))
}

/// What `lbrecon check` prints: the report in the asked format on stdout, and each target's
/// error on stderr.
#[derive(Debug, Clone)]
pub struct Checked {
    pub report: Report,
    pub format: Format,
}

impl Printed for Checked {
    fn stdout(&self) -> String {
        match self.format {
            Format::Json => format!("{}\n", self.report.to_json()),
            Format::Table => self.report.to_table(),
        }
    }

    fn stderr(&self) -> String {
        self.report
            .targets
            .iter()
            .filter_map(|target| {
                let error = target.error.as_ref()?;
                Some(format!("lbrecon: target {}: {error}\n", target.target))
            })
            .collect()
    }

    fn exit_code(&self) -> i32 {
        self.report.exit_code()
    }
}

/// The ignore rules of the config; a rule that does not compile is exit 78.
pub fn ignore_rules(config: &Config) -> Result<IgnoreRules, CommandError> {
    IgnoreRules::new(&config.ignore).map_err(|problems| CommandError::config(problems.join("; ")))
}

/// `lbrecon check`.
pub async fn check(
    config: &Config,
    target: Option<&str>,
    format: Format,
) -> Result<Checked, CommandError> {
    if let Some(name) = target {
        named_target(config, name)?;
    }
    let ignore = ignore_rules(config)?;
    let report = crate::app::commands::check::check(config, target, &ignore).await;
    Ok(Checked { report, format })
}

/// The target named on the command line, or a usage error naming the targets there are.
pub fn named_target<'a>(config: &'a Config, name: &str) -> Result<&'a TargetConfig, CommandError> {
    config.target(name).ok_or_else(|| {
        let names: Vec<&str> = config.targets.iter().map(|t| t.name.as_str()).collect();
        CommandError::usage(format!(
            "no target named {name:?} in the config; targets are: {}",
            names.join(", ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::report::{GuardView, Summary, TargetReport};

    const CONFIG: &str = r#"
[daemon]
interval = "30s"

[http]
listen = "127.0.0.1:9477"

[[targets]]
name = "prod"
region = "us-east-1"
state_table = "lb-state"
control_table = "lb-state-control"

[[targets]]
name = "dev"
region = "eu-west-1"
state_table = "lb-state-dev"
control_table = "lb-state-dev-control"

[guard]
min_missing = 1
max_missing_ratio = 0.05

[[guard.pausers]]
type = "dynamodb_flag"

[snapshots]
dir = "/var/lib/lbrecon/snapshots"
"#;

    fn config() -> Config {
        Config::parse(CONFIG, std::path::Path::new("test.toml")).unwrap()
    }

    #[test]
    fn help_and_version_exit_0_and_other_argument_errors_64() {
        let code = |args: &[&str]| {
            let err = Cli::try_parse_from(args).unwrap_err();
            parse_error_code(&err)
        };
        assert_eq!(code(&["lbrecon", "--help"]), exit::OK);
        assert_eq!(code(&["lbrecon", "--version"]), exit::OK);
        assert_eq!(code(&["lbrecon"]), exit::OK);
        assert_eq!(code(&["lbrecon", "frobnicate"]), exit::USAGE);
        assert_eq!(code(&["lbrecon", "pause", "--target", "prod"]), exit::USAGE);
        assert_eq!(
            code(&[
                "lbrecon",
                "restore",
                "--target",
                "prod",
                "--at",
                "x",
                "--snapshot",
                "y"
            ]),
            exit::USAGE
        );
        assert_eq!(code(&["lbrecon", "adopt", "--target", "prod"]), exit::USAGE);
        assert_eq!(
            code(&[
                "lbrecon",
                "restore",
                "--target",
                "prod",
                "--snapshot",
                "y",
                "--allow-gap"
            ]),
            exit::USAGE
        );
        assert_eq!(
            code(&["lbrecon", "history", "--target", "prod"]),
            exit::USAGE
        );
        let parsed = Cli::try_parse_from([
            "lbrecon",
            "restore",
            "--target",
            "prod",
            "--at",
            "x",
            "--allow-gap",
        ])
        .unwrap();
        assert!(matches!(
            parsed.command,
            Command::Restore {
                allow_gap: true,
                ..
            }
        ));
        let parsed = Cli::try_parse_from([
            "lbrecon", "history", "--target", "prod", "web-1", "--format", "json",
        ])
        .unwrap();
        let Command::History { name, format, .. } = parsed.command else {
            panic!("not history: {parsed:?}");
        };
        assert_eq!((name.as_str(), format), ("web-1", Format::Json));
        let parsed =
            Cli::try_parse_from(["lbrecon", "adopt", "--target", "prod", "a", "b"]).unwrap();
        let Command::Adopt { names, all, .. } = parsed.command else {
            panic!("not adopt: {parsed:?}");
        };
        assert_eq!(
            (names, all),
            (vec!["a".to_string(), "b".to_string()], false)
        );
    }

    #[test]
    fn an_unknown_target_is_a_usage_error_naming_the_targets() {
        let config = config();
        assert_eq!(named_target(&config, "dev").unwrap().region, "eu-west-1");
        let err = named_target(&config, "staging").unwrap_err();
        assert_eq!(
            err.stderr(),
            "lbrecon: no target named \"staging\" in the config; targets are: prod, dev\n"
        );
        assert_eq!(err.exit_code(), exit::USAGE);
    }

    #[tokio::test]
    async fn check_refuses_an_unknown_target_before_reading_anything() {
        let err = check(&config(), Some("staging"), Format::Json)
            .await
            .unwrap_err();
        assert_eq!(err.code, exit::USAGE);
        assert!(
            err.message.starts_with("no target named \"staging\""),
            "{err}"
        );
    }

    #[test]
    fn an_ignore_rule_that_does_not_compile_is_a_config_error() {
        let mut config = config();
        assert!(ignore_rules(&config).is_ok());
        config.ignore.push(crate::reconcile::ignore::IgnoreConfig {
            load_balancers: "*".into(),
            paths: vec!["/tags/[".into()],
        });
        let err = ignore_rules(&config).unwrap_err();
        assert_eq!(err.exit_code(), exit::CONFIG);
        assert!(err.message.contains("/tags/["), "{err}");
    }

    #[test]
    fn validate_prints_the_resolved_config_as_it_reads_back() {
        let config = config();
        let validated = validate(&config).unwrap();
        assert_eq!(validated.exit_code(), exit::OK);
        assert_eq!(validated.stderr(), "");
        let back = Config::parse(&validated.stdout(), std::path::Path::new("back.toml")).unwrap();
        assert_eq!(back.targets.len(), 2);
        assert_eq!(back.targets[1].name, "dev");
        assert_eq!(back.daemon.interval, config.daemon.interval);
    }

    fn target(name: &str, error: Option<&str>) -> TargetReport {
        TargetReport {
            target: name.into(),
            complete: error.is_none(),
            error: error.map(str::to_string),
            summary: Summary {
                live: 2,
                recorded: 2,
                in_sync: 2,
                ..Summary::default()
            },
            load_balancers: vec![],
            guard: GuardView {
                paused: false,
                reason: None,
            },
            deep_checked_at: None,
            exit_code: 0,
        }
        .with_exit_code()
    }

    #[test]
    fn check_prints_the_report_on_stdout_and_each_target_error_on_stderr() {
        let report = Report {
            generated_at: "2026-01-01T00:00:00Z".into(),
            targets: vec![
                target("prod", None),
                target("dev", Some("DescribeLoadBalancers failed: Throttling")),
            ],
        };
        let table = Checked {
            report: report.clone(),
            format: Format::Table,
        };
        assert_eq!(table.stdout(), report.to_table());
        assert!(table.stdout().contains("target dev (INCOMPLETE)"));
        assert_eq!(
            table.stderr(),
            "lbrecon: target dev: DescribeLoadBalancers failed: Throttling\n"
        );
        assert_eq!(table.exit_code(), exit::ERROR);
        let json = Checked {
            report,
            format: Format::Json,
        };
        let text = json.stdout();
        assert!(text.ends_with("}\n"), "{text}");
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["targets"][1]["complete"], false);
        assert_eq!(json.stderr(), table.stderr());

        let in_sync = Checked {
            report: Report {
                generated_at: "2026-01-01T00:00:00Z".into(),
                targets: vec![target("prod", None)],
            },
            format: Format::Table,
        };
        assert_eq!(in_sync.stderr(), "");
        assert_eq!(in_sync.exit_code(), exit::OK);
    }
}
