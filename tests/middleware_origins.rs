//! VippsAuthMiddleware in a client shared with other hosts: credentials go only to the
//! Vipps MobilePay origin, never to a foreign one, not even through a redirect.
#![cfg(feature = "middleware")]

#[path = "support/token_body.rs"]
mod token_body;

use token_body::standard_token_body;
use vipps_access_token::{
    ClientBuilder, StandardCredentials, SystemHeaders, TokenProvider, TokenSource,
    VippsAuthMiddleware,
};
use wiremock::{Mock, MockServer, Request, ResponseTemplate, matchers};

#[path = "support/example_keys.rs"]
mod example_keys;
use example_keys::{CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY};
const API_PATH: &str = "/epayment/v1/payments/order-1";

/// The five kinds of header the middleware adds; none may reach a foreign host.
const CREDENTIAL_HEADERS: [&str; 5] = [
    "authorization",
    "ocp-apim-subscription-key",
    "merchant-serial-number",
    "vipps-system-name",
    "vipps-system-version",
];

/// A "Vipps" server with a token endpoint and an API path answering 200.
async fn vipps_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(matchers::method("POST"))
        .and(matchers::path("/accesstoken/get"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(standard_token_body("token-1", "3600")),
        )
        .mount(&server)
        .await;
    Mock::given(matchers::path(API_PATH))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

/// A foreign server that answers everything with 200 and records what it saw.
async fn foreign_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(matchers::any())
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

fn middleware(vipps: &MockServer) -> VippsAuthMiddleware {
    let client = ClientBuilder::with_base_url(vipps.uri())
        .merchant_serial_number("123456")
        .system_headers(SystemHeaders::new("acme", "3.1.2"))
        .build()
        .unwrap();
    let credentials = StandardCredentials::new(CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY);
    VippsAuthMiddleware::new(TokenProvider::new(
        client,
        TokenSource::Standard(credentials),
    ))
}

fn shared_client(
    auth: VippsAuthMiddleware,
    http: reqwest::Client,
) -> reqwest_middleware::ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(http)
        .with(auth)
        .build()
}

async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

async fn token_requests(server: &MockServer) -> usize {
    received(server)
        .await
        .iter()
        .filter(|r| r.url.path() == "/accesstoken/get")
        .count()
}

fn credential_headers_on(request: &Request) -> Vec<&'static str> {
    CREDENTIAL_HEADERS
        .into_iter()
        .filter(|name| request.headers.contains_key(*name))
        .collect()
}

#[tokio::test]
async fn a_foreign_host_sees_no_credential_and_costs_no_token() {
    let vipps = vipps_server().await;
    let foreign = foreign_server().await;
    let http = shared_client(middleware(&vipps), default_redirects_http());

    let response = http
        .post(format!("{}/callbacks/payment", foreign.uri()))
        .header("x-own-header", "kept")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(token_requests(&vipps).await, 0, "no token fetched for it");
    let seen = received(&foreign).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(credential_headers_on(&seen[0]), Vec::<&str>::new());
    assert_eq!(
        seen[0].headers["x-own-header"], "kept",
        "untouched otherwise"
    );

    // The same client still authenticates calls to Vipps.
    http.get(format!("{}{API_PATH}", vipps.uri()))
        .send()
        .await
        .unwrap();
    let api_call = received(&vipps)
        .await
        .into_iter()
        .find(|r| r.url.path() == API_PATH)
        .unwrap();
    assert_eq!(
        credential_headers_on(&api_call),
        CREDENTIAL_HEADERS.to_vec()
    );
    assert_eq!(api_call.headers["authorization"], "Bearer token-1");
}

#[tokio::test]
async fn another_host_name_for_the_same_socket_is_another_origin() {
    let vipps = vipps_server().await;
    let http = shared_client(middleware(&vipps), default_redirects_http());
    // wiremock's URI names 127.0.0.1; `localhost` is the same socket but not the origin.
    let other_name = vipps.uri().replace("127.0.0.1", "localhost");

    http.get(format!("{other_name}{API_PATH}"))
        .send()
        .await
        .unwrap();
    let seen = received(&vipps).await;
    assert_eq!(seen.len(), 1, "only the API call: no token was fetched");
    assert_eq!(credential_headers_on(&seen[0]), Vec::<&str>::new());
}

#[tokio::test]
async fn a_named_extra_origin_is_authenticated() {
    let vipps = vipps_server().await;
    let other = vipps_server().await;
    let auth = middleware(&vipps).with_origin(&other.uri()).unwrap();
    let http = shared_client(auth, default_redirects_http());

    http.get(format!("{}{API_PATH}", other.uri()))
        .send()
        .await
        .unwrap();
    let seen = received(&other).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].headers["authorization"], "Bearer token-1");
    assert_eq!(token_requests(&vipps).await, 1);
}

