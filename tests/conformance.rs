//! Conformance suite: every flow against a `wiremock::MockServer` on loopback.
//!
//! * `request_*`: what goes on the wire, snapshotted in `snapshots/`.
//! * `<flow>_status_<code>_*`: how each documented (and some undocumented) answer is read.
//! * `rejects_*`: values refused before anything is sent.
//! * `*_hides_secrets`: no secret in `Debug` or `Display`.
//!
//! Every error any test produces also goes through `support::assert_error_secret_free`.

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{Value, json};
use vipps_access_token::{
    AccessToken, ClientBuilder, Error, ErrorBody, FORM_CONTENT_TYPE, Flow, LegacyResource,
    PARTNER_TOKEN_PATH, PartnerCredentials, RENAMED_PARTNER_TOKEN_PATH, StandardCredentials,
    SystemHeaders,
};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use support::{fixtures, *};

// ---------------------------------------------------------------------------------------
// Helpers local to this file
// ---------------------------------------------------------------------------------------

/// Snapshots `value` as `snapshots/<name>.snap`.
fn assert_named_snapshot(name: &str, value: &str) {
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!(name, value);
    });
}

/// The headers a token hands out for later calls, as sorted `name: value` lines.
fn call_headers(token: &AccessToken) -> Vec<String> {
    let mut lines: Vec<String> = token
        .headers()
        .iter()
        .map(|(name, value)| format!("{name}: {}", value.to_str().expect("ASCII header")))
        .collect();
    lines.sort();
    lines
}

/// The caller headers the full client sends, as `name: value` lines.
fn caller_header_lines() -> Vec<String> {
    vec![
        format!("merchant-serial-number: {MSN}"),
        format!("vipps-system-name: {SYSTEM_NAME}"),
        format!("vipps-system-plugin-name: {PLUGIN_NAME}"),
        format!("vipps-system-plugin-version: {PLUGIN_VERSION}"),
        format!("vipps-system-version: {SYSTEM_VERSION}"),
    ]
}

/// The checks every standard or legacy token from the full client passes: its fields as
/// sent, and exactly the headers a later API call needs.
fn assert_standard_token(
    token: &AccessToken,
    flow: Flow,
    expires_in: u64,
    expires_on: u64,
    not_before: u64,
) {
    assert_eq!(token.flow(), flow);
    assert_eq!(token.token_type(), "Bearer");
    assert_eq!(token.expires_in(), Duration::from_secs(expires_in));
    assert_eq!(token.server_expires_on(), unix(expires_on));
    assert_eq!(token.server_not_before(), unix(not_before));
    assert_eq!(
        token.resource(),
        Some("00000002-0000-0000-c000-000000000000")
    );
    assert_eq!(token.secret().expose_secret(), TOKEN);
    let mut expected = caller_header_lines();
    expected.push(format!("authorization: Bearer {TOKEN}"));
    expected.push(format!("ocp-apim-subscription-key: {SUBSCRIPTION_KEY}"));
    assert_eq!(call_headers(token), sorted(expected));
}

fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

/// Asks the full client for a token on `flow` and checks `expires_at` against the clock.
async fn token_from(flow: Flow, template: ResponseTemplate) -> AccessToken {
    let before = SystemTime::now();
    let before_instant = Instant::now();
    let token = exchange(flow, template)
        .await
        .unwrap_or_else(|e| panic!("expected a token, got {e:?}"));
    let after = SystemTime::now();
    let after_instant = Instant::now();
    let expires_in = token.expires_in();
    assert!(
        token.expires_at() >= before + expires_in && token.expires_at() <= after + expires_in,
        "expires_at must be the send time plus expires_in"
    );
    assert!(
        token.expires_at_instant() >= before_instant + expires_in
            && token.expires_at_instant() <= after_instant + expires_in
    );
    assert!(!token.is_expired());
    assert_secret_free("Debug of the token", &format!("{token:?}"));
    token
}

fn unix(seconds: u64) -> Option<SystemTime> {
    Some(UNIX_EPOCH + Duration::from_secs(seconds))
}

/// Expects an `Error::InvalidResponse` on a 200 that names `field`.
async fn expect_invalid_field(flow: Flow, body: String, field: &str) -> Error {
    let error = exchange_err(flow, json(200, body)).await;
    let (status, named, _, _) = invalid_response(&error);
    assert_eq!(status, 200);
    assert_eq!(named, Some(field), "the error must name the field: {error}");
    assert!(error.to_string().contains(field), "{error}");
    assert_eq!(error.status(), Some(200));
    assert!(!error.is_credentials_rejected());
    error
}

// ---------------------------------------------------------------------------------------
// 1. What goes on the wire
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn request_standard_all_optional_headers() {
    let server = MockServer::start().await;
    mount_once(
        &server,
        Flow::Standard,
        json(200, fixtures::standard_docs_example()),
    )
    .await;
    full_client(&server)
        .standard_token(&standard_credentials())
        .await
        .expect("a token");

    let request = only_request(&server).await;
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), "/accesstoken/get");
    assert_eq!(request.url.query(), None);
    assert!(
        request.headers.get("api-version").is_none(),
        "the API documents no api-version header"
    );
    assert_eq!(header_values(&request, "client_id"), [CLIENT_ID]);
    assert_eq!(header_values(&request, "client_secret"), [CLIENT_SECRET]);
    assert_eq!(
        header_values(&request, "ocp-apim-subscription-key"),
        [SUBSCRIPTION_KEY]
    );
    assert_eq!(header_values(&request, "merchant-serial-number"), [MSN]);
    assert_eq!(header_values(&request, "vipps-system-name"), [SYSTEM_NAME]);
    assert_eq!(
        header_values(&request, "vipps-system-version"),
        [SYSTEM_VERSION]
    );
    assert_eq!(
        header_values(&request, "vipps-system-plugin-name"),
        [PLUGIN_NAME]
    );
    assert_eq!(
        header_values(&request, "vipps-system-plugin-version"),
        [PLUGIN_VERSION]
    );
    assert!(request.headers.get("authorization").is_none());
    assert!(request.body.is_empty(), "the standard flow has no body");
    assert_named_snapshot("standard_request", &render_request(&request));
}

