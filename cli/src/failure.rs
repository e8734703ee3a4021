//! Why a command failed: the exit code, and the message for stderr. No message holds a
//! secret: the library's errors never do, and ours name fields, never values.
//!
//! One exit-code table for every subcommand, each code with one meaning (`--help` and the
//! README print the same table; `tests/cli.rs` provokes each code through the binary):

use std::{
    io::{self, Write},
    process::ExitCode,
};

use vipps_access_token::Error;

/// The table as `--help` shows it.
pub const EXIT_CODES: &str = "Exit codes, the same for every subcommand:
  0  success
  1  stdout could not be written (a full disk; a closed pipe is not an error)
  2  usage or invalid input: a flag, a variable, a key's format, a file that cannot be read
     or parsed, an address that cannot be bound
  3  credentials rejected (401, 403, or 400 invalid_client / unauthorized_client)
  4  the request was refused for another reason (any other 4xx, 429 included)
  5  the server could not answer: a 5xx, a timeout (--timeout), no connection
  6  the server answered, but not as documented: conformance deviations, a 200 that is not
     a token, a redirect
  7  spec diff: a change at or above --fail-on
  8  doctor: a check failed";

/// Exit code: stdout could not be written.
pub const OUTPUT: u8 = 1;
/// Exit code: usage or invalid input.
pub const USAGE: u8 = 2;
/// Exit code: the credentials were rejected.
pub const REJECTED: u8 = 3;
/// Exit code: any other 4xx.
pub const REFUSED: u8 = 4;
/// Exit code: the server could not answer (5xx, timeout, no connection).
pub const UNAVAILABLE: u8 = 5;
/// Exit code: the server answered, but not as documented.
pub const NOT_AS_DOCUMENTED: u8 = 6;
/// Exit code: `spec diff` found a change at or above `--fail-on`.
pub const SPEC_CHANGES: u8 = 7;
/// Exit code: a `doctor` check failed.
pub const CHECK_FAILED: u8 = 8;

/// A failed command.
pub struct Failure {
    code: u8,
    message: String,
    hint: Option<&'static str>,
}

impl Failure {
    /// A failure with `code` and `message`.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            hint: None,
        }
    }

    /// A usage or input error.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(USAGE, message)
    }

    /// Prints the message (and any hint) on stderr and returns the exit code. A stderr
    /// that cannot be written changes nothing: the exit code still says what happened.
    pub fn report(self) -> ExitCode {
        let mut stderr = io::stderr().lock();
        let _ = writeln!(stderr, "error: {}", self.message);
        if let Some(hint) = self.hint {
            let _ = writeln!(stderr, "hint: {hint}");
        }
        ExitCode::from(self.code)
    }
}

/// The exit code for a library error (see [`EXIT_CODES`]).
pub fn code_of(error: &Error) -> u8 {
    match error {
        Error::InvalidInput(_) => USAGE,
        _ if error.is_credentials_rejected() => REJECTED,
        Error::Api(api) => match api.status() {
            300..=399 => NOT_AS_DOCUMENTED,
            400..=499 => REFUSED,
            _ => UNAVAILABLE,
        },
        Error::Transport(transport) if transport.is_redirect() => NOT_AS_DOCUMENTED,
        Error::InvalidResponse(_) | Error::ResponseTooLarge { .. } => NOT_AS_DOCUMENTED,
        _ => UNAVAILABLE,
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let code = code_of(&error);
        match &error {
            Error::Api(api) => Self {
                code,
                // The alternate form leaves out the hint, printed on its own line.
                message: format!("{api:#}"),
                hint: Some(api.hint()),
            },
            _ => Self::new(code, error.to_string()),
        }
    }
}
