//! The standard flow, `POST /accesstoken/get`, through the generated binding.

use super::{Client, exchange};
use crate::{
    credentials::StandardCredentials,
    error::{Error, answer::UpstreamAnswer},
    flow::Flow,
    wire::{
        answer::StandardTokenAnswer,
        body::content_type,
        headers::header_value,
        response::StandardTokenResponse,
        token::{AccessToken, SentAt},
    },
};

impl Client {
    /// Gets a token with merchant or partner keys: `POST /accesstoken/get` with the
    /// `client_id`, `client_secret` and `Ocp-Apim-Subscription-Key` headers and no body.
    /// The token lasts 1 hour in the test environment and 24 hours in production.
    ///
    /// ```no_run
    /// use vipps_access_token::{Client, Environment, StandardCredentials};
    ///
    /// # async fn run() -> Result<(), vipps_access_token::Error> {
    /// let client = Client::new(Environment::Test)?;
    /// let credentials = StandardCredentials::new(
    ///     "fb492b5e-7907-4d83-ba20-c7fb60ca35de",
    ///     "Y8Kteew6GE2ZmeycEt6egg==",
    ///     "0f14ebcab0ec4b29ae0cb90d91b4a84a",
    /// );
    /// let token = client.standard_token(&credentials).await?;
    /// let headers = token.headers(); // Authorization: Bearer ..., Ocp-Apim-Subscription-Key, ...
    /// # let _ = headers; Ok(()) }
    /// ```
    pub async fn standard_token(
        &self,
        credentials: &StandardCredentials,
    ) -> Result<AccessToken, Error> {
        self.retry
            .run(|| self.standard_token_once(credentials))
            .await
    }

    /// One attempt of [`Self::standard_token`], without retries.
    async fn standard_token_once(
        &self,
        credentials: &StandardCredentials,
    ) -> Result<AccessToken, Error> {
        let client_id = credentials.client_id.as_str();
        let client_secret = credentials.client_secret.expose_secret();
        let subscription_key = credentials.subscription_key.expose_secret();
        header_value("client_id", client_id)?;
        header_value("client_secret", client_secret)?;
        header_value("Ocp-Apim-Subscription-Key", subscription_key)?;
        let secrets = [client_secret, subscription_key];

        let mut call = self
            .api()?
            .fetch_authorization_token_using_post()
            .client_id(client_id)
            .client_secret(client_secret)
            .ocp_apim_subscription_key(subscription_key);
        if let Some(msn) = &self.caller.merchant_serial_number {
            call = call.merchant_serial_number(msn.as_str());
        }
        let system = &self.caller.system;
        if let Some(value) = system.name.as_deref() {
            call = call.vipps_system_name(value);
        }
        if let Some(value) = system.version.as_deref() {
            call = call.vipps_system_version(value);
        }
        if let Some(value) = system.plugin_name.as_deref() {
            call = call.vipps_system_plugin_name(value);
        }
        if let Some(value) = system.plugin_version.as_deref() {
            call = call.vipps_system_plugin_version(value);
        }

        let sent_at = SentAt::now();
        let (body, answer) = match call.send().await {
            Ok(value) => {
                let content_type = content_type(value.headers());
                let StandardTokenAnswer { parsed, raw } = value.into_inner();
                let answer =
                    UpstreamAnswer::new(200, content_type.as_deref(), raw.get().as_bytes());
                (parsed, Some(answer))
            }
            Err(error) => {
                let body: StandardTokenResponse =
                    exchange::from_generated(Flow::Standard, error, &secrets).await?;
                (body, None)
            }
        };
        let token = AccessToken::from_standard(
            body,
            Flow::Standard,
            sent_at,
            &credentials.subscription_key,
            &self.caller,
        )?;
        Ok(token.with_answer(answer))
    }
}
