//! The spec diff: one spec pair per rule with its expected level, the crate's own notes,
//! inputs that must fail cleanly (never a panic), and the drill against the upstream 2.0.0
//! spec. (`vipps-token spec diff`'s exit codes are the CLI's tests.)

#[path = "support/ref_spec.rs"]
mod ref_spec;
use ref_spec::ref_spec;

// The library's test helpers (tests/support/): the example keys and clients pointed at
// wiremock, for the one test here that makes a real request. Most of them go unused here.
#[allow(dead_code)]
#[path = "../../tests/support/mod.rs"]
mod support;

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

use proptest::prelude::*;
use vipps_spec_diff::{FailOn, Format, Gate, Level, Report, crate_facts, diff_files, diff_texts};

/// Fixture directory (under tests/fixtures/) -> the changes it must report, exactly.
const RULES: &[(&str, &[(&str, Level)])] = &[
    ("endpoint-added", &[("endpoint-added", Level::Info)]),
    (
        "api-path-removed-without-deprecation",
        &[("api-path-removed-without-deprecation", Level::Breaking)],
    ),
    (
        "api-path-removed-with-deprecation",
        &[("api-path-removed-with-deprecation", Level::Info)],
    ),
    (
        "api-removed-without-deprecation",
        &[("api-removed-without-deprecation", Level::Breaking)],
    ),
    (
        "endpoint-deprecated",
        &[("endpoint-deprecated", Level::Info)],
    ),
    (
        "api-operation-id-removed",
        &[("api-operation-id-removed", Level::Info)],
    ),
    (
        "api-security-added",
        &[("api-security-added", Level::Warning)],
    ),
    (
        "api-security-component-added",
        &[("api-security-component-added", Level::Info)],
    ),
    (
        "api-server-removed",
        &[("api-server-removed", Level::Warning)],
    ),
    ("api-server-added", &[("api-server-added", Level::Info)]),
    (
        "new-required-request-parameter",
        &[("new-required-request-parameter", Level::Breaking)],
    ),
    (
        "new-optional-request-parameter",
        &[("new-optional-request-parameter", Level::Info)],
    ),
    (
        "request-parameter-removed",
        &[("request-parameter-removed", Level::Warning)],
    ),
    (
        "request-parameter-became-required",
        &[("request-parameter-became-required", Level::Breaking)],
    ),
    (
        "request-parameter-became-optional",
        &[("request-parameter-became-optional", Level::Info)],
    ),
    (
        "request-parameter-type-changed",
        &[("request-parameter-type-changed", Level::Breaking)],
    ),
    (
        "request-parameter-became-enum",
        &[("request-parameter-became-enum", Level::Breaking)],
    ),
    (
        "request-parameter-max-length-decreased",
        &[("request-parameter-max-length-decreased", Level::Breaking)],
    ),
    (
        "request-parameter-pattern-added",
        &[("request-parameter-pattern-added", Level::Breaking)],
    ),
    (
        "request-body-added-required",
        &[("request-body-added-required", Level::Breaking)],
    ),
    (
        "request-body-removed",
        &[("request-body-removed", Level::Breaking)],
    ),
    (
        "request-body-became-required",
        &[("request-body-became-required", Level::Breaking)],
    ),
    (
        "request-body-media-type-removed",
        &[
            ("request-body-media-type-removed", Level::Breaking),
            ("request-body-media-type-added", Level::Info),
        ],
    ),
    (
        "new-required-request-property",
        &[("new-required-request-property", Level::Breaking)],
    ),
    (
        "new-optional-request-property",
        &[("new-optional-request-property", Level::Info)],
    ),
    (
        "request-property-removed",
        &[("request-property-removed", Level::Warning)],
    ),
    (
        "request-property-became-required",
        &[("request-property-became-required", Level::Breaking)],
    ),
    (
        "request-property-type-changed",
        &[("request-property-type-changed", Level::Breaking)],
    ),
    (
        "request-property-enum-value-removed",
        &[("request-property-enum-value-removed", Level::Breaking)],
    ),
    (
        "request-property-enum-value-added",
        &[("request-property-enum-value-added", Level::Info)],
    ),
    (
        "request-property-max-length-decreased",
        &[("request-property-max-length-decreased", Level::Breaking)],
    ),
    (
        "response-success-status-removed",
        &[("response-success-status-removed", Level::Breaking)],
    ),
    (
        "response-non-success-status-added",
        &[("response-non-success-status-added", Level::Info)],
    ),
    (
        "response-media-type-removed",
        &[
            ("response-media-type-removed", Level::Breaking),
            ("response-media-type-added", Level::Info),
        ],
    ),
    (
        "response-required-property-removed",
        &[("response-required-property-removed", Level::Breaking)],
    ),
    (
        "response-optional-property-removed",
        &[("response-optional-property-removed", Level::Warning)],
    ),
    (
        "response-optional-property-added",
        &[("response-optional-property-added", Level::Info)],
    ),
    (
        "response-property-became-optional",
        &[("response-property-became-optional", Level::Breaking)],
    ),
    (
        "response-property-type-changed",
        &[("response-property-type-changed", Level::Breaking)],
    ),
    (
        "response-property-became-nullable",
        &[("response-property-became-nullable", Level::Breaking)],
    ),
    (
        "response-property-enum-value-added",
        &[("response-property-enum-value-added", Level::Warning)],
    ),
    (
        "response-property-enum-value-removed",
        &[("response-property-enum-value-removed", Level::Info)],
    ),
    ("documentation-only", &[]),
    (
        "request-property-max-decreased",
        &[("request-property-max-decreased", Level::Breaking)],
    ),
    (
        "request-property-min-increased",
        &[("request-property-min-increased", Level::Breaking)],
    ),
    (
        "request-property-min-length-increased",
        &[("request-property-min-length-increased", Level::Breaking)],
    ),
    (
        "request-property-min-items-increased",
        &[("request-property-min-items-increased", Level::Breaking)],
    ),
    (
        "request-property-type-generalized",
        &[("request-property-type-generalized", Level::Info)],
    ),
    (
        "request-property-default-value-added",
        &[("request-property-default-value-added", Level::Info)],
    ),
    (
        "request-parameter-default-value-added",
        &[("request-parameter-default-value-added", Level::Breaking)],
    ),
    (
        "response-property-max-length-increased",
        &[("response-property-max-length-increased", Level::Breaking)],
    ),
    (
        "response-property-max-increased",
        &[("response-property-max-increased", Level::Breaking)],
    ),
    (
        "response-property-type-specialized",
        &[("response-property-type-specialized", Level::Info)],
    ),
    (
        "response-property-type-generalized",
        &[("response-property-type-generalized", Level::Breaking)],
    ),
    (
        "response-property-list-of-types-widened",
        &[("response-property-list-of-types-widened", Level::Breaking)],
    ),
    (
        "request-property-list-of-types-widened",
        &[("request-property-list-of-types-widened", Level::Info)],
    ),
    (
        "request-property-one-of-removed",
        &[("request-property-one-of-removed", Level::Breaking)],
    ),
    (
        "request-property-all-of-added",
        &[("request-property-all-of-added", Level::Breaking)],
    ),
    (
        "required-response-header-removed",
        &[("required-response-header-removed", Level::Breaking)],
    ),
    (
        "response-header-added",
        &[("response-header-added", Level::Info)],
    ),
    (
        "response-header-type-changed",
        &[("response-header-type-changed", Level::Breaking)],
    ),
    (
        "response-header-became-optional",
        &[("response-header-became-optional", Level::Breaking)],
    ),
    (
        "api-global-security-added",
        &[("api-global-security-added", Level::Info)],
    ),
    (
        "api-security-scope-added",
        &[("api-security-scope-added", Level::Info)],
    ),
    (
        "api-security-component-oauth-scope-added",
        &[("api-security-component-oauth-scope-added", Level::Info)],
    ),
    (
        "request-property-x-extensible-enum-value-removed",
        &[(
            "request-property-x-extensible-enum-value-removed",
            Level::Breaking,
        )],
    ),
    ("webhook-removed", &[("webhook-removed", Level::Breaking)]),
    (
        "request-property-exclusive-max-decreased",
        &[("request-property-exclusive-max-decreased", Level::Breaking)],
    ),
    (
        "request-property-if-added",
        &[
            ("request-property-if-added", Level::Breaking),
            ("request-property-then-added", Level::Breaking),
        ],
    ),
    (
        "response-property-became-nullable-3-1",
        &[("response-property-became-nullable", Level::Breaking)],
    ),
    // A new required property that is readOnly: a client never sends it.
    ("request-read-only-required-property-added", &[]),
    // `/widgets/{widgetId}` -> `/widgets/{id}`: the same path to a client.
    ("path-parameter-renamed", &[]),
    // `pattern: ''` constrains nothing.
    ("empty-pattern", &[]),
    (
        "new-required-request-default-parameter-to-existing-path",
        &[(
            "new-required-request-default-parameter-to-existing-path",
            Level::Breaking,
        )],
    ),
    // `Square` -> `Diamond`, of one shape: another member all the same.
    (
        "request-property-any-of-member-swapped",
        &[
            ("request-property-any-of-removed", Level::Breaking),
            ("request-property-any-of-added", Level::Info),
        ],
    ),
];

