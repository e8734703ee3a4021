//! The embedded mock (`vipps_access_token::mock`): one test per documented rule, raw HTTP
//! against it, the client's own flows against it, and its answers against the bundled spec.
#![cfg(feature = "mock")]

use std::time::Duration;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use openapiv3::{OpenAPI, ReferenceOr, SchemaKind, Type};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{Map, Value, json};
use vipps_access_token::{
    Environment, Error, ErrorBody, LEGACY_TOKEN_PATH, LegacyResource, PARTNER_TOKEN_PATH,
    RENAMED_PARTNER_TOKEN_PATH,
    mock::{
        DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_SUBSCRIPTION_KEY, MockServer,
        STANDARD_TOKEN_PATH,
    },
};

const SPEC: &str = include_str!("../openapi/access-token.yaml");
const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";
const MISSING_KEY: &str = "Access denied due to missing subscription key. Make sure to include \
                           subscription key when making requests to an API.";

fn http() -> reqwest::Client {
    vipps_access_token::http_client_builder()
        .expect("TLS set up")
        .build()
        .expect("a reqwest client")
}

fn post(mock: &MockServer, path: &str) -> RequestBuilder {
    http().post(format!("{}{path}", mock.base_url()))
}

/// `POST /accesstoken/get` with the three documented headers.
fn standard(mock: &MockServer) -> RequestBuilder {
    standard_with(
        mock,
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
        DEFAULT_SUBSCRIPTION_KEY,
    )
}

/// `POST /accesstoken/get` with the given keys.
fn standard_with(mock: &MockServer, id: &str, secret: &str, key: &str) -> RequestBuilder {
    post(mock, STANDARD_TOKEN_PATH)
        .header("client_id", id)
        .header("client_secret", secret)
        .header("Ocp-Apim-Subscription-Key", key)
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// A partner request to `path` as the docs' curl sends it.
fn partner(mock: &MockServer, path: &str) -> RequestBuilder {
    partner_with(mock, path, FORM)
}

/// A partner request to `path` with the given content type.
fn partner_with(mock: &MockServer, path: &str, content_type: &str) -> RequestBuilder {
    post(mock, path)
        .header(
            "Authorization",
            basic(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
        )
        .header("Content-Type", content_type)
        .body("grant_type=client_credentials")
}

fn legacy(mock: &MockServer, body: Value) -> RequestBuilder {
    post(mock, LEGACY_TOKEN_PATH)
        .header("Ocp-Apim-Subscription-Key", DEFAULT_SUBSCRIPTION_KEY)
        .json(&body)
}

/// Sends the request and returns the status with the body as a JSON object.
async fn send(request: RequestBuilder) -> (StatusCode, Map<String, Value>) {
    let response: Response = request.send().await.expect("the mock answers");
    let status = response.status();
    let body = response.json().await.expect("a JSON object");
    (status, body)
}

fn text<'a>(body: &'a Map<String, Value>, field: &str) -> &'a str {
    body.get(field)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string `{field}` in {body:?}"))
}

/// A field the real API sends as a string of digits.
fn digits(body: &Map<String, Value>, field: &str) -> u64 {
    let value = text(body, field);
    assert!(
        value.bytes().all(|b| b.is_ascii_digit()),
        "{field}: {value}"
    );
    value.parse().expect("digits")
}

fn number(claims: &Map<String, Value>, claim: &str) -> u64 {
    claims
        .get(claim)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no numeric `{claim}` in {claims:?}"))
}

/// The claims of a token, which must carry this mock's signature.
fn claims(mock: &MockServer, token: &str) -> Map<String, Value> {
    mock.verify_token(token)
        .expect("a token signed by the mock")
}