#[tokio::test]
async fn request_standard_no_optional_headers() {
    let server = MockServer::start().await;
    mount_once(
        &server,
        Flow::Standard,
        json(200, fixtures::standard_docs_example()),
    )
    .await;
    bare_client(&server)
        .standard_token(&standard_credentials())
        .await
        .expect("a token");

    let request = only_request(&server).await;
    assert!(request.headers.get("api-version").is_none());
    for absent in [
        "merchant-serial-number",
        "vipps-system-name",
        "vipps-system-version",
        "vipps-system-plugin-name",
        "vipps-system-plugin-version",
    ] {
        assert!(
            request.headers.get(absent).is_none(),
            "{absent} is not set and must not be sent"
        );
    }
    assert_eq!(header_values(&request, "client_id"), [CLIENT_ID]);
    assert_eq!(
        header_values(&request, "ocp-apim-subscription-key"),
        [SUBSCRIPTION_KEY]
    );
    assert_named_snapshot(
        "standard_request_no_optional_headers",
        &render_request(&request),
    );
}

/// The critical facts of every partner request, whatever its path and scope.
fn assert_partner_request(request: &wiremock::Request, expected_path: &str, expected_body: &str) {
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), expected_path);
    assert_eq!(request.url.query(), None);
    assert!(
        request.headers.get("ocp-apim-subscription-key").is_none(),
        "the partner flow never sends a subscription key"
    );
    assert!(request.headers.get("api-version").is_none());
    assert!(request.headers.get("client_id").is_none());
    assert!(request.headers.get("client_secret").is_none());
    let authorization = header_values(request, "authorization");
    assert_eq!(authorization.len(), 1);
    let encoded = authorization[0]
        .strip_prefix("Basic ")
        .expect("Basic credentials");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("standard base64");
    assert_eq!(
        String::from_utf8(decoded).unwrap(),
        format!("{CLIENT_ID}:{CLIENT_SECRET}")
    );
    assert_eq!(header_values(request, "content-type"), [FORM_CONTENT_TYPE]);
    assert_eq!(
        FORM_CONTENT_TYPE,
        "application/x-www-form-urlencoded; charset=utf-8"
    );
    assert_eq!(header_values(request, "merchant-serial-number"), [MSN]);
    assert_eq!(header_values(request, "vipps-system-name"), [SYSTEM_NAME]);
    assert_eq!(
        header_values(request, "vipps-system-plugin-version"),
        [PLUGIN_VERSION]
    );
    assert_eq!(String::from_utf8_lossy(&request.body), expected_body);
}

#[tokio::test]
async fn request_partner_without_scope() {
    let server = MockServer::start().await;
    mount_once(
        &server,
        Flow::Partner,
        json(200, fixtures::partner_ok(json!(900))),
    )
    .await;
    full_client(&server)
        .partner_token(&partner_credentials(), None)
        .await
        .expect("a token");

    let request = only_request(&server).await;
    assert_partner_request(&request, "/miami/v1/token", "grant_type=client_credentials");
    assert_named_snapshot("partner_request", &render_request(&request));
}

#[tokio::test]
async fn request_partner_with_scope() {
    let server = MockServer::start().await;
    mount_once(
        &server,
        Flow::Partner,
        json(200, fixtures::partner_ok(json!(900))),
    )
    .await;
    full_client(&server)
        .partner_token(&partner_credentials(), Some("management accounting:read"))
        .await
        .expect("a token");

    let request = only_request(&server).await;
    assert_partner_request(
        &request,
        "/miami/v1/token",
        "grant_type=client_credentials&scope=management+accounting%3Aread",
    );
    assert_named_snapshot("partner_request_with_scope", &render_request(&request));
}

#[tokio::test]
async fn request_partner_renamed_path() {
    assert_eq!(PARTNER_TOKEN_PATH, "/miami/v1/token");
    assert_eq!(RENAMED_PARTNER_TOKEN_PATH, "/authentication/v1/token");
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/authentication/v1/token"))
        .respond_with(json(200, fixtures::partner_ok(json!(900))))
        .expect(1)
        .mount(&server)
        .await;
    let client = full_builder(&server)
        .partner_token_path(RENAMED_PARTNER_TOKEN_PATH)
        .build()
        .expect("a valid client");
    let token = client
        .partner_token(&partner_credentials(), None)
        .await
        .expect("a token");
    assert_eq!(token.flow(), Flow::Partner);

    let request = only_request(&server).await;
    assert_partner_request(
        &request,
        "/authentication/v1/token",
        "grant_type=client_credentials",
    );
    assert_named_snapshot("partner_request_renamed_path", &render_request(&request));
}

#[tokio::test]
#[allow(deprecated)]
async fn request_legacy_each_documented_resource() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/accesstoken/jwt"))
        .respond_with(json(200, fixtures::standard_docs_example()))
        .expect(4)
        .mount(&server)
        .await;
    let client = full_client(&server);
    let resources = [
        (
            LegacyResource::Recurring,
            "https://testapivipps.no/vippsas/recurring-payment-service",
        ),
        (
            LegacyResource::InvoiceIsp,
            "https://testapivipps.no/vippsas/invoice-isp-service",
        ),
        (
            LegacyResource::InvoiceIpp,
            "https://testapivipps.no/vippsas/invoice-ipp-service",
        ),
        (
            LegacyResource::Other("https://example.com/other-product".to_owned()),
            "https://example.com/other-product",
        ),
    ];
    for (resource, _) in &resources {
        let token = client
            .legacy_token(&standard_credentials(), resource)
            .await
            .expect("a token");
        assert_eq!(token.flow(), Flow::Legacy);
    }

    let requests = received(&server).await;
    assert_eq!(requests.len(), resources.len());
    for (request, (resource, url)) in requests.iter().zip(&resources) {
        assert_eq!(resource.as_str(), *url);
        assert_eq!(request.url.path(), "/api/v2/accesstoken/jwt");
        assert!(request.headers.get("api-version").is_none());
        assert!(request.headers.get("client_secret").is_none());
        assert_eq!(
            header_values(request, "ocp-apim-subscription-key"),
            [SUBSCRIPTION_KEY]
        );
        assert_eq!(header_values(request, "content-type"), ["application/json"]);
        assert_eq!(header_values(request, "merchant-serial-number"), [MSN]);
        let body: Value = request.body_json().expect("a JSON body");
        assert_eq!(
            body,
            json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "resource": url})
        );
    }
    assert_named_snapshot("legacy_request", &render_request(&requests[0]));
}

