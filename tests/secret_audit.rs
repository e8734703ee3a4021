//! Secret audit: every public type and every `Error` variant reachable from outside the
//! crate is built with known secret values, then its `Debug` (`{:?}` and `{:#?}`),
//! `Display`, error source chain and `tracing` output are searched for those secrets.
//!
//! The secrets: the client secret, the subscription key, access tokens, and the partner
//! flow's Basic credentials `base64(client_id:client_secret)`. Each is searched for raw,
//! without base64 padding, and base64-encoded in the standard and URL-safe alphabets.
//!
//! All `tracing` checks are in one test (`tracing_output_holds_no_secret`): `tracing`
//! caches each callsite's interest process-wide.

#[path = "support/token_body.rs"]
mod token_body;

#[path = "support/captured_logs.rs"]
mod captured_logs;

use captured_logs::CapturedLogs;
use std::{
    fmt::{Debug, Display},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};
use token_body::standard_token_body;

use base64::Engine as _;
use serde_json::{Value, json};
use vipps_access_token::{
    AccessToken, Client, ClientBuilder, ClientSecret, Error, ErrorBody, Flow, LEGACY_TOKEN_PATH,
    LegacyResource, PARTNER_TOKEN_PATH, PartnerCredentials, PartnerTokenResponse, RetryPolicy,
    StandardCredentials, StandardTokenResponse, SubscriptionKey, SystemHeaders, TokenProvider,
    TokenSecret, TokenSource,
};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers};

// The documented example keys: the only keys these tests use.
#[path = "support/example_keys.rs"]
mod example_keys;
use example_keys::{CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY};

/// Fake JWT-looking access tokens, each unique to this file.
const TOKEN: &str =
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzZWNyZXQtYXVkaXQifQ.QXVkaXRTaWduYXR1cmVPbmU";
const SECOND_TOKEN: &str =
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzZWNvbmQtYXVkaXQifQ.QXVkaXRTaWduYXR1cmVUd28";
const THIRD_TOKEN: &str =
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0aGlyZC1hdWRpdCJ9.QXVkaXRTaWduYXR1cmVUaHJlZQ";
const TOKENS: [&str; 3] = [TOKEN, SECOND_TOKEN, THIRD_TOKEN];

const STANDARD_PATH: &str = "/accesstoken/get";
const API_PATH: &str = "/epayment/v1/payments/order-1";
const FLOWS: [Flow; 3] = [Flow::Standard, Flow::Partner, Flow::Legacy];

// ---------------------------------------------------------------------------------------
// The needles, and the checks
// ---------------------------------------------------------------------------------------

/// `base64(client_id:client_secret)`, as the partner flow's Basic credentials carry it.
fn basic_credentials() -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
}

/// Every secret value, by name.
fn secrets() -> Vec<(&'static str, String)> {
    let mut secrets = vec![
        ("client secret", CLIENT_SECRET.to_owned()),
        ("subscription key", SUBSCRIPTION_KEY.to_owned()),
        ("Basic credentials", basic_credentials()),
    ];
    for token in TOKENS {
        secrets.push(("access token", token.to_owned()));
        // The signature alone identifies the token.
        let signature = token.rsplit('.').next().expect("a JWT has three parts");
        secrets.push(("access token signature", signature.to_owned()));
    }
    secrets
}

/// What must never appear: each secret raw and without its `=` padding (which also
/// catches it JSON-escaped as `\u003d` or percent-encoded as `%3D`), and base64-encoded in
/// the standard and URL-safe alphabets (unpadded, so that padded forms match as well).
fn needles() -> Vec<(String, String)> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let mut needles = Vec::new();
    for (name, secret) in secrets() {
        needles.push((format!("{name} (raw)"), secret.clone()));
        let unpadded = secret.trim_end_matches('=');
        if unpadded != secret {
            needles.push((format!("{name} (unpadded)"), unpadded.to_owned()));
        }
        needles.push((
            format!("{name} (base64)"),
            STANDARD_NO_PAD.encode(secret.as_bytes()),
        ));
        needles.push((
            format!("{name} (base64url)"),
            URL_SAFE_NO_PAD.encode(secret.as_bytes()),
        ));
    }
    needles
}

/// Fails when `text` holds any needle.
fn assert_clean(what: &str, text: &str) {
    for (name, needle) in needles() {
        assert!(
            !text.contains(&needle),
            "{what} leaks the {name} {needle:?}:\n{text}"
        );
    }
}

fn audit_debug(what: &str, value: &impl Debug) {
    assert_clean(&format!("Debug of {what}"), &format!("{value:?}"));
    assert_clean(&format!("pretty Debug of {what}"), &format!("{value:#?}"));
}

fn audit_display(what: &str, value: &impl Display) {
    assert_clean(&format!("Display of {what}"), &value.to_string());
}

/// Debug, Display, the whole source chain, and for an API error its parsed body.
fn audit_error(what: &str, error: &(dyn std::error::Error + 'static)) {
    audit_debug(what, &error);
    audit_display(what, &error);
    let mut depth = 0;
    let mut source = error.source();
    while let Some(inner) = source {
        depth += 1;
        assert!(depth < 32, "{what}: a source chain this deep is a cycle");
        let label = format!("source {depth} of {what}");
        audit_debug(&label, &inner);
        audit_display(&label, &inner);
        source = inner.source();
    }
    if let Some(Error::Api(api)) = error.downcast_ref::<Error>() {
        audit_debug(&format!("ApiError of {what}"), api);
        audit_display(&format!("ApiError of {what}"), api);
        audit_debug(&format!("error body of {what}"), api.body());
        audit_display(&format!("error body of {what}"), api.body());
        assert_clean(what, api.body().description().unwrap_or_default());
        assert_clean(what, api.body().error_code().unwrap_or_default());
        assert_clean(what, api.hint());
    }
    if let Some(Error::InvalidResponse(invalid)) = error.downcast_ref::<Error>() {
        let field = invalid.field.as_deref().unwrap_or("");
        assert_clean(&format!("field of {what}"), field);
        assert_clean(&format!("reason of {what}"), &invalid.reason);
        assert_clean(&format!("excerpt of {what}"), &invalid.excerpt);
    }
}

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

fn standard_credentials() -> StandardCredentials {
    StandardCredentials::new(CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY)
}

fn partner_credentials() -> PartnerCredentials {
    PartnerCredentials::new(CLIENT_ID, CLIENT_SECRET)
}

fn sources() -> Vec<TokenSource> {
    vec![
        TokenSource::Standard(standard_credentials()),
        TokenSource::Partner {
            credentials: partner_credentials(),
            scope: Some("management".to_owned()),
        },
        TokenSource::Legacy {
            credentials: standard_credentials(),
            resource: LegacyResource::Recurring,
        },
    ]
}

fn flow_path(flow: Flow) -> &'static str {
    match flow {
        Flow::Standard => STANDARD_PATH,
        Flow::Partner => PARTNER_TOKEN_PATH,
        Flow::Legacy => LEGACY_TOKEN_PATH,
    }
}

