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

use crate::{
    client::ClientBuilder,
    credentials::{PartnerCredentials, StandardCredentials},
    error::Error,
    error_body::ErrorBody,
    jwt::UnverifiedJwt,
    retry::RetryPolicy,
    token::AccessToken,
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
            partner_token_path: crate::paths::PARTNER_TOKEN_PATH.to_owned(),
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
pub enum Outcome {
    /// As documented.
    Pass,
    /// A deviation from the documentation, and what was seen.
    Fail(String),
    /// Not run, and why.
    Skipped(String),
}

/// One named check and its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// What was checked, for example `standard: 200 has every documented field`.
    pub name: String,
    /// How it went.
    pub outcome: Outcome,
}

/// Every check of a run, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The checks.
    pub checks: Vec<Check>,
}

impl Report {
    /// True when no check failed (skipped checks do not fail a run).
    pub fn passed(&self) -> bool {
        !self
            .checks
            .iter()
            .any(|c| matches!(c.outcome, Outcome::Fail(_)))
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Fail(_)))
    }

    fn record(&mut self, name: impl Into<String>, outcome: Outcome) {
        self.checks.push(Check {
            name: name.into(),
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
                Outcome::Skipped(why) => ("skip", format!("  {why}")),
            };
            writeln!(f, "{:<width$}  {result}{detail}", check.name)?;
        }
        let failed = self.failures().count();
        write!(f, "{} checks, {failed} failed", self.checks.len())
    }
}

/// Runs every check the configuration has keys for. Never stops at the first deviation.
pub async fn run(config: &ConformanceConfig) -> Report {
    let mut report = Report::default();
    let client = match ClientBuilder::with_base_url(&config.base_url)
        .partner_token_path(&config.partner_token_path)
        .retry_policy(RetryPolicy::none())
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            report.record("configuration", Outcome::Fail(error.to_string()));
            return report;
        }
    };

    match &config.standard {
        Some(keys) => {
            let token = client.standard_token(keys).await;
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
                client.standard_token(&wrong_secret).await,
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
                client.standard_token(&wrong_key).await,
            );
        }
        None => report.record(
            "standard",
            Outcome::Skipped("no standard keys given".to_owned()),
        ),
    }

    match &config.partner {
        Some(keys) => {
            let token = client.partner_token(keys, None).await;
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
                client.partner_token(&wrong_secret, None).await,
            );
        }
        None => report.record(
            "partner",
            Outcome::Skipped("no partner keys given".to_owned()),
        ),
    }
    report
}

/// A value that is surely not the real one, of the same alphabet.
fn wrong(secret: &str) -> String {
    let kept = secret.chars().count().saturating_sub(2);
    format!("{}x0", secret.chars().take(kept).collect::<String>())
}

/// The checks of a 200: the body's shape, `token_type`, and the token's `exp`.
fn check_token(report: &mut Report, flow: &str, result: Result<AccessToken, Error>) {
    let shape = format!("{flow}: 200 has every documented field, numbers readable");
    let token = match result {
        Ok(token) => {
            report.record(shape, Outcome::Pass);
            token
        }
        Err(error) => {
            report.record(shape, Outcome::Fail(error.to_string()));
            for rest in [
                "token_type is Bearer",
                "access_token is a JWT",
                "exp agrees with expires_in",
            ] {
                report.record(
                    format!("{flow}: {rest}"),
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
    report.record(format!("{flow}: token_type is Bearer"), token_type);

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
    report.record(format!("{flow}: access_token is a JWT"), is_jwt);
    report.record(format!("{flow}: exp agrees with expires_in"), expiry);
}

/// The checks of a refusal: a documented status, and a body of a documented shape.
fn check_refused(report: &mut Report, what: &str, result: Result<AccessToken, Error>) {
    let status_check = format!("{what} is refused with 400, 401 or 403");
    let shape_check = format!("{what}: the error body has a documented shape");
    let api = match result {
        Ok(_) => {
            report.record(
                status_check,
                Outcome::Fail("answered 200 with a token".to_owned()),
            );
            report.record(shape_check, Outcome::Skipped("no error".to_owned()));
            return;
        }
        Err(Error::Api(api)) => api,
        Err(error) => {
            report.record(status_check, Outcome::Fail(error.to_string()));
            report.record(shape_check, Outcome::Skipped("no answer".to_owned()));
            return;
        }
    };
    let status = if matches!(api.status(), 400 | 401 | 403) {
        Outcome::Pass
    } else {
        Outcome::Fail(format!("answered HTTP {}", api.status()))
    };
    report.record(status_check, status);
    let shape = match api.body() {
        ErrorBody::AzureAd(_) | ErrorBody::Gateway(_) | ErrorBody::OAuth(_) => Outcome::Pass,
        ErrorBody::Empty => Outcome::Fail("the body is empty".to_owned()),
        other => Outcome::Fail(format!("an unknown shape: {other}")),
    };
    report.record(shape_check, shape);
}
