//! Live conformance mode: the checks pass against a server that behaves as documented,
//! and name each deviation of a deliberately wrong one. The live run itself is the
//! ignored test `live_deployment_conforms`: configure it with environment variables.
//! Cargo.toml makes this target require the feature `conformance`, so a command without
//! it fails instead of running nothing (`tests/ci_commands.rs` runs the documented one).

#[path = "support/token_body.rs"]
mod token_body;

use std::time::{SystemTime, UNIX_EPOCH};
use token_body::standard_token_body;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use vipps_access_token::{
    PartnerCredentials, StandardCredentials,
    conformance::{ConformanceConfig, ENV_HELP, Outcome, Report, run},
};
use wiremock::{Mock, MockServer, ResponseTemplate, matchers};

#[path = "support/example_keys.rs"]
mod example_keys;
use example_keys::{CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY};

#[tokio::test]
#[ignore = "live: set VIPPS_CONFORMANCE_BASE_URL and VIPPS_* keys (see conformance::ENV_HELP), then run `cargo test --all-features --test live_conformance -- --ignored`"]
async fn live_deployment_conforms() {
    let config = ConformanceConfig::from_env().unwrap_or_else(|e| panic!("{e}"));
    let report = run(&config).await;
    println!("{report}");
    assert!(
        report.passed(),
        "the deployment deviates from the docs:\n{report}"
    );
}

/// A JWT (unsigned for the test's purpose) whose `exp` is `expires_in` from now.
fn jwt(expires_in: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"iat": now, "nbf": now, "exp": now + expires_in});
    format!(
        "{}.{}.c2lnbmF0dXJl",
        URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT","alg":"RS256"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

fn standard_body(expires_in: Value) -> Value {
    standard_token_body(&jwt(3600), expires_in)
}

fn azure_invalid_secret() -> ResponseTemplate {
    ResponseTemplate::new(401).set_body_json(json!({
        "error": "invalid_client",
        "error_description": "AADSTS7000215: Invalid client secret provided.",
        "error_codes": [7000215],
        "timestamp": "2026-11-23 10:00:00Z",
        "trace_id": "00000000-0000-4000-8000-000000000001",
        "correlation_id": "00000000-0000-4000-8000-000000000002",
    }))
}

fn gateway_invalid_key() -> ResponseTemplate {
    ResponseTemplate::new(401).set_body_json(json!({
        "statusCode": 401,
        "message": "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."
    }))
}

/// A standard endpoint that answers as documented, except as `ok` and `wrong_secret` say.
async fn standard_server(ok: ResponseTemplate, wrong_secret: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(matchers::path("/accesstoken/get"))
        .and(matchers::header(
            "ocp-apim-subscription-key",
            SUBSCRIPTION_KEY,
        ))
        .and(matchers::header("client_secret", CLIENT_SECRET))
        .respond_with(ok)
        .mount(&server)
        .await;
    Mock::given(matchers::path("/accesstoken/get"))
        .and(matchers::header(
            "ocp-apim-subscription-key",
            SUBSCRIPTION_KEY,
        ))
        .respond_with(wrong_secret)
        .mount(&server)
        .await;
    Mock::given(matchers::path("/accesstoken/get"))
        .respond_with(gateway_invalid_key())
        .mount(&server)
        .await;
    server
}

fn standard_config(server: &MockServer) -> ConformanceConfig {
    let mut config = ConformanceConfig::new(server.uri());
    config.standard = Some(StandardCredentials::new(
        CLIENT_ID,
        CLIENT_SECRET,
        SUBSCRIPTION_KEY,
    ));
    config
}

fn outcome<'a>(report: &'a Report, name: &str) -> &'a Outcome {
    &report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check named {name:?} in\n{report}"))
        .outcome
}

fn failed(report: &Report) -> Vec<&str> {
    report.failures().map(|c| c.name.as_str()).collect()
}

#[tokio::test]
async fn a_documented_server_passes_every_check() {
    let ok = ResponseTemplate::new(200).set_body_json(standard_body(json!("3600")));
    let server = standard_server(ok, azure_invalid_secret()).await;
    let report = run(&standard_config(&server)).await;
    assert!(report.passed(), "{report}");
    assert_eq!(report.checks.len(), 9, "{report}");
    assert_eq!(
        outcome(&report, "partner"),
        &Outcome::Skipped("no partner keys given".to_owned())
    );
    let table = report.to_string();
    assert!(
        table.contains("standard: exp agrees with expires_in")
            && table.ends_with("9 checks, 0 failed"),
        "{table}"
    );
}