/// The library's spec, from this crate's directory (where `cargo test` runs it).
const BUNDLED: &str = "../openapi/access-token.yaml";
/// The upstream 2.0.0 spec, a public document, kept in the repository as a fixture: no test
/// reads outside it.
const UPSTREAM_2_0_0: &str = "tests/upstream/access-token-v2.0.0.yaml";

/// A path of this crate (its fixtures), or, through `..`, of the library beside it.
fn crate_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn bundled_text() -> String {
    fs::read_to_string(crate_path(BUNDLED)).expect("the bundled spec is readable")
}

fn ids(report: &Report) -> Vec<(String, Level)> {
    report
        .changes
        .iter()
        .map(|c| (c.id.clone(), c.level))
        .collect()
}

#[test]
fn every_rule_fixture_reports_exactly_its_rule_at_its_level() {
    let mut failures = Vec::new();
    for (dir, expected) in RULES {
        let root = crate_path("tests/fixtures").join(dir);
        let report = diff_files(&root.join("old.yaml"), &root.join("new.yaml"))
            .unwrap_or_else(|e| panic!("{dir}: {e}"));
        let mut got = ids(&report);
        got.sort();
        let mut want: Vec<(String, Level)> = expected
            .iter()
            .map(|(id, l)| (id.to_string(), *l))
            .collect();
        want.sort();
        if got != want {
            failures.push(format!("{dir}: expected {want:?}, got {got:?}"));
        }
        let breaking = expected.iter().any(|(_, l)| *l == Level::Breaking);
        assert_eq!(report.has_breaking(), breaking, "{dir}: has_breaking");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_fixture_directory_is_in_the_table() {
    let listed: Vec<&str> = RULES.iter().map(|(dir, _)| *dir).collect();
    for entry in fs::read_dir(crate_path("tests/fixtures")).expect("tests/fixtures exists") {
        let name = entry.expect("a directory entry").file_name();
        let name = name.to_string_lossy();
        if name == "crate-knowledge" || name == "loader" {
            continue;
        }
        assert!(
            listed.contains(&name.as_ref()),
            "tests/fixtures/{name} has no row in RULES"
        );
    }
}

#[test]
fn documentation_changes_are_listed_apart() {
    let root = crate_path("tests/fixtures/documentation-only");
    let report = diff_files(&root.join("old.yaml"), &root.join("new.yaml")).expect("loads");
    let locations: Vec<&str> = report
        .documentation
        .iter()
        .map(|d| d.location.as_str())
        .collect();
    assert_eq!(
        locations,
        [
            "/paths/~1widgets/post/description",
            "/paths/~1widgets/post/summary"
        ]
    );
    assert!(report.changes.is_empty());
}

#[test]
fn the_bundled_spec_against_itself_is_clean() {
    let report = diff_files(&crate_path(BUNDLED), &crate_path(BUNDLED)).expect("loads");
    assert!(report.changes.is_empty(), "{:?}", report.changes);
    assert!(report.documentation.is_empty());
    assert!(!report.has_breaking());
}

/// The crate-knowledge fixture (the bundled spec's shape, cut down) with one edit,
/// compared against itself unedited. Not the bundled spec: that one changes on update.
fn fixture_edit(from: &str, to: &str) -> Report {
    let old = fs::read_to_string(crate_path("tests/fixtures/crate-knowledge/base.yaml"))
        .expect("the crate-knowledge fixture is readable");
    assert!(old.contains(from), "the fixture no longer has {from:?}");
    let new = old.replacen(from, to, 1);
    diff_texts("old.yaml", &old, "new.yaml", &new).expect("both load")
}

/// `ext_expires_in` retyped in the crate-knowledge fixture; the one breaking change.
fn ext_expires_in_becomes(schema: &str) -> vipps_spec_diff::Change {
    let report = fixture_edit(
        "ext_expires_in:\n          type: integer",
        &format!("ext_expires_in:\n{schema}"),
    );
    let breaking: Vec<_> = report
        .changes
        .iter()
        .filter(|c| c.level == Level::Breaking)
        .collect();
    let [change] = breaking.as_slice() else {
        panic!(
            "one breaking change expected for {schema:?}: {:?}",
            report.changes
        )
    };
    // integer -> number is oasdiff's `response-property-type-generalized`.
    assert!(
        change.id.starts_with("response-property-type-"),
        "{}",
        change.id
    );
    (*change).clone()
}

#[test]
fn a_number_that_becomes_a_digit_string_is_absorbed_by_the_tolerant_types() {
    for schema in [
        "          type: string\n          example: 3600",
        "          type: string\n          pattern: ^[0-9]+$",
        "          type: string\n          enum: ['0', '3600']",
    ] {
        let change = ext_expires_in_becomes(schema);
        let absorbed = change
            .absorbed_by_crate
            .as_deref()
            .unwrap_or_else(|| panic!("{schema:?} not absorbed: {:?}", change.rust_api));
        assert!(
            absorbed.contains("StandardTokenResponse::ext_expires_in")
                && absorbed.contains("parses every instance"),
            "{absorbed}"
        );
    }
}

/// What `integer_or_digits` rejects is not absorbed, whatever the old table said.
#[test]
fn a_string_the_tolerant_reader_rejects_is_not_absorbed() {
    for (schema, rejected) in [
        (
            "          type: string\n          format: date-time",
            "2024-01-01T00:00:00Z",
        ),
        (
            "          type: string\n          pattern: ^[0-9]+(\\.[0-9]+)?$",
            "12.5",
        ),
        // Nothing says a bare string without examples holds digits.
        ("          type: string", "12.5"),
        ("          type: number", "0.5"),
    ] {
        let change = ext_expires_in_becomes(schema);
        assert_eq!(change.absorbed_by_crate, None, "{schema:?}");
        let why = change.rust_api.as_deref().unwrap_or_default();
        assert!(
            why.contains("rejects") && why.contains(rejected),
            "{schema:?}: {why}"
        );
    }
}

#[test]
fn a_string_that_becomes_a_number_is_not_absorbed() {
    let report = fixture_edit(
        "resource:\n          type: string",
        "resource:\n          type: integer",
    );
    let [change] = report.changes.as_slice() else {
        panic!("one change expected: {:?}", report.changes)
    };
    assert_eq!(change.id, "response-property-type-changed");
    assert_eq!(change.absorbed_by_crate, None);
}

#[test]
fn a_removed_required_field_names_the_public_hand_written_type() {
    let report = fixture_edit("        - resource\n", "");
    let [change] = report.changes.as_slice() else {
        panic!("one change expected: {:?}", report.changes)
    };
    assert_eq!(change.id, "response-property-became-optional");
    let item = change.rust_api.as_deref().expect("a Rust item");
    assert!(
        item.contains("StandardTokenResponse::resource") && item.contains("public"),
        "{item}"
    );
    assert_eq!(change.absorbed_by_crate, None);
}

#[test]
fn an_error_status_is_absorbed_by_the_error_parser() {
    let report = fixture_edit(
        "        '500':\n",
        "        '429':\n          description: Too many requests\n        '500':\n",
    );
    let [change] = report.changes.as_slice() else {
        panic!("one change expected: {:?}", report.changes)
    };
    assert_eq!(change.id, "response-non-success-status-added");
    assert!(change.absorbed_by_crate.is_some());
}

#[test]
fn a_new_required_header_names_the_generated_builder_method_and_the_public_method() {
    let report = fixture_edit(
        "      parameters:\n",
        "      parameters:\n        - name: Vipps-Request-Id\n          in: header\n          \
         required: true\n          schema:\n            type: string\n",
    );
    let [change] = report.changes.as_slice() else {
        panic!("one change expected: {:?}", report.changes)
    };
    assert_eq!(change.id, "new-required-request-parameter");
    assert_eq!(change.level, Level::Breaking);
    let item = change.rust_api.as_deref().unwrap_or_default();
    assert!(
        item.starts_with(
            "generated `builder::FetchAuthorizationTokenUsingPost::vipps_request_id` \
             (crate-private); reached through the public `Client::standard_token`"
        ),
        "{item}"
    );
    // The crate's real request lacks the header: not absorbed, and the report says why.
    assert_eq!(change.absorbed_by_crate, None);
    assert!(item.contains("the crate does not send"), "{item}");
}

#[test]
fn a_removed_server_names_the_environment_that_hard_codes_it() {
    let report = fixture_edit("  - url: https://apitest.vipps.no\n", "");
    let [change] = report.changes.as_slice() else {
        panic!("one change expected: {:?}", report.changes)
    };
    assert_eq!(change.id, "api-server-removed");
    assert!(
        change
            .rust_api
            .as_deref()
            .is_some_and(|i| i.contains("Environment::Test")),
        "{:?}",
        change.rust_api
    );
}

/// Each input must fail with an error that names the file and says what is wrong.
#[test]
fn bad_inputs_are_errors_that_name_the_file() {
    let good = bundled_text();
    let cases: &[(&str, &str, &str)] = &[
        ("empty", "", "empty"),
        ("whitespace", "  \n\t\n", "empty"),
        ("garbage", ":::: [[[ not yaml", "not valid YAML"),
        ("scalar", "just a line of text", "not a mapping"),
        ("json-not-openapi", r#"{"hello": [1, 2, 3]}"#, "no `openapi"),
        ("broken-json", r#"{"openapi": "3.0.0", "#, "not valid JSON"),
        (
            "openapi-2",
            "openapi: 2.0.0\ninfo: {title: t, version: '1'}\npaths: {}\n",
            "2.0.0 is not supported",
        ),
        (
            "swagger-2",
            "swagger: '2.0'\ninfo: {title: t, version: '1'}\npaths: {}\n",
            "Swagger 2.0 is not OpenAPI 3",
        ),
        (
            "ref-cycle",
            &ref_spec(
                "$ref: '#/components/schemas/A'",
                "A:\n      $ref: '#/components/schemas/B'\n    B:\n      $ref: '#/components/schemas/A'",
            ),
            "cycle",
        ),
        (
            "dangling-ref",
            &ref_spec(
                "$ref: '#/components/schemas/Missing'",
                "A:\n      type: string",
            ),
            "points at nothing",
        ),
        (
            "external-ref",
            &ref_spec("$ref: 'other.yaml#/Widget'", "A:\n      type: string"),
            "names another file",
        ),
        ("deep-yaml", &"[".repeat(100_000), "recursion limit"),
        ("deep-json", &"{\"a\":".repeat(100_000), "recursion limit"),
        ("alias-bomb", &alias_bomb_spec(), "repetition limit"),
    ];
    for (name, text, reason) in cases {
        let file = format!("{name}.yaml");
        let error = diff_texts(&file, text, "good.yaml", &good)
            .err()
            .unwrap_or_else(|| panic!("{name}: loaded"));
        let message = error.to_string();
        assert!(message.starts_with(&file), "{name}: {message}");
        assert!(message.contains(reason), "{name}: {message}");
    }
}

/// YAML aliases that expand tenfold per level: 10^12 nodes if expanded.
fn alias_bomb_spec() -> String {
    let mut text = String::from(
        "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths: {}\nx-bomb:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n",
    );
    for i in 1..12 {
        let items = vec![format!("*a{}", i - 1); 10].join(", ");
        text.push_str(&format!("  a{i}: &a{i} [{items}]\n"));
    }
    text
}

/// 24 schemas, each with four properties referring to the next: 4^24 nodes if expanded.
fn fan_out_spec() -> String {
    let mut schemas = String::new();
    for i in 0..24 {
        schemas.push_str(&format!("S{i}:\n      type: object\n      properties:\n"));
        for p in 0..4 {
            if i == 23 {
                schemas.push_str(&format!("        p{p}:\n          type: string\n"));
            } else {
                schemas.push_str(&format!(
                    "        p{p}:\n          $ref: '#/components/schemas/S{}'\n",
                    i + 1
                ));
            }
        }
        schemas.push_str("    ");
    }
    ref_spec("$ref: '#/components/schemas/S0'", schemas.trim_end())
}

/// 24 schemas, each with four properties referring to the next: 4^24 paths if walked.
/// Each named schema is resolved once and a change in it is reported once per place.
#[test]
fn a_ref_fan_out_loads_and_reports_a_change_once() {
    let old = fan_out_spec();
    let same = diff_texts("old.yaml", &old, "old.yaml", &old).expect("loads");
    assert!(same.changes.is_empty());
    let new = old.replacen(
        "p3:\n          type: string",
        "p3:\n          type: integer",
        1,
    );
    assert_ne!(old, new);
    let changed = diff_texts("old.yaml", &old, "new.yaml", &new).expect("loads");
    assert_eq!(
        ids(&changed),
        [("response-property-type-changed".to_owned(), Level::Breaking)]
    );
}

#[test]
fn a_schema_that_refers_to_itself_loads_and_compares() {
    let node = "Node:\n      type: object\n      properties:\n        child:\n          \
                $ref: '#/components/schemas/Node'\n        name:\n          type: string";
    let old = ref_spec("$ref: '#/components/schemas/Node'", node);
    let new = old.replacen(
        "name:\n          type: string",
        "name:\n          type: integer",
        1,
    );
    let same = diff_texts("old.yaml", &old, "old.yaml", &old).expect("loads");
    assert!(same.changes.is_empty());
    let changed = diff_texts("old.yaml", &old, "new.yaml", &new).expect("loads");
    assert_eq!(
        ids(&changed),
        [("response-property-type-changed".to_owned(), Level::Breaking)]
    );
}

#[test]
fn the_bundled_spec_reads_as_json_too() {
    let yaml: serde_json::Value = serde_yaml::from_str(&bundled_text()).expect("yaml");
    let json = serde_json::to_string(&yaml).expect("json");
    let report = diff_texts("a.yaml", &bundled_text(), "a.json", &json).expect("loads");
    assert!(report.changes.is_empty(), "{:?}", report.changes);
    assert!(report.documentation.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Any text, and any prefix of the bundled spec, is a report or an error: never a panic.
    #[test]
    fn no_input_panics(text in ".{0,400}", cut in 0usize..6000) {
        let good = bundled_text();
        let _ = diff_texts("any.yaml", &text, "good.yaml", &good);
        let cut = (0..=cut.min(good.len())).rev().find(|i| good.is_char_boundary(*i)).unwrap_or(0);
        let _ = diff_texts("good.yaml", &good, "cut.yaml", &good[..cut]);
    }
}

#[test]
fn drill_bundled_1_0_1_against_upstream_2_0_0() {
    let report =
        diff_files(Path::new(BUNDLED), Path::new(UPSTREAM_2_0_0)).expect("both specs load");
    assert_eq!(
        report.old.version, "1.0.1",
        "the drill pins 1.0.1 -> 2.0.0: retire it, or point it at the next upstream spec"
    );
    // Five breaking changes, every one absorbed by the tolerant response type.
    assert_eq!(report.summary.breaking, 5);
    assert_eq!(report.summary.breaking_absorbed_by_crate, 5);
    insta::with_settings!({snapshot_path => "snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("spec_diff_drill_text", report.render(Format::Text));
        insta::assert_snapshot!("spec_diff_drill_markdown", report.render(Format::Markdown));
    });
}

/// What oasdiff reads, this reads: slightly invalid specs load with warnings naming the
/// place, YAML integer keys included.
#[test]
fn a_slightly_invalid_spec_loads_with_warnings() {
    let root = crate_path("tests/fixtures/loader/missing-responses");
    let report = diff_files(&root.join("old.yaml"), &root.join("new.yaml")).expect("loads");
    assert!(report.changes.is_empty(), "{:?}", report.changes);
    let warnings = report.warnings.join("\n");
    for expected in [
        "old.yaml at /paths/~1a/get: an operation without `responses`",
        "old.yaml at /paths/~1b/get/responses/200: a response without `description`",
        "old.yaml at /paths/~1b/get/responses/200/content: `content: null`",
    ] {
        assert!(warnings.contains(expected), "{expected}\nin\n{warnings}");
    }
}

#[test]
fn openapi_3_1_loads_and_compares() {
    let file = crate_path("tests/fixtures/loader/openapi-3-1.yaml");
    let same = diff_files(&file, &file).expect("3.1 loads");
    assert!(same.changes.is_empty(), "{:?}", same.changes);
    assert!(same.warnings.is_empty(), "{:?}", same.warnings);
    let old = fs::read_to_string(&file).expect("readable");
    let new = old.replacen("exclusiveMinimum: 0", "exclusiveMinimum: -5", 1);
    let report = diff_texts("old.yaml", &old, "new.yaml", &new).expect("loads");
    assert_eq!(
        ids(&report),
        [(
            "response-property-exclusive-min-decreased".to_owned(),
            Level::Breaking
        )]
    );
    // `null` among the types is nullability, in 3.1's way.
    let new = old.replacen("type: [object, 'null']", "type: object", 1);
    let report = diff_texts("old.yaml", &old, "new.yaml", &new).expect("loads");
    assert_eq!(
        ids(&report),
        [("response-body-became-not-nullable".to_owned(), Level::Info)]
    );
}

#[test]
fn a_ref_to_a_file_beside_the_spec_is_followed() {
    let root = crate_path("tests/fixtures/loader");
    let report = diff_files(
        &root.join("split-old/spec.yaml"),
        &root.join("split-new/spec.yaml"),
    )
    .expect("both load, with common.yaml");
    assert_eq!(
        ids(&report),
        [(
            "response-property-type-generalized".to_owned(),
            Level::Breaking
        )]
    );
    // From memory there is no directory to look in: an error that says so.
    let text = fs::read_to_string(root.join("split-old/spec.yaml")).expect("readable");
    let error = diff_texts("spec.yaml", &text, "spec.yaml", &text).expect_err("no directory");
    assert!(error.to_string().contains("names another file"), "{error}");
}

#[test]
fn a_yaml_syntax_error_names_line_and_column() {
    let error =
        diff_texts("bad.yaml", "openapi: 3.0.0\ninfo: [\n", "bad.yaml", "").expect_err("not YAML");
    assert_eq!(error.file, "bad.yaml");
    let location = error.location.as_deref().expect("a location");
    assert!(
        location.starts_with("3:") || location.starts_with("2:"),
        "{location}"
    );
    assert!(
        error
            .to_string()
            .starts_with(&format!("bad.yaml:{location}:")),
        "{error}"
    );
}

/// build.rs's `REPLACEMENTS`, word for word: the spec diff's knowledge of which schemas
/// the tolerant types replace is the build's, not a copy that can drift.
#[test]
fn the_replaced_schemas_are_build_rs_replacements() {
    let build = fs::read_to_string(crate_path("../build.rs")).expect("build.rs");
    let block = build
        .split("const REPLACEMENTS")
        .nth(1)
        .and_then(|rest| rest.split("];").next())
        .expect("build.rs has REPLACEMENTS");
    let literals: Vec<&str> = block.split('"').skip(1).step_by(2).collect();
    let pairs: Vec<(String, String)> = literals
        .chunks(2)
        .map(|pair| (pair[0].to_owned(), pair[1].to_owned()))
        .collect();
    // The standard body is read into a wrapper that keeps its JSON text (for the token
    // broker) and parses it with `StandardTokenResponse`, whose fields the facts name.
    let build_path = |rust: &str| match rust {
        "StandardTokenResponse" => "crate::wire::answer::StandardTokenAnswer".to_owned(),
        _ => format!("crate::wire::response::{rust}"),
    };
    let facts: Vec<(String, String)> = crate_facts()
        .replacements
        .iter()
        .map(|(schema, rust, _)| (schema.to_string(), build_path(rust)))
        .collect();
    assert_eq!(facts, pairs);
}

/// Each replacement type's fields, as src/wire/response.rs declares them.
#[test]
fn the_replacement_fields_are_response_rs_fields() {
    let source =
        fs::read_to_string(crate_path("../src/wire/response.rs")).expect("src/wire/response.rs");
    for (_, rust, fields) in crate_facts().replacements {
        let body = source
            .split(&format!("pub struct {rust} {{"))
            .nth(1)
            .and_then(|rest| rest.split("\n}").next())
            .unwrap_or_else(|| panic!("src/wire/response.rs has no `pub struct {rust}`"));
        let declared: Vec<&str> = body
            .lines()
            .filter_map(|line| line.trim().strip_prefix("pub "))
            .filter_map(|line| line.split(':').next())
            .collect();
        assert_eq!(fields, declared, "{rust}");
    }
}

/// The build-breaking change: the replaced schema renamed.
#[test]
fn renaming_the_replaced_schema_is_breaking_and_names_the_file() {
    let old = fs::read_to_string(crate_path("tests/fixtures/crate-knowledge/base.yaml"))
        .expect("readable");
    let new = old.replace("AuthorizationTokenResponse", "AccessTokenResponse");
    let report = diff_texts("old.yaml", &old, "new.yaml", &new).expect("both load");
    let change = report
        .changes
        .iter()
        .find(|c| c.id == "crate-replaced-schema-removed")
        .unwrap_or_else(|| panic!("no build item: {:?}", report.changes));
    assert_eq!(change.level, Level::Breaking);
    assert!(
        change.message.contains("src/client/standard.rs"),
        "{}",
        change.message
    );
    assert!(
        change.message.contains("AuthorizationTokenResponse"),
        "{}",
        change.message
    );
    assert!(report.fails(Gate {
        fail_on: FailOn::Breaking,
        ignore_absorbed: true
    }));
}

/// The request side, checked against the crate's real request: an MSN pattern that
/// still takes 4 to 6 digits is absorbed; one that no longer takes 4 is not.
#[test]
fn a_request_change_is_absorbed_only_if_the_crate_request_still_meets_it() {
    let old = fs::read_to_string(crate_path("tests/fixtures/crate-knowledge/base.yaml"))
        .expect("readable");
    let with_msn = |pattern: &str| {
        old.replacen(
            "      parameters:\n",
            &format!(
                "      parameters:\n        - name: Merchant-Serial-Number\n          in: header\n          \
                 schema:\n            type: string\n            pattern: '{pattern}'\n"
            ),
            1,
        )
    };
    let base = with_msn("^[0-9]{4,6}$");
    for (pattern, absorbed) in [("^[0-9]{3,7}$", true), ("^[0-9]{6}$", false)] {
        let report = diff_texts("old.yaml", &base, "new.yaml", &with_msn(pattern)).expect("loads");
        let [change] = report.changes.as_slice() else {
            panic!("one change expected: {:?}", report.changes)
        };
        assert_eq!(change.id, "request-parameter-pattern-changed");
        assert_eq!(
            change.absorbed_by_crate.is_some(),
            absorbed,
            "{pattern}: {change:?}"
        );
        if !absorbed {
            let why = change.rust_api.as_deref().unwrap_or_default();
            assert!(why.contains("rejects `1234`"), "{why}");
        }
    }
}

/// A field the hand-written type has not got: whatever happens to it, the type parses.
#[test]
fn a_change_to_a_field_the_type_has_not_got_is_absorbed() {
    let base = fs::read_to_string(crate_path("tests/fixtures/crate-knowledge/base.yaml"))
        .expect("readable");
    let old = base.replacen(
        "        access_token:\n",
        "        scope:\n          type: string\n        access_token:\n",
        1,
    );
    let new = old.replacen(
        "        scope:\n          type: string",
        "        scope:\n          type: integer",
        1,
    );
    let report = diff_texts("old.yaml", &old, "new.yaml", &new).expect("loads");
    let [change] = report.changes.as_slice() else {
        panic!("one change expected: {:?}", report.changes)
    };
    assert!(change.absorbed_by_crate.is_some(), "{change:?}");
    let item = change.rust_api.as_deref().unwrap_or_default();
    assert!(item.contains("has no field `scope`"), "{item}");
}

/// The request facts the request-side check relies on are the headers a real
/// `Client::standard_token` sends: all of them with every option set, the `always` ones
/// with none, and no body.
#[tokio::test]
async fn the_standard_request_facts_are_the_headers_a_real_call_sends() {
    use wiremock::{
        Mock, MockServer, ResponseTemplate,
        matchers::{method, path},
    };
    // Headers of any HTTP request, not of the Access Token API.
    const TRANSPORT: &[&str] = &[
        "host",
        "content-length",
        "accept",
        "accept-encoding",
        "user-agent",
        "connection",
    ];
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(support::STANDARD_PATH))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(support::fixtures::standard_docs_example()),
        )
        .mount(&server)
        .await;
    let credentials = support::standard_credentials();
    support::full_client(&server)
        .standard_token(&credentials)
        .await
        .expect("a token with every option");
    support::bare_client(&server)
        .standard_token(&credentials)
        .await
        .expect("a token with no option");
    let requests = support::received(&server).await;
    let [full, bare] = requests.as_slice() else {
        panic!("two requests expected, got {}", requests.len())
    };
    let names = |request: &wiremock::Request| -> BTreeSet<String> {
        request
            .headers
            .keys()
            .map(|k| k.as_str().to_ascii_lowercase())
            .filter(|k| !TRANSPORT.contains(&k.as_str()))
            .collect()
    };
    let facts = crate_facts().standard_request_headers;
    let all: BTreeSet<String> = facts.iter().map(|(h, _)| h.to_ascii_lowercase()).collect();
    let always: BTreeSet<String> = facts
        .iter()
        .filter(|(_, always)| *always)
        .map(|(h, _)| h.to_ascii_lowercase())
        .collect();
    assert_eq!(names(full), all);
    assert_eq!(names(bare), always);
    assert!(full.body.is_empty() && bare.body.is_empty());
}

#[test]
fn a_generated_type_field_is_named_for_a_schema_that_is_not_replaced() {
    let root = crate_path("tests/fixtures/response-property-type-changed");
    let report = diff_files(&root.join("old.yaml"), &root.join("new.yaml")).expect("loads");
    let [change] = report.changes.as_slice() else {
        panic!("one change expected: {:?}", report.changes)
    };
    assert_eq!(
        change.rust_api.as_deref(),
        Some("generated `types::Widget`, field `size` (crate-private)")
    );
    assert_eq!(change.absorbed_by_crate, None);
}
