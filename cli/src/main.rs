//! `vipps-token`: get Vipps MobilePay access tokens (standard, partner, legacy flows),
//! decode them, or run the embedded mock of the Access Token API.
//!
//! ```text
//! vipps-token token --env mock                      # a token from the in-process mock
//! VIPPS_CLIENT_ID=... VIPPS_CLIENT_SECRET=... VIPPS_SUBSCRIPTION_KEY=... vipps-token token
//! vipps-token partner-token --env production --output json
//! vipps-token token --output header | vipps-token decode
//! vipps-token mock --addr 127.0.0.1:8080
//! vipps-token conformance --env mock                # the documented checks, as a table
//! VIPPS_TOKEN_STORE_KEY=... vipps-token token --store redis://127.0.0.1:6379  # shared
//! vipps-token doctor --env mock                     # preflight: ok/warn/fail lines
//! vipps-token cache list                            # the file cache: names, flows, expiry
//! vipps-token spec diff openapi/access-token.yaml new.yaml --format markdown
//! ```

mod args;
mod cache;
mod conformance;
mod decode;
mod doctor;
mod failure;
mod fetch;
mod keys;
mod mock;
mod output;
mod progress;
mod session;
mod spec;
mod store;

use std::process::ExitCode;

use clap::Parser;

use crate::{
    args::{Cli, Command},
    failure::{Failure, USAGE},
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    log_warnings_to_stderr();
    let outcome = run(cli.command);
    // A report that could not be written outranks the outcome it would have shown.
    match output::write_failure().map_or(outcome, Err) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// Warnings (a token store bypassed, a refresh that failed) as one line each on stderr,
/// without time or colour: a script sees why every run fetches. The library never puts a
/// secret in a log.
fn log_warnings_to_stderr() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_target(false)
        .without_time()
        .try_init();
}

fn run(command: Command) -> Result<(), Failure> {
    // One thread is plenty for one request; the mock serves on every core.
    let mut runtime = match command {
        Command::Mock(_) => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = runtime
        .enable_all()
        .build()
        .map_err(|e| Failure::new(USAGE, format!("could not start the runtime: {e}")))?;
    match command {
        Command::Token(args) => runtime.block_on(fetch::standard(args)),
        Command::PartnerToken(args) => runtime.block_on(fetch::partner(args)),
        Command::LegacyToken(args) => runtime.block_on(fetch::legacy(args)),
        Command::Decode(args) => decode::run(args),
        Command::Mock(args) => runtime.block_on(mock::run(args)),
        Command::Conformance(args) => runtime.block_on(conformance::run(args)),
        Command::Doctor(args) => runtime.block_on(doctor::run(args)),
        Command::Spec(spec) => spec::run(spec),
        Command::Cache(cache) => cache::run(cache),
    }
}
