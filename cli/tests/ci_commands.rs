//! The commands the docs tell users to run in CI, run here as written, so that they can
//! never silently check nothing again: the live conformance command (its guide,
//! `docs/live-conformance.md`, the ignored test's message, the weekly workflow) and the
//! upstream spec-diff workflow's step. Each must pass against a server or spec that
//! conforms, and fail against one that does not. And what the docs say beside them: the
//! CLI README's exit codes are `--help`'s, and no doc but BENCHMARKS.md holds a figure.

#[path = "../../tests/support/cli_binary.rs"]
mod cli_binary;
use cli_binary::bin;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use vipps_access_token::mock::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_SUBSCRIPTION_KEY, MockServer,
};

/// The repository root: the docs, the workflows and the library's spec.
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The live conformance command, as its guide gives it.
const LIVE_COMMAND: &str = "cargo test --all-features --test live_conformance -- --ignored";

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path)).expect(path)
}

/// The workflow's steps, by name: `(name, run)`.
fn workflow_steps(path: &str) -> Vec<(String, String)> {
    let workflow: serde_yaml::Value = serde_yaml::from_str(&read(path)).expect("YAML");
    let jobs = workflow["jobs"].as_mapping().expect("jobs");
    jobs.values()
        .flat_map(|job| job["steps"].as_sequence().cloned().unwrap_or_default())
        .filter_map(|step| {
            let name = step["name"].as_str()?.to_owned();
            let run = step["run"].as_str()?.to_owned();
            Some((name, run))
        })
        .collect()
}

#[test]
fn the_live_command_is_the_same_everywhere_it_is_documented() {
    assert!(
        read("docs/live-conformance.md").contains(LIVE_COMMAND),
        "docs/live-conformance.md"
    );
    assert!(
        read("tests/live_conformance.rs").contains(&format!("run `{LIVE_COMMAND}`")),
        "the #[ignore] message"
    );
    let steps = workflow_steps(".github/workflows/live-conformance.yml");
    assert!(
        steps.iter().any(|(_, run)| run.trim() == LIVE_COMMAND),
        "the workflow runs {LIVE_COMMAND}: {steps:?}"
    );
}

/// The target dir this test binary was built in (`target/debug/deps/ci_commands-*`), so
/// the nested cargo reuses what is built.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary");
    exe.ancestors()
        .nth(3)
        .expect("target/debug/deps")
        .to_owned()
}

