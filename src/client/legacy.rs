//! The legacy flow, `POST /api/v2/accesstoken/jwt` with a JSON body, which predates
//! `/accesstoken/get` and is deprecated in the docs. Written by hand: no bundled spec has it.

use std::fmt;

use reqwest::header::{ACCEPT, HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;

use super::{Client, exchange};
use crate::{
    credentials::StandardCredentials,
    error::Error,
    flow::Flow,
    wire::{
        headers::{header_value, secret_header_value},
        paths::LEGACY_TOKEN_PATH,
        response::StandardTokenResponse,
        token::{AccessToken, SentAt},
    },
};

/// The product a legacy token is issued for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LegacyResource {
    /// `https://testapivipps.no/vippsas/recurring-payment-service`
    Recurring,
    /// `https://testapivipps.no/vippsas/invoice-isp-service`
    InvoiceIsp,
    /// `https://testapivipps.no/vippsas/invoice-ipp-service`
    InvoiceIpp,
    /// Any other resource URL.
    Other(String),
}

impl LegacyResource {
    /// The resource URL sent in the body.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Recurring => "https://testapivipps.no/vippsas/recurring-payment-service",
            Self::InvoiceIsp => "https://testapivipps.no/vippsas/invoice-isp-service",
            Self::InvoiceIpp => "https://testapivipps.no/vippsas/invoice-ipp-service",
            Self::Other(url) => url,
        }
    }
}

impl fmt::Display for LegacyResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Serialize)]
struct LegacyRequest<'a> {
    client_id: &'a str,
    client_secret: &'a str,
    resource: &'a str,
}

impl Client {
    /// Gets a token from the legacy endpoint: `POST /api/v2/accesstoken/jwt` with the
    /// subscription key header and the JSON body `{client_id, client_secret, resource}`.
    ///
    /// ```no_run
    /// # #![allow(deprecated)]
    /// use vipps_access_token::{Client, Environment, LegacyResource, StandardCredentials};
    ///
    /// # async fn run() -> Result<(), vipps_access_token::Error> {
    /// let client = Client::new(Environment::Test)?;
    /// let credentials = StandardCredentials::new(
    ///     "fb492b5e-7907-4d83-ba20-c7fb60ca35de",
    ///     "Y8Kteew6GE2ZmeycEt6egg==",
    ///     "0f14ebcab0ec4b29ae0cb90d91b4a84a",
    /// );
    /// let token = client.legacy_token(&credentials, &LegacyResource::Recurring).await?;
    /// # let _ = token; Ok(()) }
    /// ```
    #[deprecated(
        note = "the legacy endpoint is deprecated by Vipps MobilePay: use `standard_token`"
    )]
    pub async fn legacy_token(
        &self,
        credentials: &StandardCredentials,
        resource: &LegacyResource,
    ) -> Result<AccessToken, Error> {
        self.retry
            .run(|| self.legacy_token_once(credentials, resource))
            .await
    }

    /// One attempt of [`Self::legacy_token`], without retries.
    async fn legacy_token_once(
        &self,
        credentials: &StandardCredentials,
        resource: &LegacyResource,
    ) -> Result<AccessToken, Error> {
        let client_id = credentials.client_id.as_str();
        let client_secret = credentials.client_secret.expose_secret();
        let subscription_key = credentials.subscription_key.expose_secret();
        header_value("client_id", client_id)?;
        if client_secret.is_empty() {
            return Err(Error::invalid_input("client_secret", "is empty"));
        }
        if url::Url::parse(resource.as_str()).is_err() {
            return Err(Error::invalid_input(
                "resource",
                "must be a URL, such as https://testapivipps.no/vippsas/recurring-payment-service",
            ));
        }
        let secrets = [client_secret, subscription_key];

        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("ocp-apim-subscription-key"),
            secret_header_value("Ocp-Apim-Subscription-Key", subscription_key)?,
        );
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        self.caller.insert_into(&mut headers)?;
        // `json` serialises the body and sets `Content-Type: application/json`.
        let request = self
            .http()?
            .post(self.url(LEGACY_TOKEN_PATH))
            .headers(headers)
            .json(&LegacyRequest {
                client_id,
                client_secret,
                resource: resource.as_str(),
            });
        let sent_at = SentAt::now();
        let answered: exchange::Answered<StandardTokenResponse> =
            exchange::send(Flow::Legacy, request, &secrets).await?;
        let token = AccessToken::from_standard(
            answered.body,
            Flow::Legacy,
            sent_at,
            &credentials.subscription_key,
            &self.caller,
        )?;
        Ok(token.with_answer(Some(answered.answer)))
    }
}
