//! `vipps-token spec diff`: what changed between two OpenAPI specs, and the exit code
//! that says whether any of it is breaking.

use std::io::Write;

use vipps_access_token::spec_diff::{Format, diff_files};

use crate::{
    args::{SpecCommand, SpecFormat},
    failure::{Failure, OUTPUT, USAGE},
};

/// Exit code of `spec diff`: at least one change is breaking.
const BREAKING: u8 = 1;

/// Runs a `spec` subcommand.
pub fn run(command: SpecCommand) -> Result<(), Failure> {
    let SpecCommand::Diff(args) = command;
    let report = diff_files(&args.old, &args.new)
        .map_err(|e| Failure::new(USAGE, format!("cannot compare the specs: {e}")))?;
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
    if report.has_breaking() {
        let summary = &report.summary;
        return Err(Failure::new(
            BREAKING,
            format!(
                "{} breaking change(s) for clients ({} absorbed by the crate); see the report",
                summary.breaking, summary.breaking_absorbed_by_crate
            ),
        ));
    }
    Ok(())
}
