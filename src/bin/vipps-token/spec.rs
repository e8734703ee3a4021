//! `vipps-token spec diff`: what changed between two OpenAPI specs, and an exit code a CI
//! gate can use: 0 nothing at or above `--fail-on`, 7 something is, 2 a spec cannot be
//! read, 1 stdout cannot be written.

use std::io::Write;

use vipps_access_token::spec_diff::{Format, Gate, diff_files};

use crate::{
    args::{SpecCommand, SpecFormat},
    failure::{Failure, OUTPUT, USAGE},
};

/// Exit code of `spec diff`: a change at or above `--fail-on`.
const CHANGE_AT_LEVEL: u8 = 7;

/// Runs a `spec` subcommand.
pub fn run(command: SpecCommand) -> Result<(), Failure> {
    let SpecCommand::Diff(args) = command;
    let report = diff_files(&args.old, &args.new)
        .map_err(|e| Failure::new(USAGE, format!("cannot compare the specs: {e}")))?;
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    let format = match args.format {
        SpecFormat::Text => Format::Text,
        SpecFormat::Markdown => Format::Markdown,
        SpecFormat::Json => Format::Json,
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(report.render(format).as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::new(OUTPUT, format!("cannot write the report: {e}")))?;
    let gate = Gate {
        fail_on: args.fail_on,
        ignore_absorbed: args.ignore_absorbed,
    };
    let failing = report.failing(gate).count();
    if failing > 0 {
        let which = if gate.ignore_absorbed {
            " not absorbed by the crate"
        } else {
            ""
        };
        return Err(Failure::new(
            CHANGE_AT_LEVEL,
            format!(
                "{failing} change(s) at or above --fail-on {}{which}; see the report",
                match gate.fail_on {
                    vipps_access_token::spec_diff::FailOn::Breaking => "breaking",
                    vipps_access_token::spec_diff::FailOn::Warning => "warning",
                }
            ),
        ));
    }
    Ok(())
}
