//! Issuing tokens: the JWT and the body around it, whose fields agree with its claims.

use axum::{http::StatusCode, response::Response};
use serde::Serialize;

use super::{
    reply::{json, no_store, random_guid, unix_now, unserialisable},
    state::Shared,
};

/// The `resource` `/accesstoken/get` answers with, as in the docs.
pub(super) const DEFAULT_RESOURCE: &str = "00000002-0000-0000-c000-000000000000";

/// The tenant the mock's Azure AD tokens claim to come from.
const TENANT: &str = "7e0c1a5b-0d6f-4c43-9a53-6d6f636b0000";

/// `/accesstoken/get` and legacy body: every number a string, as the real API sends it.
#[derive(Serialize)]
struct StandardBody {
    token_type: &'static str,
    expires_in: String,
    ext_expires_in: String,
    expires_on: String,
    not_before: String,
    resource: String,
    access_token: String,
}

/// The claims of an Azure AD v1 application token.
#[derive(Serialize)]
struct AzureAdClaims<'a> {
    aud: &'a str,
    iss: String,
    iat: u64,
    nbf: u64,
    exp: u64,
    appid: &'a str,
    appidacr: &'static str,
    tid: &'static str,
    ver: &'static str,
    jti: String,
}

/// The partner body: plain OAuth 2.0, `expires_in` a number, as the docs show.
#[derive(Serialize)]
struct PartnerBody {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
}

#[derive(Serialize)]
struct PartnerClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    iat: u64,
    nbf: u64,
    exp: u64,
    jti: String,
}

/// 200 with a standard token for `client_id`, issued for `resource`.
pub(super) fn standard(shared: &Shared, client_id: &str, resource: &str) -> Response {
    let now = unix_now();
    let expires_on = now.saturating_add(shared.token_lifetime);
    let signed = shared.signer.sign(&AzureAdClaims {
        aud: resource,
        iss: format!("https://sts.windows.net/{TENANT}/"),
        iat: now,
        nbf: now,
        exp: expires_on,
        appid: client_id,
        appidacr: "1",
        tid: TENANT,
        ver: "1.0",
        jti: random_guid(),
    });
    let access_token = match signed {
        Ok(token) => token,
        Err(error) => return unserialisable(&error),
    };
    no_store(json(
        StatusCode::OK,
        &StandardBody {
            token_type: "Bearer",
            expires_in: shared.token_lifetime.to_string(),
            ext_expires_in: "0".to_owned(),
            expires_on: expires_on.to_string(),
            not_before: now.to_string(),
            resource: resource.to_owned(),
            access_token,
        },
    ))
}

/// 200 with a partner token for `client_id`, carrying `scope` when asked for.
pub(super) fn partner(shared: &Shared, client_id: &str, scope: Option<&str>) -> Response {
    let now = unix_now();
    let signed = shared.signer.sign(&PartnerClaims {
        iss: &shared.issuer,
        sub: client_id,
        client_id,
        scope,
        iat: now,
        nbf: now,
        exp: now.saturating_add(shared.partner_token_lifetime),
        jti: random_guid(),
    });
    let access_token = match signed {
        Ok(token) => token,
        Err(error) => return unserialisable(&error),
    };
    no_store(json(
        StatusCode::OK,
        &PartnerBody {
            access_token,
            token_type: "Bearer",
            expires_in: shared.partner_token_lifetime,
        },
    ))
}
