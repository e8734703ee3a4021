//! The `vipps-token` binary against an in-process mock: every subcommand, every output
//! form, every exit code, and never a secret on stderr. Run against the installed binary
//! too: `VIPPS_TOKEN_BIN=path/to/vipps-token cargo test -p vipps-token-cli --test cli`.

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

#[path = "../../tests/support/cli_binary.rs"]
mod cli_binary;
use cli_binary::bin;

const VARIABLES: [&str; 14] = [
    "VIPPS_TOKEN_STORE",
    "VIPPS_TOKEN_STORE_KEY",
    "VIPPS_TOKEN_STORE_PREVIOUS_KEY",
    "VIPPS_TOKEN_STORE_PREFIX",
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

/// The documented keys, as the partner variables carry them.
fn partner_keys() -> Vec<(&'static str, String)> {
    vec![
        ("VIPPS_PARTNER_CLIENT_ID", DEFAULT_CLIENT_ID.to_owned()),
        (
            "VIPPS_PARTNER_CLIENT_SECRET",
            DEFAULT_CLIENT_SECRET.to_owned(),
        ),
    ]
}

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

/// Runs the binary with only the given `VIPPS_*` variables, a cache of its own and
/// `stdin`, off the runtime so that the in-process mock keeps serving. Checks that stderr holds no secret, and
/// stdout none but a token.
async fn run(args: &[&str], env: Vec<(&'static str, String)>, stdin: &str) -> Run {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let stdin = stdin.to_owned();
    let secrets = secrets_in(&args, &env);
    let run = tokio::task::spawn_blocking(move || {
        let (mut command, _cache) = command(&args, env);
        command.stdin(Stdio::piped()).stdout(Stdio::piped());
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

/// The binary with `args`, only the given `VIPPS_*` variables, stderr piped, and a cache
/// directory of its own: token commands cache by default, never in the real home. The
/// directory lives as long as the returned guard.
fn command(args: &[String], env: Vec<(&'static str, String)>) -> (Command, tempfile::TempDir) {
    let mut command = Command::new(bin());
    command.args(args).stderr(Stdio::piped());
    for name in VARIABLES {
        command.env_remove(name);
    }
    let cache = tempfile::tempdir().expect("a temporary directory");
    command.env("XDG_CACHE_HOME", cache.path());
    command.envs(env);
    (command, cache)
}

/// A loopback port that nothing listens on: it was free a moment ago.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port()
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
    let run = run(&args, partner_keys(), "").await;
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
    let legacy = run_mock(&["legacy-token", "--env", "mock", "--resource", "recurring"]).await;
    assert_eq!(legacy.code, 0, "{legacy:?}");
    assert_eq!(legacy.stdout.trim_end().split('.').count(), 3, "{legacy:?}");
}

/// `--env mock` is "no keys, no network": the mock runs in the process, on loopback. A
/// proxy set for the machine (`HTTP_PROXY`, as on many CI runners and company laptops) must
/// not stand between the process and itself; here it is a port nothing listens on.
#[tokio::test]
async fn env_mock_is_not_sent_through_a_proxy() {
    let proxy = format!("http://127.0.0.1:{}", closed_port());
    for args in [
        &["token", "--env", "mock"][..],
        &["doctor", "--env", "mock"][..],
    ] {
        let run = run(args, vec![("HTTP_PROXY", proxy.clone())], "").await;
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
    }
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
        (
            vec!["token", "--base-url", "http://api.example.test"],
            "--base-url must use https",
        ),
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
        partner_keys(),
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
async fn exit_3_for_an_unknown_client_id_answered_with_400() {
    // Azure AD answers a client id it does not know with 400 unauthorized_client.
    let mock = MockServer::start().await.unwrap();
    let mut env = keys();
    env[0].1 = "4204662b-test-keys".to_owned();
    let run = run(&["token", "--base-url", mock.base_url()], env, "").await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("AADSTS700016"), "{run:?}");
    assert!(
        run.stderr.contains("test keys go to the test environment"),
        "{run:?}"
    );
    mock.fail_next(
        1,
        400,
        r#"{"error": "invalid_client", "error_description": "Client authentication failed."}"#,
    );
    let run = self::run(
        &["partner-token", "--base-url", mock.base_url()],
        partner_keys(),
        "",
    )
    .await;
    assert_eq!(run.code, 3, "{run:?}");
}

#[tokio::test]
async fn exit_4_on_other_client_errors() {
    let mock = MockServer::start().await.unwrap();

    mock.fail_all(
        429,
        r#"{"statusCode": 429, "message": "Rate limit is exceeded."}"#,
    );
    let args = ["token", "--base-url", mock.base_url(), "--retries", "0"];
    let run = self::run(&args, keys(), "").await;
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stderr.contains("Rate limit is exceeded"), "{run:?}");
    assert_eq!(mock.request_count(), 1, "--retries 0 tries once");
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
    // The attempt's timeout and the command's deadline are the same 0.2 s: either says so.
    assert!(
        run.stderr.contains("within --timeout 0.2 s") || run.stderr.contains("timed out"),
        "{run:?}"
    );
}

#[tokio::test]
async fn exit_5_when_nothing_listens() {
    let port = closed_port();
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
async fn token_commands_help_names_every_store_url_form() {
    for subcommand in ["token", "partner-token", "legacy-token", "doctor"] {
        let run = run(&[subcommand, "--help"], keys(), "").await;
        assert_eq!(run.code, 0, "{run:?}");
        for form in [
            "redis://",
            "rediss://",
            "redis+cluster://",
            "rediss+cluster://",
            "redis+sentinel://",
            "rediss+sentinel://",
            "file:DIR",
            "VIPPS_TOKEN_STORE_CA",
        ] {
            assert!(run.stdout.contains(form), "{subcommand} --help: {form}");
        }
    }
}

/// `vipps-token mock` in the foreground, and what it printed up to its last line ("stop
/// with ..."), after which its signal handlers are in place.
async fn spawn_mock() -> (std::process::Child, Vec<String>) {
    let mut child = Command::new(bin())
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
    (child, lines.await.unwrap())
}

#[tokio::test]
async fn mock_subcommand_serves_and_prints_its_keys() {
    let (mut child, lines) = spawn_mock().await;
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

#[tokio::test]
async fn doctor_against_the_mock_passes_every_check() {
    let run = run(&["doctor", "--env", "mock"], vec![], "").await;
    assert_eq!(run.code, 0, "{run:?}");
    for check in ["credentials", "msn", "token", "clock", "cache"] {
        assert!(
            run.stdout
                .lines()
                .any(|line| line.starts_with("ok") && line.contains(check)),
            "{check}: {run:?}"
        );
    }
}

#[tokio::test]
async fn doctor_fails_a_missing_store_key_by_name_before_any_request() {
    let mock = MockServer::start().await.unwrap();
    let args = [
        "doctor",
        "--base-url",
        mock.base_url(),
        "--store",
        "redis://127.0.0.1:9",
    ];
    let run = run(&args, keys(), "").await;
    assert_ne!(run.code, 0, "{run:?}");
    let first = run.stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("fail") && first.contains("store"),
        "{run:?}"
    );
    assert!(first.contains("VIPPS_TOKEN_STORE_KEY"), "{run:?}");
}

#[tokio::test]
async fn token_through_a_store_that_is_down_still_prints_a_token() {
    let mock = MockServer::start().await.unwrap();
    let port = closed_port();
    let store = format!("redis://127.0.0.1:{port}");
    let mut env = keys();
    env.push((
        "VIPPS_TOKEN_STORE_KEY",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned(),
    ));
    let run = run(
        &["token", "--base-url", mock.base_url(), "--store", &store],
        env,
        "",
    )
    .await;
    token_line(&mock, &run);
    assert_eq!(mock.requests_to("/accesstoken/get"), 1);
}

#[tokio::test]
async fn spec_diff_of_the_bundled_spec_with_itself_finds_nothing() {
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/access-token.yaml");
    let run = run(&["spec", "diff", spec, spec], vec![], "").await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("no change that affects clients"),
        "{run:?}"
    );
}

/// Runs the binary with stdout going to `stdout` (a closed pipe, /dev/full), stdin empty.
async fn run_with_stdout(args: &[&str], env: Vec<(&'static str, String)>, stdout: Stdio) -> Run {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let (mut command, _cache) = command(&args, env);
        let output = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .output()
            .expect("the binary runs");
        Run {
            code: output.status.code().expect("an exit code, not a signal"),
            stdout: String::new(),
            stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
        }
    })
    .await
    .expect("the run finished")
}

/// A pipe whose reading end is already closed: the reader has gone (`| head -c0`).
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    writer.into()
}

fn dev_full() -> Stdio {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full")
        .into()
}

#[tokio::test]
async fn output_errors_are_handled_alike_by_every_subcommand() {
    let mock = MockServer::start().await.unwrap();
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/access-token.yaml");
    let token = run(&["token", "--env", "mock"], vec![], "").await.stdout;
    let commands: Vec<Vec<&str>> = vec![
        vec!["token", "--base-url", mock.base_url()],
        vec!["conformance", "--env", "mock"],
        vec!["doctor", "--env", "mock"],
        vec!["decode", token.trim()],
        vec!["spec", "diff", spec, spec],
    ];
    for args in &commands {
        // A closed pipe is not an error: the exit code is the command's outcome.
        let run = run_with_stdout(args, keys(), closed_pipe()).await;
        assert_eq!(run.code, 0, "{args:?} into a closed pipe: {run:?}");
        assert!(!run.stderr.contains("panicked"), "{args:?}: {run:?}");
        // A full disk is: exit 1, saying so, and no panic.
        let run = run_with_stdout(args, keys(), dev_full()).await;
        assert_eq!(run.code, 1, "{args:?} into /dev/full: {run:?}");
        assert!(
            run.stderr.contains("could not write to stdout"),
            "{args:?}: {run:?}"
        );
    }
}

#[tokio::test]
async fn conformance_calls_an_outage_unavailable_not_a_deviation() {
    let mock = MockServer::start().await.unwrap();
    mock.fail_all(
        503,
        r#"{"statusCode": 503, "message": "Service Unavailable"}"#,
    );
    let run = run(&["conformance", "--base-url", mock.base_url()], keys(), "").await;
    assert_eq!(run.code, 5, "a 503 is an outage: {run:?}");
    assert!(run.stderr.contains("could not answer"), "{run:?}");
    assert!(!run.stdout.contains(" FAIL "), "{run:?}");

    // A server that never answers: --timeout bounds the whole run, retries included.
    mock.clear_faults();
    mock.set_delay(Duration::from_secs(600));
    let args = [
        "conformance",
        "--base-url",
        mock.base_url(),
        "--timeout",
        "0.5",
        "--retries",
        "3",
    ];
    let run = self::run(&args, keys(), "").await;
    assert_eq!(run.code, 5, "a hanging server is an outage: {run:?}");
    assert!(run.stdout.contains("no answer within"), "{run:?}");

    let port = closed_port();
    let nowhere = format!("http://127.0.0.1:{port}");
    let run = self::run(&["conformance", "--base-url", &nowhere], keys(), "").await;
    assert_eq!(run.code, 5, "nothing listening is an outage: {run:?}");
}

#[tokio::test]
async fn conformance_retries_as_told() {
    let mock = MockServer::start().await.unwrap();
    mock.fail_next(
        1,
        503,
        r#"{"statusCode": 503, "message": "Service Unavailable"}"#,
    );
    let args = ["conformance", "--env", "mock", "--retries", "1"];
    // `--env mock` starts its own mock; use the one here instead, which fails once.
    let args: Vec<&str> = args
        .iter()
        .map(|a| {
            if *a == "--env" {
                "--base-url"
            } else if *a == "mock" {
                mock.base_url()
            } else {
                a
            }
        })
        .collect();
    let run = run(&args, keys(), "").await;
    assert_eq!(run.code, 0, "one 503, then as documented: {run:?}");
}

#[tokio::test]
async fn conformance_json_has_one_object_per_check() {
    let run = run(
        &["conformance", "--env", "mock", "--output", "json"],
        vec![],
        "",
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let report: Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    let checks = report["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 14, "{report}");
    for check in checks {
        for field in ["flow", "check", "expected", "observed", "verdict"] {
            assert!(check[field].is_string(), "{field} in {check}");
        }
        assert_eq!(check["verdict"], "pass", "{check}");
    }
    assert_eq!(report["passed"], true);
}

#[tokio::test]
async fn exit_6_when_the_server_answers_but_not_as_documented() {
    let mock = MockServer::start().await.unwrap();
    for (status, body) in [(302, ""), (200, "<html>gateway maintenance</html>")] {
        mock.fail_next(1, status, body);
        let run = run(&["token", "--base-url", mock.base_url()], keys(), "").await;
        assert_eq!(run.code, 6, "HTTP {status}: {run:?}");
    }
}

#[tokio::test]
async fn exit_2_when_the_mock_address_is_in_use() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let run = run(&["mock", "--addr", &addr], vec![], "").await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains(&addr), "{run:?}");
}

#[tokio::test]
async fn partner_token_reads_the_partner_variables_not_the_merchant_ones() {
    let mock = MockServer::start().await.unwrap();
    // Both sets exported, as in a shell that works with both flows: the merchant secret is
    // wrong for the partner endpoint, and must not be sent there.
    let mut env = keys();
    env[1].1 = "merchant-secret-not-for-partner".to_owned();
    env.extend(partner_keys());
    let run = run(&["partner-token", "--base-url", mock.base_url()], env, "").await;
    token_line(&mock, &run);

    let run = self::run(
        &["partner-token", "--base-url", mock.base_url()],
        keys(),
        "",
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("VIPPS_PARTNER_CLIENT_ID"), "{run:?}");
}

#[tokio::test]
async fn partner_token_refuses_the_test_environment() {
    let run = run(&["partner-token", "--env", "test"], partner_keys(), "").await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("does not exist in the test environment"),
        "{run:?}"
    );
}

#[tokio::test]
async fn doctor_reports_a_malformed_msn_with_every_other_check() {
    let run = run(&["doctor", "--env", "mock", "--msn", "123"], vec![], "").await;
    assert_eq!(run.code, 8, "{run:?}");
    assert!(
        run.stdout
            .lines()
            .any(|line| line.starts_with("fail") && line.contains("msn")),
        "{run:?}"
    );
    assert!(
        run.stdout
            .lines()
            .any(|line| line.starts_with("ok") && line.contains("token")),
        "the other checks still run: {run:?}"
    );
}

#[tokio::test]
async fn doctor_and_decode_speak_json() {
    let run = run(&["doctor", "--env", "mock", "--output", "json"], vec![], "").await;
    assert_eq!(run.code, 0, "{run:?}");
    let report: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(report["failed"], 0);
    assert!(
        report["checks"]
            .as_array()
            .is_some_and(|checks| checks.len() >= 5),
        "{report}"
    );

    let token = self::run(&["token", "--env", "mock"], vec![], "")
        .await
        .stdout;
    let run = self::run(&["decode", "--output", "json", token.trim()], vec![], "").await;
    assert_eq!(run.code, 0, "{run:?}");
    let decoded: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(decoded["expired"], false);
    assert!(
        decoded["seconds_left"]
            .as_i64()
            .is_some_and(|left| left > 3000),
        "{decoded}"
    );
    assert_eq!(decoded["signature_verified"], false);
}

#[tokio::test]
async fn token_json_carries_an_absolute_expiry() {
    let run = run(&["token", "--env", "mock", "--output", "json"], vec![], "").await;
    assert_eq!(run.code, 0, "{run:?}");
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expires_at = json["expires_at"].as_u64().expect("expires_at");
    assert!((now + 3500..=now + 3700).contains(&expires_at), "{json}");
}

#[cfg(unix)]
#[tokio::test]
async fn the_mock_stops_cleanly_on_sigterm_as_on_sigint() {
    for signal in ["TERM", "INT"] {
        let (mut child, lines) = spawn_mock().await;
        assert!(
            lines.iter().any(|line| line.contains("http://127.0.0.1:")),
            "the mock started: {lines:?}"
        );
        let killed = Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
            .await
            .unwrap();
        assert_eq!(status.code(), Some(0), "SIG{signal}: {status:?}");
    }
}
