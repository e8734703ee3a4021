//! The API keys of a sales unit, in types whose `Debug` never shows a secret.
//!
//! The values are checked when a request is built (see [`crate::Error::InvalidInput`]),
//! not here, so that constructing credentials from configuration can never fail.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// The `client_id` of a sales unit: its "username". Not a secret, shown in `Debug`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    /// Wraps a `client_id`, for example `fb492b5e-7907-4d83-ba20-c7fb60ca35de`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The `client_id` as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ClientId").field(&self.0).finish()
    }
}

macro_rules! secret_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// `Debug` prints `[redacted]`; the value is zeroed when dropped.
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// Wraps the secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(SecretString::from(value.into()))
            }

            /// The secret itself, for the one place that must send it.
            pub fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.expose_secret() == other.expose_secret()
            }
        }

        impl Eq for $name {}

        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.expose_secret().hash(state)
            }
        }
    };
}

secret_newtype!(
    /// The `client_secret` of a sales unit: its "password".
    ClientSecret
);
secret_newtype!(
    /// The `Ocp-Apim-Subscription-Key` of a sales unit, sent on every standard-flow call.
    SubscriptionKey
);

/// Keys for the standard flow (`POST /accesstoken/get`) and the legacy flow:
/// merchant or partner keys with a subscription key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StandardCredentials {
    /// The `client_id` header.
    pub client_id: ClientId,
    /// The `client_secret` header.
    pub client_secret: ClientSecret,
    /// The `Ocp-Apim-Subscription-Key` header, also needed on every later API call.
    pub subscription_key: SubscriptionKey,
}

impl StandardCredentials {
    /// Bundles the three keys of a sales unit.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        subscription_key: impl Into<String>,
    ) -> Self {
        Self {
            client_id: ClientId::new(client_id),
            client_secret: ClientSecret::new(client_secret),
            subscription_key: SubscriptionKey::new(subscription_key),
        }
    }
}

/// Keys for the partner flow (`POST /miami/v1/token`): management or accounting keys.
/// This flow never sends a subscription key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PartnerCredentials {
    /// The user part of the Basic credentials.
    pub client_id: ClientId,
    /// The password part of the Basic credentials.
    pub client_secret: ClientSecret,
}

impl PartnerCredentials {
    /// Bundles the two partner keys.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            client_id: ClientId::new(client_id),
            client_secret: ClientSecret::new(client_secret),
        }
    }
}

secret_newtype!(
    /// An access token (a JWT) as issued by the API.
    TokenSecret
);

impl<'de> serde::Deserialize<'de> for TokenSecret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        SecretString::deserialize(deserializer).map(Self)
    }
}
