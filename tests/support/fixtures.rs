//! Response bodies, written from the API's documentation and spec (ids are made up).

use serde_json::{Value, json};

use super::TOKEN;

/// The docs' example 200 body for `POST /accesstoken/get`: every number as a string.
pub fn standard_docs_example() -> String {
    json!({
        "token_type": "Bearer",
        "expires_in": "86398",
        "ext_expires_in": "0",
        "expires_on": "1495271273",
        "not_before": "1495184574",
        "resource": "00000002-0000-0000-c000-000000000000",
        "access_token": TOKEN,
    })
    .to_string()
}

/// The spec's example 200 body: every number as a JSON integer.
pub fn standard_spec_example() -> String {
    json!({
        "token_type": "Bearer",
        "expires_in": 3600,
        "ext_expires_in": 3600,
        "expires_on": 1547823408,
        "not_before": 1547819508,
        "resource": "00000002-0000-0000-c000-000000000000",
        "access_token": TOKEN,
    })
    .to_string()
}

/// Integers and strings mixed, and `token_type` in lower case.
pub fn standard_mixed_example() -> String {
    json!({
        "token_type": "bearer",
        "expires_in": 3599,
        "ext_expires_in": "0",
        "expires_on": 1700003599,
        "not_before": "1700000000",
        "resource": "https://apitest.vipps.no",
        "access_token": TOKEN,
    })
    .to_string()
}

/// The docs' example body with `field` replaced by `value`.
pub fn standard_with(field: &str, value: Value) -> String {
    let mut body: Value = serde_json::from_str(&standard_docs_example()).unwrap();
    body[field] = value;
    body.to_string()
}

/// The docs' example body without `field`.
pub fn standard_without(field: &str) -> String {
    let mut body: Value = serde_json::from_str(&standard_docs_example()).unwrap();
    body.as_object_mut().unwrap().remove(field);
    body.to_string()
}

/// The partner endpoint's 200 body with the given `expires_in` (`900` or `"900"`).
pub fn partner_ok(expires_in: Value) -> String {
    json!({
        "access_token": TOKEN,
        "token_type": "Bearer",
        "expires_in": expires_in,
    })
    .to_string()
}

/// Azure AD's 400 for a `client_id` it does not know (keys of the other environment).
pub fn azure_unknown_client() -> String {
    json!({
        "error": "unauthorized_client",
        "error_description": "AADSTS700016: Application with identifier 'fb492b5e-7907-4d83-ba20-c7fb60ca35de' was not found in the directory 'a1b2c3d4-0000-4000-8000-00000000c0de'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.\r\nTrace ID: 5e0f7d1a-8b2c-4d3e-9f40-a1b2c3d4e5f6\r\nCorrelation ID: 9c8b7a6f-5e4d-4c3b-8a29-182736455463\r\nTimestamp: 2022-11-17 11:37:08Z",
        "error_codes": [700016],
        "timestamp": "2022-11-17 11:37:08Z",
        "trace_id": "5e0f7d1a-8b2c-4d3e-9f40-a1b2c3d4e5f6",
        "correlation_id": "9c8b7a6f-5e4d-4c3b-8a29-182736455463",
        "error_uri": "https://login.windows.net/error?code=700016",
    })
    .to_string()
}

/// Azure AD's 401 for a wrong `client_secret`.
pub fn azure_invalid_secret() -> String {
    json!({
        "error": "invalid_client",
        "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app 'fb492b5e-7907-4d83-ba20-c7fb60ca35de'.\r\nTrace ID: 0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6\r\nCorrelation ID: 1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d\r\nTimestamp: 2023-03-02 08:15:42Z",
        "error_codes": [7000215],
        "timestamp": "2023-03-02 08:15:42Z",
        "trace_id": "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6",
        "correlation_id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        "error_uri": "https://login.windows.net/error?code=7000215",
    })
    .to_string()
}

/// The API gateway's 401 when the subscription key is missing.
pub const GATEWAY_401_MISSING_KEY: &str = r#"{"statusCode":401,"message":"Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API."}"#;

/// The API gateway's 404 shape.
pub const GATEWAY_404: &str = r#"{"responseInfo":{"responseCode":404,"responseMessage":"Something went wrong, please try again later."},"result":{"message":"Something went wrong, please try again later."}}"#;

/// The partner endpoint's OAuth 2.0 401.
pub const OAUTH_INVALID_CLIENT: &str =
    r#"{"error":"invalid_client","error_description":"Client authentication failed."}"#;

/// The partner endpoint's OAuth 2.0 400 for a wrong grant type.
pub const OAUTH_UNSUPPORTED_GRANT: &str = r#"{"error":"unsupported_grant_type"}"#;

/// The text near the end of [`html_502_page`], which no short excerpt may reach.
pub const HTML_TAIL_MARKER: &str = "request-id-tail-marker";

/// A gateway's 502 HTML page, much longer than any excerpt.
pub fn html_502_page() -> String {
    let filler = "<p>The server, while acting as a gateway or proxy, received an invalid response from the upstream server.</p>\n".repeat(8);
    format!(
        "<!DOCTYPE html>\n<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n<h1>502 Bad Gateway</h1>\n{filler}<p>{HTML_TAIL_MARKER}</p>\n</body>\n</html>\n"
    )
}
