//! `spec_diff` on a big spec: a generated multi-megabyte spec (YAML and the same as
//! JSON) diffed with itself, and with a copy where one shared schema changed.
//! Figures are in BENCHMARKS.md; the command: `cargo bench -p vipps-spec-diff --bench
//! spec_diff`.
//!
//! The spec: `OPERATIONS` paths, each with a path and a header parameter, a request body
//! and a response that refer to their own schema; every schema has a dozen properties
//! (strings with patterns and lengths, numbers with bounds, enums, an array of a shared
//! `Tag`, descriptions and examples) and refers to the next schema in a chain of four.

use std::{fmt::Write as _, hint::black_box};

use criterion::{Criterion, criterion_group, criterion_main};
use vipps_spec_diff::diff_texts;

const OPERATIONS: usize = 2_500;

/// The spec as YAML; `variant` changes the shared `Tag` schema (one property's type).
fn big_spec(variant: bool) -> String {
    let mut out = String::from(
        "openapi: 3.0.3\ninfo:\n  title: Generated\n  version: 1.0.0\n\
         servers:\n  - url: https://api.example.test\npaths:\n",
    );
    for i in 0..OPERATIONS {
        let _ = write!(
            out,
            "  /things{i}/{{thingId}}:\n    post:\n      operationId: makeThing{i}\n      \
             description: Makes thing number {i}, with a description long enough to weigh \
             what a real one weighs in a published spec.\n      parameters:\n        \
             - name: thingId\n          in: path\n          required: true\n          \
             schema:\n            type: string\n            pattern: ^[a-z0-9-]{{1,36}}$\n        \
             - name: X-Request-Id\n          in: header\n          schema:\n            \
             type: string\n            maxLength: 64\n      requestBody:\n        \
             required: true\n        content:\n          application/json:\n            \
             schema:\n              $ref: '#/components/schemas/Thing{i}'\n      \
             responses:\n        '200':\n          description: OK\n          headers:\n            \
             X-Rate-Limit:\n              schema:\n                type: integer\n          \
             content:\n            application/json:\n              schema:\n                \
             $ref: '#/components/schemas/Thing{i}'\n        '400':\n          \
             description: Bad request\n"
        );
    }
    out.push_str("components:\n  schemas:\n");
    let tag_kind = if variant { "integer" } else { "string" };
    let _ = write!(
        out,
        "    Tag:\n      type: object\n      required: [key]\n      properties:\n        \
         key:\n          type: {tag_kind}\n        value:\n          type: string\n"
    );
    for i in 0..OPERATIONS {
        let _ = write!(
            out,
            "    Thing{i}:\n      type: object\n      description: Thing {i}, as the API \
             keeps it.\n      required: [id, name, size]\n      properties:\n"
        );
        for p in 0..6 {
            let _ = write!(
                out,
                "        text{p}:\n          type: string\n          minLength: 1\n          \
                 maxLength: 120\n          pattern: ^[A-Za-z ]+$\n          description: \
                 Text field {p} of thing {i}.\n          example: Some text\n"
            );
        }
        let _ = write!(
            out,
            "        id:\n          type: string\n          format: uuid\n          readOnly: true\n        \
             name:\n          type: string\n          maxLength: 80\n        \
             size:\n          type: number\n          minimum: 0\n          maximum: 1000\n        \
             kind:\n          type: string\n          enum: [small, medium, large]\n        \
             tags:\n          type: array\n          maxItems: 20\n          items:\n            \
             $ref: '#/components/schemas/Tag'\n"
        );
        if i % 4 != 3 && i + 1 < OPERATIONS {
            let _ = writeln!(
                out,
                "        next:\n          $ref: '#/components/schemas/Thing{}'",
                i + 1
            );
        }
    }
    out
}

fn spec_diff(c: &mut Criterion) {
    let yaml = big_spec(false);
    let changed = big_spec(true);
    let value: serde_json::Value = serde_yaml::from_str(&yaml).expect("the generated YAML parses");
    let json = serde_json::to_string(&value).expect("JSON");
    println!(
        "spec: {OPERATIONS} operations, YAML {:.1} MB, JSON {:.1} MB",
        yaml.len() as f64 / 1e6,
        json.len() as f64 / 1e6
    );
    let changes = diff_texts("a.yaml", &yaml, "b.yaml", &changed)
        .expect("loads")
        .changes
        .len();
    println!("changes when the shared Tag changes: {changes}");

    let mut group = c.benchmark_group("spec_diff");
    group.sample_size(10);
    group.bench_function("yaml_with_itself", |b| {
        b.iter(|| diff_texts("a.yaml", black_box(&yaml), "a.yaml", black_box(&yaml)))
    });
    group.bench_function("json_with_itself", |b| {
        b.iter(|| diff_texts("a.json", black_box(&json), "a.json", black_box(&json)))
    });
    group.bench_function("yaml_one_shared_schema_changed", |b| {
        b.iter(|| diff_texts("a.yaml", black_box(&yaml), "b.yaml", black_box(&changed)))
    });
    group.finish();
}

criterion_group!(benches, spec_diff);
criterion_main!(benches);
