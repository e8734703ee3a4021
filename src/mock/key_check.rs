//! The `client_id` and `client_secret` check the standard and legacy flows share, with
//! Azure AD's answer for each way it fails.

use axum::response::Response;

use super::{azure, request::keys_match, state::Shared};

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
        Some(secret) if keys_match(secret, shared.keys.client_secret.expose_secret()) => {
            Ok(client_id)
        }
        Some(_) => Err(Refused::WrongSecret(client_id)),
    }
}
