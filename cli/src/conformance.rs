//! `conformance`: the documented checks against a deployment, printed as a table or as
//! JSON for CI tools. Exit 6 only for deviations the server showed; 5 when it could not
//! answer (a 5xx, a timeout, no connection), so that an outage is not called a deviation.

use vipps_access_token::{
    PartnerCredentials,
    conformance::{self, ConformanceConfig, Report},
};

use crate::{
    args::{CallerArgs, ConformanceArgs, Env, ReportFormat},
    failure::{Failure, NOT_AS_DOCUMENTED, UNAVAILABLE},
    keys, output,
    session::Session,
};

/// What to set when no flow has keys: the flags and variables this command reads.
const KEYS_HELP: &str = "give the keys of each flow to check: VIPPS_CLIENT_ID, \
     VIPPS_CLIENT_SECRET and VIPPS_SUBSCRIPTION_KEY (or --client-id, --client-secret, \
     --subscription-key) for the standard flow; VIPPS_PARTNER_CLIENT_ID and \
     VIPPS_PARTNER_CLIENT_SECRET (or --partner-client-id, --partner-client-secret) for the \
     partner flow; choose where with --env or --base-url, or try --env mock";

/// Runs `conformance`.
pub async fn run(args: ConformanceArgs) -> Result<(), Failure> {
    let no_caller_headers = CallerArgs {
        msn: None,
        system_name: None,
        system_version: None,
        system_plugin_name: None,
        system_plugin_version: None,
    };
    let session = Session::open(&args.target, &no_caller_headers, Some(&args.token_path)).await?;
    let mock = session.mock.as_ref();

    let standard = match args.keys.client_id.is_some() || mock.is_some() {
        true => Some(keys::standard(&args.keys, &args.subscription_key, mock)?),
        false => None,
    };
    let partner = match (&args.partner_client_id, &args.partner_client_secret, mock) {
        (Some(id), Some(secret), _) => Some(PartnerCredentials::new(id, secret)),
        (None, None, Some(mock)) => Some(mock.partner_credentials()),
        (None, None, None) => None,
        _ => {
            return Err(Failure::usage(
                "give both --partner-client-id and --partner-client-secret, or neither",
            ));
        }
    };
    if standard.is_none() && partner.is_none() {
        return Err(Failure::usage(format!(
            "no keys to check with: {KEYS_HELP}"
        )));
    }
    if partner.is_some()
        && args.target.env_or(Env::Test) == Env::Test
        && args.target.base_url.is_none()
    {
        output::note(
            "note: the partner flow does not exist in the test environment; its checks will show what test answers",
        );
    }

    let mut config = ConformanceConfig::new(session.client.base_url());
    config.standard = standard;
    config.partner = partner;
    config.partner_token_path = args.token_path;
    config.timeout = args.target.timeout;
    config.retries = args.target.retries;
    let report = conformance::run(&config).await;
    match args.output {
        ReportFormat::Text => output::line(&report),
        ReportFormat::Json => output::line(json(&report)),
    }
    verdict(&report)
}

/// Deviations first: a server that deviated did answer. Then checks it could not answer.
fn verdict(report: &Report) -> Result<(), Failure> {
    let failed = report.failures().count();
    let unanswered = report.unavailable().count();
    if failed > 0 {
        return Err(Failure::new(
            NOT_AS_DOCUMENTED,
            format!(
                "{failed} check{} deviate from the documentation (see the report)",
                plural(failed)
            ),
        ));
    }
    if unanswered > 0 {
        return Err(Failure::new(
            UNAVAILABLE,
            format!(
                "the server could not answer {unanswered} check{}: no deviation seen, but \
                 conformance is unknown; try again later (--timeout, --retries)",
                plural(unanswered)
            ),
        ));
    }
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// One object per check: flow, check, expected, observed, verdict.
fn json(report: &Report) -> String {
    let checks: Vec<serde_json::Value> = report
        .checks
        .iter()
        .map(|check| {
            serde_json::json!({
                "flow": check.flow,
                "check": check.name,
                "expected": check.expected,
                "observed": check.observed(),
                "verdict": check.verdict(),
            })
        })
        .collect();
    let document = serde_json::json!({
        "checks": checks,
        "failed": report.failures().count(),
        "unavailable": report.unavailable().count(),
        "passed": report.passed(),
    });
    serde_json::to_string_pretty(&document).unwrap_or_default()
}
