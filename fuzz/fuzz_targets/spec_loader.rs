//! The spec diff's reader: any text, as YAML or JSON, diffed against itself and against a
//! small valid spec, is a report or an error, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipps_spec_diff::diff_texts;

const SMALL: &str = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /x:\n    get:\n      responses:\n        '200':\n          description: OK\n";

fuzz_target!(|text: &str| {
    let _ = diff_texts("fuzz.yaml", text, "fuzz.yaml", text);
    let _ = diff_texts("small.yaml", SMALL, "fuzz.yaml", text);
});
