//! `doctor`: a preflight to run when something is wrong. One line per check, `ok`, `warn`
//! or `fail`, each saying what to do (or one JSON document with `--output json`); exit 8
//! when a check fails. No line shows a secret.

use std::time::{Duration, SystemTime};

use vipps_access_token::{
    ClientBuilder, ClientSecret, Environment, Error, MerchantSerialNumber, StandardCredentials,
    store,
};

use crate::{
    args::{CallerArgs, DoctorArgs, Env, ReportFormat},
    cache::Health,
    failure::{CHECK_FAILED, Failure},
    keys, output,
    session::Session,
};
/// Clocks further apart than this earn a warning.
const SKEW_WARNING: Duration = Duration::from_secs(60);

/// The outcome of one check.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Warn,
    Fail,
}

/// The checks so far, and how many failed. Text lines are printed as each check ends (a
/// slow check shows what came before it); JSON at the end.
struct Report {
    format: ReportFormat,
    failed: usize,
    checks: Vec<serde_json::Value>,
}

impl Report {
    fn line(&mut self, status: Status, check: &str, message: impl AsRef<str>) {
        let label = match status {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => {
                self.failed += 1;
                "fail"
            }
        };
        let message = message.as_ref();
        match self.format {
            ReportFormat::Text => output::line(format!("{label:<5} {check:<13} {message}")),
            ReportFormat::Json => self.checks.push(serde_json::json!({
                "check": check,
                "status": label,
                "message": message,
            })),
        }
    }

    /// Prints the JSON document, when that is the form asked for.
    fn finish(&self) {
        if self.format == ReportFormat::Json {
            let document = serde_json::json!({ "checks": self.checks, "failed": self.failed });
            output::line(serde_json::to_string_pretty(&document).unwrap_or_default());
        }
    }
}

/// Runs every check that applies, in order; later checks are skipped when they depend on
/// one that failed.
pub async fn run(args: DoctorArgs) -> Result<(), Failure> {
    let mut report = Report {
        format: args.output,
        failed: 0,
        checks: Vec::new(),
    };
    // The store's settings first: a missing or bad sealing key fails by name before any
    // request is sent.
    let shared = open_shared_store(&mut report, &args);
    // A malformed MSN is a check that fails, reported with the others, not a usage error:
    // the client is built without it.
    let msn_ok = args
        .caller
        .msn
        .as_deref()
        .is_none_or(|msn| MerchantSerialNumber::new(msn).is_ok());
    let caller = CallerArgs {
        msn: args.caller.msn.clone().filter(|_| msn_ok),
        ..args.caller.clone()
    };
    let session = Session::open(&args.target, &caller, None).await?;
    let credentials = check_credentials(&mut report, &args, &session);
    check_msn(&mut report, args.caller.msn.as_deref());
    if let Some(credentials) = &credentials {
        check_token(&mut report, &args, &session, credentials).await;
    }
    check_clock(&mut report, session.client.base_url(), args.target.timeout).await;
    let secret = credentials.as_ref().map(|c| &c.client_secret);
    match shared {
        SharedStore::Open { url, store } => check_store(&mut report, store, url).await,
        SharedStore::None => check_cache(&mut report, &args, secret).await,
        SharedStore::Misconfigured => {} // reported first
    }
    report.finish();
    match report.failed {
        0 => Ok(()),
        n => Err(Failure::new(
            CHECK_FAILED,
            format!("{n} check{} failed", if n == 1 { "" } else { "s" }),
        )),
    }
}

/// Present (from flags, the environment or the mock) and shaped as the portal issues them.
fn check_credentials(
    report: &mut Report,
    args: &DoctorArgs,
    session: &Session,
) -> Option<StandardCredentials> {
    let from_mock = session.mock.is_some();
    let missing = [
        (
            args.keys.client_id.is_some(),
            "client_id",
            "set VIPPS_CLIENT_ID or pass --client-id",
        ),
        (
            args.keys.client_secret.is_some() || args.keys.client_secret_stdin,
            "client_secret",
            "set VIPPS_CLIENT_SECRET or pass --client-secret-stdin",
        ),
        (
            args.subscription_key.subscription_key.is_some()
                || args.subscription_key.subscription_key_stdin,
            "subscription key",
            "set VIPPS_SUBSCRIPTION_KEY or pass --subscription-key-stdin",
        ),
    ];
    let mut complete = true;
    for (given, what, how) in missing {
        if !given && !from_mock {
            report.line(Status::Fail, "credentials", format!("no {what}: {how}"));
            complete = false;
        }
    }
    if !complete {
        return None;
    }
    let credentials =
        keys::standard(&args.keys, &args.subscription_key, session.mock.as_ref()).ok()?;
    let mut shaped = true;
    if !is_uuid(credentials.client_id.as_str()) {
        shaped = false;
        report.line(
            Status::Warn,
            "credentials",
            "client_id is not a UUID: copy the client_id from the portal's keys, not the MSN or a name",
        );
    }
    let secret = credentials.client_secret.expose_secret();
    if secret.is_empty() || secret.trim() != secret {
        shaped = false;
        report.line(
            Status::Warn,
            "credentials",
            "client_secret is empty or has spaces at its ends: copy it again from the portal",
        );
    }
    let key = credentials.subscription_key.expose_secret();
    if key.len() != 32 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        shaped = false;
        report.line(
            Status::Warn,
            "credentials",
            "the subscription key is not 32 hex digits: use Ocp-Apim-Subscription-Key from the portal",
        );
    }
    if shaped {
        report.line(
            Status::Ok,
            "credentials",
            "client_id, client_secret and subscription key present and well formed",
        );
    }
    Some(credentials)
}

