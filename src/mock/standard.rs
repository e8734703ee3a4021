//! `POST /accesstoken/get`: the keys in the `client_id`, `client_secret` and
//! `Ocp-Apim-Subscription-Key` headers, no body. Anything else a client sends (a body,
//! `Authorization`, `Merchant-Serial-Number`, `Vipps-System-*`) is ignored.

use axum::{http::HeaderMap, response::Response};

use super::{
    azure, gateway,
    request::{header, same},
    state::Shared,
    tokens,
};

/// The answer to a standard token request.
pub(super) fn answer(shared: &Shared, headers: &HeaderMap) -> Response {
    if let Some(refused) = gateway::refusal(&shared.keys, headers) {
        return refused;
    }
    let client_id = header(headers, "client_id");
    let client_secret = header(headers, "client_secret");
    match check_keys(shared, client_id.as_deref(), client_secret.as_deref()) {
        Ok(client_id) => tokens::standard(shared, client_id, tokens::DEFAULT_RESOURCE),
        Err(refused) => refused.into_response(),
    }
}

/// Why Azure AD refused the keys.
pub(super) enum Refused<'a> {
    MissingClientId,
    UnknownClientId(&'a str),
    MissingSecret,
    WrongSecret(&'a str),
}

impl Refused<'_> {
    pub(super) fn into_response(self) -> Response {
        match self {
            Self::MissingClientId => azure::missing_parameter("client_id"),
            Self::UnknownClientId(client_id) => azure::unknown_client(client_id),
            Self::MissingSecret => azure::missing_secret(),
            Self::WrongSecret(client_id) => azure::invalid_secret(client_id),
        }
    }
}

/// Azure AD's checks of `client_id` and `client_secret`, shared with the legacy path.
pub(super) fn check_keys<'a>(
    shared: &Shared,
    client_id: Option<&'a str>,
    client_secret: Option<&str>,
) -> Result<&'a str, Refused<'a>> {
    let Some(client_id) = client_id else {
        return Err(Refused::MissingClientId);
    };
    if client_id != shared.keys.client_id.as_str() {
        return Err(Refused::UnknownClientId(client_id));
    }
    match client_secret {
        None => Err(Refused::MissingSecret),
        Some(secret) if same(secret, shared.keys.client_secret.expose_secret()) => Ok(client_id),
        Some(_) => Err(Refused::WrongSecret(client_id)),
    }
}
