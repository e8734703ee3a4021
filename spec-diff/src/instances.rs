//! JSON values a schema allows: its examples, plus values built from its type, format,
//! pattern, enum and bounds. The crate's deserializers are then run over them
//! (`absorbed.rs`): what they all parse, the crate absorbs.
//!
//! Which values, and why: an `enum` or `const` gives exactly its values; a format gives
//! values of that format (`date-time` a timestamp); a `pattern` keeps the candidates it
//! matches (so `^[0-9]+(\.[0-9]+)?$` yields `12.5`); bounds keep the numbers within them.
//! A bare `string` with examples is taken at its examples' word (the spec says nothing
//! more about it), without examples it is any string, `abc` included. A bare `integer`
//! yields no negative value unless its `minimum` is negative; a `number` always yields a
//! fraction, which is what sets it apart from an integer.

use std::cell::Cell;

use serde_json::{Map, Value, json};

use super::model::Schema;

/// Values built per schema at most (each is checked, so this bounds the work).
const MAX_VALUES: usize = 24;

/// How deep nested objects and arrays are built.
const MAX_DEPTH: usize = 8;

/// Schemas visited to build the values of one schema: nested objects multiply, and a
/// spec is input. Past it no value is built, which proves nothing (not absorbed).
const MAX_VISITS: usize = 10_000;

thread_local! {
    static VISITS_LEFT: Cell<usize> = const { Cell::new(0) };
}

/// Strings tried where the schema says only `string` (filtered by pattern and length).
const STRINGS: &[&str] = &[
    "0",
    "123",
    "86398",
    "12.5",
    "-1",
    "1e3",
    "abc",
    "Bearer",
    "2024-01-01",
    "2024-01-01T00:00:00Z",
    "dGVzdA==",
    "fb492b5e-7907-4d83-ba20-c7fb60ca35de",
    "",
];

/// The values `schema` allows, examples first; empty when none could be built (a
/// pattern no candidate matches), which proves nothing.
pub(crate) fn values(schema: &Schema) -> Vec<Value> {
    VISITS_LEFT.with(|left| left.set(MAX_VISITS));
    let values = values_at(schema, 0);
    // Cut short, the values are a sample: they prove nothing.
    if VISITS_LEFT.with(Cell::get) == 0 {
        return Vec::new();
    }
    values
}

fn values_at(schema: &Schema, depth: usize) -> Vec<Value> {
    let exhausted = VISITS_LEFT.with(|left| {
        let n = left.get();
        left.set(n.saturating_sub(1));
        n == 0
    });
    if exhausted {
        return Vec::new();
    }
    if depth > MAX_DEPTH || schema.recursive {
        return vec![json!({})];
    }
    if let Some(constant) = &schema.constant {
        return serde_json::from_str(constant).into_iter().collect();
    }
    let mut out: Vec<Value> = schema
        .examples
        .iter()
        .map(|e| coerce(e, schema))
        .filter(|e| allowed(schema, e))
        .collect();
    if let Some(values) = &schema.enumeration {
        out.extend(values.iter().filter_map(|v| serde_json::from_str(v).ok()));
    } else if !schema.one_of.is_empty() || !schema.any_of.is_empty() {
        for member in schema.one_of.iter().chain(&schema.any_of) {
            out.extend(values_at(member, depth + 1));
        }
    } else if !schema.all_of.is_empty() {
        out.extend(all_of(schema, depth));
    } else {
        let types: Vec<&str> = if schema.types.is_empty() {
            vec!["string", "integer", "number", "boolean", "object", "array"]
        } else {
            schema.types.iter().map(String::as_str).collect()
        };
        let examples_given = !out.is_empty();
        for kind in types {
            out.extend(typed(schema, kind, depth, examples_given));
        }
    }
    if schema.nullable {
        out.push(Value::Null);
    }
    dedup(&mut out);
    out.truncate(MAX_VALUES);
    out
}

/// `3600` for a string-typed field whose example is the number 3600: the example is
/// what the field holds, written loosely.
fn coerce(example: &Value, schema: &Schema) -> Value {
    match example {
        Value::Number(n) if schema.types.len() == 1 && schema.types.contains("string") => {
            Value::String(n.to_string())
        }
        other => other.clone(),
    }
}

/// Whether `value` meets the schema's enum, pattern and bounds (examples that do not are
/// the spec's mistakes, not instances).
fn allowed(schema: &Schema, value: &Value) -> bool {
    match value {
        Value::String(s) => string_allowed(schema, s),
        Value::Number(n) => n.as_f64().is_some_and(|n| number_allowed(schema, n)),
        _ => true,
    }
}

