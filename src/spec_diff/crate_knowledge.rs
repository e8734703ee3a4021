//! What this crate knows on top of the spec: which changes its hand-written layer already
//! absorbs, and which Rust items a change reaches.
//!
//! The facts here mirror `build.rs` (non-2xx responses dropped, two response schemas
//! replaced by tolerant hand-written types) and `src/response.rs` (numbers read as an
//! integer or a digit string). Generated items live in the private `generated` module:
//! progenitor's builder interface names a method after the `operationId` (snake case), a
//! builder struct after it (Pascal case), and a type after each schema. A change that
//! reaches only those is crate-private; one that reaches a hand-written public item says so.

use super::rules::{Change, Subject};

/// Spec schema -> the public hand-written type build.rs puts in its place.
const REPLACED_SCHEMAS: &[(&str, &str)] = &[
    ("AuthorizationTokenResponse", "StandardTokenResponse"),
    ("TokenResponse", "PartnerTokenResponse"),
];

/// Fields of the replacement types read with `integer_or_digits`.
const TOLERANT_NUMBERS: &[&str] = &["expires_in", "ext_expires_in", "expires_on", "not_before"];

/// Fields each replacement type requires (a spec that drops one breaks its parsing).
const REPLACEMENT_FIELDS: &[(&str, &[&str])] = &[
    (
        "StandardTokenResponse",
        &[
            "token_type",
            "expires_in",
            "ext_expires_in",
            "expires_on",
            "not_before",
            "resource",
            "access_token",
        ],
    ),
    (
        "PartnerTokenResponse",
        &["access_token", "token_type", "expires_in"],
    ),
];

/// `operationId` -> the public hand-written method that serves it.
const PUBLIC_METHODS: &[(&str, &str)] = &[
    ("fetchAuthorizationTokenUsingPost", "Client::standard_token"),
    ("fetchToken", "Client::partner_token"),
];

/// Server URL -> the public `Environment` that hard-codes it (`src/client.rs`).
const ENVIRONMENTS: &[(&str, &str)] = &[
    ("https://api.vipps.no", "Environment::Production"),
    ("https://apitest.vipps.no", "Environment::Test"),
];

/// Fills in `absorbed_by_crate` and `rust_api` on each change.
pub(crate) fn annotate(changes: &mut [Change]) {
    for change in changes {
        change.absorbed_by_crate = absorbed(&change.id, &change.subject);
        change.rust_api = rust_item(&change.id, &change.subject);
    }
}

fn replacement(subject: &Subject) -> Option<&'static str> {
    let schema = subject.schema.as_deref()?;
    REPLACED_SCHEMAS
        .iter()
        .find(|(name, _)| *name == schema)
        .map(|(_, rust)| *rust)
}

fn public_method(subject: &Subject) -> Option<&'static str> {
    let id = subject.operation_id.as_deref()?;
    PUBLIC_METHODS
        .iter()
        .find(|(op, _)| *op == id)
        .map(|(_, method)| *method)
}

fn base_kind(label: &str) -> &str {
    label.split('/').next().unwrap_or(label)
}

fn absorbed(id: &str, subject: &Subject) -> Option<String> {
    if id.starts_with("response-non-success-status-") {
        return Some(
            "build.rs drops non-2xx responses; src/error.rs parses the error body \
             (Azure AD, gateway, OAuth) whatever the status"
                .into(),
        );
    }
    let rust = replacement(subject);
    let property = subject.property.as_deref();
    if id == "response-property-type-changed" {
        let (rust, property) = (rust?, property?);
        let (before, after) = subject.types.as_ref()?;
        let kinds = [base_kind(before), base_kind(after)];
        let numeric = kinds.iter().all(|k| *k == "integer" || *k == "string");
        if TOLERANT_NUMBERS.contains(&property) && numeric {
            return Some(format!(
                "`{rust}::{property}` reads a JSON integer or a string of digits \
                 (integer_or_digits)"
            ));
        }
        if kinds.iter().all(|k| *k == "string") {
            return Some(format!(
                "`{rust}::{property}` reads any JSON string, whatever its format"
            ));
        }
        return None;
    }
    if id.starts_with("response-") && id.ends_with("-property-added") {
        let rust = rust?;
        return Some(format!(
            "`{rust}` ignores fields it does not know; add the field to expose it"
        ));
    }
    if id == "endpoint-added" && public_method(subject).is_some() {
        return Some(format!(
            "already served by the hand-written `{}`",
            public_method(subject).unwrap_or_default()
        ));
    }
    None
}

