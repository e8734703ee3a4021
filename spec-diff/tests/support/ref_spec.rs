//! A small spec built around one schema, for tests of the spec diff (the library's and the
//! CLI's).

/// A spec whose 200 response schema is `response` and whose components.schemas are `schemas`.
pub fn ref_spec(response: &str, schemas: &str) -> String {
    format!(
        "openapi: 3.0.0\ninfo: {{title: t, version: '1'}}\npaths:\n  /x:\n    get:\n      \
         responses:\n        '200':\n          description: OK\n          content:\n            \
         application/json:\n              schema:\n                {response}\ncomponents:\n  \
         schemas:\n    {schemas}\n"
    )
}
