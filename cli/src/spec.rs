//! `vipps-token spec diff`: what changed between two OpenAPI specs, and an exit code a CI
//! gate can use: 0 nothing at or above `--fail-on`, 7 something is, 2 a spec cannot be
//! read, 1 stdout cannot be written.

use vipps_spec_diff::{Format, Gate, diff_files};

use crate::{
    args::{SpecCommand, SpecFormat},
    failure::{Failure, SPEC_CHANGES, USAGE},
};

/// Runs a `spec` subcommand.
pub fn run(command: SpecCommand) -> Result<(), Failure> {
    let SpecCommand::Diff(args) = command;
    let report = diff_files(&args.old, &args.new)
        .map_err(|e| Failure::new(USAGE, format!("cannot compare the specs: {e}")))?;
    for warning in &report.warnings {
        crate::output::note(format_args!("warning: {warning}"));
    }
    let format = match args.format {
        SpecFormat::Text => Format::Text,
        SpecFormat::Markdown => Format::Markdown,
        SpecFormat::Json => Format::Json,
    };
    crate::output::text(report.render(format));
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
            SPEC_CHANGES,
            format!(
                "{failing} change(s) at or above --fail-on {}{which}; see the report",
                match gate.fail_on {
                    vipps_spec_diff::FailOn::Breaking => "breaking",
                    vipps_spec_diff::FailOn::Warning => "warning",
                }
            ),
        ));
    }
    Ok(())
}