/// Whether `s` meets the schema's pattern and length bounds.
pub(crate) fn string_allowed(schema: &Schema, s: &str) -> bool {
    let length = s.chars().count() as u64;
    let bounds = &schema.bounds;
    let pattern_ok = match &schema.pattern {
        Some(pattern) => match regress::Regex::new(pattern) {
            Ok(regex) => regex.find(s).is_some(),
            // A pattern this reader cannot compile constrains nothing it can check.
            Err(_) => true,
        },
        None => true,
    };
    pattern_ok
        && bounds.min_length.is_none_or(|min| length >= min)
        && bounds.max_length.is_none_or(|max| length <= max)
}

fn number_allowed(schema: &Schema, n: f64) -> bool {
    let b = &schema.bounds;
    b.minimum.is_none_or(|min| n >= min)
        && b.maximum.is_none_or(|max| n <= max)
        && b.exclusive_minimum.is_none_or(|min| n > min)
        && b.exclusive_maximum.is_none_or(|max| n < max)
}

fn typed(schema: &Schema, kind: &str, depth: usize, examples_given: bool) -> Vec<Value> {
    match kind {
        "string" => strings(schema, examples_given),
        "integer" => integers(schema),
        "number" => numbers(schema),
        "boolean" => vec![json!(true), json!(false)],
        "array" => arrays(schema, depth),
        "object" => objects(schema, depth),
        _ => Vec::new(),
    }
}

fn strings(schema: &Schema, examples_given: bool) -> Vec<Value> {
    let by_format: Option<&[&str]> = match schema.format.as_deref() {
        Some("date-time") => Some(&["2024-01-01T00:00:00Z"]),
        Some("date") => Some(&["2024-01-01"]),
        Some("time") => Some(&["12:00:00"]),
        Some("byte") => Some(&["dGVzdA=="]),
        Some("uuid" | "guid") => Some(&["fb492b5e-7907-4d83-ba20-c7fb60ca35de"]),
        Some("email") => Some(&["someone@example.com"]),
        Some("uri" | "url") => Some(&["https://example.com/"]),
        Some("int32" | "int64" | "integer") => Some(&["0", "123", "-1"]),
        Some("number" | "double" | "float" | "decimal") => Some(&["0", "12.5", "-1"]),
        _ => None,
    };
    let bare = by_format.is_none() && schema.pattern.is_none();
    if bare && examples_given {
        return Vec::new();
    }
    let candidates = by_format.unwrap_or(STRINGS);
    let mut out: Vec<Value> = candidates
        .iter()
        .filter(|s| string_allowed(schema, s))
        .map(|s| json!(s))
        .collect();
    if out.is_empty() && schema.pattern.is_none() {
        // Only length bounds rule the candidates out: a string of the least length.
        let length = schema.bounds.min_length.unwrap_or(0).min(4096) as usize;
        let padded = "1".repeat(length);
        if string_allowed(schema, &padded) {
            out.push(json!(padded));
        }
    }
    out
}

fn integers(schema: &Schema) -> Vec<Value> {
    let b = &schema.bounds;
    let negative_allowed =
        b.minimum.is_some_and(|m| m < 0.0) || b.exclusive_minimum.is_some_and(|m| m < -1.0);
    let mut candidates = vec![0.0, 1.0, 3600.0, 86398.0, 9_007_199_254_740_991.0];
    if negative_allowed {
        candidates.push(-1.0);
    }
    candidates.extend(b.minimum.iter().chain(&b.maximum).map(|v| v.trunc()));
    candidates.extend(b.exclusive_minimum.map(|v| v.floor() + 1.0));
    candidates.extend(b.exclusive_maximum.map(|v| v.ceil() - 1.0));
    candidates
        .into_iter()
        .filter(|n| number_allowed(schema, *n))
        .map(|n| json!(n as i64))
        .collect()
}

fn numbers(schema: &Schema) -> Vec<Value> {
    let b = &schema.bounds;
    let mut candidates = vec![0.5, 12.5, 3600.0, 1e10];
    if b.minimum.is_some_and(|m| m < 0.0) {
        candidates.push(-1.5);
    }
    candidates.extend(b.minimum.iter().chain(&b.maximum).copied());
    candidates
        .into_iter()
        .filter(|n| number_allowed(schema, *n))
        .filter_map(|n| serde_json::Number::from_f64(n).map(Value::Number))
        .collect()
}

