//! The binding that build.rs generates from `openapi/access-token.yaml`, and its hooks.
//!
//! Private on purpose: the generated builders derive `Debug` over plain-string secrets.
//! The public face of each operation is the hand-written layer around it.

#![allow(missing_docs, unused_imports, dead_code, clippy::all)]

include!(concat!(env!("OUT_DIR"), "/access_token_api.rs"));

impl ClientHooks<()> for Client {
    /// Progenitor adds an `api-version` header that the API does not document: drop it.
    /// Mark the credential headers sensitive so that `Debug` of the request hides them.
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        _info: &OperationInfo,
    ) -> Result<(), Error<E>> {
        // `POST /accesstoken/get` has no body; say so with `Content-Length: 0`, as curl
        // does, since HTTP/1.1 servers and gateways may refuse a POST without a length.
        let empty = request.body().is_none();
        let headers = request.headers_mut();
        if empty {
            headers.insert(
                reqwest::header::CONTENT_LENGTH,
                reqwest::header::HeaderValue::from_static("0"),
            );
        }
        headers.remove("api-version");
        for name in [
            "client_secret",
            "ocp-apim-subscription-key",
            "authorization",
        ] {
            if let Some(value) = headers.get_mut(name) {
                value.set_sensitive(true);
            }
        }
        Ok(())
    }

    /// Sends the request; its body then fails once past [`crate::MAX_RESPONSE_BYTES`].
    async fn exec(
        &self,
        request: reqwest::Request,
        _info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        let response = self.client.execute(request).await?;
        Ok(super::body::limit_body(response))
    }
}