/// Azure AD's shape, with the given error and AADSTS code; the secret is never echoed.
fn assert_azure_ad(body: &Map<String, Value>, error: &str, code: u64) {
    assert_eq!(text(body, "error"), error, "{body:?}");
    assert!(
        text(body, "error_description").starts_with(&format!("AADSTS{code}: ")),
        "{body:?}"
    );
    assert_eq!(body["error_codes"], json!([code]));
    for field in ["timestamp", "trace_id", "correlation_id"] {
        assert!(!text(body, field).is_empty(), "{field}");
    }
    assert_eq!(
        text(body, "error_uri"),
        format!("https://login.windows.net/error?code={code}")
    );
    assert!(
        !Value::Object(body.clone())
            .to_string()
            .contains(DEFAULT_CLIENT_SECRET)
    );
}

fn assert_gateway_401(status: StatusCode, body: &Map<String, Value>, message: &str) {
    assert_eq!(status, 401);
    assert_eq!(body["statusCode"], json!(401));
    assert_eq!(text(body, "message"), message);
}

fn assert_oauth(status: StatusCode, body: &Map<String, Value>, want: u16, error: &str) {
    assert_eq!(status, want, "{body:?}");
    assert_eq!(text(body, "error"), error, "{body:?}");
    assert!(!text(body, "error_description").is_empty());
}

#[tokio::test]
async fn standard_200_numbers_as_strings() {
    let mock = MockServer::start().await.unwrap();
    let response = standard(&mock).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Map<String, Value> = response.json().await.unwrap();
    assert_eq!(text(&body, "token_type"), "Bearer");
    assert_eq!(digits(&body, "expires_in"), 3600);
    assert_eq!(digits(&body, "ext_expires_in"), 0);
    assert!(digits(&body, "expires_on") > digits(&body, "not_before"));
    assert_eq!(
        text(&body, "resource"),
        "00000002-0000-0000-c000-000000000000"
    );
    assert_eq!(text(&body, "access_token").split('.').count(), 3);
}

#[tokio::test]
async fn standard_401_missing_subscription_key() {
    let mock = MockServer::start().await.unwrap();
    let request = post(&mock, STANDARD_TOKEN_PATH)
        .header("client_id", DEFAULT_CLIENT_ID)
        .header("client_secret", DEFAULT_CLIENT_SECRET);
    let (status, body) = send(request).await;
    assert_gateway_401(status, &body, MISSING_KEY);
}

#[tokio::test]
async fn standard_401_wrong_subscription_key() {
    let mock = MockServer::start().await.unwrap();
    let request = standard_with(
        &mock,
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
        &"0".repeat(32),
    );
    let (status, body) = send(request).await;
    assert_gateway_401(
        status,
        &body,
        "Access denied due to invalid subscription key. Make sure to provide a valid key for \
         an active subscription.",
    );
}

#[tokio::test]
async fn standard_400_unknown_client_id() {
    let mock = MockServer::start().await.unwrap();
    let request = standard_with(
        &mock,
        "4204662b-0000-0000-0000-000000000000",
        DEFAULT_CLIENT_SECRET,
        DEFAULT_SUBSCRIPTION_KEY,
    );
    let (status, body) = send(request).await;
    assert_eq!(status, 400);
    assert_azure_ad(&body, "unauthorized_client", 700_016);
    assert!(text(&body, "error_description").contains("'4204662b-0000-0000-0000-000000000000'"));
}

#[tokio::test]
async fn standard_401_wrong_client_secret() {
    let mock = MockServer::start().await.unwrap();
    let request = standard_with(
        &mock,
        DEFAULT_CLIENT_ID,
        "wrong-secret==",
        DEFAULT_SUBSCRIPTION_KEY,
    );
    let (status, body) = send(request).await;
    assert_eq!(status, 401);
    assert_azure_ad(&body, "invalid_client", 7_000_215);
    assert!(!text(&body, "error_description").contains("wrong-secret"));
}

#[tokio::test]
async fn standard_missing_client_id_or_secret() {
    let mock = MockServer::start().await.unwrap();
    let without = |name: &str| {
        let mut request = post(&mock, STANDARD_TOKEN_PATH)
            .header("Ocp-Apim-Subscription-Key", DEFAULT_SUBSCRIPTION_KEY);
        for (header, value) in [
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
        ] {
            if header != name {
                request = request.header(header, value);
            }
        }
        request
    };
    let (status, body) = send(without("client_id")).await;
    assert_eq!(status, 400);
    assert_azure_ad(&body, "invalid_request", 900_144);
    let (status, body) = send(without("client_secret")).await;
    assert_eq!(status, 401);
    assert_azure_ad(&body, "invalid_client", 7_000_216);
}

