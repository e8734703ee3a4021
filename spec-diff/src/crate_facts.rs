//! What the spec diff knows about this crate: the response schemas build.rs replaces
//! with hand-written types (and their real parsers), and the request the standard flow
//! sends. Each fact is tied by a test (`tests/spec_diff.rs`) to the code it describes:
//! build.rs's `REPLACEMENTS`, `src/wire/response.rs`'s fields, the headers a real
//! `Client::standard_token` call sends.

use vipps_access_token::{PartnerTokenResponse, StandardTokenResponse};

/// A response schema that build.rs replaces, by name, with a hand-written type.
pub(crate) struct Replacement {
    /// The `components.schemas` name build.rs looks for.
    pub schema: &'static str,
    /// The public type in `src/wire/response.rs`.
    pub rust_type: &'static str,
    /// Its fields, all required.
    pub fields: &'static [&'static str],
    /// Fields whose values are never shown in a report.
    pub secret_fields: &'static [&'static str],
    /// The file that stops compiling when the spec no longer has the schema (the
    /// generated method then returns a generated type instead), if any uses it.
    pub stops_compiling: Option<&'static str>,
    /// The type's real parser.
    pub parses: fn(&[u8]) -> bool,
}

pub(crate) const REPLACEMENTS: &[Replacement] = &[
    Replacement {
        schema: "AuthorizationTokenResponse",
        rust_type: "StandardTokenResponse",
        fields: &[
            "token_type",
            "expires_in",
            "ext_expires_in",
            "expires_on",
            "not_before",
            "resource",
            "access_token",
        ],
        secret_fields: &["access_token"],
        stops_compiling: Some("src/client/standard.rs"),
        parses: |body| StandardTokenResponse::from_json(body).is_ok(),
    },
    Replacement {
        schema: "TokenResponse",
        rust_type: "PartnerTokenResponse",
        fields: &["access_token", "token_type", "expires_in"],
        secret_fields: &["access_token"],
        // src/client/partner.rs sends its request by hand; no generated method returns it.
        stops_compiling: None,
        parses: |body| PartnerTokenResponse::from_json(body).is_ok(),
    },
];

/// A header the standard flow sends.
pub(crate) struct SentHeader {
    /// Its name.
    pub name: &'static str,
    /// Sent on every request (else only when configured).
    pub always: bool,
    /// Values the crate may send: the documented examples, and the bounds the crate
    /// itself enforces (an MSN of 4 and of 6 digits; system headers up to 30 characters).
    pub samples: &'static [&'static str],
    /// A credential: its value is never shown.
    pub secret: bool,
}

/// The request of one flow.
pub(crate) struct SentRequest {
    /// The `operationId` it serves.
    pub operation_id: &'static str,
    /// Its headers (no body).
    pub headers: &'static [SentHeader],
}

const THIRTY: &str = "abcdefghijklmnopqrstuvwxyz1234";

/// `POST /accesstoken/get` as `Client::standard_token` sends it (src/client/standard.rs,
/// src/wire/headers.rs).
pub(crate) const STANDARD_REQUEST: SentRequest = SentRequest {
    operation_id: "fetchAuthorizationTokenUsingPost",
    headers: &[
        SentHeader {
            name: "client_id",
            always: true,
            samples: &["fb492b5e-7907-4d83-ba20-c7fb60ca35de"],
            secret: false,
        },
        SentHeader {
            name: "client_secret",
            always: true,
            samples: &["Y8Kteew6GE2ZmeycEt6egg=="],
            secret: true,
        },
        SentHeader {
            name: "Ocp-Apim-Subscription-Key",
            always: true,
            samples: &["0f14ebcab0ec4b29ae0cb90d91b4a84a"],
            secret: true,
        },
        SentHeader {
            name: "Merchant-Serial-Number",
            always: false,
            samples: &["1234", "123456"],
            secret: false,
        },
        SentHeader {
            name: "Vipps-System-Name",
            always: false,
            samples: &["a", THIRTY],
            secret: false,
        },
        SentHeader {
            name: "Vipps-System-Version",
            always: false,
            samples: &["1", THIRTY],
            secret: false,
        },
        SentHeader {
            name: "Vipps-System-Plugin-Name",
            always: false,
            samples: &["a", THIRTY],
            secret: false,
        },
        SentHeader {
            name: "Vipps-System-Plugin-Version",
            always: false,
            samples: &["1", THIRTY],
            secret: false,
        },
    ],
};

/// What the spec diff knows about this crate, for the tests that tie each fact to the
/// code it describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrateFacts {
    /// `(schema, type, fields)`: each response schema build.rs replaces, the public type
    /// in `src/wire/response.rs` it becomes, and that type's fields.
    pub replacements: Vec<(&'static str, &'static str, Vec<&'static str>)>,
    /// `(header, always sent)`: the headers `Client::standard_token` sends.
    pub standard_request_headers: Vec<(&'static str, bool)>,
}

/// The crate facts the spec diff relies on.
pub fn crate_facts() -> CrateFacts {
    CrateFacts {
        replacements: REPLACEMENTS
            .iter()
            .map(|r| (r.schema, r.rust_type, r.fields.to_vec()))
            .collect(),
        standard_request_headers: STANDARD_REQUEST
            .headers
            .iter()
            .map(|h| (h.name, h.always))
            .collect(),
    }
}
