//! The bundled spec: it parses, its generated code is pinned, and every operation,
//! parameter and response status in it has a conformance case.

use std::{fs, path::Path};

use openapiv3::{OpenAPI, Operation, Parameter, ReferenceOr, StatusCode};

const SPEC: &str = include_str!("../openapi/access-token.yaml");

/// Which conformance cases cover an operation: its tests are named `<flow>_status_<code>_...`
/// and its request snapshot is `snapshots/<flow>_request.snap`. A new operation must be
/// added here, with its cases, before CI passes.
const FLOW_OF_OPERATION: &[(&str, &str)] = &[
    ("fetchAuthorizationTokenUsingPost", "standard"),
    ("fetchToken", "partner"),
];

fn spec() -> OpenAPI {
    serde_yaml::from_str(SPEC)
        .expect("openapi/access-token.yaml is not a valid OpenAPI 3.0 document")
}

fn operations(spec: &OpenAPI) -> Vec<(String, String, &Operation)> {
    spec.paths
        .iter()
        .filter_map(|(path, item)| match item {
            ReferenceOr::Item(item) => Some((path, item)),
            ReferenceOr::Reference { .. } => None,
        })
        .flat_map(|(path, item)| {
            item.iter()
                .map(move |(method, op)| (method.to_uppercase(), path.clone(), op))
        })
        .collect()
}

fn parameter_name<'a>(spec: &'a OpenAPI, parameter: &'a ReferenceOr<Parameter>) -> &'a str {
    let parameter = match parameter {
        ReferenceOr::Item(p) => p,
        ReferenceOr::Reference { reference } => {
            let name = reference.trim_start_matches("#/components/parameters/");
            match spec
                .components
                .as_ref()
                .and_then(|c| c.parameters.get(name))
            {
                Some(ReferenceOr::Item(p)) => p,
                _ => panic!("unresolved parameter reference {reference}"),
            }
        }
    };
    &parameter.parameter_data_ref().name
}

#[test]
fn bundled_spec_is_openapi_3_0() {
    let spec = spec();
    assert!(
        spec.openapi.starts_with("3.0"),
        "openapi version {}",
        spec.openapi
    );
    assert_eq!(spec.info.title, "Access token");
    let servers: Vec<_> = spec.servers.iter().map(|s| s.url.as_str()).collect();
    assert_eq!(
        servers,
        ["https://api.vipps.no", "https://apitest.vipps.no"]
    );
    let ops = operations(&spec);
    assert!(
        ops.iter()
            .any(|(m, p, _)| m == "POST" && p == "/accesstoken/get"),
        "POST /accesstoken/get is missing"
    );
}

#[test]
fn generated_code_is_pinned() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/access_token_api.rs"));
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("generated_client", generated);
    });
}

fn project_file(relative: &str) -> Option<String> {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)).ok()
}

#[test]
fn every_operation_parameter_and_status_has_a_conformance_case() {
    let spec = spec();
    let conformance =
        project_file("tests/conformance.rs").expect("tests/conformance.rs is missing");
    let mut missing = Vec::new();
    for (method, path, operation) in operations(&spec) {
        let id = operation
            .operation_id
            .as_deref()
            .unwrap_or("(no operationId)");
        let Some(&(_, flow)) = FLOW_OF_OPERATION.iter().find(|(op, _)| *op == id) else {
            missing.push(format!(
                "{method} {path} ({id}) has no conformance cases: write them in tests/conformance.rs \
                 and map the operation in FLOW_OF_OPERATION"
            ));
            continue;
        };

        let mut statuses: Vec<String> = operation
            .responses
            .responses
            .keys()
            .map(|status| match status {
                StatusCode::Code(code) => code.to_string(),
                StatusCode::Range(range) => format!("{range}xx"),
            })
            .collect();
        if operation.responses.default.is_some() {
            statuses.push("default".to_owned());
        }
        for status in statuses {
            if !conformance.contains(&format!("fn {flow}_status_{status}_")) {
                missing.push(format!(
                    "{method} {path}: response {status} has no case `fn {flow}_status_{status}_...` in tests/conformance.rs"
                ));
            }
        }

        let snapshot_file = format!("snapshots/{flow}_request.snap");
        let Some(snapshot) = project_file(&snapshot_file) else {
            missing.push(format!(
                "{method} {path}: no request snapshot {snapshot_file}"
            ));
            continue;
        };
        let snapshot = snapshot.to_ascii_lowercase();
        if !snapshot.contains(&format!("{} {path}", method.to_ascii_lowercase())) {
            missing.push(format!(
                "{method} {path}: {snapshot_file} does not show a {method} to {path}"
            ));
        }
        for parameter in &operation.parameters {
            let name = parameter_name(&spec, parameter).to_ascii_lowercase();
            if !snapshot.contains(&format!("{name}: ")) {
                missing.push(format!(
                    "{method} {path}: parameter `{name}` is not sent in {snapshot_file}"
                ));
            }
        }
        if operation.request_body.is_some() && snapshot.contains("(no body)") {
            missing.push(format!(
                "{method} {path}: the request body is not pinned in {snapshot_file}"
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "the spec has uncovered items:\n{}",
        missing.join("\n")
    );
}
