//! [`TokenSource`]: which flow to ask for a token with, and its keys.

use super::{Client, legacy::LegacyResource};
use crate::{
    credentials::{PartnerCredentials, StandardCredentials},
    error::Error,
    wire::token::AccessToken,
};

/// What to ask for a token with: the flow and its keys.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenSource {
    /// `POST /accesstoken/get`.
    Standard(StandardCredentials),
    /// `POST /miami/v1/token`, with an optional `scope`.
    Partner {
        /// Management or accounting keys.
        credentials: PartnerCredentials,
        /// The optional OAuth scope.
        scope: Option<String>,
    },
    /// `POST /api/v2/accesstoken/jwt`, deprecated.
    Legacy {
        /// The keys with their subscription key.
        credentials: StandardCredentials,
        /// The product the token is for.
        resource: LegacyResource,
    },
}

impl TokenSource {
    /// Asks `client`'s token endpoint for a new token, once (with the client's retries).
    pub async fn fetch(&self, client: &Client) -> Result<AccessToken, Error> {
        match self {
            Self::Standard(credentials) => client.standard_token(credentials).await,
            Self::Partner { credentials, scope } => {
                client.partner_token(credentials, scope.as_deref()).await
            }
            Self::Legacy {
                credentials,
                resource,
            } =>
            {
                #[allow(deprecated)]
                client.legacy_token(credentials, resource).await
            }
        }
    }

    /// The flow's name, for logs and metric labels: `standard`, `partner` or `legacy`.
    pub fn flow_name(&self) -> &'static str {
        match self {
            Self::Standard(_) => "standard",
            Self::Partner { .. } => "partner",
            Self::Legacy { .. } => "legacy",
        }
    }
}
