//! `vipps-token spec diff`: what changed between two OpenAPI specs, and the exit code
//! that says whether any of it is breaking.

use vipps_access_token::spec_diff::{Format, diff_files};

use crate::{
    args::{SpecCommand, SpecFormat},
    failure::{Failure, SPEC_CHANGES, USAGE},
};

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
    crate::output::text(report.render(format));
    if report.has_breaking() {
        let summary = &report.summary;
        return Err(Failure::new(
            SPEC_CHANGES,
            format!(
                "{} breaking change(s) for clients ({} absorbed by the crate); see the report",
                summary.breaking, summary.breaking_absorbed_by_crate
            ),
        ));
    }
    Ok(())
}