#[tokio::test]
async fn standard_tolerates_what_real_clients_send() {
    let mock = MockServer::start().await.unwrap();
    let request = standard(&mock)
        .header("User-Agent", "acme/3.1.2")
        .header("Idempotency-Key", "5b4a7c3e-idem")
        .header("Authorization", "Bearer ")
        .header("Content-Type", "application/json")
        .header("Accept", "application/json;charset=UTF-8")
        .header("Content-Length", "0")
        .header("Merchant-Serial-Number", "123456")
        .header("Vipps-System-Name", "acme")
        .header("Vipps-System-Version", "3.1.2")
        .header("Vipps-System-Plugin-Name", "acme-webshop")
        .header("Vipps-System-Plugin-Version", "4.5.6");
    let (status, body) = send(request).await;
    assert_eq!(status, 200, "{body:?}");
    claims(&mock, text(&body, "access_token"));
}

#[tokio::test]
async fn lifetimes_test_production_partner_and_custom() {
    let test = MockServer::start().await.unwrap();
    let (_, body) = send(standard(&test)).await;
    assert_eq!(digits(&body, "expires_in"), 3600);
    let (_, body) = send(partner(&test, PARTNER_TOKEN_PATH)).await;
    assert_eq!(body["expires_in"], json!(900));

    let production = MockServer::builder()
        .environment(Environment::Production)
        .start()
        .await
        .unwrap();
    let (_, body) = send(standard(&production)).await;
    assert_eq!(digits(&body, "expires_in"), 86_400);

    let custom = MockServer::builder()
        .token_lifetime(Duration::from_secs(120))
        .partner_token_lifetime(Duration::from_secs(60))
        .start()
        .await
        .unwrap();
    let (_, body) = send(legacy(
        &custom,
        json!({"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET,
               "resource": "https://testapivipps.no/vippsas/recurring-payment-service"}),
    ))
    .await;
    assert_eq!(digits(&body, "expires_in"), 120);
    let (_, body) = send(partner(&custom, RENAMED_PARTNER_TOKEN_PATH)).await;
    assert_eq!(body["expires_in"], json!(60));
}

#[tokio::test]
async fn jwt_claims_agree_with_the_fields() {
    let mock = MockServer::start().await.unwrap();
    let (_, body) = send(standard(&mock)).await;
    let claims_of = claims(&mock, text(&body, "access_token"));
    assert_eq!(number(&claims_of, "exp"), digits(&body, "expires_on"));
    assert_eq!(number(&claims_of, "nbf"), digits(&body, "not_before"));
    assert_eq!(
        number(&claims_of, "exp") - number(&claims_of, "iat"),
        digits(&body, "expires_in")
    );
    assert_eq!(claims_of["appid"], json!(DEFAULT_CLIENT_ID));
    assert_eq!(claims_of["aud"], json!(text(&body, "resource")));

    let (_, body) = send(partner(&mock, PARTNER_TOKEN_PATH)).await;
    let claims_of = claims(&mock, text(&body, "access_token"));
    assert_eq!(
        json!(number(&claims_of, "exp") - number(&claims_of, "iat")),
        body["expires_in"]
    );
    assert_eq!(number(&claims_of, "nbf"), number(&claims_of, "iat"));
    assert_eq!(claims_of["client_id"], json!(DEFAULT_CLIENT_ID));
}