#[tokio::test]
async fn an_integer_where_a_string_is_documented_is_fine() {
    let ok = ResponseTemplate::new(200).set_body_json(standard_body(json!(3600)));
    let server = standard_server(ok, azure_invalid_secret()).await;
    let report = run(&standard_config(&server)).await;
    assert!(report.passed(), "{report}");
}

#[tokio::test]
async fn a_dropped_access_token_is_reported() {
    let mut body = standard_body(json!("3600"));
    body.as_object_mut().unwrap().remove("access_token");
    let server = standard_server(
        ResponseTemplate::new(200).set_body_json(body),
        azure_invalid_secret(),
    )
    .await;
    let report = run(&standard_config(&server)).await;
    assert_eq!(
        failed(&report),
        ["standard: 200 has every documented field, numbers readable"]
    );
    let Outcome::Fail(why) = outcome(
        &report,
        "standard: 200 has every documented field, numbers readable",
    ) else {
        unreachable!()
    };
    assert!(why.contains("access_token"), "{why}");
}

#[tokio::test]
async fn a_200_to_a_wrong_secret_is_reported() {
    let ok = ResponseTemplate::new(200).set_body_json(standard_body(json!("3600")));
    let server = standard_server(ok.clone(), ok).await;
    let report = run(&standard_config(&server)).await;
    assert_eq!(
        failed(&report),
        ["standard: a wrong client_secret is refused with 400, 401 or 403"]
    );
    assert_eq!(
        outcome(
            &report,
            "standard: a wrong client_secret is refused with 400, 401 or 403"
        ),
        &Outcome::Fail("answered 200 with a token".to_owned())
    );
}

#[tokio::test]
async fn an_unknown_error_shape_is_reported() {
    let ok = ResponseTemplate::new(200).set_body_json(standard_body(json!("3600")));
    let odd = ResponseTemplate::new(401).set_body_json(json!({"problem": "no"}));
    let server = standard_server(ok, odd).await;
    let report = run(&standard_config(&server)).await;
    assert_eq!(
        failed(&report),
        ["standard: a wrong client_secret: the error body has a documented shape"]
    );
}

#[tokio::test]
async fn a_token_whose_exp_disagrees_and_a_lowercase_type_are_reported() {
    let mut body = standard_body(json!("3600"));
    body["access_token"] = json!(jwt(86400));
    body["token_type"] = json!("bearer");
    let server = standard_server(
        ResponseTemplate::new(200).set_body_json(body),
        azure_invalid_secret(),
    )
    .await;
    let report = run(&standard_config(&server)).await;
    assert_eq!(
        failed(&report),
        [
            "standard: token_type is Bearer",
            "standard: exp agrees with expires_in"
        ]
    );
}

#[tokio::test]
async fn the_partner_flow_is_checked_when_its_keys_are_given() {
    let server = MockServer::start().await;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    Mock::given(matchers::path("/miami/v1/token"))
        .and(matchers::header("authorization", basic.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": jwt(900), "token_type": "Bearer", "expires_in": 900
        })))
        .mount(&server)
        .await;
    Mock::given(matchers::path("/miami/v1/token"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": "invalid_client", "error_description": "Client authentication failed."
        })))
        .mount(&server)
        .await;
    let mut config = ConformanceConfig::new(server.uri());
    config.partner = Some(PartnerCredentials::new(CLIENT_ID, CLIENT_SECRET));
    let report = run(&config).await;
    assert!(report.passed(), "{report}");
    assert_eq!(
        outcome(&report, "partner: exp agrees with expires_in"),
        &Outcome::Pass
    );
    assert_eq!(
        outcome(&report, "standard"),
        &Outcome::Skipped("no standard keys given".to_owned())
    );
}

#[test]
fn the_environment_help_names_every_variable() {
    for name in [
        "VIPPS_CONFORMANCE_BASE_URL",
        "VIPPS_CLIENT_ID",
        "VIPPS_CLIENT_SECRET",
        "VIPPS_SUBSCRIPTION_KEY",
        "VIPPS_PARTNER_CLIENT_ID",
        "VIPPS_PARTNER_CLIENT_SECRET",
    ] {
        assert!(ENV_HELP.contains(name), "{name}");
    }
}

/// The embedded mock behaves as documented, so every check passes against it.
#[cfg(feature = "mock")]
#[tokio::test]
async fn the_embedded_mock_passes_every_check() {
    let mock = vipps_access_token::mock::MockServer::start().await.unwrap();
    let mut config = ConformanceConfig::new(mock.base_url());
    config.standard = Some(mock.standard_credentials());
    config.partner = Some(mock.partner_credentials());
    let report = run(&config).await;
    assert!(report.passed(), "{report}");
    assert_eq!(report.checks.len(), 14, "{report}");
    assert!(
        report.checks.iter().all(|c| c.outcome == Outcome::Pass),
        "{report}"
    );
}
