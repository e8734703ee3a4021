//! The `vipps-token` binary against an in-process mock: every subcommand, every output
//! form, every exit code, and never a secret on stderr.
#![cfg(feature = "cli")]

use std::{
    io::{BufRead, BufReader, Write},
    net::TcpListener,
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::Value;
use vipps_access_token::{
    RENAMED_PARTNER_TOKEN_PATH,
    mock::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_SUBSCRIPTION_KEY, MockServer},
};

const BIN: &str = env!("CARGO_BIN_EXE_vipps-token");

const VARIABLES: [&str; 10] = [
    "VIPPS_CLIENT_ID",
    "VIPPS_CLIENT_SECRET",
    "VIPPS_SUBSCRIPTION_KEY",
    "VIPPS_MSN",
    "VIPPS_SYSTEM_NAME",
    "VIPPS_SYSTEM_VERSION",
    "VIPPS_SYSTEM_PLUGIN_NAME",
    "VIPPS_SYSTEM_PLUGIN_VERSION",
    "VIPPS_PARTNER_CLIENT_ID",
    "VIPPS_PARTNER_CLIENT_SECRET",
];

/// A finished run of the binary.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// The documented keys, as the environment variables carry them.
fn keys() -> Vec<(&'static str, String)> {
    vec![
        ("VIPPS_CLIENT_ID", DEFAULT_CLIENT_ID.to_owned()),
        ("VIPPS_CLIENT_SECRET", DEFAULT_CLIENT_SECRET.to_owned()),
        (
            "VIPPS_SUBSCRIPTION_KEY",
            DEFAULT_SUBSCRIPTION_KEY.to_owned(),
        ),
    ]
}

