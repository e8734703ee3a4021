//! What this crate knows on top of the spec: the response schemas build.rs replaces with
//! hand-written types, the request the standard flow sends, the public methods and
//! environments; with them, which changes the crate absorbs (proven in `absorbed.rs`)
//! and which Rust items a change reaches.
//!
//! The facts themselves are in `crate_facts.rs`, each tied by a test to the code it
//! describes. Generated items live in the private
//! `generated` module: progenitor's builder interface names a method after the
//! `operationId` (snake case), a builder struct after it (Pascal case), and a type after
//! each schema. A change that reaches only those is crate-private; one that reaches a
//! hand-written public item says so.

use super::{
    absorbed::{self, Verdict},
    crate_facts::{REPLACEMENTS, Replacement, STANDARD_REQUEST},
    model::Api,
    rules::{Change, Level, Subject},
};

/// `operationId` -> the public hand-written method that serves it.
const PUBLIC_METHODS: &[(&str, &str)] = &[
    ("fetchAuthorizationTokenUsingPost", "Client::standard_token"),
    ("fetchToken", "Client::partner_token"),
];

/// Server URL -> the public `Environment` that hard-codes it (`src/environment.rs`).
const ENVIRONMENTS: &[(&str, &str)] = &[
    ("https://api.vipps.no", "Environment::Production"),
    ("https://apitest.vipps.no", "Environment::Test"),
];

/// Adds the changes that break this crate's build, then fills in `absorbed_by_crate`
/// and `rust_api` on each change.
pub(crate) fn annotate(changes: &mut Vec<Change>, old: &Api, new: &Api) {
    for replacement in REPLACEMENTS {
        let Some(file) = replacement.stops_compiling else {
            continue;
        };
        let (schema, rust) = (replacement.schema, replacement.rust_type);
        if old.schema_names.contains(schema) && !new.schema_names.contains(schema) {
            changes.push(Change {
                id: "crate-replaced-schema-removed".to_owned(),
                level: Level::Breaking,
                operation: None,
                message: format!(
                    "schema `{schema}` is gone: build.rs replaces it by that name with \
                     `{rust}`, so regenerating makes {file} stop compiling; point build.rs's \
                     REPLACEMENTS at the schema's new name"
                ),
                absorbed_by_crate: None,
                rust_api: Some(format!("{file} (`{rust}`, public)")),
                subject: Subject::default(),
            });
        }
    }
    changes.sort_by_key(|c| c.level);
    for change in changes.iter_mut() {
        let (absorbed, detail) = absorbed_by(change, new);
        change.absorbed_by_crate = absorbed;
        change.rust_api = match (rust_item(&change.id, &change.subject), detail) {
            (Some(item), Some(detail)) => Some(format!("{item}; {detail}")),
            (item, detail) => item.or(detail).or(change.rust_api.take()),
        };
    }
}

fn replacement(subject: &Subject) -> Option<&'static Replacement> {
    let schema = subject.schema.as_deref()?;
    REPLACEMENTS.iter().find(|r| r.schema == schema)
}

fn public_method(subject: &Subject) -> Option<&'static str> {
    let id = subject.operation_id.as_deref()?;
    PUBLIC_METHODS
        .iter()
        .find(|(op, _)| *op == id)
        .map(|(_, method)| *method)
}

/// How the crate absorbs the change, if it does; else, where it has something to say,
/// why not.
fn absorbed_by(change: &Change, new: &Api) -> (Option<String>, Option<String>) {
    let (id, subject) = (change.id.as_str(), &change.subject);
    if id.starts_with("response-non-success-status-") {
        return (
            Some(
                "build.rs drops non-2xx responses; src/error/body.rs parses the error body \
                 (Azure AD, gateway, OAuth) whatever the status"
                    .into(),
            ),
            None,
        );
    }
    if id == "endpoint-added"
        && let Some(method) = public_method(subject)
    {
        return (
            Some(format!("already served by the hand-written `{method}`")),
            None,
        );
    }
    let success_body = subject
        .status
        .as_deref()
        .is_some_and(|s| s.starts_with('2'));
    if let Some(replacement) = replacement(subject).filter(|_| success_body)
        && id.starts_with("response-")
    {
        let Some(schema) = absorbed::response_schema(new, replacement) else {
            return (None, None);
        };
        let top_level = schema
            .properties
            .contains_key(subject.property.as_deref().unwrap_or(""));
        let property = subject.property.as_deref().filter(|_| top_level);
        return match absorbed::check_response(replacement, schema, property) {
            Verdict::Absorbed(how) => (Some(how), None),
            Verdict::NotAbsorbed(why) => (None, Some(why)),
        };
    }
    let request_side = id.starts_with("request-") || id.starts_with("new-");
    if request_side && subject.operation_id.as_deref() == Some(STANDARD_REQUEST.operation_id) {
        let operation = new
            .operations
            .values()
            .find(|op| op.id.as_deref() == Some(STANDARD_REQUEST.operation_id));
        if let Some(operation) = operation {
            return match absorbed::check_request(operation) {
                Verdict::Absorbed(how) => (Some(how), None),
                Verdict::NotAbsorbed(why) => (None, Some(why)),
            };
        }
    }
    (None, None)
}

fn rust_item(id: &str, subject: &Subject) -> Option<String> {
    let operation = subject.operation_id.as_deref();
    if id.starts_with("api-server-") {
        let environment = environment_of(subject.server.as_deref()?)?;
        return Some(format!(
            "`{environment}` (public) hard-codes this URL in src/environment.rs"
        ));
    }
    if let Some(removed) = subject.removed_schema.as_deref() {
        let replacement = REPLACEMENTS.iter().find(|r| r.schema == removed)?;
        return Some(format!(
            "build.rs replaces `{removed}` with `{}` (public)",
            replacement.rust_type
        ));
    }
    if let Some(replacement) = replacement(subject) {
        let rust = replacement.rust_type;
        let Some(property) = subject.property.as_deref() else {
            return Some(format!("`{rust}` (public, src/wire/response.rs)"));
        };
        return if replacement.fields.contains(&property) {
            Some(format!("`{rust}::{property}` (public)"))
        } else {
            Some(format!(
                "`{rust}` (public) has no field `{property}`: it ignores it"
            ))
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
