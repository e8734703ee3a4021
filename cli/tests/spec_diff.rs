//! `vipps-token spec diff`: its exit codes, formats and messages, run from the
//! repository root on the spec diff crate's fixtures.

#[path = "../../spec-diff/tests/support/ref_spec.rs"]
mod ref_spec;
use ref_spec::ref_spec;

#[path = "../../tests/support/cli_binary.rs"]
mod cli_binary;

use std::{path::PathBuf, process::Command};

use cli_binary::bin;

/// The repository root: the library's spec and the spec diff's fixtures, by relative path.
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const BUNDLED: &str = "openapi/access-token.yaml";
const UPSTREAM_2_0_0: &str = "spec-diff/tests/upstream/access-token-v2.0.0.yaml";

fn crate_path(relative: &str) -> PathBuf {
    PathBuf::from(ROOT).join(relative)
}

fn spec_diff(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(bin())
        .current_dir(ROOT)
        .args(["spec", "diff"])
        .args(args)
        .output()
        .expect("vipps-token runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn same_spec_exits_0() {
    let (code, stdout, _) = spec_diff(&[BUNDLED, BUNDLED]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.contains("no change that affects clients"),
        "{stdout}"
    );
}

#[test]
fn a_breaking_change_exits_7_and_json_has_the_documented_fields() {
    let root = "spec-diff/tests/fixtures/response-property-type-changed";
    let (code, stdout, stderr) = spec_diff(&[
        &format!("{root}/old.yaml"),
        &format!("{root}/new.yaml"),
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(7), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(json["summary"]["breaking"], 1);
    assert!(json["warnings"].is_array(), "warnings missing");
    let change = &json["changes"][0];
    assert_eq!(change["id"], "response-property-type-changed");
    assert_eq!(change["level"], "breaking");
    assert_eq!(change["operation"], "POST /widgets");
    for field in ["message", "absorbed_by_crate", "rust_api"] {
        assert!(change.get(field).is_some(), "{field} missing");
    }
    assert_eq!(json["old"]["version"], "1.0.0");
}

#[test]
fn a_non_breaking_change_exits_0_in_markdown() {
    let root = "spec-diff/tests/fixtures/endpoint-added";
    let (code, stdout, _) = spec_diff(&[
        &format!("{root}/old.yaml"),
        &format!("{root}/new.yaml"),
        "--format",
        "markdown",
    ]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("| info | `endpoint-added` |"), "{stdout}");
}

#[test]
fn unreadable_or_unparsable_input_exits_2_naming_the_file() {
    let missing = "spec-diff/tests/fixtures/no-such-file.yaml";
    let (code, _, stderr) = spec_diff(&[BUNDLED, missing]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains(missing), "{stderr}");

    let not_utf8 = std::env::temp_dir().join(format!("spec-diff-{}.yaml", std::process::id()));
    std::fs::write(&not_utf8, [0xff, 0xfe, 0x00, 0x9f]).expect("temp file");
    let (code, _, stderr) = spec_diff(&[not_utf8.to_str().expect("utf-8 path"), BUNDLED]);
    let _ = std::fs::remove_file(&not_utf8);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("spec-diff-"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let garbage = crate_path("Cargo.toml");
    let (code, _, stderr) = spec_diff(&[garbage.to_str().expect("utf-8 path"), BUNDLED]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("Cargo.toml"), "{stderr}");
}

fn fixture(dir: &str) -> [String; 2] {
    let root = format!("spec-diff/tests/fixtures/{dir}");
    [format!("{root}/old.yaml"), format!("{root}/new.yaml")]
}

/// The gate: a warning fails `--fail-on warning` (and WARN) but not the default
/// `--fail-on breaking` (nor ERR); a breaking change fails both.
#[test]
fn fail_on_picks_the_lowest_level_that_exits_7() {
    let [old, new] = fixture("request-parameter-removed");
    for (level, expected) in [
        (None, 0),
        (Some("breaking"), 0),
        (Some("ERR"), 0),
        (Some("warning"), 7),
        (Some("WARN"), 7),
    ] {
        let mut args = vec![old.as_str(), new.as_str()];
        if let Some(level) = level {
            args.extend(["--fail-on", level]);
        }
        let (code, _, stderr) = spec_diff(&args);
        assert_eq!(code, Some(expected), "--fail-on {level:?}: {stderr}");
    }
    let [old, new] = fixture("request-property-max-decreased");
    for level in ["breaking", "warning"] {
        let (code, _, _) = spec_diff(&[&old, &new, "--fail-on", level]);
        assert_eq!(code, Some(7), "--fail-on {level}");
    }
    let (code, _, stderr) = spec_diff(&[&old, &new, "--fail-on", "info"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("breaking (ERR) or warning (WARN)"),
        "{stderr}"
    );
}

/// `--ignore-absorbed`: the upstream 2.0.0 drill is five breaking changes, all
/// absorbed: it fails without the flag and passes with it; a breaking change the
/// crate does not absorb fails either way.
#[test]
fn ignore_absorbed_fails_only_on_what_the_crate_does_not_absorb() {
    let upstream = crate_path(UPSTREAM_2_0_0);
    let upstream = upstream.to_str().expect("utf-8 path");
    let (code, _, _) = spec_diff(&[BUNDLED, upstream]);
    assert_eq!(code, Some(7));
    let (code, _, stderr) = spec_diff(&[BUNDLED, upstream, "--ignore-absorbed"]);
    assert_eq!(code, Some(0), "{stderr}");
    let [old, new] = fixture("response-property-type-changed");
    let (code, _, stderr) = spec_diff(&[&old, &new, "--ignore-absorbed"]);
    assert_eq!(code, Some(7), "{stderr}");
    assert!(stderr.contains("not absorbed by the crate"), "{stderr}");
}

/// Exit 1 when the report cannot be written (stdout is /dev/full).
#[test]
fn an_unwritable_stdout_exits_1() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        eprintln!("skipped: no /dev/full on this system");
        return;
    };
    let output = Command::new(bin())
        .current_dir(ROOT)
        .args(["spec", "diff", BUNDLED, BUNDLED])
        .stdout(full)
        .output()
        .expect("vipps-token runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("could not write to stdout"), "{stderr}");
}

/// A spec that cannot be read: exit 2, the file, and the place in it.
#[test]
fn an_unreadable_spec_exits_2_with_the_place() {
    let dir = std::env::temp_dir().join(format!("spec-diff-places-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let syntax = dir.join("syntax.yaml");
    std::fs::write(
        &syntax,
        "openapi: 3.0.0\ninfo:\n  title: t\n  version: [1\n",
    )
    .expect("write");
    let dangling = dir.join("dangling.yaml");
    std::fs::write(
        &dangling,
        ref_spec(
            "$ref: '#/components/schemas/Missing'",
            "A:\n      type: string",
        ),
    )
    .expect("write");
    let cases = [
        (syntax, ":5:1: not valid YAML"),
        (
            dangling,
            " at /paths/~1x/get/responses/200/content/application~1json/schema: $ref",
        ),
    ];
    for (file, place) in cases {
        let file = file.to_str().expect("utf-8 path");
        let (code, _, stderr) = spec_diff(&[file, BUNDLED]);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains(&format!("{file}{place}")), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// What is read with a warning says so on stderr, and still exits 0.
#[test]
fn a_spec_read_with_warnings_says_so_on_stderr() {
    let [old, _] = fixture("loader/missing-responses");
    let (code, stdout, stderr) = spec_diff(&[&old, &old]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("no change that affects clients"),
        "{stdout}"
    );
    assert!(
        stderr.contains("warning:") && stderr.contains("an operation without `responses`"),
        "{stderr}"
    );
}