#[test]
fn an_extra_origin_must_be_https_off_loopback() {
    let credentials = StandardCredentials::new(CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY);
    let client = ClientBuilder::with_base_url("https://apitest.vipps.no")
        .build()
        .unwrap();
    let auth = VippsAuthMiddleware::new(TokenProvider::new(
        client,
        TokenSource::Standard(credentials),
    ));
    let error = auth.clone().with_origin("http://api.vipps.no").unwrap_err();
    assert!(error.to_string().contains("must be https"), "{error}");
    assert!(auth.clone().with_origin("http://127.0.0.1:8080").is_ok());
    assert!(auth.with_origin("not a url").is_err());
}

/// Mounts, on `vipps`, an API path that redirects to `target`.
async fn redirect_to(vipps: &MockServer, target: &str) {
    Mock::given(matchers::path("/redirecting"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", target))
        .mount(vipps)
        .await;
}

/// What this test found out about reqwest: its default redirect policy drops
/// `Authorization` on a cross-origin redirect but forwards every other header, the
/// subscription key among them. That is why the crate ships a redirect policy.
#[tokio::test]
async fn reqwest_default_redirects_carry_the_subscription_key_to_another_origin() {
    let vipps = vipps_server().await;
    let foreign = foreign_server().await;
    redirect_to(&vipps, &format!("{}/landing", foreign.uri())).await;
    let http = shared_client(middleware(&vipps), default_redirects_http());

    let response = http
        .get(format!("{}/redirecting", vipps.uri()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the default policy followed it");
    let seen = received(&foreign).await;
    assert_eq!(seen.len(), 1);
    assert!(!seen[0].headers.contains_key("authorization"));
    assert_eq!(
        seen[0].headers["ocp-apim-subscription-key"], SUBSCRIPTION_KEY,
        "reqwest forwards custom headers: the leak the crate's policy prevents"
    );
}

#[tokio::test]
async fn the_crates_redirect_policy_keeps_the_key_home() {
    let vipps = vipps_server().await;
    let foreign = foreign_server().await;
    redirect_to(&vipps, &format!("{}/landing", foreign.uri())).await;
    Mock::given(matchers::path("/moved"))
        .respond_with(ResponseTemplate::new(301).insert_header("location", API_PATH))
        .mount(&vipps)
        .await;
    let auth = middleware(&vipps);
    let http = vipps_access_token::http_client_builder()
        .expect("TLS set up")
        .redirect(auth.redirect_policy())
        .build()
        .unwrap();
    let http = shared_client(auth, http);

    let response = http
        .get(format!("{}/redirecting", vipps.uri()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302, "handed back, not followed");
    assert!(
        received(&foreign).await.is_empty(),
        "the foreign host saw nothing"
    );

    // Within the origin, redirects are still followed.
    let response = http
        .get(format!("{}/moved", vipps.uri()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // And redirects between foreign origins are none of its business.
    let other_foreign = MockServer::start().await;
    redirect_to(&other_foreign, &format!("{}/landing", foreign.uri())).await;
    let response = http
        .get(format!("{}/redirecting", other_foreign.uri()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(received(&foreign).await.len(), 1);
}

/// Built the way docs/service.md tells a service to, with `client()` or with `client_from` on
/// a builder that asked for reqwest's default redirects: a 307 from the Vipps origin to a
/// foreign one delivers no credential and no identifying header there.
#[tokio::test]
async fn the_documented_client_keeps_every_credential_home_on_a_307() {
    let vipps = vipps_server().await;
    let foreign = foreign_server().await;
    Mock::given(matchers::path("/temporary"))
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("location", format!("{}/landing", foreign.uri()).as_str()),
        )
        .mount(&vipps)
        .await;
    let documented = middleware(&vipps).client().expect("a client");
    let own_builder = middleware(&vipps)
        .client_from(
            vipps_access_token::http_client_builder()
                .expect("TLS set up")
                .redirect(reqwest::redirect::Policy::default()),
        )
        .expect("a client");

    for http in [documented, own_builder] {
        let response = http
            .post(format!("{}/temporary", vipps.uri()))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 307, "handed back, not followed");
    }
    for request in received(&foreign).await {
        for name in [
            "authorization",
            "ocp-apim-subscription-key",
            "merchant-serial-number",
        ] {
            assert!(
                !request.headers.contains_key(name),
                "{name} reached a foreign origin"
            );
        }
    }
    assert!(
        received(&foreign).await.is_empty(),
        "the foreign host saw nothing"
    );
}

/// A client with reqwest's default redirect policy (follow up to 10), as a user who does
/// not set one gets; TLS from the crate, as every client in the suite.
fn default_redirects_http() -> reqwest::Client {
    vipps_access_token::http_client_builder()
        .expect("TLS set up")
        .redirect(reqwest::redirect::Policy::default())
        .build()
        .expect("a reqwest client")
}
