//! Why a command failed: the exit code, and the message for stderr. No message holds a
//! secret: the library's errors never do, and ours name fields, never values.

use std::process::ExitCode;

use vipps_access_token::Error;

/// Exit code: the output could not be written.
pub const OUTPUT: u8 = 1;
/// Exit code: usage or invalid input.
pub const USAGE: u8 = 2;
/// Exit code: the credentials were rejected (401, 403).
pub const REJECTED: u8 = 3;
/// Exit code: any other 4xx.
pub const CLIENT_ERROR: u8 = 4;
/// Exit code: a server error, a timeout or a transport failure.
pub const SERVER_OR_TRANSPORT: u8 = 5;
/// `conformance` found a deviation from the documentation.
pub const DEVIATIONS: u8 = 6;

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

    /// Prints the message (and any hint) on stderr and returns the exit code.
    pub fn report(self) -> ExitCode {
        eprintln!("error: {}", self.message);
        if let Some(hint) = self.hint {
            eprintln!("hint: {hint}");
        }
        ExitCode::from(self.code)
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        match &error {
            Error::Api(api) => {
                let code = match api.status() {
                    401 | 403 => REJECTED,
                    400..=499 => CLIENT_ERROR,
                    _ => SERVER_OR_TRANSPORT,
                };
                Self {
                    code,
                    // The alternate form leaves out the hint, printed on its own line.
                    message: format!("{api:#}"),
                    hint: Some(api.hint()),
                }
            }
            Error::InvalidInput(_) => Self::usage(error.to_string()),
            _ => Self::new(SERVER_OR_TRANSPORT, error.to_string()),
        }
    }
}
