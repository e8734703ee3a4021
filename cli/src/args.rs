//! The command line: subcommands and their options.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};
use vipps_access_token::{LegacyResource, PARTNER_TOKEN_PATH};

/// Get Vipps MobilePay access tokens, decode them, or run a local mock of the Access Token API.
#[derive(Parser)]
#[command(name = "vipps-token", version, after_help = crate::failure::EXIT_CODES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Get a token with merchant or partner keys: POST /accesstoken/get.
    Token(StandardArgs),
    /// Get a token with management or accounting keys: POST /miami/v1/token.
    PartnerToken(PartnerArgs),
    /// Get a token from the deprecated legacy endpoint: POST /api/v2/accesstoken/jwt.
    LegacyToken(LegacyArgs),
    /// Show a token's header, claims and time left, without verifying its signature.
    Decode(DecodeArgs),
    /// Run the mock Access Token API in the foreground until Ctrl-C.
    Mock(MockArgs),
    /// Broker tokens for clients in any language: answer the four token endpoints as the
    /// API does, one cached token per set of keys, until SIGTERM or Ctrl-C. The first line
    /// on stdout is the base URL served.
    Serve(ServeArgs),
    /// Check a deployment against the documented request and response shapes, for each
    /// flow whose keys are given, and print a table; exit 6 when the server deviates, 5
    /// when it could not answer.
    Conformance(ConformanceArgs),
    /// Preflight: check keys, MSN, environment, clock and token store, one ok/warn/fail
    /// line each with what to do; exit 8 when a check fails.
    Doctor(DoctorArgs),
    /// Work with OpenAPI specs: `spec diff OLD NEW`.
    #[command(subcommand)]
    Spec(SpecCommand),
    /// The token commands' file cache: `cache list`, `cache clear`.
    #[command(subcommand)]
    Cache(CacheCommand),
}

/// Where tokens are kept between runs: by default a file cache in
/// $XDG_CACHE_HOME/vipps-token (else ~/.cache/vipps-token).
#[derive(Args)]
pub struct StoreArgs {
    /// Share tokens through Redis or Valkey, fetched once for every process:
    /// `redis://[user:password@]host[:port][/db]` (one server), `rediss://...` (TLS; a
    /// private CA's PEM file in VIPPS_TOKEN_STORE_CA), `redis+cluster://host:port,host:port`
    /// (a Cluster; `rediss+cluster://` for TLS), `redis+sentinel://host:port,host:port/SERVICE[/db]`
    /// (the master Sentinel names; `rediss+sentinel://` for TLS). The sealing key is read
    /// from VIPPS_TOKEN_STORE_KEY only (base64 of 32 bytes; never a flag, flags show in
    /// `ps`); VIPPS_TOKEN_STORE_PREVIOUS_KEY is still read during a rotation. `file:DIR`:
    /// the file cache in DIR instead.
    #[arg(
        long,
        value_name = "URL",
        env = "VIPPS_TOKEN_STORE",
        hide_env_values = true
    )]
    pub store: Option<String>,
    /// Keep no token between runs: fetch every time (overrides --store).
    #[arg(long)]
    pub no_cache: bool,
}

/// `doctor`.
#[derive(Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub subscription_key: SubscriptionKeyArgs,
    #[command(flatten)]
    pub caller: CallerArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// `text` to read; `json` for tools: every check with its status and message.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub output: ReportFormat,
}

/// `spec` subcommands.
#[derive(Subcommand)]
pub enum SpecCommand {
    /// Report every change from OLD to NEW that matters to a client, by level (breaking,
    /// warning, info; oasdiff's rule ids), and what it means for this crate. Exit 0 when
    /// no change is at or above --fail-on, 7 when one is, 2 when a spec cannot be read
    /// (the file and the place are named), 1 when stdout cannot be written.
    Diff(SpecDiffArgs),
}

/// `spec diff`.
#[derive(Args)]
pub struct SpecDiffArgs {
    /// The old spec (YAML or JSON, OpenAPI 3.0 or 3.1), such as openapi/access-token.yaml.
    pub old: PathBuf,
    /// The new spec.
    pub new: PathBuf,
    /// `text` for a terminal, `markdown` for a pull request or CHANGELOG, `json` for tools.
    #[arg(long, value_enum, default_value_t = SpecFormat::Text)]
    pub format: SpecFormat,
    /// The lowest level that fails (exit 7): `breaking` (oasdiff's ERR) or `warning`
    /// (WARN, which includes breaking).
    #[arg(long, value_name = "LEVEL", default_value = "breaking")]
    pub fail_on: vipps_spec_diff::FailOn,
    /// Do not fail on changes this crate absorbs (proven by running the new schema's
    /// instances through its parsers, and its requests against the new spec).
    #[arg(long)]
    pub ignore_absorbed: bool,
}

/// A `spec diff` report form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SpecFormat {
    /// Readable in a terminal.
    Text,
    /// A table for a pull request or the CHANGELOG.
    Markdown,
    /// The report's documented fields.
    Json,
}

