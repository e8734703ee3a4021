//! Reading a token request as the real API reads it: the same checks in the same order,
//! and for a request that fails one, the answer the real API sends (built by the mock,
//! which models them). Nothing malformed goes upstream.

// A refusal is an answer sent at once, never kept or passed far: boxing it gains nothing.
#![allow(clippy::result_large_err)]

use axum::{http::HeaderMap, response::Response};
use serde::Deserialize;

use crate::{
    client::{legacy::LegacyResource, source::TokenSource},
    credentials::{PartnerCredentials, StandardCredentials},
    mock::answers::{self, Endpoint},
    wire::headers::{MerchantSerialNumber, SystemHeaders},
};

/// A well-formed token request: what to ask upstream for, and for whom.
pub(super) struct TokenRequest {
    pub(super) endpoint: Endpoint,
    pub(super) source: TokenSource,
    pub(super) merchant_serial_number: Option<String>,
    pub(super) system: SystemHeaders,
}

/// The subscription key header.
const SUBSCRIPTION_KEY: &str = "ocp-apim-subscription-key";

/// The request at `endpoint` with `headers` and `body`, or the real API's answer to it.
pub(super) fn read(
    endpoint: Endpoint,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<TokenRequest, Response> {
    let source = match endpoint {
        Endpoint::Standard => standard(headers)?,
        Endpoint::Partner | Endpoint::RenamedPartner => partner(headers, body)?,
        Endpoint::Legacy => legacy(headers, body)?,
    };
    // The token endpoint does not check the MSN, and clients send what they have: the
    // official JS SDK sends `undefined` when none is configured. One the library cannot
    // send (not 4 to 6 digits) is ignored, as the API ignores it.
    let merchant_serial_number = text(headers, "merchant-serial-number")
        .filter(|msn| MerchantSerialNumber::new(msn).is_ok());
    // The same for a system header the library cannot send (over 30 characters): it
    // describes the caller, not the token, and the provider of these keys fetches for
    // every caller with the first caller's.
    let system = SystemHeaders {
        name: system_header(headers, "vipps-system-name", |s, v| s.name = v),
        version: system_header(headers, "vipps-system-version", |s, v| s.version = v),
        plugin_name: system_header(headers, "vipps-system-plugin-name", |s, v| {
            s.plugin_name = v
        }),
        plugin_version: system_header(headers, "vipps-system-plugin-version", |s, v| {
            s.plugin_version = v
        }),
    };
    Ok(TokenRequest {
        endpoint,
        source,
        merchant_serial_number,
        system,
    })
}

/// `POST /accesstoken/get`: the gateway's subscription key check, then Azure AD's.
fn standard(headers: &HeaderMap) -> Result<TokenSource, Response> {
    let subscription_key = subscription_key(headers)?;
    let client_id = text(headers, "client_id").ok_or_else(client_id_missing)?;
    let client_secret = text(headers, "client_secret").ok_or_else(answers::missing_secret)?;
    Ok(TokenSource::Standard(StandardCredentials::new(
        client_id,
        client_secret,
        subscription_key,
    )))
}

/// `POST /miami/v1/token` (and its announced name): OAuth 2.0 client credentials, read
/// with the mock's checks of the headers and the form.
fn partner(headers: &HeaderMap, body: &[u8]) -> Result<TokenSource, Response> {
    if let Some(refused) = answers::partner_header_refusal(headers) {
        return Err(refused);
    }
    let Some((client_id, client_secret)) = basic_credentials(headers) else {
        return Err(answers::partner_unauthenticated());
    };
    let scope = answers::partner_form_scope(body)?;
    Ok(TokenSource::Partner {
        credentials: PartnerCredentials::new(client_id, client_secret),
        scope,
    })
}

/// The legacy body's fields.
#[derive(Deserialize)]
struct LegacyBody {
    client_id: Option<String>,
    client_secret: Option<String>,
    resource: Option<String>,
}

/// `POST /api/v2/accesstoken/jwt`: the subscription key, then a JSON body.
fn legacy(headers: &HeaderMap, body: &[u8]) -> Result<TokenSource, Response> {
    let subscription_key = subscription_key(headers)?;
    let Ok(body) = serde_json::from_slice::<LegacyBody>(body) else {
        return Err(answers::malformed_body(
            r#"a JSON object {"client_id": ..., "client_secret": ..., "resource": ...}"#,
        ));
    };
    let client_id = present(body.client_id).ok_or_else(client_id_missing)?;
    let client_secret = present(body.client_secret).ok_or_else(answers::missing_secret)?;
    let resource = present(body.resource).ok_or_else(|| answers::missing_parameter("resource"))?;
    Ok(TokenSource::Legacy {
        credentials: StandardCredentials::new(client_id, client_secret, subscription_key),
        resource: LegacyResource::Other(resource),
    })
}

fn client_id_missing() -> Response {
    answers::missing_parameter("client_id")
}

/// The subscription key, or the gateway's 401 for its absence.
fn subscription_key(headers: &HeaderMap) -> Result<String, Response> {
    text(headers, SUBSCRIPTION_KEY).ok_or_else(answers::missing_subscription_key)
}

/// The value of header `name` when it is present, text, and not blank. A value that is
/// not visible ASCII counts as absent: it could not be sent on unchanged.
fn text(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get(name)?.to_str().ok()?;
    (!value.trim().is_empty()).then(|| value.to_owned())
}

/// The value of system header `name`, if the library can send it: `set` puts it alone in
/// a [`SystemHeaders`] for the library's own check.
fn system_header(
    headers: &HeaderMap,
    name: &str,
    set: impl FnOnce(&mut SystemHeaders, Option<String>),
) -> Option<String> {
    let value = text(headers, name)?;
    let mut alone = SystemHeaders::default();
    set(&mut alone, Some(value.clone()));
    alone.validate().is_ok().then_some(value)
}

/// The value, unless it is absent or blank.
fn present(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// The id and secret of `Authorization: Basic base64(id:secret)`, as sent (the upstream
/// gets them in the same form), when neither is empty.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let (id, secret) = answers::partner_basic_pair(headers)?;
    (!id.is_empty() && !secret.is_empty()).then_some((id, secret))
}

impl TokenRequest {
    /// Where [`Self::identity`] holds the merchant.
    pub(super) const MERCHANT: usize = 4;

    /// Every value the token depends on, in a fixed order: the path, the keys, the
    /// merchant, and the scope or resource. Hashed, never kept.
    pub(super) fn identity(&self) -> [&str; 7] {
        let msn = self.merchant_serial_number.as_deref().unwrap_or_default();
        let (client_id, client_secret, subscription_key) = match &self.source {
            TokenSource::Standard(credentials) | TokenSource::Legacy { credentials, .. } => (
                credentials.client_id.as_str(),
                credentials.client_secret.expose_secret(),
                credentials.subscription_key.expose_secret(),
            ),
            TokenSource::Partner { credentials, .. } => (
                credentials.client_id.as_str(),
                credentials.client_secret.expose_secret(),
                "",
            ),
        };
        let scope = match &self.source {
            TokenSource::Partner { scope, .. } => scope.as_deref().unwrap_or_default(),
            _ => "",
        };
        let resource = match &self.source {
            TokenSource::Legacy { resource, .. } => resource.as_str(),
            _ => "",
        };
        let path = self.endpoint.path();
        [
            path,
            client_id,
            client_secret,
            subscription_key,
            msn,
            scope,
            resource,
        ]
    }
}