/// 4 to 6 digits; the token endpoint does not check it, later API calls do.
fn check_msn(report: &mut Report, msn: Option<&str>) {
    match msn.map(MerchantSerialNumber::new) {
        None => report.line(Status::Ok, "msn", "none given (only partner keys acting for a merchant need one)"),
        Some(Ok(_)) => report.line(
            Status::Ok,
            "msn",
            "4 to 6 digits; the token API does not check it: a wrong MSN shows as 403 on the first API call",
        ),
        Some(Err(_)) => report.line(Status::Fail, "msn", "Merchant-Serial-Number must be 4 to 6 digits: check VIPPS_MSN or --msn"),
    }
}

/// A token from the target: the keys, the subscription key and the environment agree.
async fn check_token(
    report: &mut Report,
    args: &DoctorArgs,
    session: &Session,
    credentials: &StandardCredentials,
) {
    let base_url = session.client.base_url();
    let environment = describe(
        args.target.env_or(Env::Test),
        args.target.base_url.is_some(),
    );
    match session.client.standard_token(credentials).await {
        Ok(token) => {
            let hours = token.expires_in().as_secs_f64() / 3600.0;
            report.line(
                Status::Ok,
                "token",
                format!("got a token from {environment} ({base_url}), valid {hours:.1} h; subscription key accepted"),
            );
            let looks_like_test = token.expires_in() <= Duration::from_secs(3600);
            if args.target.env_or(Env::Test) == Env::Production
                && looks_like_test
                && args.target.base_url.is_none()
            {
                report.line(Status::Warn, "environment", "production issued a token of 1 hour or less; production tokens last 24 h: check the base URL");
            }
        }
        Err(error) if error.is_credentials_rejected() => {
            let hint = match &error {
                Error::Api(api) => api.hint(),
                _ => "",
            };
            report.line(
                Status::Fail,
                "token",
                format!("{environment} rejected the keys: {hint}"),
            );
            if let Some(other) = other_environment(args) {
                check_other_environment(report, other, credentials).await;
            }
        }
        Err(error) => report.line(
            Status::Fail,
            "token",
            format!(
                "no token from {environment}: {error}; check the network, --base-url and --timeout"
            ),
        ),
    }
}

/// Test keys against production (or the reverse) is the most common mistake: ask the
/// other environment whether it knows these keys.
async fn check_other_environment(
    report: &mut Report,
    other: Environment,
    credentials: &StandardCredentials,
) {
    let (name, flag) = match other {
        Environment::Test => ("the test environment", "--env test"),
        _ => ("production", "--env production"),
    };
    let Ok(client) = ClientBuilder::with_base_url(other.base_url()).build() else {
        return;
    };
    match client.standard_token(credentials).await {
        Ok(_) => report.line(
            Status::Fail,
            "environment",
            format!("these keys belong to {name}: use {flag} (test and production have separate keys)"),
        ),
        Err(_) => report.line(
            Status::Warn,
            "environment",
            format!("{name} rejects them too: the keys are wrong or revoked; copy them again from the portal"),
        ),
    }
}

fn other_environment(args: &DoctorArgs) -> Option<Environment> {
    match (args.target.env_or(Env::Test), &args.target.base_url) {
        (Env::Production, None) => Some(Environment::Test),
        (Env::Test, None) => Some(Environment::Production),
        _ => None,
    }
}

fn describe(env: Env, custom: bool) -> &'static str {
    match (env, custom) {
        (_, true) => "the given base URL",
        (Env::Test, false) => "the test environment",
        (Env::Production, false) => "production",
        (Env::Mock, false) => "the embedded mock",
    }
}