#[tokio::test]
async fn request_with_merchant_serial_number_override() {
    let server = MockServer::start().await;
    mount_once(
        &server,
        Flow::Standard,
        json(200, fixtures::standard_docs_example()),
    )
    .await;
    let client = full_client(&server)
        .with_merchant_serial_number("654321")
        .expect("a valid MSN");
    let token = client
        .standard_token(&standard_credentials())
        .await
        .expect("a token");
    let request = only_request(&server).await;
    assert_eq!(
        header_values(&request, "merchant-serial-number"),
        ["654321"]
    );
    assert_eq!(
        token.headers()["merchant-serial-number"].to_str().unwrap(),
        "654321"
    );
}

// ---------------------------------------------------------------------------------------
// 2-3. Successful answers
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn standard_status_200_docs_example_numbers_as_strings() {
    let token = token_from(Flow::Standard, json(200, fixtures::standard_docs_example())).await;
    assert_eq!(token.flow(), Flow::Standard);
    assert_eq!(token.token_type(), "Bearer");
    assert_eq!(token.expires_in(), Duration::from_secs(86398));
    assert_eq!(token.server_expires_on(), unix(1495271273));
    assert_eq!(token.server_not_before(), unix(1495184574));
    assert_eq!(
        token.resource(),
        Some("00000002-0000-0000-c000-000000000000")
    );
    assert_eq!(token.secret().expose_secret(), TOKEN);

    let mut expected = caller_header_lines();
    expected.push(format!("authorization: Bearer {TOKEN}"));
    expected.push(format!("ocp-apim-subscription-key: {SUBSCRIPTION_KEY}"));
    assert_eq!(call_headers(&token), sorted(expected));
    assert_eq!(
        token.authorization_header().to_str().unwrap(),
        format!("Bearer {TOKEN}")
    );
    assert!(token.authorization_header().is_sensitive());
    assert!(token.headers()["ocp-apim-subscription-key"].is_sensitive());
}

#[tokio::test]
async fn standard_status_200_spec_example_integers() {
    let token = token_from(Flow::Standard, json(200, fixtures::standard_spec_example())).await;
    assert_standard_token(&token, Flow::Standard, 3600, 1547823408, 1547819508);
}

#[tokio::test]
async fn standard_status_200_mixed_numbers_lowercase_bearer() {
    let token = token_from(
        Flow::Standard,
        json(200, fixtures::standard_mixed_example()),
    )
    .await;
    assert_eq!(
        token.token_type(),
        "bearer",
        "token_type as the server sent it"
    );
    assert_eq!(token.expires_in(), Duration::from_secs(3599));
    assert_eq!(token.server_expires_on(), unix(1700003599));
    assert_eq!(token.server_not_before(), unix(1700000000));
    assert_eq!(token.resource(), Some("https://apitest.vipps.no"));
    assert_eq!(
        token.authorization_header().to_str().unwrap(),
        format!("Bearer {TOKEN}"),
        "the Authorization scheme is `Bearer` with a capital B whatever token_type says"
    );
}

#[tokio::test]
async fn standard_status_200_call_headers_without_caller_headers() {
    let server = MockServer::start().await;
    mount_once(
        &server,
        Flow::Standard,
        json(200, fixtures::standard_docs_example()),
    )
    .await;
    let token = bare_client(&server)
        .standard_token(&standard_credentials())
        .await
        .expect("a token");
    assert_eq!(
        call_headers(&token),
        sorted(vec![
            format!("authorization: Bearer {TOKEN}"),
            format!("ocp-apim-subscription-key: {SUBSCRIPTION_KEY}"),
        ])
    );
}

/// Checks a partner token: 900 seconds, no server times, no subscription key.
fn assert_partner_token(token: &AccessToken) {
    assert_eq!(token.flow(), Flow::Partner);
    assert_eq!(token.token_type(), "Bearer");
    assert_eq!(token.expires_in(), Duration::from_secs(900));
    assert_eq!(token.secret().expose_secret(), TOKEN);
    assert_eq!(token.server_expires_on(), None);
    assert_eq!(token.server_not_before(), None);
    assert_eq!(token.resource(), None);
    assert!(token.headers().get("ocp-apim-subscription-key").is_none());
    let mut expected = caller_header_lines();
    expected.push(format!("authorization: Bearer {TOKEN}"));
    assert_eq!(call_headers(token), sorted(expected));
    assert!(token.authorization_header().is_sensitive());
}

#[tokio::test]
async fn partner_status_200_expires_in_integer() {
    let token = token_from(Flow::Partner, json(200, fixtures::partner_ok(json!(900)))).await;
    assert_partner_token(&token);
}

#[tokio::test]
async fn partner_status_200_expires_in_string() {
    let token = token_from(Flow::Partner, json(200, fixtures::partner_ok(json!("900")))).await;
    assert_partner_token(&token);
}

#[tokio::test]
async fn legacy_status_200_docs_example() {
    let token = token_from(Flow::Legacy, json(200, fixtures::standard_docs_example())).await;
    assert_standard_token(&token, Flow::Legacy, 86398, 1495271273, 1495184574);
}