/// Where to ask, and how long to wait.
#[derive(Args, Clone)]
pub struct Target {
    /// The environment to call (default: `test`; for `partner-token`, `production`, the
    /// only environment the partner flow exists in); `mock` starts the mock in this
    /// process and uses its keys for any key not given.
    #[arg(long, value_enum)]
    pub env: Option<Env>,
    /// A base URL to call instead of the environment's (a proxy, a mock).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Seconds to wait in all, retries included; past it the command exits 5.
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    pub timeout: Duration,
    /// How many times to try again after a server error, a 429 or a transport failure
    /// (within about 10 s in all); rejected credentials are never tried again.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub retries: u32,
}

impl Target {
    /// The environment asked for, or `default`.
    pub fn env_or(&self, default: Env) -> Env {
        self.env.unwrap_or(default)
    }
}

/// An environment to call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Env {
    /// The test environment, apitest.vipps.no.
    Test,
    /// Production, api.vipps.no.
    Production,
    /// The embedded mock, on a random loopback port.
    Mock,
}

/// `client_id` and `client_secret`.
#[derive(Args)]
pub struct KeyArgs {
    /// The client_id.
    #[arg(long, env = "VIPPS_CLIENT_ID", hide_env_values = true)]
    pub client_id: Option<String>,
    /// The client_secret; prefer the environment variable or --client-secret-stdin, which
    /// other users of the machine cannot see.
    #[arg(
        long,
        env = "VIPPS_CLIENT_SECRET",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub client_secret: Option<String>,
    /// Read the client_secret from the first line of stdin.
    #[arg(long)]
    pub client_secret_stdin: bool,
}

/// `Ocp-Apim-Subscription-Key`.
#[derive(Args)]
pub struct SubscriptionKeyArgs {
    /// The Ocp-Apim-Subscription-Key.
    #[arg(
        long,
        env = "VIPPS_SUBSCRIPTION_KEY",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub subscription_key: Option<String>,
    /// Read the subscription key from the next line of stdin (after the client_secret
    /// when both are read).
    #[arg(long)]
    pub subscription_key_stdin: bool,
}

/// The headers that identify the caller.
#[derive(Args, Clone)]
pub struct CallerArgs {
    /// Merchant-Serial-Number: 4 to 6 digits.
    #[arg(long, env = "VIPPS_MSN", hide_env_values = true)]
    pub msn: Option<String>,
    /// Vipps-System-Name.
    #[arg(long, env = "VIPPS_SYSTEM_NAME", hide_env_values = true)]
    pub system_name: Option<String>,
    /// Vipps-System-Version.
    #[arg(long, env = "VIPPS_SYSTEM_VERSION", hide_env_values = true)]
    pub system_version: Option<String>,
    /// Vipps-System-Plugin-Name.
    #[arg(long, env = "VIPPS_SYSTEM_PLUGIN_NAME", hide_env_values = true)]
    pub system_plugin_name: Option<String>,
    /// Vipps-System-Plugin-Version.
    #[arg(long, env = "VIPPS_SYSTEM_PLUGIN_VERSION", hide_env_values = true)]
    pub system_plugin_version: Option<String>,
}

/// What to print on success.
#[derive(Args)]
pub struct OutputArgs {
    /// `token`: the token alone; `header`: `Authorization: Bearer <token>`; `json`: the
    /// response, numbers as integers.
    #[arg(long, value_enum, default_value_t = Output::Token)]
    pub output: Output,
}

/// An output form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// The token alone, for pipes: `curl -H "Authorization: Bearer $(vipps-token token)"`.
    Token,
    /// `Authorization: Bearer <token>`.
    Header,
    /// The response as JSON.
    Json,
}

/// `token`.
#[derive(Args)]
pub struct StandardArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub subscription_key: SubscriptionKeyArgs,
    #[command(flatten)]
    pub caller: CallerArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// The partner flow's `client_id` and `client_secret` (management or accounting keys):
/// read from their own variables, so that merchant keys in the environment are never sent
/// to the partner endpoint by mistake.
#[derive(Args)]
pub struct PartnerKeyArgs {
    /// The partner client_id (management or accounting keys).
    #[arg(long, env = "VIPPS_PARTNER_CLIENT_ID", hide_env_values = true)]
    pub client_id: Option<String>,
    /// The partner client_secret; prefer the environment variable or
    /// --client-secret-stdin, which other users of the machine cannot see.
    #[arg(
        long,
        env = "VIPPS_PARTNER_CLIENT_SECRET",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub client_secret: Option<String>,
    /// Read the client_secret from the first line of stdin.
    #[arg(long)]
    pub client_secret_stdin: bool,
}

impl PartnerKeyArgs {
    /// The same values, in the form the key reader takes.
    pub fn as_keys(&self) -> KeyArgs {
        KeyArgs {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            client_secret_stdin: self.client_secret_stdin,
        }
    }
}

