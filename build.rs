//! Generates the typed binding for `openapi/access-token.yaml` with progenitor.
//!
//! The generated code lands in `$OUT_DIR/access_token_api.rs` and is pulled in by
//! `src/wire/generated.rs`; it is never edited by hand. Two adjustments are made to the
//! spec *in memory* before generation, both because the real API differs from it:
//!
//! 1. Every non-2xx response is removed from each operation. The spec declares
//!    400/401/500 without a body, so progenitor would drop the body, yet the real
//!    API sends Azure AD, gateway or OAuth error bodies there. Without them the
//!    generated code hands back the raw response and `src/error/` parses it.
//! 2. The response schemas are replaced by the hand-written tolerant types in
//!    `src/wire/response.rs`: the spec says `integer`, the real API sends `"86398"`, and a
//!    newer spec says `string`. No spec, old or new, can bring a strict field back.

use std::{env, fs, path::Path};

const SPEC: &str = "openapi/access-token.yaml";

/// Spec schema name -> hand-written replacement type (path as seen from `src/wire/generated.rs`).
const REPLACEMENTS: &[(&str, &str)] = &[
    (
        "AuthorizationTokenResponse",
        "crate::wire::answer::StandardTokenAnswer",
    ),
    (
        "TokenResponse",
        "crate::wire::response::PartnerTokenResponse",
    ),
];

fn main() {
    println!("cargo:rerun-if-changed=openapi");
    println!("cargo:rerun-if-changed=build.rs");

    let text = fs::read_to_string(SPEC).unwrap_or_else(|e| panic!("cannot read {SPEC}: {e}"));
    let mut spec: openapiv3::OpenAPI =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{SPEC} is not OpenAPI 3.0: {e}"));
    keep_only_success_responses(&mut spec);

    let mut settings = progenitor::GenerationSettings::new();
    settings.with_interface(progenitor::InterfaceStyle::Builder);
    for (schema, replacement) in REPLACEMENTS {
        settings.with_replacement(schema, replacement, std::iter::empty());
    }

    let mut generator = progenitor::Generator::new(&settings);
    let tokens = generator
        .generate_tokens(&spec)
        .unwrap_or_else(|e| panic!("progenitor cannot generate a client from {SPEC}: {e}"));
    let file: syn::File = syn::parse2(tokens).expect("progenitor emitted invalid Rust");
    let code = prettyplease::unparse(&file);

    let out =
        Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("access_token_api.rs");
    fs::write(&out, code).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}

/// Drops every response whose status is not 2xx, see the module docs for why.
fn keep_only_success_responses(spec: &mut openapiv3::OpenAPI) {
    for (_, item) in spec.paths.paths.iter_mut() {
        let openapiv3::ReferenceOr::Item(item) = item else {
            continue;
        };
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            operation.responses.default = None;
            operation
                .responses
                .responses
                .retain(|status, _| match status {
                    openapiv3::StatusCode::Code(code) => (200..300).contains(code),
                    openapiv3::StatusCode::Range(range) => *range == 2,
                });
        }
    }
}
