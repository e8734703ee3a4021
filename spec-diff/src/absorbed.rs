//! "Absorbed by the crate", proven: a response change is absorbed when every instance of
//! the new schema (`instances.rs`) parses with the crate's real hand-written type; a
//! request change is absorbed when the request the crate really sends still meets the
//! new spec. Nothing here is a hand-kept list of safe changes.

use serde_json::{Map, Value};

use super::{
    crate_facts::{Replacement, STANDARD_REQUEST},
    instances,
    model::{Api, Operation, Schema},
};

/// What the instance check found.
pub(crate) enum Verdict {
    /// Every instance parsed: how many, and with what.
    Absorbed(String),
    /// An instance did not parse, or none could be built: why.
    NotAbsorbed(String),
}

/// The new schema of `replacement`, as the responses of `api` reach it.
pub(crate) fn response_schema<'a>(api: &'a Api, replacement: &Replacement) -> Option<&'a Schema> {
    api.operations
        .values()
        .flat_map(|op| op.responses.values())
        .flat_map(|response| response.content.values())
        .flatten()
        .find(|schema| schema.name.as_deref() == Some(replacement.schema))
        .map(|schema| &**schema)
}

/// Runs instances of `schema` (varying `property`, or every property when `None`)
/// through the replacement's parser.
pub(crate) fn check_response(
    replacement: &Replacement,
    schema: &Schema,
    property: Option<&str>,
) -> Verdict {
    let rust = replacement.rust_type;
    let missing: Vec<&str> = replacement
        .fields
        .iter()
        .copied()
        .filter(|f| !schema.properties.contains_key(*f) || !schema.required.contains(*f))
        .collect();
    if !missing.is_empty() {
        return Verdict::NotAbsorbed(format!(
            "`{rust}` (src/wire/response.rs) requires `{}`, which the new schema does not \
             require",
            missing.join("`, `")
        ));
    }
    let mut base = Map::new();
    for (name, child) in &schema.properties {
        match instances::values(child).into_iter().next() {
            Some(value) => {
                base.insert(name.clone(), value);
            }
            None => {
                return Verdict::NotAbsorbed(format!(
                    "no value of the new `{name}` could be built to check `{rust}` with"
                ));
            }
        }
    }
    // The first instance holds every property's first value: a failure there is the
    // varied property's when there is one.
    let mut candidates: Vec<(Option<&str>, Value)> = vec![(property, Value::Object(base.clone()))];
    candidates.extend(schema.examples.iter().map(|e| (None, e.clone())));
    let varied: Vec<&String> = match property {
        Some(p) => schema.properties.keys().filter(|k| *k == p).collect(),
        None => schema.properties.keys().collect(),
    };
    for name in varied {
        let Some(child) = schema.properties.get(name) else {
            continue;
        };
        for value in instances::values(child).into_iter().skip(1) {
            let mut object = base.clone();
            object.insert(name.clone(), value);
            candidates.push((Some(name), Value::Object(object)));
        }
        if !schema.required.contains(name) {
            let mut object = base.clone();
            object.remove(name);
            candidates.push((Some(name), Value::Object(object)));
        }
    }
    for (varied, instance) in &candidates {
        let bytes = serde_json::to_vec(instance).unwrap_or_default();
        if !(replacement.parses)(&bytes) {
            let what = match varied {
                Some(name) => match instance.get(*name) {
                    Some(value) if !replacement.secret_fields.contains(name) => {
                        format!("`{name}`: {value}")
                    }
                    Some(_) => format!("a value of `{name}`"),
                    None => format!("`{name}` left out"),
                },
                None => "its first instance".to_owned(),
            };
            return Verdict::NotAbsorbed(format!(
                "`{rust}` (src/wire/response.rs) rejects an instance the new schema allows ({what})"
            ));
        }
    }
    let field = property
        .filter(|p| replacement.fields.contains(p))
        .map(|p| format!("::{p}"))
        .unwrap_or_default();
    let count = candidates.len();
    Verdict::Absorbed(format!(
        "`{rust}{field}` (src/wire/response.rs) parses every instance of the new schema: {count} \
         built from its examples and from its type, format, pattern, enum and bounds",
    ))
}

/// Checks the request the crate sends for the standard flow against `operation` of the
/// new spec: its headers, their documented example values, and no body.
pub(crate) fn check_request(operation: &Operation) -> Verdict {
    for ((location, _), parameter) in &operation.parameters {
        let name = &parameter.name;
        let sent = STANDARD_REQUEST
            .headers
            .iter()
            .find(|h| location == "header" && h.name.eq_ignore_ascii_case(name));
        let Some(sent) = sent else {
            if parameter.required {
                return Verdict::NotAbsorbed(format!(
                    "the new spec requires the {location} parameter `{name}`, which the \
                     crate does not send"
                ));
            }
            continue;
        };
        if parameter.required && !sent.always {
            return Verdict::NotAbsorbed(format!(
                "the new spec requires `{name}`, which the crate sends only when it is \
                 configured"
            ));
        }
        if let Some(rejected) = sent
            .samples
            .iter()
            .find(|s| !header_allowed(&parameter.schema, s))
        {
            let shown = if sent.secret {
                "the documented example value".to_owned()
            } else {
                format!("`{rejected}`")
            };
            return Verdict::NotAbsorbed(format!(
                "the new schema of `{name}` rejects {shown}, which the crate may send"
            ));
        }
    }
    if operation.request_body.as_ref().is_some_and(|b| b.required) {
        return Verdict::NotAbsorbed(
            "the new spec requires a request body; the crate sends none".to_owned(),
        );
    }
    let names: Vec<&str> = STANDARD_REQUEST.headers.iter().map(|h| h.name).collect();
    Verdict::Absorbed(format!(
        "the request the crate sends (headers {}; no body) still meets the new spec",
        names.join(", ")
    ))
}

/// Whether a header value meets a schema: a string, in the enum, matching the pattern,
/// within the lengths.
fn header_allowed(schema: &Schema, value: &str) -> bool {
    let typed = schema.types.is_empty() || schema.types.contains("string");
    let listed = schema
        .enumeration
        .as_ref()
        .is_none_or(|values| values.contains(&Value::String(value.to_owned()).to_string()));
    typed && listed && instances::string_allowed(schema, value)
}