#[tokio::test]
async fn jwt_signature_is_checked() {
    let mock = MockServer::builder()
        .signing_key("a-key-shared-with-the-test")
        .start()
        .await
        .unwrap();
    let other = MockServer::start().await.unwrap();
    let (_, body) = send(standard(&mock)).await;
    let token = text(&body, "access_token");
    assert!(mock.verify_token(token).is_some());
    assert!(
        other.verify_token(token).is_none(),
        "another key verified it"
    );
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged = STANDARD.encode(r#"{"exp":99999999999}"#);
    parts[1] = forged.trim_end_matches('=');
    assert!(
        mock.verify_token(&parts.join(".")).is_none(),
        "forged claims"
    );
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["typ"], "JWT");
}

#[tokio::test]
async fn partner_200_on_both_paths_with_and_without_charset() {
    let mock = MockServer::start().await.unwrap();
    for path in [PARTNER_TOKEN_PATH, RENAMED_PARTNER_TOKEN_PATH] {
        for content_type in [
            FORM,
            "application/x-www-form-urlencoded",
            "Application/X-WWW-Form-Urlencoded;charset=UTF-8",
        ] {
            let request = partner_with(&mock, path, content_type);
            let (status, body) = send(request).await;
            assert_eq!(status, 200, "{path} {content_type}: {body:?}");
            assert_eq!(text(&body, "token_type"), "Bearer");
            assert_eq!(body["expires_in"], json!(900));
            assert_eq!(body.len(), 3, "{body:?}");
        }
    }
    assert_eq!(mock.requests_to(PARTNER_TOKEN_PATH), 3);
    assert_eq!(mock.requests_to(RENAMED_PARTNER_TOKEN_PATH), 3);
}

#[tokio::test]
async fn partner_scope_is_optional_and_carried() {
    let mock = MockServer::start().await.unwrap();
    let request = partner(&mock, PARTNER_TOKEN_PATH)
        .body("grant_type=client_credentials&scope=report%3Aread");
    let (status, body) = send(request).await;
    assert_eq!(status, 200);
    assert_eq!(
        claims(&mock, text(&body, "access_token"))["scope"],
        "report:read"
    );
}