/// Runs [`LIVE_COMMAND`] with the live test's variables pointing at `base_url`.
fn run_live_command(base_url: &str) -> Output {
    let mut words = LIVE_COMMAND.split_whitespace();
    assert_eq!(words.next(), Some("cargo"));
    Command::new(env!("CARGO"))
        .args(words)
        .current_dir(ROOT)
        .env("CARGO_TARGET_DIR", target_dir())
        .env("VIPPS_CONFORMANCE_BASE_URL", base_url)
        .env("VIPPS_CLIENT_ID", DEFAULT_CLIENT_ID)
        .env("VIPPS_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
        .env("VIPPS_SUBSCRIPTION_KEY", DEFAULT_SUBSCRIPTION_KEY)
        .env("VIPPS_PARTNER_CLIENT_ID", DEFAULT_CLIENT_ID)
        .env("VIPPS_PARTNER_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
        .output()
        .expect("cargo runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_live_command_passes_against_the_mock_and_fails_against_a_wrong_server() {
    let mock = MockServer::start().await.unwrap();
    let url = mock.base_url().to_owned();
    let passing = tokio::task::spawn_blocking(move || run_live_command(&url))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&passing.stdout);
    assert!(
        passing.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&passing.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "it ran the live test: {stdout}"
    );

    // Every answer a 200 without access_token: the deployment deviates.
    mock.fail_all(
        200,
        r#"{"token_type": "Bearer", "expires_in": "3600", "resource": "r"}"#,
    );
    let url = mock.base_url().to_owned();
    let failing = tokio::task::spawn_blocking(move || run_live_command(&url))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&failing.stdout);
    assert!(
        !failing.status.success(),
        "a wrong server must fail it: {stdout}"
    );
    assert!(stdout.contains("deviates from the docs"), "{stdout}");
}

/// Runs the upstream-spec workflow's diff step as GitHub would: bash, in a checkout with
/// the built binary at `target/debug/vipps-token`, the downloaded spec in `$RUNNER_TEMP`.
fn run_spec_step(upstream: &Path) -> (Option<i32>, String) {
    let steps = workflow_steps(".github/workflows/upstream-spec.yml");
    let (_, script) = steps
        .iter()
        .find(|(name, _)| name.starts_with("spec diff"))
        .expect("the spec diff step");
    let (checkout, runner_temp) = (tempdir(), tempdir());
    let (checkout, runner_temp) = (checkout.path(), runner_temp.path());
    std::fs::create_dir_all(checkout.join("target/debug")).unwrap();
    std::os::unix::fs::symlink(bin(), checkout.join("target/debug/vipps-token")).unwrap();
    std::os::unix::fs::symlink(Path::new(ROOT).join("openapi"), checkout.join("openapi")).unwrap();
    std::fs::copy(upstream, runner_temp.join("upstream.yaml")).unwrap();
    let summary = runner_temp.join("summary.md");
    let output = Command::new("bash")
        .args(["-e", "-c", script])
        .current_dir(checkout)
        .env("RUNNER_TEMP", runner_temp)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .expect("bash runs");
    let report = std::fs::read_to_string(&summary).unwrap_or_default();
    (output.status.code(), report)
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

#[test]
fn the_spec_workflow_step_passes_on_no_change_and_fails_on_a_breaking_one() {
    let bundled = Path::new(ROOT).join("openapi/access-token.yaml");
    let (code, report) = run_spec_step(&bundled);
    assert_eq!(code, Some(0), "no change: {report}");
    assert!(!report.is_empty(), "the report goes to the job summary");

    // The bundled spec without its only operation: breaking for every client.
    let mut broken: serde_yaml::Value =
        serde_yaml::from_str(&read("openapi/access-token.yaml")).unwrap();
    broken["paths"] = serde_yaml::Value::Mapping(Default::default());
    let dir = tempdir();
    let upstream = dir.path().join("upstream.yaml");
    std::fs::write(&upstream, serde_yaml::to_string(&broken).unwrap()).unwrap();
    let (code, report) = run_spec_step(&upstream);
    assert!(
        code.is_some_and(|code| code != 0),
        "a removed path fails the job: {report}"
    );
    assert!(report.contains("api-path-removed"), "{report}");

    // The upstream 2.0.0 spec: five breaking changes, every one absorbed by the crate.
    let (code, report) =
        run_spec_step(&Path::new(ROOT).join("spec-diff/tests/upstream/access-token-v2.0.0.yaml"));
    assert_eq!(code, Some(0), "absorbed changes pass the gate: {report}");
    assert!(report.contains("absorbed"), "{report}");
}

#[test]
fn the_spec_workflow_skips_saying_what_to_set_when_no_url_is_set() {
    let steps = workflow_steps(".github/workflows/upstream-spec.yml");
    let (_, script) = steps
        .iter()
        .find(|(name, _)| name.starts_with("Download"))
        .expect("the download step");
    let runner_temp = tempdir();
    let output_file = runner_temp.path().join("output");
    let output = Command::new("bash")
        .args(["-e", "-c", script])
        .env("SPEC_URL", "")
        .env("RUNNER_TEMP", runner_temp.path())
        .env("GITHUB_OUTPUT", &output_file)
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "an unset URL is a skip, not a failure: {stdout}"
    );
    assert!(
        stdout.contains("ACCESS_TOKEN_SPEC_URL"),
        "it says what to set: {stdout}"
    );
    let outputs = std::fs::read_to_string(&output_file).unwrap_or_default();
    assert!(
        outputs.contains("skip=true"),
        "the later steps are skipped: {outputs}"
    );
}

#[test]
fn the_docs_take_their_figures_from_benchmarks() {
    // Figures live in BENCHMARKS.md alone, so the docs and it can never disagree.
    for doc in docs() {
        let text = read(&doc);
        let figure = regex_free_find(&text, &["times a bare", "x a bare", " ns per"]);
        assert_eq!(
            figure, None,
            "a performance figure in {doc}: move it to BENCHMARKS.md"
        );
    }
}

/// The docs a reader is sent to: the READMEs and the guides in `docs/`.
fn docs() -> Vec<String> {
    let mut docs: Vec<String> = ["README.md", "cli/README.md", "spec-diff/README.md"]
        .map(str::to_owned)
        .to_vec();
    for entry in std::fs::read_dir(Path::new(ROOT).join("docs")).expect("docs/") {
        let name = entry.expect("a docs/ entry").file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".md") {
            docs.push(format!("docs/{name}"));
        }
    }
    docs
}