// ---------------------------------------------------------------------------------------
// 4. Error answers
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn standard_status_400_azure_ad_unknown_client() {
    let error = exchange_err(Flow::Standard, json(400, fixtures::azure_unknown_client())).await;
    assert_eq!(error.status(), Some(400));
    // An unknown client id is a rejection of the keys, whatever the status says.
    assert!(error.is_credentials_rejected());
    let api = api(&error);
    assert_eq!(api.status(), 400);
    let ErrorBody::AzureAd(azure) = api.body() else {
        panic!("expected the Azure AD shape, got {:?}", api.body());
    };
    assert_eq!(azure.error, "unauthorized_client");
    assert_eq!(azure.error_codes, [700016]);
    assert!(
        azure
            .error_description
            .as_deref()
            .unwrap()
            .starts_with("AADSTS700016: Application with identifier")
    );
    assert_eq!(azure.timestamp.as_deref(), Some("2022-11-17 11:37:08Z"));
    assert_eq!(
        azure.trace_id.as_deref(),
        Some("5e0f7d1a-8b2c-4d3e-9f40-a1b2c3d4e5f6")
    );
    assert_eq!(
        azure.correlation_id.as_deref(),
        Some("9c8b7a6f-5e4d-4c3b-8a29-182736455463")
    );
    assert_eq!(
        azure.error_uri.as_deref(),
        Some("https://login.windows.net/error?code=700016")
    );
    assert_eq!(api.body().error_code(), Some("unauthorized_client"));
    let hint = api.hint();
    assert!(
        hint.contains("test") && hint.contains("production"),
        "the hint must point at the environment mix-up: {hint}"
    );
    let message = error.to_string();
    assert!(message.contains("400"), "{message}");
    assert!(message.contains("AADSTS700016"), "{message}");
    assert!(message.contains(hint), "{message}");
    assert!(
        !message.contains("Correlation ID:"),
        "only the first line of the description belongs in the message: {message}"
    );
    assert_named_snapshot("standard_error_400_azure_ad_unknown_client", &message);
}

#[tokio::test]
async fn standard_status_401_gateway_missing_subscription_key() {
    let error = exchange_err(Flow::Standard, json(401, fixtures::GATEWAY_401_MISSING_KEY)).await;
    assert_eq!(error.status(), Some(401));
    assert!(error.is_credentials_rejected());
    let api = api(&error);
    let ErrorBody::Gateway(gateway) = api.body() else {
        panic!("expected the gateway shape, got {:?}", api.body());
    };
    assert_eq!(gateway.status_code, Some(401));
    assert!(
        gateway
            .message
            .starts_with("Access denied due to missing subscription key.")
    );
    assert!(
        api.hint().contains("subscription key"),
        "the hint must name the subscription key: {}",
        api.hint()
    );
    assert!(
        error
            .to_string()
            .contains("Access denied due to missing subscription key")
    );
    assert_named_snapshot(
        "standard_error_401_gateway_missing_subscription_key",
        &error.to_string(),
    );
}

#[tokio::test]
async fn standard_status_401_azure_ad_invalid_client_secret() {
    let error = exchange_err(Flow::Standard, json(401, fixtures::azure_invalid_secret())).await;
    assert_eq!(error.status(), Some(401));
    assert!(error.is_credentials_rejected());
    let api = api(&error);
    let ErrorBody::AzureAd(azure) = api.body() else {
        panic!("expected the Azure AD shape, got {:?}", api.body());
    };
    assert_eq!(azure.error, "invalid_client");
    assert_eq!(azure.error_codes, [7000215]);
    assert!(api.hint().contains("client_secret"), "{}", api.hint());
    assert!(error.to_string().contains("AADSTS7000215"), "{error}");
}

#[tokio::test]
async fn standard_status_401_gateway_echoing_secrets_is_redacted() {
    // A proxy that echoes what it got must not make the error carry the keys.
    let body = json!({
        "statusCode": 401,
        "message": format!(
            "Access denied due to invalid subscription key {SUBSCRIPTION_KEY} (client_secret {CLIENT_SECRET})."
        ),
    });
    let error = exchange_err(Flow::Standard, json(401, body.to_string())).await;
    let ErrorBody::Gateway(gateway) = api(&error).body() else {
        panic!("expected the gateway shape, got {error:?}");
    };
    assert!(
        gateway.message.contains("[redacted]"),
        "{}",
        gateway.message
    );
    // exchange_err already checked Display and Debug for the secrets themselves.
}

