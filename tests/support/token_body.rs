//! The documented 200 body of `POST /accesstoken/get`, shared by the test binaries and
//! the benches (each includes this file with `#[path]`).

use serde_json::{Value, json};

/// A standard-flow 200 body with the docs' fixed times: `expires_in` as given (a string
/// such as `"3600"`, as the real API sends it, or a number), everything else as strings.
pub fn standard_token_body(access_token: &str, expires_in: impl Into<Value>) -> Value {
    json!({
        "token_type": "Bearer",
        "expires_in": expires_in.into(),
        "ext_expires_in": "0",
        "expires_on": "1495271273",
        "not_before": "1495184574",
        "resource": "00000002-0000-0000-c000-000000000000",
        "access_token": access_token,
    })
}