fn arrays(schema: &Schema, depth: usize) -> Vec<Value> {
    let items = schema
        .items
        .as_deref()
        .map(|items| values_at(items, depth + 1))
        .unwrap_or_else(|| vec![json!("x")]);
    let min = schema.bounds.min_items.unwrap_or(0).min(64) as usize;
    let max = schema.bounds.max_items.unwrap_or(u64::MAX);
    let mut out = Vec::new();
    if min == 0 {
        out.push(json!([]));
    }
    for item in items {
        let array = vec![item; min.max(1)];
        if array.len() as u64 <= max {
            out.push(Value::Array(array));
        }
    }
    out
}

/// Objects: one with every property at its first value; at the top, then one per other
/// value of each property (so that every value of every property is tried once), up to
/// [`MAX_VALUES`]. Nested objects are their first value only: their size would multiply.
fn objects(schema: &Schema, depth: usize) -> Vec<Value> {
    let mut base = Map::new();
    let mut variants = Vec::new();
    for (name, property) in &schema.properties {
        let values = values_at(property, depth + 1);
        let Some(first) = values.first() else {
            if schema.required.contains(name) {
                return Vec::new();
            }
            continue;
        };
        base.insert(name.clone(), first.clone());
        if depth == 0 {
            variants.extend(values.into_iter().skip(1).map(|v| (name.clone(), v)));
        }
    }
    let mut out = vec![Value::Object(base.clone())];
    for (name, value) in variants.into_iter().take(MAX_VALUES - 1) {
        let mut object = base.clone();
        object.insert(name, value);
        out.push(Value::Object(object));
    }
    out
}

/// An object meeting every member: the members' first values merged.
fn all_of(schema: &Schema, depth: usize) -> Vec<Value> {
    let mut merged = Map::new();
    for member in &schema.all_of {
        match values_at(member, depth + 1).into_iter().next() {
            Some(Value::Object(object)) => merged.extend(object),
            Some(other) => return vec![other],
            None => return Vec::new(),
        }
    }
    vec![Value::Object(merged)]
}

fn dedup(values: &mut Vec<Value>) {
    let mut seen = Vec::new();
    values.retain(|v| {
        if seen.contains(v) {
            false
        } else {
            seen.push(v.clone());
            true
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(pattern: Option<&str>, format: Option<&str>, examples: &[Value]) -> Schema {
        Schema {
            types: ["string".to_owned()].into(),
            pattern: pattern.map(str::to_owned),
            format: format.map(str::to_owned),
            examples: examples.to_vec(),
            ..Schema::default()
        }
    }

    #[test]
    fn a_pattern_that_allows_decimals_yields_one() {
        let values = values(&string(Some(r"^[0-9]+(\.[0-9]+)?$"), None, &[]));
        assert!(values.contains(&json!("12.5")), "{values:?}");
        assert!(!values.contains(&json!("abc")), "{values:?}");
    }

    #[test]
    fn a_bare_string_is_taken_at_its_examples_word() {
        assert_eq!(values(&string(None, None, &[json!(3600)])), [json!("3600")]);
        assert!(values(&string(None, None, &[])).contains(&json!("abc")));
    }

    #[test]
    fn a_wide_deep_object_stops_at_the_budget() {
        let mut schema = string(None, None, &[]);
        for _ in 0..8 {
            let mut object = Schema {
                types: ["object".to_owned()].into(),
                ..Schema::default()
            };
            for p in 0..20 {
                object
                    .properties
                    .insert(format!("p{p}"), std::sync::Arc::new(schema.clone()));
            }
            schema = object;
        }
        // 20^8 schemas if walked: the budget ends it, and nothing is claimed.
        assert!(values(&schema).is_empty());
    }

    #[test]
    fn a_format_gives_values_of_that_format() {
        assert_eq!(
            values(&string(None, Some("date-time"), &[])),
            [json!("2024-01-01T00:00:00Z")]
        );
    }

    #[test]
    fn a_number_always_has_a_fraction_and_an_integer_no_sign_unless_allowed() {
        let number = Schema {
            types: ["number".to_owned()].into(),
            ..Schema::default()
        };
        assert!(values(&number).contains(&json!(12.5)));
        let integer = Schema {
            types: ["integer".to_owned()].into(),
            ..Schema::default()
        };
        assert!(
            values(&integer)
                .iter()
                .all(|v| v.as_i64().is_some_and(|n| n >= 0))
        );
    }
}