#[tokio::test]
async fn standard_status_401_gateway_echoing_escaped_secret_is_redacted() {
    // The same echo as above, with the secret's `=` written as a JSON escape, which any
    // JSON encoder may choose. The error must still not show the secret.
    let escaped = CLIENT_SECRET.replace('=', "\\u003d");
    let body =
        format!(r#"{{"statusCode":401,"message":"Access denied for client_secret {escaped}."}}"#);
    let error = exchange_err(Flow::Standard, json(401, body)).await;
    assert!(matches!(api(&error).body(), ErrorBody::Gateway(_)));
}

#[tokio::test]
async fn standard_status_403_empty_body() {
    let error = exchange_err(Flow::Standard, ResponseTemplate::new(403)).await;
    assert_eq!(error.status(), Some(403));
    assert!(error.is_credentials_rejected());
    let api = api(&error);
    assert_eq!(api.body(), &ErrorBody::Empty);
    assert!(api.hint().contains("access"), "{}", api.hint());
    assert!(error.to_string().contains("403"), "{error}");
}

#[tokio::test]
async fn standard_status_403_gateway_body() {
    let body = r#"{"statusCode":403,"message":"Out of call volume quota."}"#;
    let error = exchange_err(Flow::Standard, json(403, body)).await;
    assert!(error.is_credentials_rejected());
    let ErrorBody::Gateway(gateway) = api(&error).body() else {
        panic!("expected the gateway shape, got {error:?}");
    };
    assert_eq!(gateway.status_code, Some(403));
    assert_eq!(gateway.message, "Out of call volume quota.");
}

#[tokio::test]
async fn standard_status_404_gateway_response_info() {
    let error = exchange_err(Flow::Standard, json(404, fixtures::GATEWAY_404)).await;
    assert_eq!(error.status(), Some(404));
    assert!(!error.is_credentials_rejected());
    let api = api(&error);
    let ErrorBody::Gateway(gateway) = api.body() else {
        panic!("expected the gateway shape, got {:?}", api.body());
    };
    assert_eq!(gateway.status_code, Some(404));
    assert_eq!(
        gateway.message,
        "Something went wrong, please try again later."
    );
    assert!(api.hint().contains("base URL"), "{}", api.hint());
}

#[tokio::test]
async fn standard_status_500_empty_body() {
    let error = exchange_err(Flow::Standard, ResponseTemplate::new(500)).await;
    assert_eq!(error.status(), Some(500));
    assert!(!error.is_credentials_rejected());
    let api = api(&error);
    assert_eq!(api.status(), 500);
    assert_eq!(api.body(), &ErrorBody::Empty);
    assert!(api.hint().contains("retry"), "{}", api.hint());
    assert!(error.to_string().contains("empty body"), "{error}");
}

#[tokio::test]
async fn standard_status_502_html_page() {
    let page = fixtures::html_502_page();
    let error = exchange_err(Flow::Standard, raw(502, "text/html", page.clone())).await;
    assert_eq!(error.status(), Some(502));
    let api = api(&error);
    let ErrorBody::Text(text) = api.body() else {
        panic!("expected a text body, got {:?}", api.body());
    };
    assert_eq!(text, &page, "the body keeps the whole page");
    let message = error.to_string();
    assert!(message.contains("502 Bad Gateway"), "{message}");
    assert!(
        !message.contains(fixtures::HTML_TAIL_MARKER),
        "the message holds an excerpt, not the whole page: {message}"
    );
    assert!(message.len() < page.len(), "{message}");
    assert!(!message.contains('\n'), "one line: {message}");
    assert_named_snapshot("standard_error_502_html_page", &message);
}

#[tokio::test]
async fn standard_status_418_undocumented_text() {
    let error = exchange_err(Flow::Standard, raw(418, "text/plain", "I'm a teapot")).await;
    assert_eq!(error.status(), Some(418));
    assert!(!error.is_credentials_rejected());
    let api = api(&error);
    assert_eq!(api.body(), &ErrorBody::Text("I'm a teapot".to_owned()));
    assert!(api.hint().contains("undocumented"), "{}", api.hint());
    assert!(error.to_string().contains("I'm a teapot"), "{error}");
}

#[tokio::test]
async fn standard_status_503_undocumented_gateway_body() {
    let body = r#"{"statusCode":503,"message":"Service unavailable."}"#;
    let error = exchange_err(Flow::Standard, json(503, body)).await;
    assert_eq!(error.status(), Some(503));
    let ErrorBody::Gateway(gateway) = api(&error).body() else {
        panic!("expected the gateway shape, got {error:?}");
    };
    assert_eq!(gateway.status_code, Some(503));
    assert!(api(&error).hint().contains("retry"));
}

#[tokio::test]
async fn standard_status_302_redirect_not_followed() {
    // Credentials travel in headers: a redirect must never be followed.
    let server = MockServer::start().await;
    let elsewhere = format!("{}/elsewhere", server.uri());
    mount_once(
        &server,
        Flow::Standard,
        ResponseTemplate::new(302).insert_header("location", elsewhere.as_str()),
    )
    .await;
    Mock::given(path("/elsewhere"))
        .respond_with(json(200, fixtures::standard_docs_example()))
        .expect(0)
        .mount(&server)
        .await;
    let error = full_client(&server)
        .standard_token(&standard_credentials())
        .await
        .expect_err("a redirect is not a token");
    assert_error_secret_free(&error);
    assert_eq!(error.status(), Some(302));
    assert_eq!(received(&server).await.len(), 1);
}

#[tokio::test]
async fn partner_status_400_oauth_unsupported_grant_type() {
    let error = exchange_err(Flow::Partner, json(400, fixtures::OAUTH_UNSUPPORTED_GRANT)).await;
    assert_eq!(error.status(), Some(400));
    assert!(!error.is_credentials_rejected());
    let api = api(&error);
    let ErrorBody::OAuth(oauth) = api.body() else {
        panic!("expected the OAuth shape, got {:?}", api.body());
    };
    assert_eq!(oauth.error, "unsupported_grant_type");
    assert_eq!(oauth.error_description, None);
    assert!(
        api.hint().contains("grant_type=client_credentials"),
        "{}",
        api.hint()
    );
}

#[tokio::test]
async fn partner_status_401_oauth_invalid_client() {
    let error = exchange_err(Flow::Partner, json(401, fixtures::OAUTH_INVALID_CLIENT)).await;
    assert_eq!(error.status(), Some(401));
    assert!(error.is_credentials_rejected());
    let api = api(&error);
    let ErrorBody::OAuth(oauth) = api.body() else {
        panic!("expected the OAuth shape, got {:?}", api.body());
    };
    assert_eq!(oauth.error, "invalid_client");
    assert_eq!(
        oauth.error_description.as_deref(),
        Some("Client authentication failed.")
    );
    assert_eq!(
        api.body().description(),
        Some("Client authentication failed.")
    );
    assert!(error.to_string().contains("invalid_client"), "{error}");
    assert_named_snapshot("partner_error_401_oauth_invalid_client", &error.to_string());
}

#[tokio::test]
async fn partner_status_400_echoing_basic_credentials_is_redacted() {
    let body = json!({
        "error": "invalid_request",
        "error_description": format!("Malformed header: Basic {}", basic_credentials()),
    });
    let error = exchange_err(Flow::Partner, json(400, body.to_string())).await;
    let ErrorBody::OAuth(oauth) = api(&error).body() else {
        panic!("expected the OAuth shape, got {error:?}");
    };
    assert_eq!(
        oauth.error_description.as_deref(),
        Some("Malformed header: Basic [redacted]")
    );
}

#[tokio::test]
async fn partner_status_404_gateway_response_info() {
    let error = exchange_err(Flow::Partner, json(404, fixtures::GATEWAY_404)).await;
    let ErrorBody::Gateway(gateway) = api(&error).body() else {
        panic!("expected the gateway shape, got {error:?}");
    };
    assert_eq!(gateway.status_code, Some(404));
}

#[tokio::test]
async fn partner_status_500_empty_body() {
    let error = exchange_err(Flow::Partner, ResponseTemplate::new(500)).await;
    assert_eq!(error.status(), Some(500));
    assert!(!error.is_credentials_rejected());
    assert_eq!(api(&error).body(), &ErrorBody::Empty);
}

#[tokio::test]
async fn partner_status_502_html_page() {
    let page = fixtures::html_502_page();
    let error = exchange_err(Flow::Partner, raw(502, "text/html", page)).await;
    assert!(matches!(api(&error).body(), ErrorBody::Text(_)));
    assert!(!error.to_string().contains(fixtures::HTML_TAIL_MARKER));
}

#[tokio::test]
async fn legacy_status_400_azure_ad_unknown_client() {
    let error = exchange_err(Flow::Legacy, json(400, fixtures::azure_unknown_client())).await;
    assert_eq!(error.status(), Some(400));
    let api = api(&error);
    let ErrorBody::AzureAd(azure) = api.body() else {
        panic!("expected the Azure AD shape, got {:?}", api.body());
    };
    assert_eq!(azure.error_codes, [700016]);
    assert!(api.hint().contains("production"), "{}", api.hint());
}

#[tokio::test]
async fn legacy_status_401_gateway_missing_subscription_key() {
    let error = exchange_err(Flow::Legacy, json(401, fixtures::GATEWAY_401_MISSING_KEY)).await;
    assert!(error.is_credentials_rejected());
    let ErrorBody::Gateway(gateway) = api(&error).body() else {
        panic!("expected the gateway shape, got {error:?}");
    };
    assert_eq!(gateway.status_code, Some(401));
}

#[tokio::test]
async fn legacy_status_500_empty_body() {
    let error = exchange_err(Flow::Legacy, ResponseTemplate::new(500)).await;
    assert_eq!(error.status(), Some(500));
    assert_eq!(api(&error).body(), &ErrorBody::Empty);
}

// ---------------------------------------------------------------------------------------
// 5. Malformed 200 answers
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn standard_status_200_malformed_json() {
    let body = format!(r#"{{"token_type":"Bearer","access_token":"{TOKEN}","expires_in":"#);
    let error = exchange_err(Flow::Standard, json(200, body)).await;
    let (status, _, reason, _) = invalid_response(&error);
    assert_eq!(status, 200);
    assert!(!reason.is_empty());
    assert!(error.to_string().contains("could not be read"), "{error}");
}

#[tokio::test]
async fn standard_status_200_empty_body() {
    let error = exchange_err(Flow::Standard, ResponseTemplate::new(200)).await;
    let (status, field, reason, _) = invalid_response(&error);
    assert_eq!((status, field), (200, None));
    assert!(reason.contains("empty"), "{reason}");
}

#[tokio::test]
async fn standard_status_200_html_body() {
    let page = fixtures::html_502_page().replace("502 Bad Gateway", "Sign in");
    let error = exchange_err(Flow::Standard, raw(200, "text/html", page)).await;
    let (status, field, _, excerpt) = invalid_response(&error);
    assert_eq!((status, field), (200, None));
    assert!(excerpt.starts_with("<!DOCTYPE html>"), "{excerpt}");
    assert!(!error.to_string().contains(fixtures::HTML_TAIL_MARKER));
    assert!(error.to_string().contains("base URL"), "{error}");
}

#[tokio::test]
async fn standard_status_200_missing_access_token() {
    expect_invalid_field(
        Flow::Standard,
        fixtures::standard_without("access_token"),
        "access_token",
    )
    .await;
}

#[tokio::test]
async fn standard_status_200_missing_resource() {
    let error = expect_invalid_field(
        Flow::Standard,
        fixtures::standard_without("resource"),
        "resource",
    )
    .await;
    // The body holds the token: the excerpt must not.
    let (_, _, _, excerpt) = invalid_response(&error);
    assert!(excerpt.contains("[redacted]"), "{excerpt}");
}

#[tokio::test]
async fn standard_status_200_expires_in_not_digits() {
    expect_invalid_field(
        Flow::Standard,
        fixtures::standard_with("expires_in", json!("12a")),
        "expires_in",
    )
    .await;
}

#[tokio::test]
async fn standard_status_200_expires_in_negative() {
    expect_invalid_field(
        Flow::Standard,
        fixtures::standard_with("expires_in", json!(-5)),
        "expires_in",
    )
    .await;
}

#[tokio::test]
async fn standard_status_200_expires_in_fraction() {
    expect_invalid_field(
        Flow::Standard,
        fixtures::standard_with("expires_in", json!(1.5)),
        "expires_in",
    )
    .await;
}

#[tokio::test]
async fn standard_status_200_expires_in_boolean() {
    expect_invalid_field(
        Flow::Standard,
        fixtures::standard_with("expires_in", json!(true)),
        "expires_in",
    )
    .await;
}

#[tokio::test]
async fn standard_status_200_expires_in_empty_string() {
    expect_invalid_field(
        Flow::Standard,
        fixtures::standard_with("expires_in", json!("")),
        "expires_in",
    )
    .await;
}

#[tokio::test]
async fn standard_status_200_not_before_signed_string() {
    expect_invalid_field(
        Flow::Standard,
        fixtures::standard_with("not_before", json!("+1495184574")),
        "not_before",
    )
    .await;
}

#[tokio::test]
async fn standard_status_200_token_type_number() {
    expect_invalid_field(
        Flow::Standard,
        fixtures::standard_with("token_type", json!(5)),
        "token_type",
    )
    .await;
}

#[tokio::test]
async fn standard_status_200_token_type_not_bearer() {
    expect_invalid_field(
        Flow::Standard,
        fixtures::standard_with("token_type", json!("mac")),
        "token_type",
    )
    .await;
}

#[tokio::test]
async fn standard_status_200_access_token_with_line_break() {
    // A token that cannot become a header value is refused, without echoing it.
    let bad = format!("{TOKEN}\r\nx-injected: yes");
    expect_invalid_field(
        Flow::Standard,
        fixtures::standard_with("access_token", json!(bad)),
        "access_token",
    )
    .await;
}

#[tokio::test]
async fn standard_status_200_expires_on_out_of_range() {
    expect_invalid_field(
        Flow::Standard,
        fixtures::standard_with("expires_on", json!(u64::MAX)),
        "expires_on",
    )
    .await;
}

#[tokio::test]
async fn standard_status_200_expires_in_out_of_range() {
    let result = exchange(
        Flow::Standard,
        json(200, fixtures::standard_with("expires_in", json!(u64::MAX))),
    )
    .await;
    match result {
        Err(error) => assert_eq!(invalid_response(&error).1, Some("expires_in")),
        Ok(token) => {
            // Accepting it is fine only if the accessors stay usable.
            let _ = token.expires_at();
            let _ = token.expires_at_instant();
            let _ = token.is_expired();
        }
    }
}

#[tokio::test]
async fn partner_status_200_missing_access_token() {
    expect_invalid_field(
        Flow::Partner,
        json!({"token_type": "Bearer", "expires_in": 900}).to_string(),
        "access_token",
    )
    .await;
}

#[tokio::test]
async fn partner_status_200_expires_in_not_digits() {
    expect_invalid_field(
        Flow::Partner,
        fixtures::partner_ok(json!("12a")),
        "expires_in",
    )
    .await;
}

#[tokio::test]
async fn partner_status_200_expires_in_negative() {
    expect_invalid_field(Flow::Partner, fixtures::partner_ok(json!(-5)), "expires_in").await;
}

#[tokio::test]
async fn partner_status_200_token_type_number() {
    let body = json!({"access_token": TOKEN, "token_type": 5, "expires_in": 900});
    expect_invalid_field(Flow::Partner, body.to_string(), "token_type").await;
}

#[tokio::test]
async fn partner_status_200_empty_body() {
    let error = exchange_err(Flow::Partner, ResponseTemplate::new(200)).await;
    assert_eq!(invalid_response(&error).1, None);
}

#[tokio::test]
async fn partner_status_200_html_body() {
    let page = fixtures::html_502_page();
    let error = exchange_err(Flow::Partner, raw(200, "text/html", page)).await;
    let (status, field, _, _) = invalid_response(&error);
    assert_eq!((status, field), (200, None));
    assert!(!error.to_string().contains(fixtures::HTML_TAIL_MARKER));
}

#[tokio::test]
async fn legacy_status_200_missing_resource() {
    expect_invalid_field(
        Flow::Legacy,
        fixtures::standard_without("resource"),
        "resource",
    )
    .await;
}

#[tokio::test]
async fn legacy_status_200_malformed_json() {
    let error = exchange_err(Flow::Legacy, json(200, "{\"token_type\": \"Bearer\",")).await;
    assert_eq!(invalid_response(&error).0, 200);
}

// ---------------------------------------------------------------------------------------
// 6. Rejected before sending
// ---------------------------------------------------------------------------------------

/// Builds the full client with `msn` and expects it refused, with nothing sent.
async fn assert_msn_rejected(msn: &str) {
    let server = MockServer::start().await;
    mount_nothing_expected(&server).await;
    let error = full_builder(&server)
        .merchant_serial_number(msn)
        .build()
        .expect_err("an invalid MSN");
    assert_eq!(invalid_input_field(&error), "Merchant-Serial-Number");
    assert!(error.to_string().contains("nothing was sent"), "{error}");
    assert_eq!(error.status(), None);
    assert_error_secret_free(&error);

    let error = full_client(&server)
        .with_merchant_serial_number(msn)
        .expect_err("an invalid MSN");
    assert_eq!(invalid_input_field(&error), "Merchant-Serial-Number");
    assert!(received(&server).await.is_empty());
}

#[tokio::test]
async fn rejects_msn_with_a_letter() {
    assert_msn_rejected("12a456").await;
}

#[tokio::test]
async fn rejects_msn_too_short() {
    assert_msn_rejected("123").await;
}

#[tokio::test]
async fn rejects_msn_too_long() {
    assert_msn_rejected("1234567").await;
}

#[tokio::test]
async fn rejects_system_header_of_31_characters() {
    let server = MockServer::start().await;
    mount_nothing_expected(&server).await;
    let long = "a".repeat(31);
    let at_limit = "a".repeat(30);
    let cases = [
        (
            SystemHeaders::new(long.clone(), SYSTEM_VERSION),
            "Vipps-System-Name",
        ),
        (
            SystemHeaders::new(SYSTEM_NAME, long.clone()),
            "Vipps-System-Version",
        ),
        (
            SystemHeaders::new(SYSTEM_NAME, SYSTEM_VERSION)
                .with_plugin(long.clone(), PLUGIN_VERSION),
            "Vipps-System-Plugin-Name",
        ),
        (
            SystemHeaders::new(SYSTEM_NAME, SYSTEM_VERSION).with_plugin(PLUGIN_NAME, long.clone()),
            "Vipps-System-Plugin-Version",
        ),
    ];
    for (system, field) in cases {
        let error = ClientBuilder::with_base_url(server.uri())
            .system_headers(system)
            .build()
            .expect_err("a 31-character system header");
        assert_eq!(invalid_input_field(&error), field);
        assert!(error.to_string().contains("30"), "{error}");
    }
    ClientBuilder::with_base_url(server.uri())
        .system_headers(SystemHeaders::new(at_limit.clone(), at_limit))
        .build()
        .expect("30 characters are allowed");
    assert!(received(&server).await.is_empty());
}

#[tokio::test]
async fn rejects_client_secret_with_line_break() {
    let server = MockServer::start().await;
    mount_nothing_expected(&server).await;
    let client = full_client(&server);
    let bad_secret = "Y8Kteew6GE2Z\r\nmeycEt6egg==";

    let standard = StandardCredentials::new(CLIENT_ID, bad_secret, SUBSCRIPTION_KEY);
    let error = client
        .standard_token(&standard)
        .await
        .expect_err("a secret with a line break");
    assert_eq!(invalid_input_field(&error), "client_secret");
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains("Y8Kteew6GE2Z"), "{text}");
        assert!(!text.contains("meycEt6egg"), "{text}");
    }

    let partner = PartnerCredentials::new(CLIENT_ID, bad_secret);
    let error = client
        .partner_token(&partner, None)
        .await
        .expect_err("a secret with a line break");
    assert_eq!(invalid_input_field(&error), "client_secret");
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains("Y8Kteew6GE2Z"), "{text}");
        assert!(!text.contains("meycEt6egg"), "{text}");
    }
    assert!(received(&server).await.is_empty());
}

