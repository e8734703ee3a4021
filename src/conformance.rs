//! Live conformance: the documented request/response checks, run against a real
//! deployment (or any base URL), reporting every deviation by name. Behind the feature
//! `conformance` (which `cli` turns on), so that library users never compile it.
//!
//! ```no_run
//! use vipps_access_token::conformance::{ConformanceConfig, run};
//!
//! # async fn check() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ConformanceConfig::from_env()?; // VIPPS_CONFORMANCE_BASE_URL, VIPPS_CLIENT_ID, ...
//! let report = run(&config).await;
//! println!("{report}");
//! assert!(report.passed());
//! # Ok(()) }
//! ```

use std::{fmt, time::Duration};

use tokio::time::Instant;

use crate::{
    client::{ClientBuilder, retry::RetryPolicy},
    credentials::{PartnerCredentials, StandardCredentials},
    error::{Error, body::ErrorBody},
    wire::{jwt::UnverifiedJwt, token::AccessToken},
};

/// How far a token's `exp` may be from the moment it was asked for plus `expires_in`.
pub const EXPIRY_TOLERANCE: Duration = Duration::from_secs(60);

/// The environment variables [`ConformanceConfig::from_env`] reads.
pub const ENV_HELP: &str = "set VIPPS_CONFORMANCE_BASE_URL (for example https://apitest.vipps.no) \
     and the keys of each flow to check: VIPPS_CLIENT_ID, VIPPS_CLIENT_SECRET and \
     VIPPS_SUBSCRIPTION_KEY for the standard flow; VIPPS_PARTNER_CLIENT_ID and \
     VIPPS_PARTNER_CLIENT_SECRET for the partner flow";

/// Where to run the checks, and with which keys. A flow without keys is skipped.
#[derive(Clone, Debug)]
pub struct ConformanceConfig {
    /// The deployment's base URL.
    pub base_url: String,
    /// Keys for the standard flow.
    pub standard: Option<StandardCredentials>,
    /// Keys for the partner flow.
    pub partner: Option<PartnerCredentials>,
    /// The partner token path ([`crate::PARTNER_TOKEN_PATH`] by default).
    pub partner_token_path: String,
    /// The whole run's time: each request is bounded by it, and no request starts after
    /// it has passed; a check without an answer by then is [`Outcome::Unavailable`]
    /// ([`crate::DEFAULT_TIMEOUT`] by default).
    pub timeout: Duration,
    /// How often a request is tried again after a 5xx, a 429 or a transport failure
    /// (0 by default: a conformance run reports what the server did, first time).
    pub retries: u32,
}

/// What is missing for a live run.
#[derive(Debug, thiserror::Error)]
#[error("live conformance is not configured: {missing}; {ENV_HELP}")]
pub struct NotConfigured {
    missing: String,
}

impl ConformanceConfig {
    /// A configuration for `base_url` with no keys yet.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            standard: None,
            partner: None,
            partner_token_path: crate::wire::paths::PARTNER_TOKEN_PATH.to_owned(),
            timeout: crate::client::DEFAULT_TIMEOUT,
            retries: 0,
        }
    }

    /// Reads the configuration from the environment (see [`ENV_HELP`]). Fails, saying
    /// what to set, when the base URL or every flow's keys are missing.
    pub fn from_env() -> Result<Self, NotConfigured> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let base_url = var("VIPPS_CONFORMANCE_BASE_URL").ok_or_else(|| NotConfigured {
            missing: "VIPPS_CONFORMANCE_BASE_URL is not set".to_owned(),
        })?;
        let mut config = Self::new(base_url);
        if let (Some(id), Some(secret), Some(key)) = (
            var("VIPPS_CLIENT_ID"),
            var("VIPPS_CLIENT_SECRET"),
            var("VIPPS_SUBSCRIPTION_KEY"),
        ) {
            config.standard = Some(StandardCredentials::new(id, secret, key));
        }
        if let (Some(id), Some(secret)) = (
            var("VIPPS_PARTNER_CLIENT_ID"),
            var("VIPPS_PARTNER_CLIENT_SECRET"),
        ) {
            config.partner = Some(PartnerCredentials::new(id, secret));
        }
        if let Some(path) = var("VIPPS_PARTNER_TOKEN_PATH") {
            config.partner_token_path = path;
        }
        if config.standard.is_none() && config.partner.is_none() {
            return Err(NotConfigured {
                missing: "no flow has all its keys".to_owned(),
            });
        }
        Ok(config)
    }
}