/// `partner-token`.
#[derive(Args)]
pub struct PartnerArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub keys: PartnerKeyArgs,
    #[command(flatten)]
    pub caller: CallerArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// The token path, such as /authentication/v1/token once the endpoint is renamed.
    #[arg(long, value_name = "PATH", default_value = PARTNER_TOKEN_PATH)]
    pub token_path: String,
    /// The OAuth scope to ask for.
    #[arg(long)]
    pub scope: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `legacy-token`.
#[derive(Args)]
pub struct LegacyArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub subscription_key: SubscriptionKeyArgs,
    #[command(flatten)]
    pub caller: CallerArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// The product's resource URL, or `recurring`, `invoice-isp`, `invoice-ipp`.
    #[arg(long, value_name = "URL", value_parser = resource)]
    pub resource: LegacyResource,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `conformance`.
#[derive(Args)]
pub struct ConformanceArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub subscription_key: SubscriptionKeyArgs,
    /// The partner flow's client_id (management or accounting keys).
    #[arg(long, env = "VIPPS_PARTNER_CLIENT_ID", hide_env_values = true)]
    pub partner_client_id: Option<String>,
    /// The partner flow's client_secret.
    #[arg(
        long,
        env = "VIPPS_PARTNER_CLIENT_SECRET",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub partner_client_secret: Option<String>,
    /// The partner token path.
    #[arg(long, value_name = "PATH", default_value = PARTNER_TOKEN_PATH)]
    pub token_path: String,
    /// `text`: a table to read; `json`: one object per check (flow, check, expected,
    /// observed, verdict) for CI tools.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub output: ReportFormat,
}

/// `decode`.
#[derive(Args)]
pub struct DecodeArgs {
    /// The token, `Bearer <token>` or `Authorization: Bearer <token>`; `-` or nothing
    /// reads it from stdin.
    #[arg(value_name = "TOKEN|-")]
    pub token: Option<String>,
    /// `text` to read; `json` for tools (header, claims, expires_at, seconds_left).
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub output: ReportFormat,
}

/// How a report (`doctor`, `conformance`, `decode`) is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Lines to read.
    Text,
    /// One JSON document, for tools and CI.
    Json,
}

/// `mock`.
#[derive(Args)]
pub struct MockArgs {
    /// Where to listen; a non-loopback address exposes the mock to the network.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:0")]
    pub addr: SocketAddr,
    /// Issue 24-hour production tokens instead of 1-hour test tokens.
    #[arg(long)]
    pub production: bool,
}

/// `serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// Where to listen (default 127.0.0.1:8479; port 0 picks a free one). An address
    /// beyond loopback needs --tls-cert and --tls-key.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8479")]
    pub addr: SocketAddr,
    /// The environment tokens are fetched from.
    #[arg(long, value_enum, default_value_t = UpstreamEnv::Test)]
    pub env: UpstreamEnv,
    /// A base URL to fetch tokens from instead of the environment's: https, or http on
    /// this machine (a mock).
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// The certificate chain to serve with TLS (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Connections served at once; more wait in the listen queue. Keep it below the
    /// process's open-file limit (`ulimit -n`).
    #[arg(long, value_name = "N", default_value = "512")]
    pub max_connections: usize,
    /// Seconds a client may take to send a request's headers, then its body, or to take
    /// an answer (and may stay idle between requests).
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = seconds)]
    pub header_timeout: Duration,
    /// Seconds one upstream token request may take, retries included.
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    pub upstream_timeout: Duration,
    /// Sets of keys to keep a token for; past it, the one asked for longest ago goes.
    #[arg(long, value_name = "N", default_value = "1024")]
    pub max_keys: usize,
}

/// An environment `serve` fetches from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum UpstreamEnv {
    /// The test environment, apitest.vipps.no.
    Test,
    /// Production, api.vipps.no.
    Production,
}

/// `cache` subcommands.
#[derive(Subcommand)]
pub enum CacheCommand {
    /// List the cached tokens: key name, flow and expiry (no token, no key).
    List(CacheArgs),
    /// Remove every cached token: the next run of each token command fetches.
    Clear(CacheArgs),
}

/// Which cache.
#[derive(Args)]
pub struct CacheArgs {
    /// The cache directory, as given to `--store file:DIR` [default: $XDG_CACHE_HOME/vipps-token,
    /// else ~/.cache/vipps-token].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

fn seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| "expected a number of seconds, such as 30 or 0.5".to_owned())?;
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| "expected a positive number of seconds".to_owned())
}

fn resource(text: &str) -> Result<LegacyResource, String> {
    Ok(match text {
        "recurring" => LegacyResource::Recurring,
        "invoice-isp" => LegacyResource::InvoiceIsp,
        "invoice-ipp" => LegacyResource::InvoiceIpp,
        url => LegacyResource::Other(url.to_owned()),
    })
}