#[tokio::test]
async fn rejects_subscription_key_with_trailing_space() {
    let server = MockServer::start().await;
    mount_nothing_expected(&server).await;
    let credentials =
        StandardCredentials::new(CLIENT_ID, CLIENT_SECRET, format!("{SUBSCRIPTION_KEY} "));
    let error = full_client(&server)
        .standard_token(&credentials)
        .await
        .expect_err("a key with a trailing space");
    assert_eq!(invalid_input_field(&error), "Ocp-Apim-Subscription-Key");
    assert_error_secret_free(&error);
    assert!(received(&server).await.is_empty());
}

#[tokio::test]
#[allow(deprecated)]
async fn rejects_empty_client_id() {
    let server = MockServer::start().await;
    mount_nothing_expected(&server).await;
    let client = full_client(&server);
    let standard = StandardCredentials::new("", CLIENT_SECRET, SUBSCRIPTION_KEY);
    let partner = PartnerCredentials::new("", CLIENT_SECRET);

    let errors = [
        client.standard_token(&standard).await.expect_err("empty"),
        client
            .partner_token(&partner, None)
            .await
            .expect_err("empty"),
        client
            .legacy_token(&standard, &LegacyResource::Recurring)
            .await
            .expect_err("empty"),
    ];
    for error in &errors {
        assert_eq!(invalid_input_field(error), "client_id");
        assert!(error.to_string().contains("empty"), "{error}");
        assert_error_secret_free(error);
    }
    assert!(received(&server).await.is_empty());
}