/// The outcome of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// As documented.
    Pass,
    /// A deviation from the documentation that the server showed, and what was seen.
    Fail(String),
    /// The server could not answer (a 5xx, a 429, a timeout, no connection): nothing was
    /// learnt about conformance. Not a deviation, and not a pass.
    Unavailable(String),
    /// Not run, and why.
    Skipped(String),
}

/// One named check and its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// What was checked, for example `standard: 200 has every documented field`.
    pub name: String,
    /// The flow: `standard` or `partner`.
    pub flow: String,
    /// What the documentation says should happen.
    pub expected: String,
    /// How it went.
    pub outcome: Outcome,
}

impl Check {
    /// `pass`, `fail`, `unavailable` or `skipped`.
    pub fn verdict(&self) -> &'static str {
        match self.outcome {
            Outcome::Pass => "pass",
            Outcome::Fail(_) => "fail",
            Outcome::Unavailable(_) => "unavailable",
            Outcome::Skipped(_) => "skipped",
        }
    }

    /// What was seen: `as expected` for a pass, else the deviation, the failure or why
    /// the check was skipped.
    pub fn observed(&self) -> &str {
        match &self.outcome {
            Outcome::Pass => "as expected",
            Outcome::Fail(seen) | Outcome::Unavailable(seen) | Outcome::Skipped(seen) => seen,
        }
    }
}

/// Every check of a run, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The checks.
    pub checks: Vec<Check>,
}

impl Report {
    /// True when every check that ran passed: none failed and none went unanswered
    /// (skipped checks do not fail a run).
    pub fn passed(&self) -> bool {
        self.failures().next().is_none() && self.unavailable().next().is_none()
    }

    /// The checks that failed: deviations the server showed.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Fail(_)))
    }

    /// The checks the server could not answer.
    pub fn unavailable(&self) -> impl Iterator<Item = &Check> {
        self.checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Unavailable(_)))
    }

    /// Records a check; the flow is the name up to its first `:`.
    fn record(&mut self, name: impl Into<String>, expected: &str, outcome: Outcome) {
        let name = name.into();
        let flow = name.split(':').next().unwrap_or_default().to_owned();
        self.checks.push(Check {
            name,
            flow,
            expected: expected.to_owned(),
            outcome,
        });
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .checks
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(5)
            .max(5);
        writeln!(f, "{:<width$}  result", "check")?;
        writeln!(f, "{:-<width$}  ------", "")?;
        for check in &self.checks {
            let (result, detail) = match &check.outcome {
                Outcome::Pass => ("pass", String::new()),
                Outcome::Fail(why) => ("FAIL", format!("  {why}")),
                Outcome::Unavailable(why) => ("NO ANSWER", format!("  {why}")),
                Outcome::Skipped(why) => ("skip", format!("  {why}")),
            };
            writeln!(f, "{:<width$}  {result}{detail}", check.name)?;
        }
        let failed = self.failures().count();
        write!(f, "{} checks, {failed} failed", self.checks.len())?;
        match self.unavailable().count() {
            0 => Ok(()),
            n => write!(f, ", {n} not answered"),
        }
    }
}