fn rust_item(id: &str, subject: &Subject) -> Option<String> {
    let operation = subject.operation_id.as_deref();
    if id.starts_with("api-server-") {
        let environment = environment_of(subject.server.as_deref()?)?;
        return Some(format!(
            "`{environment}` (public) hard-codes this URL in src/client.rs"
        ));
    }
    if let Some(rust) = replacement(subject) {
        let property = subject.property.as_deref()?;
        let is_field = REPLACEMENT_FIELDS
            .iter()
            .any(|(t, fields)| *t == rust && fields.contains(&property));
        let lost =
            id == "response-required-property-removed" || id == "response-property-became-optional";
        return match (is_field, lost) {
            (true, true) => Some(format!(
                "`{rust}::{property}` (public): the hand-written type requires it; \
                 making it optional changes the public API (major)"
            )),
            _ => None,
        };
    }
    if id.starts_with("response-")
        || id.starts_with("request-property")
        || id.contains("-request-property")
    {
        let schema = subject.schema.as_deref()?;
        let field = subject
            .property
            .as_deref()
            .map(|p| format!(", field `{}`", snake_case(p)))
            .unwrap_or_default();
        return Some(format!(
            "generated `types::{}`{field} (crate-private)",
            pascal_case(schema)
        ));
    }
    let operation = operation?;
    let method = snake_case(operation);
    let builder = pascal_case(operation);
    let public = public_method(subject)
        .map(|m| format!("; reached through the public `{m}`"))
        .unwrap_or_default();
    if let Some(parameter) = subject.parameter.as_deref() {
        return Some(format!(
            "generated `builder::{builder}::{}` (crate-private){public}",
            snake_case(parameter)
        ));
    }
    match id {
        "endpoint-added" => Some(format!(
            "generated `Client::{method}` and `builder::{builder}` added (crate-private)"
        )),
        "api-path-removed-without-deprecation"
        | "api-path-removed-with-deprecation"
        | "api-removed-without-deprecation"
        | "api-removed-with-deprecation" => Some(format!(
            "generated `Client::{method}` removed (crate-private){public}: \
             regenerating fails to compile until the hand-written layer drops it"
        )),
        "api-operation-id-removed" => Some(format!(
            "generated `Client::{method}` and `builder::{builder}` renamed (crate-private){public}"
        )),
        _ if id.starts_with("request-body") || id.starts_with("response-success-status") => Some(
            format!("generated `Client::{method}` (crate-private){public}"),
        ),
        _ => None,
    }
}

/// The public `Environment` whose base URL is `url`, if any.
fn environment_of(url: &str) -> Option<&'static str> {
    ENVIRONMENTS
        .iter()
        .find(|(u, _)| u.trim_end_matches('/') == url.trim_end_matches('/'))
        .map(|(_, e)| *e)
}

/// Splits `fetchAuthorizationTokenUsingPost`, `Ocp-Apim-Subscription-Key` or
/// `HTTPStatus` into lower-case words, as progenitor's naming does.
fn words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            continue;
        }
        let previous = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1);
        let boundary = c.is_uppercase()
            && previous.is_some_and(|p| {
                p.is_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_uppercase() && next.is_some_and(|n| n.is_lowercase()))
            });
        if boundary && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

fn snake_case(name: &str) -> String {
    words(name).join("_")
}

fn pascal_case(name: &str) -> String {
    words(name)
        .iter()
        .map(|w| {
            let mut chars = w.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_progenitor() {
        assert_eq!(
            snake_case("fetchAuthorizationTokenUsingPost"),
            "fetch_authorization_token_using_post"
        );
        assert_eq!(
            snake_case("Ocp-Apim-Subscription-Key"),
            "ocp_apim_subscription_key"
        );
        assert_eq!(pascal_case("fetchToken"), "FetchToken");
        assert_eq!(pascal_case("HTTPStatus"), "HttpStatus");
    }
}