#[tokio::test]
async fn rejects_partner_client_id_with_colon() {
    let server = MockServer::start().await;
    mount_nothing_expected(&server).await;
    let error = full_client(&server)
        .partner_token(
            &PartnerCredentials::new("fb492b5e:7907", CLIENT_SECRET),
            None,
        )
        .await
        .expect_err("a colon cannot go in the Basic user part");
    assert_eq!(invalid_input_field(&error), "client_id");
    assert_error_secret_free(&error);
    assert!(received(&server).await.is_empty());
}

#[tokio::test]
#[allow(deprecated)]
async fn rejects_legacy_resource_that_is_not_a_url() {
    let server = MockServer::start().await;
    mount_nothing_expected(&server).await;
    let error = full_client(&server)
        .legacy_token(
            &standard_credentials(),
            &LegacyResource::Other("recurring".to_owned()),
        )
        .await
        .expect_err("not a URL");
    assert_eq!(invalid_input_field(&error), "resource");
    assert!(received(&server).await.is_empty());
}

#[tokio::test]
async fn rejects_base_url_that_is_not_http() {
    let server = MockServer::start().await;
    mount_nothing_expected(&server).await;
    for bad in [
        "ftp://x",
        "not a url",
        "http://user:pw@127.0.0.1/",
        "https://x/?q=1",
    ] {
        let error = ClientBuilder::with_base_url(bad)
            .build()
            .expect_err("an invalid base URL");
        assert_eq!(invalid_input_field(&error), "base_url", "{bad}");
        assert!(!error.to_string().contains("pw@"), "{error}");
    }
    assert!(received(&server).await.is_empty());
}

