//! What a command gives back to be printed (docs/architecture.md#commands): the commands return
//! data, and only `main.rs` prints it and exits with its code.

use std::fmt;

use crate::control::Claim;
use crate::reconcile::report::exit;

/// A command's result as text: `main.rs` prints [`Printed::stdout`] on stdout, then
/// [`Printed::stderr`] on stderr, each as it is (with its newlines), and exits with
/// [`Printed::exit_code`].
pub trait Printed {
    /// What goes to stdout.
    fn stdout(&self) -> String {
        String::new()
    }
    /// What goes to stderr.
    fn stderr(&self) -> String {
        String::new()
    }
    /// The exit code (docs/architecture.md#commands).
    fn exit_code(&self) -> i32;
}

/// A command that stopped: printed as `lbrecon: MESSAGE` on stderr, exiting with `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError {
    pub message: String,
    pub code: i32,
}

impl CommandError {
    /// An error, exit 1.
    pub fn error(message: impl Into<String>) -> Self {
        CommandError {
            message: message.into(),
            code: exit::ERROR,
        }
    }

    /// A usage error, exit 64.
    pub fn usage(message: impl Into<String>) -> Self {
        CommandError {
            message: message.into(),
            code: exit::USAGE,
        }
    }

    /// A configuration error, exit 78.
    pub fn config(message: impl Into<String>) -> Self {
        CommandError {
            message: message.into(),
            code: exit::CONFIG,
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CommandError {}

impl Printed for CommandError {
    fn stderr(&self) -> String {
        format!("lbrecon: {}\n", self.message)
    }
    fn exit_code(&self) -> i32 {
        self.code
    }
}

impl<T: Printed> Printed for Result<T, CommandError> {
    fn stdout(&self) -> String {
        match self {
            Ok(done) => done.stdout(),
            Err(err) => err.stdout(),
        }
    }
    fn stderr(&self) -> String {
        match self {
            Ok(done) => done.stderr(),
            Err(err) => err.stderr(),
        }
    }
    fn exit_code(&self) -> i32 {
        match self {
            Ok(done) => done.exit_code(),
            Err(err) => err.exit_code(),
        }
    }
}

/// Something a command says while it still runs, handed to the caller's callback at once.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// `pause` or `resume` waits for another actor's claim on the target's pausers.
    Waiting { target: String, claim: Claim },
}

impl Progress {
    /// The line for stderr, without its newline.
    pub fn stderr_line(&self) -> String {
        match self {
            Progress::Waiting { target, claim } => format!(
                "lbrecon: waiting: the pausers of {target} are claimed by {} ({}) since {}; the claim is released when that run ends, or taken over once stale at {}",
                claim.by,
                claim.purpose,
                claim.since,
                crate::model::clock::rfc3339(claim.until)
                    .unwrap_or_else(|| claim.until.to_string()),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Done;

    impl Printed for Done {
        fn stdout(&self) -> String {
            "done\n".into()
        }
        fn exit_code(&self) -> i32 {
            exit::OK
        }
    }

    #[test]
    fn an_error_is_one_line_on_stderr_with_its_code() {
        let err = CommandError::usage("no target named \"x\"");
        assert_eq!(err.stdout(), "");
        assert_eq!(err.stderr(), "lbrecon: no target named \"x\"\n");
        assert_eq!(err.exit_code(), 64);
        assert_eq!(CommandError::error("e").exit_code(), 1);
        assert_eq!(CommandError::config("e").exit_code(), 78);
    }

    #[test]
    fn a_result_prints_what_it_holds() {
        let ok: Result<Done, CommandError> = Ok(Done);
        assert_eq!((ok.stdout().as_str(), ok.stderr().as_str()), ("done\n", ""));
        assert_eq!(ok.exit_code(), 0);
        let err: Result<Done, CommandError> = Err(CommandError::error("broken"));
        assert_eq!(
            (err.stdout().as_str(), err.stderr().as_str()),
            ("", "lbrecon: broken\n")
        );
        assert_eq!(err.exit_code(), 1);
    }

    #[test]
    fn waiting_names_the_claim_and_when_it_goes_stale() {
        let progress = Progress::Waiting {
            target: "prod".into(),
            claim: Claim {
                by: "lbrecon".into(),
                owner: "host:1".into(),
                purpose: "trip".into(),
                since: "2026-01-01T00:00:00Z".into(),
                until: 1_767_225_660,
            },
        };
        assert_eq!(
            progress.stderr_line(),
            "lbrecon: waiting: the pausers of prod are claimed by lbrecon (trip) since \
             2026-01-01T00:00:00Z; the claim is released when that run ends, or taken over once \
             stale at 2026-01-01T00:01:00Z"
        );
    }
}
