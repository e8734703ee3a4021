//! Collects the documentation-only texts of a spec (descriptions, summaries, examples,
//! titles, tags) by JSON pointer: they are compared apart, as changes that cannot break a
//! client.

use serde_json::Value;

use super::{load::push_segment, model::Api};

/// Keys whose values only document: a change under them cannot break a client.
const DOC_KEYS: &[&str] = &[
    "description",
    "summary",
    "example",
    "examples",
    "title",
    "externalDocs",
    "tags",
];

/// Records every documentation-only value, and every container, by JSON pointer.
pub(crate) fn collect(value: &Value, api: &mut Api) {
    walk(value, &mut String::new(), false, api);
}

fn walk(value: &Value, pointer: &mut String, in_doc: bool, api: &mut Api) {
    if in_doc {
        let text = match value {
            Value::String(s) => s.clone(),
            // serde_json's maps sort their keys: a YAML and a JSON copy give one text.
            other => other.to_string(),
        };
        api.docs.insert(pointer.clone(), text);
        return;
    }
    match value {
        Value::Object(map) => {
            api.containers.insert(pointer.clone());
            // `properties: {description: ...}` names a property, not a description.
            let is_name_map = pointer.ends_with("/properties");
            for (key, child) in map.iter().filter(|(k, _)| !k.starts_with("x-")) {
                let len = pointer.len();
                push_segment(pointer, key);
                let doc = !is_name_map && DOC_KEYS.contains(&key.as_str());
                walk(child, pointer, doc, api);
                pointer.truncate(len);
            }
        }
        Value::Array(items) => {
            api.containers.insert(pointer.clone());
            for (i, child) in items.iter().enumerate() {
                let len = pointer.len();
                push_segment(pointer, &i.to_string());
                walk(child, pointer, false, api);
                pointer.truncate(len);
            }
        }
        _ => {}
    }
}