fn standard_body(token: &str) -> Value {
    standard_token_body(token, "3600")
}

fn partner_body(token: &str) -> Value {
    json!({"access_token": token, "token_type": "Bearer", "expires_in": 900})
}

fn token_body(flow: Flow, token: &str) -> Value {
    match flow {
        Flow::Partner => partner_body(token),
        Flow::Standard | Flow::Legacy => standard_body(token),
    }
}

/// A reqwest client with no timer, for paused time, and no redirects.
fn untimed_http() -> reqwest::Client {
    vipps_access_token::http_client_builder()
        .expect("TLS set up")
        .pool_idle_timeout(None)
        .build()
        .expect("a reqwest client")
}

fn builder(base_url: &str) -> ClientBuilder {
    ClientBuilder::with_base_url(base_url)
        .merchant_serial_number("123456")
        .system_headers(SystemHeaders::new("acme", "3.1.2").with_plugin("acme-webshop", "4.5.6"))
}

/// A client without retries, on the library's own reqwest client.
fn client(base_url: &str) -> Client {
    builder(base_url)
        .retry_policy(RetryPolicy::none())
        .build()
        .expect("a valid client")
}

#[allow(deprecated)]
async fn request_token(client: &Client, flow: Flow) -> Result<AccessToken, Error> {
    match flow {
        Flow::Standard => client.standard_token(&standard_credentials()).await,
        Flow::Partner => {
            client
                .partner_token(&partner_credentials(), Some("management"))
                .await
        }
        Flow::Legacy => {
            client
                .legacy_token(&standard_credentials(), &LegacyResource::Recurring)
                .await
        }
    }
}

fn expect_err(what: &str, result: Result<AccessToken, Error>) -> Error {
    match result {
        Ok(token) => panic!("{what}: expected an error, got a token {token:?}"),
        Err(error) => error,
    }
}