/// The secrets a run knows: the documented ones, those in the environment, and the value
/// after `--client-secret` or `--subscription-key`.
fn secrets_in(args: &[String], env: &[(&'static str, String)]) -> Vec<String> {
    let mut secrets = vec![
        DEFAULT_CLIENT_SECRET.to_owned(),
        DEFAULT_SUBSCRIPTION_KEY.to_owned(),
    ];
    for (name, value) in env {
        if matches!(*name, "VIPPS_CLIENT_SECRET" | "VIPPS_SUBSCRIPTION_KEY") {
            secrets.push(value.clone());
        }
    }
    for pair in args.windows(2) {
        if matches!(pair[0].as_str(), "--client-secret" | "--subscription-key") {
            secrets.push(pair[1].clone());
        }
    }
    secrets
}

/// Runs the binary with only the given `VIPPS_*` variables, a cache of its own and `stdin`, off the runtime
/// so that the in-process mock keeps serving. Checks that stderr holds no secret, and
/// stdout none but a token.
async fn run(args: &[&str], env: Vec<(&'static str, String)>, stdin: &str) -> Run {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let stdin = stdin.to_owned();
    let secrets = secrets_in(&args, &env);
    let run = tokio::task::spawn_blocking(move || {
        let mut command = Command::new(BIN);
        command
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for name in VARIABLES {
            command.env_remove(name);
        }
        // Token commands cache by default: in a directory of this run, never the real home.
        let cache = tempfile::tempdir().expect("a temporary directory");
        command.env("XDG_CACHE_HOME", cache.path());
        command.envs(env);
        let mut child = command.spawn().expect("the binary starts");
        let mut input = child.stdin.take().expect("stdin");
        // The binary may exit without reading stdin.
        let _ = input.write_all(stdin.as_bytes());
        drop(input);
        let output = child.wait_with_output().expect("the binary ends");
        Run {
            code: output.status.code().expect("an exit code"),
            stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
            stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
        }
    })
    .await
    .expect("the run finished");
    for secret in &secrets {
        assert!(
            !run.stderr.contains(secret.as_str()),
            "secret on stderr: {run:?}"
        );
        assert!(
            !run.stdout.contains(secret.as_str()),
            "secret on stdout: {run:?}"
        );
    }
    run
}

/// The one line of stdout, which must be a token this mock signed.
fn token_line(mock: &MockServer, run: &Run) -> String {
    assert_eq!(run.code, 0, "{run:?}");
    let token = run.stdout.strip_suffix('\n').expect("one line");
    assert!(!token.contains('\n'), "{run:?}");
    assert!(mock.verify_token(token).is_some(), "{run:?}");
    token.to_owned()
}

#[tokio::test]
async fn token_prints_the_token_alone() {
    let mock = MockServer::start().await.unwrap();
    let run = run(&["token", "--base-url", mock.base_url()], keys(), "").await;
    token_line(&mock, &run);
    assert_eq!(run.stderr, "");
    assert_eq!(mock.requests_to("/accesstoken/get"), 1);
}

#[tokio::test]
async fn token_output_header() {
    let mock = MockServer::start().await.unwrap();
    let args = ["token", "--base-url", mock.base_url(), "--output", "header"];
    let run = run(&args, keys(), "").await;
    assert_eq!(run.code, 0, "{run:?}");
    let token = run
        .stdout
        .trim_end()
        .strip_prefix("Authorization: Bearer ")
        .expect("the header");
    assert!(mock.verify_token(token).is_some());
}

#[tokio::test]
async fn token_output_json_has_integers() {
    let mock = MockServer::start().await.unwrap();
    let args = ["token", "--base-url", mock.base_url(), "--output", "json"];
    let run = run(&args, keys(), "").await;
    assert_eq!(run.code, 0, "{run:?}");
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["expires_in"], 3600);
    assert!(json["ext_expires_in"].is_u64(), "{json}");
    assert_eq!(json["token_type"], "Bearer");
    let (on, before) = (json["expires_on"].as_u64(), json["not_before"].as_u64());
    assert_eq!(on.zip(before).map(|(on, before)| on - before), Some(3600));
    assert!(
        mock.verify_token(json["access_token"].as_str().unwrap())
            .is_some()
    );
}

#[tokio::test]
async fn keys_from_flags_and_stdin_and_caller_headers() {
    let mock = MockServer::start().await.unwrap();
    let args = [
        "token",
        "--base-url",
        mock.base_url(),
        "--client-id",
        DEFAULT_CLIENT_ID,
        "--client-secret-stdin",
        "--subscription-key-stdin",
        "--msn",
        "123456",
        "--system-name",
        "acme",
    ];
    let stdin = format!("{DEFAULT_CLIENT_SECRET}\r\n{DEFAULT_SUBSCRIPTION_KEY}\n");
    let run = run(
        &args,
        vec![("VIPPS_SYSTEM_VERSION", "3.1.2".into())],
        &stdin,
    )
    .await;
    token_line(&mock, &run);

    let run = run_missing_stdin(&mock).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("subscription key on a line of stdin"),
        "{run:?}"
    );
}

async fn run_missing_stdin(mock: &MockServer) -> Run {
    let args = [
        "token",
        "--base-url",
        mock.base_url(),
        "--subscription-key-stdin",
    ];
    run(&args, keys(), "").await
}

#[tokio::test]
async fn partner_token_on_the_renamed_path_with_scope() {
    let mock = MockServer::start().await.unwrap();
    let args = [
        "partner-token",
        "--base-url",
        mock.base_url(),
        "--token-path",
        RENAMED_PARTNER_TOKEN_PATH,
        "--scope",
        "report",
        "--output",
        "json",
    ];
    let run = run(&args, keys(), "").await;
    assert_eq!(run.code, 0, "{run:?}");
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["expires_in"], 900);
    let claims = mock
        .verify_token(json["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims["scope"], "report");
    assert_eq!(mock.requests_to(RENAMED_PARTNER_TOKEN_PATH), 1);
}

#[tokio::test]
async fn legacy_token_for_a_resource() {
    let mock = MockServer::start().await.unwrap();
    let args = [
        "legacy-token",
        "--base-url",
        mock.base_url(),
        "--resource",
        "invoice-isp",
        "--output",
        "json",
    ];
    let run = run(&args, keys(), "").await;
    assert_eq!(run.code, 0, "{run:?}");
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        json["resource"],
        "https://testapivipps.no/vippsas/invoice-isp-service"
    );
    assert_eq!(mock.requests_to("/api/v2/accesstoken/jwt"), 1);
}

#[tokio::test]
async fn decode_shows_header_claims_and_time_left() {
    let mock = MockServer::start().await.unwrap();
    let token = token_line(
        &mock,
        &run(&["token", "--base-url", mock.base_url()], keys(), "").await,
    );
    let by_argument = run(&["decode", &token], vec![], "").await;
    let from_stdin = run(
        &["decode", "-"],
        vec![],
        &format!("Authorization: Bearer {token}\n"),
    )
    .await;
    for decoded in [&by_argument, &from_stdin] {
        assert_eq!(decoded.code, 0, "{decoded:?}");
        assert!(decoded.stdout.contains(r#""alg": "HS256""#), "{decoded:?}");
        assert!(
            decoded
                .stdout
                .contains(&format!(r#""appid": "{DEFAULT_CLIENT_ID}""#))
        );
        assert!(
            decoded.stdout.contains("expires in 59m") || decoded.stdout.contains("expires in 1h")
        );
        assert!(decoded.stdout.contains("signature: not verified"));
    }
    let invalid = run(&["decode", "not-a-token"], vec![], "").await;
    assert_eq!(invalid.code, 2, "{invalid:?}");
    assert!(invalid.stderr.contains("not a JWT"));
}

#[tokio::test]
async fn env_mock_needs_no_keys() {
    let run_mock = |args: &'static [&'static str]| run(args, vec![], "");
    let run = run_mock(&["token", "--env", "mock"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.trim_end().split('.').count(), 3, "{run:?}");
    let partner = run_mock(&["partner-token", "--env", "mock", "--output", "json"]).await;
    assert_eq!(partner.code, 0, "{partner:?}");
    let json: Value = serde_json::from_str(&partner.stdout).unwrap();
    assert_eq!(json["expires_in"], 900);
}

#[tokio::test]
async fn exit_2_on_usage_and_invalid_input() {
    let mock = MockServer::start().await.unwrap();
    let base = mock.base_url();
    for (args, expected) in [
        (vec!["token", "--no-such-flag"], "--no-such-flag"),
        (
            vec!["token", "--base-url", base, "--msn", "12"],
            "Merchant-Serial-Number",
        ),
        (
            vec!["token", "--base-url", base, "--timeout", "soon"],
            "seconds",
        ),
        (
            vec!["token", "--base-url", base, "--env", "staging"],
            "staging",
        ),
        (vec!["token", "--base-url", "ftp://example"], "base_url"),
    ] {
        let run = run(&args, keys(), "").await;
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stderr.contains(expected), "{args:?}: {run:?}");
    }
    let run = run(&["token", "--base-url", base], vec![], "").await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("VIPPS_CLIENT_ID"), "{run:?}");
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn exit_3_when_credentials_are_rejected() {
    let mock = MockServer::start().await.unwrap();
    let wrong = "-my-wrong-secret";
    let args = [
        "token",
        "--base-url",
        mock.base_url(),
        "--client-secret",
        wrong,
    ];
    let run = run(&args, keys(), "").await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr
            .contains("AADSTS7000215: Invalid client secret provided"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("hint: the credentials were rejected"),
        "{run:?}"
    );

    mock.fail_next(1, 403, r#"{"statusCode": 403, "message": "Forbidden"}"#);
    let run = self::run(
        &["partner-token", "--base-url", mock.base_url()],
        keys(),
        "",
    )
    .await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("HTTP 403 Forbidden: Forbidden"),
        "{run:?}"
    );
}

#[tokio::test]
async fn exit_4_on_other_client_errors() {
    let mock = MockServer::start().await.unwrap();
    let mut env = keys();
    env[0].1 = "4204662b-test-keys".to_owned();
    let run = run(&["token", "--base-url", mock.base_url()], env, "").await;
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stderr.contains("AADSTS700016"), "{run:?}");
    assert!(
        run.stderr.contains("test keys go to the test environment"),
        "{run:?}"
    );

    mock.fail_all(
        429,
        r#"{"statusCode": 429, "message": "Rate limit is exceeded."}"#,
    );
    let args = ["token", "--base-url", mock.base_url(), "--retries", "0"];
    let run = self::run(&args, keys(), "").await;
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stderr.contains("Rate limit is exceeded"), "{run:?}");
    assert_eq!(mock.request_count(), 2, "--retries 0 tries once");
}

#[tokio::test]
async fn exit_5_on_server_errors() {
    let mock = MockServer::start().await.unwrap();
    mock.fail_all(
        500,
        r#"{"statusCode": 500, "message": "Internal server error"}"#,
    );
    let args = [
        "legacy-token",
        "--base-url",
        mock.base_url(),
        "--resource",
        "recurring",
        "--retries",
        "0",
    ];
    let run = run(&args, keys(), "").await;
    assert_eq!(run.code, 5, "{run:?}");
    assert!(
        run.stderr
            .contains("HTTP 500 Internal Server Error: Internal server error")
    );
    assert!(run.stderr.contains("hint: a server error"), "{run:?}");
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn a_transient_failure_is_retried() {
    let mock = MockServer::start().await.unwrap();
    mock.fail_next(
        1,
        503,
        r#"{"statusCode": 503, "message": "Service Unavailable"}"#,
    );
    let run = run(&["token", "--base-url", mock.base_url()], keys(), "").await;
    token_line(&mock, &run);
    assert_eq!(mock.requests_to("/accesstoken/get"), 2);
}

#[tokio::test]
async fn exit_5_on_timeout() {
    let mock = MockServer::start().await.unwrap();
    mock.set_delay(Duration::from_secs(60));
    let args = [
        "token",
        "--base-url",
        mock.base_url(),
        "--timeout",
        "0.2",
        "--retries",
        "0",
    ];
    let run = run(&args, keys(), "").await;
    assert_eq!(run.code, 5, "{run:?}");
    assert!(run.stderr.contains("timed out"), "{run:?}");
}

#[tokio::test]
async fn exit_5_when_nothing_listens() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let run = run(&["token", "--base-url", &url], keys(), "").await;
    assert_eq!(run.code, 5, "{run:?}");
    assert!(run.stderr.contains("could not connect"), "{run:?}");
}

#[tokio::test]
async fn help_hides_environment_values() {
    let mut env = keys();
    env[1].1 = "help-secret-value".to_owned();
    let run = run(&["token", "--help"], env, "").await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("VIPPS_CLIENT_SECRET"), "{run:?}");
}

#[tokio::test]
async fn mock_subcommand_serves_and_prints_its_keys() {
    let mut child = Command::new(BIN)
        .args(["mock", "--addr", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .take_while(|line| !line.starts_with("stop with"))
            .collect::<Vec<_>>()
    });
    let lines = lines.await.unwrap();
    let text = lines.join("\n");
    let base_url = text
        .split_whitespace()
        .find(|word| word.starts_with("http://127.0.0.1:"))
        .map(str::to_owned);
    let token = match &base_url {
        Some(url) => {
            let client = vipps_access_token::ClientBuilder::with_base_url(url)
                .build()
                .unwrap();
            let keys = vipps_access_token::StandardCredentials::new(
                DEFAULT_CLIENT_ID,
                DEFAULT_CLIENT_SECRET,
                DEFAULT_SUBSCRIPTION_KEY,
            );
            Some(client.standard_token(&keys).await)
        }
        None => None,
    };
    // Stop the child before asserting, so that a failure leaves no process behind.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(base_url.is_some(), "{text}");
    assert!(matches!(token, Some(Ok(_))), "{token:?}");
    for key in [
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
        DEFAULT_SUBSCRIPTION_KEY,
    ] {
        assert!(text.contains(key), "{text}");
    }
}

#[tokio::test]
async fn conformance_against_the_mock_passes_every_check() {
    let run = run(&["conformance", "--env", "mock"], vec![], "").await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("standard: exp agrees with expires_in"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("partner: a wrong client_secret is refused"),
        "{run:?}"
    );
    assert!(
        run.stdout.trim_end().ends_with("14 checks, 0 failed"),
        "{run:?}"
    );
}

#[tokio::test]
async fn conformance_reports_each_deviation_and_exits_6() {
    let mock = MockServer::start().await.unwrap();
    // Every answer is a 200 without access_token: the token checks fail, and so do the
    // refusals of a wrong secret and a wrong subscription key.
    mock.fail_all(
        200,
        r#"{"token_type": "Bearer", "expires_in": "3600", "ext_expires_in": "0",
            "expires_on": "1495271273", "not_before": "1495184574", "resource": "r"}"#,
    );
    let run = run(&["conformance", "--base-url", mock.base_url()], keys(), "").await;
    assert_eq!(run.code, 6, "{run:?}");
    let failed: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains(" FAIL "))
        .collect();
    assert_eq!(failed.len(), 3, "{run:?}");
    assert!(failed[0].contains("access_token"), "{run:?}");
    assert!(
        failed[1].starts_with("standard: a wrong client_secret"),
        "{run:?}"
    );
    assert!(
        failed[2].starts_with("standard: a wrong subscription key"),
        "{run:?}"
    );
    assert!(run.stderr.contains("3 checks deviate"), "{run:?}");
}

#[tokio::test]
async fn conformance_without_keys_says_what_to_set() {
    let run = run(
        &["conformance", "--base-url", "http://127.0.0.1:9"],
        vec![],
        "",
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("VIPPS_CONFORMANCE_BASE_URL") || run.stderr.contains("VIPPS_CLIENT_ID"),
        "{run:?}"
    );
}
