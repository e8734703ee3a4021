//! `vipps-token`: get Vipps MobilePay access tokens (standard, partner, legacy flows),
//! decode them, or run the embedded mock of the Access Token API.
//!
//! ```text
//! vipps-token token --env mock                      # a token from the in-process mock
//! VIPPS_CLIENT_ID=... VIPPS_CLIENT_SECRET=... VIPPS_SUBSCRIPTION_KEY=... vipps-token token
//! vipps-token partner-token --env production --output json
//! vipps-token token --output header | vipps-token decode
//! vipps-token mock --addr 127.0.0.1:8080
//! vipps-token serve --env production                 # a token broker for any language
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
mod serve;
mod session;
mod spec;
mod store;
mod warm;

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
    match command {
        // A warm run prints the cached token before any runtime or HTTP client exists.
        Command::Token(args) if warm::standard(&args) => Ok(()),
        Command::Token(args) => one_thread()?.block_on(fetch::standard(args)),
        Command::PartnerToken(args) if warm::partner(&args) => Ok(()),
        Command::PartnerToken(args) => one_thread()?.block_on(fetch::partner(args)),
        Command::LegacyToken(args) if warm::legacy(&args) => Ok(()),
        Command::LegacyToken(args) => one_thread()?.block_on(fetch::legacy(args)),
        Command::Decode(args) => decode::run(args),
        // The mock serves on every core; everything else makes one request at a time.
        Command::Mock(args) => {
            runtime(tokio::runtime::Builder::new_multi_thread())?.block_on(mock::run(args))
        }
        Command::Serve(args) => {
            runtime(tokio::runtime::Builder::new_multi_thread())?.block_on(serve::run(args))
        }
        Command::Conformance(args) => one_thread()?.block_on(conformance::run(args)),
        Command::Doctor(args) => one_thread()?.block_on(doctor::run(args)),
        Command::Spec(spec) => spec::run(spec),
        Command::Cache(cache) => cache::run(cache),
    }
}

/// A runtime on this thread: plenty for one request.
fn one_thread() -> Result<tokio::runtime::Runtime, Failure> {
    runtime(tokio::runtime::Builder::new_current_thread())
}

fn runtime(mut builder: tokio::runtime::Builder) -> Result<tokio::runtime::Runtime, Failure> {
    builder
        .enable_all()
        .build()
        .map_err(|e| Failure::new(USAGE, format!("could not start the runtime: {e}")))
}