/// Everything a request carried that could be echoed: every header value and the body.
fn echo_of(request: &Request) -> String {
    let mut echo = String::new();
    for (name, value) in &request.headers {
        echo.push_str(&format!(
            "{name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    // A server that decodes the Basic credentials may quote them decoded.
    let basic = request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
    if let Some(decoded) = basic {
        echo.push_str(&format!(
            "decoded Basic: {}\n",
            String::from_utf8_lossy(&decoded)
        ));
    }
    echo.push_str(&String::from_utf8_lossy(&request.body));
    echo
}

/// The error body shapes the API is known to send, and plain text, each echoing `echo`
/// in every text field.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    AzureAd,
    Gateway,
    GatewayNotFound,
    OAuth,
    Text,
    Html,
    /// The gateway's shape with every `=` JSON-escaped as `\u003d`.
    GatewayEscaped,
    /// Azure AD's shape with every `=` JSON-escaped as `\u003d`.
    AzureAdEscaped,
    /// OAuth's shape with every `=` JSON-escaped as `\u003d`.
    OAuthEscaped,
}

const SHAPES: [Shape; 9] = [
    Shape::AzureAd,
    Shape::Gateway,
    Shape::GatewayNotFound,
    Shape::OAuth,
    Shape::Text,
    Shape::Html,
    Shape::GatewayEscaped,
    Shape::AzureAdEscaped,
    Shape::OAuthEscaped,
];

/// JSON text of `value` with every `=` written `\u003d`, as some JSON encoders do.
fn escaped(value: &Value) -> String {
    value.to_string().replace('=', "\\u003d")
}

fn azure_ad(echo: &str) -> Value {
    json!({
        "error": format!("invalid_client {echo}"),
        "error_description": format!("AADSTS7000215: Invalid client secret provided: {echo}"),
        "error_codes": [7000215],
        "timestamp": echo,
        "trace_id": echo,
        "correlation_id": echo,
        "error_uri": echo,
    })
}

fn oauth(echo: &str) -> Value {
    json!({"error": echo, "error_description": echo, "error_uri": echo})
}

fn gateway(echo: &str) -> Value {
    json!({"statusCode": 401, "message": format!("Access denied: {echo}")})
}

/// The body `shape` takes with `echo`, and its content type.
fn shaped(shape: Shape, echo: &str) -> (String, &'static str) {
    match shape {
        Shape::AzureAd => (azure_ad(echo).to_string(), "application/json"),
        Shape::Gateway => (gateway(echo).to_string(), "application/json"),
        Shape::GatewayNotFound => (
            json!({
                "responseInfo": {"responseCode": 404, "responseMessage": echo},
                "result": {"message": echo},
            })
            .to_string(),
            "application/json",
        ),
        Shape::OAuth => (oauth(echo).to_string(), "application/json"),
        Shape::Text => (format!("Unauthorized.\n{echo}"), "text/plain"),
        Shape::Html => (
            format!("<html><body><h1>401</h1><pre>{echo}</pre></body></html>"),
            "text/html",
        ),
        Shape::GatewayEscaped => (escaped(&gateway(echo)), "application/json"),
        Shape::AzureAdEscaped => (escaped(&azure_ad(echo)), "application/json"),
        Shape::OAuthEscaped => (escaped(&oauth(echo)), "application/json"),
    }
}

fn body_matches_shape(shape: Shape, body: &ErrorBody) -> bool {
    match shape {
        Shape::AzureAd | Shape::AzureAdEscaped => matches!(body, ErrorBody::AzureAd(_)),
        Shape::Gateway | Shape::GatewayNotFound | Shape::GatewayEscaped => {
            matches!(body, ErrorBody::Gateway(_))
        }
        Shape::OAuth | Shape::OAuthEscaped => matches!(body, ErrorBody::OAuth(_)),
        Shape::Text | Shape::Html => matches!(body, ErrorBody::Text(_)),
    }
}

/// Answers every request with `status` and a body of `shape` echoing the request, and
/// keeps the last body it sent.
struct Echo {
    status: u16,
    shape: Shape,
    sent: Arc<Mutex<String>>,
}

impl Respond for Echo {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let (body, content_type) = shaped(self.shape, &echo_of(request));
        *self.sent.lock().unwrap() = body.clone();
        ResponseTemplate::new(self.status).set_body_raw(body, content_type)
    }
}

// ---------------------------------------------------------------------------------------
// Credentials, secret newtypes, wire types
// ---------------------------------------------------------------------------------------

#[test]
fn credentials_and_secret_newtypes_hide_their_values() {
    let standard = standard_credentials();
    let partner = partner_credentials();
    assert_eq!(standard.client_secret.expose_secret(), CLIENT_SECRET);
    assert_eq!(standard.subscription_key.expose_secret(), SUBSCRIPTION_KEY);
    assert_eq!(partner.client_secret.expose_secret(), CLIENT_SECRET);
    audit_debug("StandardCredentials", &standard);
    audit_debug("PartnerCredentials", &partner);
    // The client_id is not a secret, and shows: proof that Debug prints the fields.
    assert!(format!("{standard:?}").contains(CLIENT_ID));

    audit_debug("ClientSecret", &ClientSecret::new(CLIENT_SECRET));
    audit_debug("SubscriptionKey", &SubscriptionKey::new(SUBSCRIPTION_KEY));
    audit_debug("TokenSecret", &TokenSecret::new(TOKEN));
    // The Basic credentials as a secret of their own, and a secret holding every secret.
    audit_debug(
        "ClientSecret(basic)",
        &ClientSecret::new(basic_credentials()),
    );
    let everything = secrets()
        .into_iter()
        .map(|(_, s)| s)
        .collect::<Vec<_>>()
        .join(" ");
    audit_debug("TokenSecret(everything)", &TokenSecret::new(everything));

    let deserialized: TokenSecret =
        serde_json::from_value(json!(TOKEN)).expect("a token deserialises");
    assert_eq!(deserialized.expose_secret(), TOKEN);
    audit_debug("deserialised TokenSecret", &deserialized);

    for source in sources() {
        audit_debug("TokenSource", &source);
    }
}

#[test]
fn token_responses_hide_the_token() {
    let standard: StandardTokenResponse =
        serde_json::from_value(standard_body(TOKEN)).expect("the standard body");
    assert_eq!(standard.access_token.expose_secret(), TOKEN);
    assert_eq!(standard.expires_in, 3600);
    audit_debug("StandardTokenResponse", &standard);

    let partner: PartnerTokenResponse =
        serde_json::from_value(partner_body(TOKEN)).expect("the partner body");
    assert_eq!(partner.access_token.expose_secret(), TOKEN);
    audit_debug("PartnerTokenResponse", &partner);
}

#[tokio::test]
async fn access_tokens_hide_the_token_and_the_subscription_key() {
    for flow in FLOWS {
        let server = MockServer::start().await;
        Mock::given(matchers::path(flow_path(flow)))
            .respond_with(ResponseTemplate::new(200).set_body_json(token_body(flow, TOKEN)))
            .expect(1)
            .mount(&server)
            .await;
        let token = request_token(&client(&server.uri()), flow)
            .await
            .unwrap_or_else(|e| panic!("{flow:?}: {e}"));

        // The secrets are in there, where they must be.
        assert_eq!(token.secret().expose_secret(), TOKEN);
        let authorization = token.authorization_header();
        assert_eq!(authorization.to_str().unwrap(), format!("Bearer {TOKEN}"));
        assert!(authorization.is_sensitive(), "{flow:?}");
        let key = token.headers().get("ocp-apim-subscription-key");
        if flow == Flow::Partner {
            assert!(key.is_none());
        } else {
            let key = key.expect("the subscription key for later calls");
            assert_eq!(key.to_str().unwrap(), SUBSCRIPTION_KEY);
            assert!(key.is_sensitive(), "{flow:?}");
        }

        audit_debug("AccessToken", &token);
        audit_debug("AccessToken::secret", token.secret());
        audit_debug("AccessToken::headers", token.headers());
        audit_debug("AccessToken::authorization_header", authorization);
        audit_debug("Arc<AccessToken>", &Arc::new(token.clone()));
    }
}

#[tokio::test]
async fn clients_builders_providers_and_middleware_hide_secrets() {
    let server = MockServer::start().await;
    let builders = [
        builder(&server.uri()),
        builder(&server.uri()).without_timeouts(),
        builder(&server.uri())
            .http_client_builder(vipps_access_token::http_client_builder().expect("TLS set up")),
        ClientBuilder::with_base_url("https://apitest.vipps.no"),
    ];
    for builder in builders {
        audit_debug("ClientBuilder", &builder);
        let client = builder.build().expect("a valid client");
        audit_debug("Client", &client);
        for source in sources() {
            let provider = TokenProvider::new(client.clone(), source.clone());
            audit_debug("TokenProvider", &provider);
            // The provider's Debug shows its source: proof that the audit sees it.
            assert!(format!("{provider:?}").contains(CLIENT_ID));
            audit_debug(
                "TokenProvider for another merchant",
                &provider.with_merchant_serial_number("654321").unwrap(),
            );
            #[cfg(feature = "middleware")]
            audit_debug(
                "VippsAuthMiddleware",
                &vipps_access_token::VippsAuthMiddleware::new(provider),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Every Error variant
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn invalid_input_never_echoes_the_rejected_secret() {
    let server = MockServer::start().await;
    Mock::given(matchers::any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let client = client(&server.uri());

    let broken_secret = format!("{CLIENT_SECRET}\r\n");
    let broken_key = format!("{SUBSCRIPTION_KEY}\n");
    let padded_secret = format!(" {CLIENT_SECRET}");
    let mut cases: Vec<(&str, Result<AccessToken, Error>, &str)> = vec![
        (
            "standard, line break in the secret",
            client
                .standard_token(&StandardCredentials::new(
                    CLIENT_ID,
                    &broken_secret,
                    SUBSCRIPTION_KEY,
                ))
                .await,
            "client_secret",
        ),
        (
            "standard, line break in the key",
            client
                .standard_token(&StandardCredentials::new(
                    CLIENT_ID,
                    CLIENT_SECRET,
                    &broken_key,
                ))
                .await,
            "Ocp-Apim-Subscription-Key",
        ),
        (
            "standard, space before the secret",
            client
                .standard_token(&StandardCredentials::new(
                    CLIENT_ID,
                    &padded_secret,
                    SUBSCRIPTION_KEY,
                ))
                .await,
            "client_secret",
        ),
        (
            "partner, line break in the secret",
            client
                .partner_token(&PartnerCredentials::new(CLIENT_ID, &broken_secret), None)
                .await,
            "client_secret",
        ),
    ];
    #[allow(deprecated)]
    cases.push((
        "legacy, line break in the key",
        client
            .legacy_token(
                &StandardCredentials::new(CLIENT_ID, CLIENT_SECRET, &broken_key),
                &LegacyResource::Recurring,
            )
            .await,
        "Ocp-Apim-Subscription-Key",
    ));
    for (what, result, expected_field) in cases {
        let error = expect_err(what, result);
        match &error {
            Error::InvalidInput(invalid) => assert_eq!(invalid.field, expected_field, "{what}"),
            other => panic!("{what}: expected InvalidInput, got {other:?}"),
        }
        audit_error(what, &error);
    }

    // A base URL carrying a secret is refused without repeating it.
    for url in [
        format!("https://{CLIENT_ID}:{CLIENT_SECRET}@apitest.vipps.no"),
        format!("https://apitest.vipps.no/?client_secret={CLIENT_SECRET}"),
        format!("https://apitest.vipps.no/#{SUBSCRIPTION_KEY}"),
        format!("http://example.invalid/{SUBSCRIPTION_KEY}"),
        format!("{CLIENT_SECRET}://not a url"),
    ] {
        let error = ClientBuilder::with_base_url(&url)
            .build()
            .expect_err("a base URL with a secret in it");
        assert!(
            matches!(&error, Error::InvalidInput(invalid) if invalid.field == "base_url"),
            "{error:?}"
        );
        audit_error("a rejected base URL", &error);
    }
}

#[tokio::test]
async fn api_errors_hide_echoed_secrets_in_every_body_shape() {
    for flow in FLOWS {
        for shape in SHAPES {
            for status in [400, 401, 403, 404, 500] {
                let what = format!("{flow:?} {status} {shape:?}");
                let server = MockServer::start().await;
                let sent = Arc::new(Mutex::new(String::new()));
                Mock::given(matchers::path(flow_path(flow)))
                    .respond_with(Echo {
                        status,
                        shape,
                        sent: sent.clone(),
                    })
                    .expect(1)
                    .mount(&server)
                    .await;

                let error = expect_err(&what, request_token(&client(&server.uri()), flow).await);
                let Error::Api(api) = &error else {
                    panic!("{what}: expected Error::Api, got {error:?}");
                };
                // The server did echo the secrets, in the shape asked for.
                let sent = sent.lock().unwrap().clone();
                let mut echoed = vec![CLIENT_SECRET.trim_end_matches('=').to_owned()];
                echoed.push(match flow {
                    Flow::Partner => basic_credentials().trim_end_matches('=').to_owned(),
                    Flow::Standard | Flow::Legacy => SUBSCRIPTION_KEY.to_owned(),
                });
                for secret in echoed {
                    assert!(
                        sent.contains(&secret),
                        "{what}: no {secret} in the echo: {sent}"
                    );
                }
                assert!(
                    body_matches_shape(shape, api.body()),
                    "{what}: parsed as {:?}",
                    api.body()
                );
                assert_eq!(api.status(), status);
                audit_error(&what, &error);
                // Hidden, not dropped: the redaction marker stands in for the secret.
                assert!(
                    format!("{:?}", api.body()).contains("[redacted]"),
                    "{what}: {:?}",
                    api.body()
                );
            }
        }
    }
}

/// An error body that is JSON but of no known shape is kept as `ErrorBody::Text` with its
/// raw JSON text. Known secrets are replaced in that raw text, but a secret the server
/// JSON-escaped (`=` as `\u003d`) is not found there, and only the known shapes are
/// searched again after parsing. Display shows a redacted excerpt; Debug shows it all.
#[tokio::test]

async fn api_errors_hide_json_escaped_secrets_in_unrecognised_json() {
    for flow in FLOWS {
        let server = MockServer::start().await;
        Mock::given(matchers::path(flow_path(flow)))
            .respond_with(|request: &Request| {
                let body = escaped(&json!({"errors": [{"detail": echo_of(request)}]}));
                ResponseTemplate::new(401).set_body_raw(body, "application/json")
            })
            .expect(1)
            .mount(&server)
            .await;

        let error = expect_err(
            "unknown JSON",
            request_token(&client(&server.uri()), flow).await,
        );
        let Error::Api(api) = &error else {
            panic!("expected Error::Api, got {error:?}");
        };
        assert!(matches!(api.body(), ErrorBody::Text(_)), "{:?}", api.body());
        audit_error(&format!("{flow:?} unrecognised JSON body"), &error);
    }
}

/// Someone else's token and key, as a server may quote them in a message: not the
/// caller's secrets, so only their shape can tell.
const FOREIGN_JWT: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImZvcmVpZ24ifQ.eyJhdWQiOiJzb21lb25lLWVsc2UifQ.Rm9yZWlnblNpZ25hdHVyZVRocmVl";
const FOREIGN_JWT_SIGNATURE: &str = "Rm9yZWlnblNpZ25hdHVyZVRocmVl";
const FOREIGN_KEY: &str = "7c2a9d4e1b8f4063a5e0d9c8b7a6f5e4";
/// Azure AD's trace and correlation ids: not secrets, and needed for a support ticket.
const TRACE_ID: &str = "8d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6";
const CORRELATION_ID: &str = "0c9a8b7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d";

/// A message quoting a foreign JWT and key, the caller's secret percent-encoded and
/// base64-encoded, the client id and a trace id.
fn foreign_message() -> String {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    let percent_encoded = CLIENT_SECRET.replace('=', "%3D");
    let percent_lower = CLIENT_SECRET.replace('=', "%3d");
    format!(
        "AADSTS7000215: Invalid client secret provided for {CLIENT_ID}: \
         {percent_encoded} (or {percent_lower}, {}, {}); the token {FOREIGN_JWT} \
         belongs to key {FOREIGN_KEY}. Trace ID: {TRACE_ID}",
        STANDARD.encode(CLIENT_SECRET),
        URL_SAFE.encode(SUBSCRIPTION_KEY),
    )
}

/// The error bodies that carry [`foreign_message`], in each shape with a message.
fn foreign_bodies() -> Vec<(&'static str, String)> {
    let message = foreign_message();
    vec![
        (
            "Azure AD",
            json!({
                "error": "invalid_client",
                "error_description": message,
                "error_codes": [7000215],
                "timestamp": "2024-05-02 09:14:31Z",
                "trace_id": TRACE_ID,
                "correlation_id": CORRELATION_ID,
            })
            .to_string(),
        ),
        (
            "OAuth",
            json!({"error": "invalid_client", "error_description": message}).to_string(),
        ),
        (
            "gateway",
            json!({"statusCode": 401, "message": message}).to_string(),
        ),
        ("text", message.clone()),
        (
            "unknown JSON",
            json!({"errors": [{"detail": message}]}).to_string(),
        ),
    ]
}

/// Fails when `text` holds a foreign token or key, or any form of the caller's secrets.
fn assert_nothing_foreign(what: &str, text: &str) {
    assert_clean(what, text);
    for (name, needle) in [
        ("foreign JWT", FOREIGN_JWT),
        ("foreign JWT signature", FOREIGN_JWT_SIGNATURE),
        ("foreign key", FOREIGN_KEY),
    ] {
        assert!(!text.contains(needle), "{what} leaks the {name}:\n{text}");
    }
}

/// A parsed error message quoting someone else's JWT or key, or the caller's secret
/// percent-encoded or base64-encoded: hidden in Display and Debug, while the client id
/// and Azure AD's trace and correlation ids stay readable.
#[tokio::test]
async fn api_errors_hide_foreign_tokens_keys_and_encoded_secrets() {
    for flow in FLOWS {
        for (shape, body) in foreign_bodies() {
            let what = format!("{flow:?} {shape}");
            let server = MockServer::start().await;
            Mock::given(matchers::path(flow_path(flow)))
                .respond_with(ResponseTemplate::new(401).set_body_raw(body, "application/json"))
                .expect(1)
                .mount(&server)
                .await;
            let error = expect_err(&what, request_token(&client(&server.uri()), flow).await);
            let Error::Api(api) = &error else {
                panic!("{what}: expected Error::Api, got {error:?}");
            };
            audit_error(&what, &error);
            for (form, text) in [
                ("Display", format!("{error}")),
                ("Debug", format!("{error:?}")),
                ("pretty Debug", format!("{error:#?}")),
                ("body Debug", format!("{:?}", api.body())),
                (
                    "description",
                    api.body().description().unwrap_or_default().to_owned(),
                ),
            ] {
                assert_nothing_foreign(&format!("{form} of {what}"), &text);
            }
            let display = error.to_string();
            assert!(display.contains("[redacted]"), "{what}: {display}");
            if shape != "text" && shape != "unknown JSON" {
                // Parsed: the ids are shown in full.
                assert!(display.contains(CLIENT_ID), "{what}: {display}");
                assert!(display.contains(TRACE_ID), "{what}: {display}");
            }
            if let ErrorBody::AzureAd(azure) = api.body() {
                assert_eq!(azure.trace_id.as_deref(), Some(TRACE_ID));
                assert_eq!(azure.correlation_id.as_deref(), Some(CORRELATION_ID));
            }
        }
    }
}

/// `text` with HTML character references (`&#61;`, `&#x3d;`) and `\uXXXX` escapes (also
/// as `Debug` writes them, `\\uXXXX`) decoded: what a reader of the text can decode.
fn unescaped(text: &str) -> String {
    let text = text.replace("\\\\u", "\\u");
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(c) = rest.chars().next() {
        let reference = rest
            .strip_prefix("&#")
            .and_then(|r| r.split_once(';'))
            .and_then(|(number, after)| {
                let code = match number.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => number.parse().ok(),
                };
                Some((char::from_u32(code?)?, after))
            });
        let escape = rest.strip_prefix("\\u").and_then(|r| {
            let hex = r.get(..4)?;
            let code = u32::from_str_radix(hex, 16).ok()?;
            Some((char::from_u32(code)?, &r[4..]))
        });
        match reference.or(escape) {
            Some((decoded, after)) => {
                out.push(decoded);
                rest = after;
            }
            None => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// Every run of 8 or more characters of `secrets` that `text` shows, as is, once its
/// escapes are decoded, or in another case (a hex key upper-cased).
fn fragments(text: &str, secrets: &[&str]) -> Vec<String> {
    let decoded = unescaped(text);
    let lower = decoded.to_lowercase();
    let mut found: Vec<String> = Vec::new();
    for secret in secrets {
        let chars: Vec<char> = secret.chars().collect();
        for len in (8..=chars.len()).rev() {
            for piece in chars.windows(len) {
                let piece: String = piece.iter().collect();
                let shown = text.contains(&piece)
                    || decoded.contains(&piece)
                    || lower.contains(&piece.to_lowercase());
                if shown && !found.iter().any(|f| f.contains(&piece)) {
                    found.push(piece);
                }
            }
        }
    }
    found
}

/// A server's page or message with the caller's secrets cut in pieces (a line wrap, a
/// `<wbr>`), the subscription key written as a UUID, or every character escaped. The key
/// bodies are for the flows that send it (standard, legacy). Each keeps the client id and
/// a trace id readable.
fn cut_and_dressed_bodies() -> Vec<(&'static str, bool, u16, String)> {
    let k = SUBSCRIPTION_KEY;
    let dashed_key = format!(
        "{}-{}-{}-{}-{}",
        &k[..8],
        &k[8..12],
        &k[12..16],
        &k[16..20],
        &k[20..]
    );
    let (a, b) = CLIENT_SECRET.split_at(12);
    let (k1, k2) = k.split_at(16);
    let entities: String = CLIENT_SECRET
        .chars()
        .map(|c| format!("&#{};", c as u32))
        .collect();
    let hex_entities: String = CLIENT_SECRET
        .chars()
        .map(|c| format!("&#x{:x};", c as u32))
        .collect();
    let unicode_escapes: String = CLIENT_SECRET
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let ids = format!("client {CLIENT_ID}, Trace ID: {TRACE_ID}");
    vec![
        (
            "secret wrapped over two lines",
            false,
            502,
            format!("<html><body><pre>{ids}\nclient_secret={a}\n{b}\n</pre></body></html>"),
        ),
        (
            "secret split by <wbr>",
            false,
            502,
            format!("<html><body>{ids} client_secret: {a}<wbr>{b}</body></html>"),
        ),
        (
            "secret as decimal HTML references",
            false,
            502,
            format!("<html><body>{ids} {entities}</body></html>"),
        ),
        (
            "secret as hex HTML references",
            false,
            502,
            format!("<html><body>{ids} {hex_entities}</body></html>"),
        ),
        (
            "secret as \\u escapes in text",
            false,
            502,
            format!("{ids} echo: {unicode_escapes}"),
        ),
        (
            "padding as HTML references",
            false,
            502,
            format!(
                "<p>{ids} POST body: client_secret={}&#61;&#61;</p>",
                CLIENT_SECRET.trim_end_matches('=')
            ),
        ),
        (
            "key split by <wbr>",
            true,
            502,
            format!("<html><body>{ids} Ocp-Apim-Subscription-Key: {k1}<wbr>{k2}</body></html>"),
        ),
        (
            "key dashed like a UUID, gateway JSON",
            true,
            401,
            json!({
                "statusCode": 401,
                "message": format!("Access denied: subscription {dashed_key} is not active ({ids})."),
            })
            .to_string(),
        ),
        (
            "key dashed like a UUID, upper case, in text",
            true,
            401,
            format!(
                "Access denied: subscription {} is not active ({ids}).",
                dashed_key.to_uppercase()
            ),
        ),
        (
            "key dashed like a UUID in Azure AD's trace id",
            true,
            400,
            json!({
                "error": "invalid_client",
                "error_description": format!("AADSTS7000215: Invalid client secret ({ids})."),
                "trace_id": dashed_key,
                "correlation_id": CORRELATION_ID,
            })
            .to_string(),
        ),
    ]
}

/// No 8-character piece of a secret, however the server cut, dashed or escaped it, in
/// `Display`, `Debug` or the parsed body; the client id and the ids that are not secrets
/// stay readable.
#[tokio::test]
async fn api_errors_hide_secrets_cut_dashed_or_escaped() {
    for flow in FLOWS {
        for (what, has_key, status, body) in cut_and_dressed_bodies() {
            if has_key && flow == Flow::Partner {
                continue; // the partner flow sends no subscription key
            }
            let what = format!("{flow:?} {what}");
            let server = MockServer::start().await;
            Mock::given(matchers::path(flow_path(flow)))
                .respond_with(ResponseTemplate::new(status).set_body_raw(body, "text/html"))
                .expect(1)
                .mount(&server)
                .await;
            let error = expect_err(&what, request_token(&client(&server.uri()), flow).await);
            let Error::Api(api) = &error else {
                panic!("{what}: expected Error::Api, got {error:?}");
            };
            audit_error(&what, &error);
            let display = error.to_string();
            for (form, text) in [
                ("Display", display.clone()),
                ("Debug", format!("{error:?}")),
                ("pretty Debug", format!("{error:#?}")),
                ("body Debug", format!("{:?}", api.body())),
            ] {
                let found = fragments(&text, &[CLIENT_SECRET, SUBSCRIPTION_KEY]);
                assert!(
                    found.is_empty(),
                    "{form} of {what} shows {found:?}:\n{text}"
                );
            }
            let debug = format!("{error:?}");
            assert!(debug.contains("[redacted]"), "{what}: {debug}");
            for id in [CLIENT_ID, TRACE_ID] {
                // The text excerpt in Display is cut at 120 characters; Debug has it all.
                assert!(debug.contains(id), "{what}: {id} hidden: {debug}");
            }
            if let ErrorBody::AzureAd(azure) = api.body() {
                assert_eq!(azure.trace_id.as_deref(), Some("[redacted]"), "{what}");
                assert_eq!(azure.correlation_id.as_deref(), Some(CORRELATION_ID));
            }
        }
    }
}

#[tokio::test]
async fn transport_errors_hide_secrets() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = client(&format!("http://127.0.0.1:{port}"));
    for flow in FLOWS {
        let error = expect_err("refused", request_token(&client, flow).await);
        assert!(matches!(error, Error::Transport(_)), "{error:?}");
        assert!(error.to_string().contains("could not connect"), "{error}");
        assert!(
            std::error::Error::source(&error).is_some(),
            "the reqwest error is the source"
        );
        audit_error(&format!("{flow:?} refused connection"), &error);
    }
}

#[tokio::test]
async fn invalid_responses_hide_the_token() {
    let bodies = |flow: Flow| -> Vec<(&'static str, String)> {
        let mut broken_number = token_body(flow, TOKEN);
        broken_number["expires_in"] = json!("soon");
        let mut wrong_type = token_body(flow, TOKEN);
        wrong_type["token_type"] = json!("mac");
        let mut missing = token_body(flow, TOKEN);
        missing.as_object_mut().unwrap().remove("token_type");
        let whole = token_body(flow, TOKEN).to_string();
        vec![
            ("a number that is not one", broken_number.to_string()),
            ("token_type not Bearer", wrong_type.to_string()),
            ("a field missing", missing.to_string()),
            ("cut short", whole[..whole.len() - 3].to_owned()),
            (
                "the token first, then garbage",
                format!(r#"{{"access_token":"{TOKEN}", garbage"#),
            ),
            (
                "an HTML page holding the token",
                format!("<html><body>{TOKEN} {SUBSCRIPTION_KEY} {CLIENT_SECRET}</body></html>"),
            ),
            (
                "the token with its = escaped",
                format!(
                    r#"{{"access_token":"{}","expi"#,
                    TOKEN.replace('.', "\\u002e")
                ),
            ),
        ]
    };
    for flow in FLOWS {
        for (what, body) in bodies(flow) {
            let what = format!("{flow:?}: {what}");
            let server = MockServer::start().await;
            Mock::given(matchers::path(flow_path(flow)))
                .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
                .expect(1)
                .mount(&server)
                .await;
            let error = expect_err(&what, request_token(&client(&server.uri()), flow).await);
            assert!(
                matches!(&error, Error::InvalidResponse(invalid) if invalid.status == 200),
                "{what}: {error:?}"
            );
            audit_error(&what, &error);
        }
    }
}

/// `Error::InvalidResponse` hides known secrets from its excerpt, but not from its
/// `reason`, which quotes the offending value: serde's `invalid value: string "..."` and
/// the `token_type` check's `expected Bearer, got "..."`. A server (or a proxy, or a
/// misconfigured mock) that echoes a credential into a typed field puts it in the message.
#[tokio::test]

async fn invalid_responses_hide_secrets_echoed_into_a_field() {
    for flow in FLOWS {
        for (field, secret) in [
            ("expires_in", CLIENT_SECRET),
            ("token_type", CLIENT_SECRET),
            ("expires_in", SUBSCRIPTION_KEY),
        ] {
            if flow == Flow::Partner && secret == SUBSCRIPTION_KEY {
                continue; // the partner flow never sends the key
            }
            let what = format!("{flow:?}: {field} echoing a secret");
            let mut body = token_body(flow, TOKEN);
            body[field] = json!(secret);
            let server = MockServer::start().await;
            Mock::given(matchers::path(flow_path(flow)))
                .respond_with(ResponseTemplate::new(200).set_body_json(body))
                .expect(1)
                .mount(&server)
                .await;
            let error = expect_err(&what, request_token(&client(&server.uri()), flow).await);
            assert!(
                matches!(&error, Error::InvalidResponse(invalid) if invalid.status == 200),
                "{what}: {error:?}"
            );
            audit_error(&what, &error);
        }
    }
}

#[tokio::test]
async fn response_too_large_and_interrupted_hide_secrets() {
    let huge = format!("{CLIENT_SECRET} {SUBSCRIPTION_KEY} {TOKEN} ").repeat(20_000);
    assert!(huge.len() > 1024 * 1024);
    for flow in [Flow::Partner, Flow::Legacy] {
        let server = MockServer::start().await;
        Mock::given(matchers::path(flow_path(flow)))
            .respond_with(ResponseTemplate::new(200).set_body_raw(huge.clone(), "text/plain"))
            .expect(1)
            .mount(&server)
            .await;
        let error = expect_err("huge", request_token(&client(&server.uri()), flow).await);
        assert!(
            matches!(error, Error::ResponseTooLarge { status: 200, .. }),
            "{flow:?}: {error:?}"
        );
        audit_error(&format!("{flow:?} ResponseTooLarge"), &error);
    }
    // The standard flow reports the same cut-off differently (see tests/faults.rs); its
    // error is audited all the same.
    let server = MockServer::start().await;
    Mock::given(matchers::path(STANDARD_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_raw(huge, "text/plain"))
        .expect(1)
        .mount(&server)
        .await;
    let error = expect_err(
        "huge",
        request_token(&client(&server.uri()), Flow::Standard).await,
    );
    assert!(
        matches!(error, Error::ResponseTooLarge { .. } | Error::Transport(_)),
        "{error:?}"
    );
    audit_error("Standard huge body", &error);

    audit_error("Interrupted", &Error::Interrupted);
}

// ---------------------------------------------------------------------------------------
// tracing: one test for every check, since interest is cached process-wide
// ---------------------------------------------------------------------------------------

/// The token endpoint of the tracing test, answering by request number: `TOKEN`, then
/// `SECOND_TOKEN` (a refresh ahead), then `THIRD_TOKEN` (after a 401), then a 503 and
/// after it 401s, both echoing every credential in the gateway's shape.
struct Script {
    served: Arc<AtomicUsize>,
}

impl Respond for Script {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let n = self.served.fetch_add(1, Ordering::SeqCst);
        let flow = if request.url.path() == PARTNER_TOKEN_PATH {
            Flow::Partner
        } else {
            Flow::Standard
        };
        let echo = shaped(Shape::Gateway, &echo_of(request)).0;
        match (flow, n) {
            (Flow::Standard, 0..=2) => {
                ResponseTemplate::new(200).set_body_json(token_body(flow, TOKENS[n]))
            }
            (Flow::Standard, 3) => {
                ResponseTemplate::new(503).set_body_raw(echo, "application/json")
            }
            _ => ResponseTemplate::new(401).set_body_raw(echo, "application/json"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn tracing_output_holds_no_secret() {
    let (logs, _guard) = CapturedLogs::start();

    let server = MockServer::start().await;
    Mock::given(matchers::method("POST"))
        .respond_with(Script {
            served: Arc::default(),
        })
        .mount(&server)
        .await;
    // Another Vipps MobilePay API: refuses the second token once, takes any other.
    Mock::given(matchers::path(API_PATH))
        .and(matchers::header(
            "authorization",
            format!("Bearer {SECOND_TOKEN}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    Mock::given(matchers::path(API_PATH))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    // Retries on (a 503 is retried once here, with its error logged), no timers.
    let client = builder(&server.uri())
        .retry_policy(RetryPolicy {
            max_attempts: 2,
            ..RetryPolicy::default()
        })
        .without_timeouts()
        .build()
        .unwrap();
    let provider = TokenProvider::new(client, TokenSource::Standard(standard_credentials()));

    // A fetch (a miss), then a hit.
    let first = provider.token().await.expect("the first token");
    assert_eq!(first.secret().expose_secret(), TOKEN);
    let hit = provider.token().await.unwrap();
    assert!(Arc::ptr_eq(&first, &hit));

    // Into the refresh window: the old token, and a refresh in the background.
    tokio::time::advance(Duration::from_secs(3000)).await;
    let during = provider.token().await.unwrap();
    assert!(Arc::ptr_eq(&first, &during));
    let second = provider.refresh().await.expect("the background refresh");
    assert_eq!(second.secret().expose_secret(), SECOND_TOKEN);

    // Through the middleware: a 401 on the second token, a fresh third token, a 200.
    #[cfg(feature = "middleware")]
    // No timer on the 401's wait for the fresh token either: on this paused clock, with
    // wiremock on another thread, the clock would jump to its end.
    let http = reqwest_middleware::ClientBuilder::new(untimed_http())
        .with(
            vipps_access_token::VippsAuthMiddleware::new(provider.clone())
                .with_refresh_wait(Duration::MAX),
        )
        .build();
    #[cfg(feature = "middleware")]
    {
        let response = http
            .get(format!("{}{API_PATH}", server.uri()))
            .send()
            .await
            .expect("the API call");
        assert_eq!(response.status(), 200);
        let third = provider.token().await.unwrap();
        assert_eq!(third.secret().expose_secret(), THIRD_TOKEN);
    }
    #[cfg(not(feature = "middleware"))]
    {
        provider.invalidate();
        provider.refresh().await.expect("the third token");
    }

    // A failure: a 503 (retried, logged) then a 401, both echoing the credentials.
    provider.invalidate();
    let failure = provider.refresh().await.expect_err("the echoing 401");
    assert_eq!(failure.status(), Some(401));
    audit_error("the provider's failure", &failure);
    let last = provider.last_refresh_error().expect("the failure is kept");
    audit_error("last_refresh_error", &last);
    assert!(
        format!("{last:?}").contains("[redacted]"),
        "the echo reached the error: {last:?}"
    );

    // The middleware, when no token can be had: the refused token, still served while
    // its replacement fails, has expired.
    #[cfg(feature = "middleware")]
    {
        tokio::time::advance(Duration::from_secs(3600)).await;
        let error = http
            .get(format!("{}{API_PATH}", server.uri()))
            .send()
            .await
            .expect_err("no token");
        assert!(matches!(error, reqwest_middleware::Error::Middleware(_)));
        audit_debug("the middleware's error", &error);
        audit_display("the middleware's error", &error);
        audit_error("the middleware's error", &error);
    }

    // The partner flow's failure: the echo holds the Basic credentials.
    let partner = provider.with_source(TokenSource::Partner {
        credentials: partner_credentials(),
        scope: None,
    });
    let failure = partner.token().await.expect_err("the partner 401");
    audit_error("the partner failure", &failure);

    // A message quoting foreign tokens and keys, and the caller's secret encoded.
    let foreign = MockServer::start().await;
    Mock::given(matchers::method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_raw(
            json!({"statusCode": 401, "message": foreign_message()}).to_string(),
            "application/json",
        ))
        .mount(&foreign)
        .await;
    let foreign_client = builder(&foreign.uri())
        .retry_policy(RetryPolicy::none())
        .without_timeouts()
        .build()
        .unwrap();
    let foreign_provider = TokenProvider::new(
        foreign_client,
        TokenSource::Standard(standard_credentials()),
    );
    let failure = foreign_provider
        .token()
        .await
        .expect_err("the foreign message");
    assert_nothing_foreign("the foreign failure", &format!("{failure} {failure:?}"));

    let logs = logs.text();
    let mut expected = vec![
        "vipps access token cache miss",
        "vipps access token cache hit",
        "fetched a vipps access token",
        "refreshing in the background",
        "retrying the token request",
        "fetching a vipps access token failed",
        "vipps_access_token_fetch",
        // The echoed credentials reached the log, hidden.
        "[redacted]",
    ];
    if cfg!(feature = "middleware") {
        expected.push("answered 401: retrying once with a fresh token");
    }
    for expected in expected {
        assert!(logs.contains(expected), "no `{expected}` in:\n{logs}");
    }
    assert_clean("the tracing output", &logs);
    assert_nothing_foreign("the tracing output", &logs);
    assert!(
        logs.contains(TRACE_ID),
        "the foreign failure's log lost its trace id:\n{logs}"
    );
}

/// A 64 KiB HTML error page with the caller's client secret and subscription key written
/// across the 2 KiB cut of the excerpt (one as sent, one escaped `&#NN;` character by
/// character). Expected: the error keeps at most a bounded excerpt (its `Debug` under
/// 4 KiB; on main it held the whole 64 KiB page), says how many bytes it left out, and
/// shows no piece of either secret on either side of the cut.
#[tokio::test]
async fn a_64_kib_page_is_kept_as_a_bounded_excerpt_hiding_secrets_across_its_cut() {
    let escaped_key: String = SUBSCRIPTION_KEY
        .chars()
        .map(|c| format!("&#{};", c as u32))
        .collect();
    for (what, secret) in [
        ("the client secret", CLIENT_SECRET.to_owned()),
        ("the escaped subscription key", escaped_key),
    ] {
        let mut page = String::from("<!DOCTYPE html><html><body><p>");
        while page.len() < 2048 - secret.len() / 2 {
            page.push_str("Bad gateway. ");
        }
        page.truncate(2048 - secret.len() / 2);
        page.push_str(&secret);
        while page.len() < 64 * 1024 {
            page.push_str("<tr><td>Lorem ipsum dolor sit amet</td></tr>\n");
        }
        page.truncate(64 * 1024 - 1);
        let server = MockServer::start().await;
        Mock::given(matchers::path(STANDARD_PATH))
            .respond_with(ResponseTemplate::new(502).set_body_raw(page.clone(), "text/html"))
            .mount(&server)
            .await;
        let error = expect_err(
            what,
            request_token(&client(&server.uri()), Flow::Standard).await,
        );
        let Error::Api(api) = &error else {
            panic!("expected Error::Api, got {error:?}");
        };
        let ErrorBody::Text(text) = api.body() else {
            panic!("expected ErrorBody::Text, got {:?}", api.body());
        };
        let debug = format!("{error:?}");
        assert!(debug.len() < 4096, "{what}: Debug is {} bytes", debug.len());
        assert!(
            text.starts_with("<!DOCTYPE html><html><body><p>Bad gateway."),
            "{text}"
        );
        assert!(
            text.ends_with(&format!("…[{} more bytes]", page.len() - 2048)),
            "{what}: {}",
            &text[text.len().saturating_sub(80)..]
        );
        assert!(text.contains("[redacted]"), "{what}: {text}");
        audit_error(&format!("a 64 KiB page with {what} across the cut"), &error);
    }
}