/// The local clock against the server's `Date` header, corrected for half the round trip.
async fn check_clock(report: &mut Report, base_url: &str, timeout: Duration) {
    let Some(http) = vipps_access_token::http_client_builder()
        .ok()
        .and_then(|builder| builder.timeout(timeout).build().ok())
    else {
        return;
    };
    let sent = SystemTime::now();
    let response = match http.get(base_url).send().await {
        Ok(response) => response,
        Err(_) => {
            return report.line(
                Status::Warn,
                "clock",
                "could not reach the server to read its Date header",
            );
        }
    };
    let received = SystemTime::now();
    let server = response
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| httpdate::parse_http_date(text).ok());
    let Some(server) = server else {
        return report.line(
            Status::Warn,
            "clock",
            "the server sent no Date header: skew not checked",
        );
    };
    let round_trip = received.duration_since(sent).unwrap_or_default();
    let local = sent + round_trip / 2;
    let skew = server
        .duration_since(local)
        .unwrap_or_else(|e| e.duration());
    // Date has a resolution of one second.
    if skew > SKEW_WARNING {
        report.line(
            Status::Warn,
            "clock",
            format!("{} s apart from the server's Date: sync the clock (NTP); expiry is counted from expires_in, but a shared store's records are not", skew.as_secs()),
        );
    } else {
        report.line(
            Status::Ok,
            "clock",
            format!("within {} s of the server's Date", skew.as_secs().max(1)),
        );
    }
}

/// A shared store (`--store` with a Redis URL, not a `file:` directory, and no
/// `--no-cache`), as far as its settings go.
enum SharedStore<'a> {
    /// None asked for: the file cache is checked instead.
    None,
    /// Its URL or sealing key is wrong; the failed check is reported already.
    Misconfigured,
    /// Opened, not yet probed.
    Open {
        url: &'a str,
        store: std::sync::Arc<dyn store::TokenStore>,
    },
}

/// The shared store's URL and sealing key, checked without a request.
fn open_shared_store<'a>(report: &mut Report, args: &'a DoctorArgs) -> SharedStore<'a> {
    let Some(url) = args
        .store
        .store
        .as_deref()
        .filter(|url| !args.store.no_cache && !url.starts_with("file:"))
    else {
        return SharedStore::None;
    };
    match crate::store::try_open(url, None) {
        Ok(store) => SharedStore::Open { url, store },
        Err(message) => {
            report.line(Status::Fail, "store", message);
            SharedStore::Misconfigured
        }
    }
}

/// Without a shared store: the file cache the token commands use (or `--store file:DIR`).
async fn check_cache(report: &mut Report, args: &DoctorArgs, secret: Option<&ClientSecret>) {
    if let Some(url) = args.store.store.as_deref().filter(|_| !args.store.no_cache) {
        match crate::store::try_open(url, secret) {
            Ok(store) => return check_store(report, store, url).await,
            Err(message) => return report.line(Status::Fail, "store", message),
        }
    }
    let env = args.target.env_or(Env::Test);
    let (status, message) = match crate::cache::health(&args.store, env, secret).await {
        Health::Ok(message) => (Status::Ok, message),
        Health::Warn(message) => (Status::Warn, message),
        Health::Fail(message) => (Status::Fail, message),
    };
    report.line(status, "cache", message);
}

/// The store reachable, and the sealing key able to read what it writes.
async fn check_store(report: &mut Report, store: std::sync::Arc<dyn store::TokenStore>, url: &str) {
    let started = std::time::Instant::now();
    match store::probe(&*store).await {
        Ok(()) => report.line(
            Status::Ok,
            "store",
            format!(
                "{} reachable; the sealing key reads its own record (probe: {} ms)",
                describe_store(url),
                started.elapsed().as_millis()
            ),
        ),
        Err(error) => report.line(
            Status::Fail,
            "store",
            format!("{error}: check the URL, that Redis runs and accepts this AUTH, and that every process has the same key"),
        ),
    }
}

/// What kind of store the URL names, and where, without its credentials.
fn describe_store(url: &str) -> String {
    if let Some(dir) = url.strip_prefix("file:") {
        return format!("the file store in {dir}");
    }
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let hosts = rest.rsplit_once('@').map_or(rest, |(_, hosts)| hosts);
    let kind = match scheme {
        "redis+cluster" => "Redis Cluster",
        "rediss+cluster" => "Redis Cluster over TLS",
        "redis+sentinel" => "Redis through Sentinel",
        "rediss+sentinel" => "Redis through Sentinel over TLS",
        "rediss" | "valkeys" => "Redis over TLS",
        _ => "Redis",
    };
    format!("{kind} at {hosts}")
}

fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && group.bytes().all(|b| b.is_ascii_hexdigit()))
}
