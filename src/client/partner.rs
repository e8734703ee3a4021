//! The partner specialised flow, `POST /miami/v1/token`: OAuth 2.0 client credentials,
//! for management and accounting keys. The bundled spec 1.0.1 lacks it, so it is written
//! by hand. It never sends a subscription key.

use base64::Engine;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};

use super::{Client, exchange};
use crate::{
    credentials::PartnerCredentials,
    error::Error,
    flow::Flow,
    wire::{
        headers::header_value,
        response::PartnerTokenResponse,
        token::{AccessToken, SentAt},
    },
};

/// The content type the docs send, charset included.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

impl Client {
    /// Gets a token with management or accounting keys: `POST /miami/v1/token` (or the
    /// path set with [`crate::ClientBuilder::partner_token_path`]) with Basic credentials
    /// and the form body `grant_type=client_credentials`, plus `scope` when given.
    /// The token lasts 15 minutes.
    ///
    /// ```no_run
    /// use vipps_access_token::{Client, Environment, PartnerCredentials};
    ///
    /// # async fn run() -> Result<(), vipps_access_token::Error> {
    /// let client = Client::new(Environment::Production)?;
    /// let credentials = PartnerCredentials::new(
    ///     "fb492b5e-7907-4d83-ba20-c7fb60ca35de",
    ///     "Y8Kteew6GE2ZmeycEt6egg==",
    /// );
    /// let token = client.partner_token(&credentials, None).await?;
    /// # let _ = token; Ok(()) }
    /// ```
    pub async fn partner_token(
        &self,
        credentials: &PartnerCredentials,
        scope: Option<&str>,
    ) -> Result<AccessToken, Error> {
        self.retry
            .run(|| self.partner_token_once(credentials, scope))
            .await
    }

    /// One attempt of [`Self::partner_token`], without retries.
    async fn partner_token_once(
        &self,
        credentials: &PartnerCredentials,
        scope: Option<&str>,
    ) -> Result<AccessToken, Error> {
        let client_id = credentials.client_id.as_str();
        let client_secret = credentials.client_secret.expose_secret();
        header_value("client_id", client_id)?;
        header_value("client_secret", client_secret)?;
        if client_id.contains(':') {
            return Err(Error::invalid_input(
                "client_id",
                "contains `:`, which Basic credentials cannot carry in the user part",
            ));
        }
        // reqwest's `basic_auth` builds the header (base64, marked sensitive). The id and
        // secret go in as they are, not form-encoded first as RFC 6749 section 2.3.1 asks:
        // Vipps MobilePay documents `btoa(client_id:client_secret)`, and form-encoding would
        // send a base64 secret's `=` as `%3D`, which a server that does not decode rejects.
        // The same encoding again, only to recognise the credentials if a server echoes them.
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{client_id}:{client_secret}"));
        let secrets = [client_secret, basic.as_str()];

        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(FORM_CONTENT_TYPE));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        self.caller.insert_into(&mut headers)?;

        let form = form_body(scope);

        let request = self
            .http()?
            .post(self.url(&self.partner_token_path))
            .basic_auth(client_id, Some(client_secret))
            .headers(headers)
            .body(form);
        let sent_at = SentAt::now();
        let answered: exchange::Answered<PartnerTokenResponse> =
            exchange::send(Flow::Partner, request, &secrets).await?;
        let token = AccessToken::from_partner(answered.body, sent_at, &self.caller)?;
        Ok(token.with_answer(Some(answered.answer)))
    }
}

/// `grant_type=client_credentials`, and `&scope=...` when given, form-encoded.
fn form_body(scope: Option<&str>) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials");
    if let Some(scope) = scope {
        form.append_pair("scope", scope);
    }
    form.finish()
}