#[tokio::test]
async fn partner_400_wrong_content_type() {
    let mock = MockServer::start().await.unwrap();
    for content_type in ["application/json", "text/plain"] {
        let request = partner_with(&mock, PARTNER_TOKEN_PATH, content_type);
        let (status, body) = send(request).await;
        assert_oauth(status, &body, 400, "invalid_request");
    }
    let request = post(&mock, PARTNER_TOKEN_PATH)
        .header(
            "Authorization",
            basic(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
        )
        .body("grant_type=client_credentials");
    let (status, body) = send(request).await;
    assert_oauth(status, &body, 400, "invalid_request");
}

#[tokio::test]
async fn partner_400_grant_type_missing_wrong_or_repeated() {
    let mock = MockServer::start().await.unwrap();
    let with_body = |body: &'static str| partner(&mock, PARTNER_TOKEN_PATH).body(body);
    // The docs: without grant_type "you'll get an invalid_client error".
    let (status, body) = send(with_body("")).await;
    assert_oauth(status, &body, 400, "invalid_client");
    let (status, body) = send(with_body("scope=x")).await;
    assert_oauth(status, &body, 400, "invalid_client");
    let (status, body) = send(with_body("grant_type=password")).await;
    assert_oauth(status, &body, 400, "unsupported_grant_type");
    let (status, body) = send(with_body(
        "grant_type=client_credentials&grant_type=client_credentials",
    ))
    .await;
    assert_oauth(status, &body, 400, "invalid_request");
}

#[tokio::test]
async fn partner_401_bad_basic_credentials() {
    let mock = MockServer::start().await.unwrap();
    for authorization in [
        Some(basic(DEFAULT_CLIENT_ID, "wrong")),
        Some(basic("someone-else", DEFAULT_CLIENT_SECRET)),
        Some(format!("Bearer {DEFAULT_CLIENT_SECRET}")),
        Some("Basic not-base64!".to_owned()),
        Some(format!("Basic {}", STANDARD.encode(DEFAULT_CLIENT_ID))),
        None,
    ] {
        let mut request = post(&mock, PARTNER_TOKEN_PATH)
            .header("Content-Type", FORM)
            .body("grant_type=client_credentials");
        if let Some(value) = &authorization {
            request = request.header("Authorization", value);
        }
        let response = request.send().await.unwrap();
        assert!(response.headers().contains_key("www-authenticate"));
        let status = response.status();
        let body: Map<String, Value> = response.json().await.unwrap();
        assert_oauth(status, &body, 401, "invalid_client");
        assert!(
            !Value::Object(body)
                .to_string()
                .contains(DEFAULT_CLIENT_SECRET)
        );
    }
}

#[tokio::test]
async fn partner_400_when_a_subscription_key_is_sent() {
    let mock = MockServer::start().await.unwrap();
    for path in [PARTNER_TOKEN_PATH, RENAMED_PARTNER_TOKEN_PATH] {
        let request =
            partner(&mock, path).header("Ocp-Apim-Subscription-Key", DEFAULT_SUBSCRIPTION_KEY);
        let (status, body) = send(request).await;
        assert_oauth(status, &body, 400, "invalid_request");
        assert!(text(&body, "error_description").contains("Ocp-Apim-Subscription-Key"));
    }
}

#[tokio::test]
async fn legacy_200_and_its_checks() {
    let mock = MockServer::start().await.unwrap();
    let resource = "https://testapivipps.no/vippsas/invoice-isp-service";
    let keys = json!({"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET,
                      "resource": resource});
    let (status, body) = send(legacy(&mock, keys.clone())).await;
    assert_eq!(status, 200);
    assert_eq!(text(&body, "resource"), resource);
    assert_eq!(digits(&body, "ext_expires_in"), 0);
    assert_eq!(claims(&mock, text(&body, "access_token"))["aud"], resource);

    let no_key = post(&mock, LEGACY_TOKEN_PATH).json(&keys);
    let (status, body) = send(no_key).await;
    assert_gateway_401(status, &body, MISSING_KEY);

    let (status, body) = send(legacy(
        &mock,
        json!({"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET}),
    ))
    .await;
    assert_eq!(status, 400);
    assert_azure_ad(&body, "invalid_request", 900_144);

    let (status, body) = send(legacy(
        &mock,
        json!({"client_id": DEFAULT_CLIENT_ID, "client_secret": "nope", "resource": resource}),
    ))
    .await;
    assert_eq!(status, 401);
    assert_azure_ad(&body, "invalid_client", 7_000_215);

    let not_json = post(&mock, LEGACY_TOKEN_PATH)
        .header("Ocp-Apim-Subscription-Key", DEFAULT_SUBSCRIPTION_KEY)
        .body("client_id=x");
    let (status, body) = send(not_json).await;
    assert_eq!(status, 400);
    assert_azure_ad(&body, "invalid_request", 900_144);
}

#[tokio::test]
async fn unknown_path_is_the_gateway_404_and_counted() {
    let mock = MockServer::start().await.unwrap();
    let (status, body) = send(post(&mock, "/recurring/accessToken/get")).await;
    assert_eq!(status, 404);
    assert_eq!(body["statusCode"], json!(404));
    assert_eq!(mock.request_count(), 1);
    assert_eq!(mock.requests_to("/recurring/accessToken/get"), 0);
}

#[tokio::test]
async fn fault_injection_next_n_then_all_then_clear() {
    let mock = MockServer::start().await.unwrap();
    mock.fail_next(
        2,
        503,
        r#"{"statusCode": 503, "message": "Service Unavailable"}"#,
    );
    for _ in 0..2 {
        let response = standard(&mock).send().await.unwrap();
        assert_eq!(response.status(), 503);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
    }
    assert_eq!(standard(&mock).send().await.unwrap().status(), 200);

    mock.fail_all(502, "<html>Bad gateway</html>");
    for path in [PARTNER_TOKEN_PATH, STANDARD_TOKEN_PATH, LEGACY_TOKEN_PATH] {
        let response = post(&mock, path).send().await.unwrap();
        assert_eq!(response.status(), 502);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        assert_eq!(response.text().await.unwrap(), "<html>Bad gateway</html>");
    }
    mock.clear_faults();
    assert_eq!(standard(&mock).send().await.unwrap().status(), 200);
    mock.fail_next(0, 500, "");
    assert_eq!(standard(&mock).send().await.unwrap().status(), 200);
}

#[tokio::test(start_paused = true)]
async fn delay_holds_answers_on_tokios_clock() {
    let mock = MockServer::start().await.unwrap();
    mock.set_delay(Duration::from_secs(20));
    let started = tokio::time::Instant::now();
    assert_eq!(standard(&mock).send().await.unwrap().status(), 200);
    assert!(
        started.elapsed() >= Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );

    let impatient = mock
        .client_builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let error = impatient
        .standard_token(&mock.standard_credentials())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Transport(_)), "{error:?}");

    mock.clear_faults();
    let started = tokio::time::Instant::now();
    assert_eq!(standard(&mock).send().await.unwrap().status(), 200);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn counts_requests_per_path_and_in_total() {
    let mock = MockServer::start().await.unwrap();
    assert_eq!(mock.request_count(), 0);
    send(standard(&mock)).await;
    send(standard_with(
        &mock,
        DEFAULT_CLIENT_ID,
        "wrong",
        DEFAULT_SUBSCRIPTION_KEY,
    ))
    .await;
    send(partner(&mock, PARTNER_TOKEN_PATH)).await;
    mock.fail_next(1, 500, "{}");
    send(partner(&mock, RENAMED_PARTNER_TOKEN_PATH)).await;
    assert_eq!(mock.requests_to(STANDARD_TOKEN_PATH), 2);
    assert_eq!(mock.requests_to(PARTNER_TOKEN_PATH), 1);
    assert_eq!(mock.requests_to(RENAMED_PARTNER_TOKEN_PATH), 1);
    assert_eq!(mock.requests_to(LEGACY_TOKEN_PATH), 0);
    assert_eq!(mock.request_count(), 4);
}

/// Every field the spec's `AuthorizationTokenResponse` requires is there, each of the
/// spec's type, or for integers a string of digits (the real API's known deviation).
#[tokio::test]
async fn answers_match_the_bundled_spec() {
    let spec: OpenAPI = serde_yaml::from_str(SPEC).unwrap();
    let components = spec.components.expect("components");
    let Some(ReferenceOr::Item(schema)) = components.schemas.get("AuthorizationTokenResponse")
    else {
        panic!("no AuthorizationTokenResponse schema");
    };
    let SchemaKind::Type(Type::Object(object)) = &schema.schema_kind else {
        panic!("AuthorizationTokenResponse is not an object");
    };
    assert_eq!(object.required.len(), 7);

    let mock = MockServer::start().await.unwrap();
    let (_, standard_body) = send(standard(&mock)).await;
    let (_, legacy_body) = send(legacy(
        &mock,
        json!({"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET,
               "resource": "https://testapivipps.no/vippsas/recurring-payment-service"}),
    ))
    .await;
    for body in [standard_body, legacy_body] {
        for field in &object.required {
            let value = body.get(field).unwrap_or_else(|| panic!("missing {field}"));
            let Some(ReferenceOr::Item(property)) = object.properties.get(field) else {
                panic!("no inline property {field}");
            };
            match &property.schema_kind {
                SchemaKind::Type(Type::String(_)) => assert!(value.is_string(), "{field}"),
                SchemaKind::Type(Type::Integer(_)) => {
                    assert!(
                        value.is_u64()
                            || value.as_str().is_some_and(
                                |s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
                            ),
                        "{field}: {value}"
                    )
                }
                other => panic!("{field}: unexpected schema {other:?}"),
            }
        }
    }
}

#[tokio::test]
#[allow(deprecated)]
async fn client_flows_pass_against_the_mock() {
    let mock = MockServer::start().await.unwrap();
    let client = mock
        .client_builder()
        .merchant_serial_number("123456")
        .build()
        .unwrap();
    let token = client
        .standard_token(&mock.standard_credentials())
        .await
        .unwrap();
    assert_eq!(token.expires_in(), Duration::from_secs(3600));
    assert!(token.server_expires_on() > token.server_not_before());
    claims(&mock, token.secret().expose_secret());

    let token = client
        .partner_token(&mock.partner_credentials(), Some("management"))
        .await
        .unwrap();
    assert_eq!(token.expires_in(), Duration::from_secs(900));
    assert_eq!(
        claims(&mock, token.secret().expose_secret())["scope"],
        "management"
    );

    let renamed = mock
        .client_builder()
        .partner_token_path(RENAMED_PARTNER_TOKEN_PATH)
        .build()
        .unwrap();
    renamed
        .partner_token(&mock.partner_credentials(), None)
        .await
        .unwrap();

    let token = client
        .legacy_token(&mock.standard_credentials(), &LegacyResource::InvoiceIpp)
        .await
        .unwrap();
    assert_eq!(token.resource(), Some(LegacyResource::InvoiceIpp.as_str()));
    assert_eq!(mock.requests_to(RENAMED_PARTNER_TOKEN_PATH), 1);
    assert_eq!(mock.request_count(), 4);
}

#[tokio::test]
async fn client_parses_the_mocks_error_shapes() {
    let mock = MockServer::start().await.unwrap();
    let client = mock.client_builder().build().unwrap();
    let api = |error: Error| match error {
        Error::Api(api) => api,
        other => panic!("expected Error::Api, got {other:?}"),
    };
    let mut keys = mock.standard_credentials();
    keys.client_secret = vipps_access_token::ClientSecret::new("wrong");
    let error = api(client.standard_token(&keys).await.unwrap_err());
    assert!(matches!(error.body(), ErrorBody::AzureAd(e) if e.error_codes == [7_000_215]));

    let mut keys = mock.standard_credentials();
    keys.client_id = vipps_access_token::ClientId::new("unknown");
    let error = api(client.standard_token(&keys).await.unwrap_err());
    assert!(matches!(error.body(), ErrorBody::AzureAd(e) if e.error == "unauthorized_client"));
    assert!(
        error.hint().contains("client_id was not found"),
        "{}",
        error.hint()
    );

    let mut keys = mock.standard_credentials();
    keys.subscription_key = vipps_access_token::SubscriptionKey::new("wrong");
    let error = api(client.standard_token(&keys).await.unwrap_err());
    assert!(matches!(error.body(), ErrorBody::Gateway(e) if e.status_code == Some(401)));
    assert!(
        error.hint().contains("subscription key"),
        "{}",
        error.hint()
    );

    let mut keys = mock.partner_credentials();
    keys.client_secret = vipps_access_token::ClientSecret::new("wrong");
    let error = api(client.partner_token(&keys, None).await.unwrap_err());
    assert_eq!(error.status(), 401);
    assert!(matches!(error.body(), ErrorBody::OAuth(e) if e.error == "invalid_client"));
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let mock = MockServer::start().await.unwrap();
    let url = format!("{}{STANDARD_TOKEN_PATH}", mock.base_url());
    assert_eq!(standard(&mock).send().await.unwrap().status(), 200);
    mock.shutdown().await.unwrap();
    let error = http().post(url).send().await.unwrap_err();
    assert!(error.is_connect(), "{error:?}");
}

#[tokio::test]
async fn debug_shows_no_secret() {
    let builder = MockServer::builder()
        .credentials("id-1", "secret-shh", "key-shh")
        .signing_key("signing-shh");
    let mock = builder.clone().start().await.unwrap();
    for debug in [format!("{builder:?}"), format!("{mock:?}")] {
        assert!(debug.contains("id-1"), "{debug}");
        assert!(!debug.contains("shh"), "{debug}");
    }
    let keys = mock.standard_credentials();
    assert_eq!(keys.client_secret.expose_secret(), "secret-shh");
    assert_eq!(keys.subscription_key.expose_secret(), "key-shh");
}