/// Runs every check the configuration has keys for. Never stops at the first deviation.
pub async fn run(config: &ConformanceConfig) -> Report {
    let mut report = Report::default();
    let deadline = Instant::now() + config.timeout;
    let client = match ClientBuilder::with_base_url(&config.base_url)
        .partner_token_path(&config.partner_token_path)
        .timeout(config.timeout)
        .retry_policy(RetryPolicy {
            max_attempts: config.retries.saturating_add(1),
            max_total: config.timeout.min(RetryPolicy::default().max_total),
            ..RetryPolicy::default()
        })
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            report.record(
                "configuration",
                "a usable base URL",
                Outcome::Fail(error.to_string()),
            );
            return report;
        }
    };

    match &config.standard {
        Some(keys) => {
            let token =
                within_deadline(deadline, config.timeout, client.standard_token(keys)).await;
            check_token(&mut report, "standard", token);
            let wrong_secret = StandardCredentials {
                client_secret: crate::credentials::ClientSecret::new(wrong(
                    keys.client_secret.expose_secret(),
                )),
                ..keys.clone()
            };
            check_refused(
                &mut report,
                "standard: a wrong client_secret",
                within_deadline(
                    deadline,
                    config.timeout,
                    client.standard_token(&wrong_secret),
                )
                .await,
            );
            let wrong_key = StandardCredentials {
                subscription_key: crate::credentials::SubscriptionKey::new(wrong(
                    keys.subscription_key.expose_secret(),
                )),
                ..keys.clone()
            };
            check_refused(
                &mut report,
                "standard: a wrong subscription key",
                within_deadline(deadline, config.timeout, client.standard_token(&wrong_key)).await,
            );
        }
        None => report.record(
            "standard",
            "checked when standard keys are given",
            Outcome::Skipped("no standard keys given".to_owned()),
        ),
    }

    match &config.partner {
        Some(keys) => {
            let token =
                within_deadline(deadline, config.timeout, client.partner_token(keys, None)).await;
            check_token(&mut report, "partner", token);
            let wrong_secret = PartnerCredentials {
                client_secret: crate::credentials::ClientSecret::new(wrong(
                    keys.client_secret.expose_secret(),
                )),
                ..keys.clone()
            };
            check_refused(
                &mut report,
                "partner: a wrong client_secret",
                within_deadline(
                    deadline,
                    config.timeout,
                    client.partner_token(&wrong_secret, None),
                )
                .await,
            );
        }
        None => report.record(
            "partner",
            "checked when partner keys are given",
            Outcome::Skipped("no partner keys given".to_owned()),
        ),
    }
    report
}

/// `request`, unless the run's deadline passes first (then a timeout, which the checks
/// record as [`Outcome::Unavailable`]).
async fn within_deadline(
    deadline: Instant,
    timeout: Duration,
    request: impl std::future::Future<Output = Result<AccessToken, Error>>,
) -> Result<AccessToken, Unanswered> {
    match tokio::time::timeout_at(deadline, request).await {
        Ok(result) => result.map_err(Unanswered::classify),
        Err(_) => Err(Unanswered::timed_out(timeout)),
    }
}

/// Why a request ended without a token: the server could not answer (a transport
/// failure, a transient status, the run's deadline), or it answered with an error that
/// the check judges.
enum Unanswered {
    Unavailable(String),
    Answered(Error),
}

impl Unanswered {
    fn classify(error: Error) -> Self {
        match error {
            Error::Transport(_) | Error::Interrupted => Self::Unavailable(error.to_string()),
            error if error.is_transient() => Self::Unavailable(error.to_string()),
            error => Self::Answered(error),
        }
    }

    /// The check's outcome when nothing better is known: the server's error judged as a
    /// deviation, or an outage.
    fn outcome(self) -> Outcome {
        match self {
            Self::Unavailable(why) => Outcome::Unavailable(why),
            Self::Answered(error) => Outcome::Fail(error.to_string()),
        }
    }

    fn timed_out(timeout: Duration) -> Self {
        Self::Unavailable(format!(
            "no answer within the run's timeout of {} s",
            timeout.as_secs_f64()
        ))
    }
}

/// A value that is surely not the real one, of the same alphabet.
fn wrong(secret: &str) -> String {
    let kept = secret.chars().count().saturating_sub(2);
    format!("{}x0", secret.chars().take(kept).collect::<String>())
}

const EXPECT_SHAPE: &str =
    "HTTP 200 with every documented field, numbers as integers or digit strings";
const EXPECT_BEARER: &str = "token_type \"Bearer\"";
const EXPECT_JWT: &str = "access_token is a JWT: three base64url parts, JSON header and claims";
const EXPECT_EXP: &str = "the JWT's exp within 60 s of the time asked plus expires_in";
const EXPECT_REFUSED: &str = "HTTP 400, 401 or 403";
const EXPECT_ERROR_BODY: &str = "an Azure AD, API gateway or OAuth 2.0 error body";