#[tokio::test]
async fn rejects_partner_token_path_without_leading_slash() {
    let server = MockServer::start().await;
    mount_nothing_expected(&server).await;
    for bad in ["authentication/v1/token", "/miami/v1/token?x=1"] {
        let error = full_builder(&server)
            .partner_token_path(bad)
            .build()
            .expect_err("an invalid path");
        assert_eq!(invalid_input_field(&error), "partner_token_path");
    }
    assert!(received(&server).await.is_empty());
}

#[tokio::test]
async fn base_url_trailing_slash_is_dropped() {
    let server = MockServer::start().await;
    mount_once(
        &server,
        Flow::Standard,
        json(200, fixtures::standard_docs_example()),
    )
    .await;
    let client = ClientBuilder::with_base_url(format!("{}/", server.uri()))
        .build()
        .expect("a valid client");
    assert_eq!(client.base_url(), server.uri());
    client
        .standard_token(&standard_credentials())
        .await
        .expect("a token");
    assert_eq!(only_request(&server).await.url.path(), "/accesstoken/get");
}

// ---------------------------------------------------------------------------------------
// 7. Secrets
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn debug_of_tokens_and_credentials_hides_secrets() {
    let standard = standard_credentials();
    let partner = partner_credentials();
    for text in [
        format!("{standard:?}"),
        format!("{partner:?}"),
        format!("{:?}", standard.client_secret),
        format!("{:?}", standard.subscription_key),
    ] {
        assert_secret_free("Debug of the credentials", &text);
        assert!(
            text.contains("[redacted]") || text.contains("redacted"),
            "{text}"
        );
    }
    assert!(
        format!("{standard:?}").contains(CLIENT_ID),
        "client_id is not a secret"
    );

    for flow in [Flow::Standard, Flow::Partner, Flow::Legacy] {
        let body = match flow {
            Flow::Partner => fixtures::partner_ok(json!(900)),
            _ => fixtures::standard_docs_example(),
        };
        let token = exchange(flow, json(200, body)).await.expect("a token");
        assert_secret_free("Debug of the token", &format!("{token:?}"));
        assert_secret_free(
            "Debug of the token secret",
            &format!("{:?}", token.secret()),
        );
        assert_secret_free(
            "Debug of the call headers",
            &format!("{:?}", token.headers()),
        );
    }
}

#[tokio::test]
async fn debug_of_client_hides_nothing_secret() {
    let server = MockServer::start().await;
    let client = full_client(&server);
    let text = format!("{client:?}");
    assert_secret_free("Debug of the client", &text);
    assert!(text.contains(&server.uri()), "{text}");
}