/// The first of `needles` found in `text`, with its line.
fn regex_free_find(text: &str, needles: &[&str]) -> Option<String> {
    text.lines()
        .find(|line| needles.iter().any(|needle| line.contains(needle)))
        .map(str::to_owned)
}

#[test]
fn the_help_and_the_cli_readme_carry_the_same_exit_codes() {
    let help = Command::new(bin())
        .arg("--help")
        .output()
        .expect("the binary runs");
    let help = String::from_utf8_lossy(&help.stdout);
    let readme = read("cli/README.md");
    for code in 0..=8 {
        let in_help = help
            .lines()
            .find(|line| line.trim_start().starts_with(&format!("{code}  ")))
            .unwrap_or_else(|| panic!("exit code {code} in --help:\n{help}"));
        let in_readme = readme
            .lines()
            .find(|line| line.starts_with(&format!("| {code} | ")))
            .unwrap_or_else(|| panic!("exit code {code} in cli/README.md's table"));
        // The first few words agree: the two say the same thing.
        let words = |line: &str, skip: usize| -> Vec<String> {
            line.split_whitespace()
                .skip(skip)
                .map(|w| {
                    w.trim_matches(|c: char| !c.is_alphanumeric())
                        .to_lowercase()
                })
                .filter(|w| !w.is_empty())
                .take(3)
                .collect()
        };
        assert_eq!(words(in_help, 1), words(in_readme, 3), "exit code {code}");
    }
}

/// `.ci/msrv` checks the MSRV indirectly and gives the direct check for a machine with a
/// toolchain manager: that command names the workspace's `rust-version`, not an old one.
#[test]
fn the_msrv_scripts_direct_check_names_rust_version() {
    let manifest = read("Cargo.toml");
    let version = manifest
        .lines()
        .find_map(|line| line.strip_prefix("rust-version = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("rust-version in Cargo.toml");
    let script = read(".ci/msrv");
    let direct = regex_free_find(&script, &["rustup toolchain install"]).expect("the direct check");
    assert!(
        direct.contains(&format!("install {version} ")) && direct.contains(&format!("+{version} ")),
        "rust-version is {version}: {direct}"
    );
}

/// `.ci/run` checks the library with no feature, then each feature alone, and each example
/// with only its own features. With `default-members` naming every crate, a bare `cargo
/// check` selects the CLI too, whose dependency turns on `mock`, `conformance` and `redis`
/// in the library: every such check must name the library's package.
#[test]
fn the_feature_checks_in_ci_check_the_library_alone() {
    let script = read(".ci/run");
    let checks: Vec<&str> = script
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("cargo check") && line.contains("--no-default-features"))
        .collect();
    // The check with no feature, and the loop over each feature alone.
    assert!(checks.len() >= 2, "the feature checks: {checks:?}");
    for check in checks {
        assert!(
            check.contains("-p vipps-access-token "),
            "checks more than the library: {check}"
        );
    }
}