/// The checks of a 200: the body's shape, `token_type`, and the token's `exp`.
fn check_token(report: &mut Report, flow: &str, result: Result<AccessToken, Unanswered>) {
    let shape = format!("{flow}: 200 has every documented field, numbers readable");
    let token = match result {
        Ok(token) => {
            report.record(shape, EXPECT_SHAPE, Outcome::Pass);
            token
        }
        Err(unanswered) => {
            report.record(shape, EXPECT_SHAPE, unanswered.outcome());
            for (rest, expected) in [
                ("token_type is Bearer", EXPECT_BEARER),
                ("access_token is a JWT", EXPECT_JWT),
                ("exp agrees with expires_in", EXPECT_EXP),
            ] {
                report.record(
                    format!("{flow}: {rest}"),
                    expected,
                    Outcome::Skipped("no token".to_owned()),
                );
            }
            return;
        }
    };
    let token_type = if token.token_type() == "Bearer" {
        Outcome::Pass
    } else {
        Outcome::Fail(format!("token_type is {:?}", token.token_type()))
    };
    report.record(
        format!("{flow}: token_type is Bearer"),
        EXPECT_BEARER,
        token_type,
    );

    let jwt = UnverifiedJwt::decode(token.secret().expose_secret());
    let expiry = match &jwt {
        Ok(jwt) => match jwt.expires_at() {
            Some(exp) => {
                let expected = token.expires_at();
                let gap = crate::time::abs_diff(exp, expected);
                if gap <= EXPIRY_TOLERANCE {
                    Outcome::Pass
                } else {
                    Outcome::Fail(format!(
                        "exp is {} s away from now + expires_in",
                        gap.as_secs()
                    ))
                }
            }
            None => Outcome::Fail("the JWT has no numeric exp claim".to_owned()),
        },
        Err(_) => Outcome::Skipped("not a JWT".to_owned()),
    };
    let is_jwt = match jwt {
        Ok(_) => Outcome::Pass,
        Err(error) => Outcome::Fail(error.to_string()),
    };
    report.record(format!("{flow}: access_token is a JWT"), EXPECT_JWT, is_jwt);
    report.record(
        format!("{flow}: exp agrees with expires_in"),
        EXPECT_EXP,
        expiry,
    );
}

/// The checks of a refusal: a documented status, and a body of a documented shape.
fn check_refused(report: &mut Report, what: &str, result: Result<AccessToken, Unanswered>) {
    let status_check = format!("{what} is refused with 400, 401 or 403");
    let shape_check = format!("{what}: the error body has a documented shape");
    let api = match result {
        Ok(_) => {
            report.record(
                status_check,
                EXPECT_REFUSED,
                Outcome::Fail("answered 200 with a token".to_owned()),
            );
            report.record(
                shape_check,
                EXPECT_ERROR_BODY,
                Outcome::Skipped("no error".to_owned()),
            );
            return;
        }
        Err(Unanswered::Answered(Error::Api(api))) => api,
        Err(unanswered) => {
            report.record(status_check, EXPECT_REFUSED, unanswered.outcome());
            report.record(
                shape_check,
                EXPECT_ERROR_BODY,
                Outcome::Skipped("no answer".to_owned()),
            );
            return;
        }
    };
    let status = if matches!(api.status(), 400 | 401 | 403) {
        Outcome::Pass
    } else {
        Outcome::Fail(format!("answered HTTP {}", api.status()))
    };
    report.record(status_check, EXPECT_REFUSED, status);
    let shape = match api.body() {
        ErrorBody::AzureAd(_) | ErrorBody::Gateway(_) | ErrorBody::OAuth(_) => Outcome::Pass,
        ErrorBody::Empty => Outcome::Fail("the body is empty".to_owned()),
        other => Outcome::Fail(format!("an unknown shape: {other}")),
    };
    report.record(shape_check, EXPECT_ERROR_BODY, shape);
}
