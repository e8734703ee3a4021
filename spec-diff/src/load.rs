//! Reading spec files, YAML or JSON, into JSON values: the spec and every local file its
//! `$ref`s name.
//!
//! The loader works on `serde_json::Value` rather than a typed OpenAPI model: one reader
//! serves 3.0 and 3.1 (whose schemas are JSON Schema 2020-12, with `type` lists and
//! numeric `exclusiveMinimum`), and a spec that is slightly invalid (an operation without
//! `responses`, a response without `description`) is still read, with a warning, the way
//! oasdiff reads it. YAML map keys that are not strings (`examples: {0: ...}`) become
//! strings. A document that cannot be read is a [`LoadError`] naming the file and the
//! place: `line:column` for syntax, a JSON pointer for structure.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde_json::Value;

use super::yaml_value::JsonValue;

/// Files one spec may pull in through `$ref`s.
const MAX_FILES: usize = 256;

/// A spec that could not be read, parsed or resolved. Names the file and the place;
/// says what to fix.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {reason}", place(location.as_deref()))]
pub struct LoadError {
    /// The file as given.
    pub file: String,
    /// Where in it: `line:column` (YAML or JSON syntax) or a JSON pointer (`/paths/~1x`).
    pub location: Option<String>,
    /// What is wrong with it.
    pub reason: String,
}

impl LoadError {
    pub(crate) fn new(file: &str, reason: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            location: None,
            reason: reason.into(),
        }
    }

    pub(crate) fn at(file: &str, pointer: &str, reason: impl Into<String>) -> Self {
        let pointer = if pointer.is_empty() { "/" } else { pointer };
        Self {
            file: file.to_owned(),
            location: Some(pointer.to_owned()),
            reason: reason.into(),
        }
    }

    fn line(file: &str, line: usize, column: usize, reason: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            location: Some(format!("{line}:{column}")),
            reason: reason.into(),
        }
    }
}

/// `file:3:7` for a line and column, `file at /paths/~1x` for a JSON pointer.
fn place(location: Option<&str>) -> String {
    match location {
        Some(pointer) if pointer.starts_with('/') => format!(" at {pointer}"),
        Some(line) => format!(":{line}"),
        None => String::new(),
    }
}

/// One parsed file.
#[derive(Debug)]
pub(crate) struct Document {
    /// The file as given (or as reached from a `$ref`), for messages.
    pub name: String,
    /// Its directory, for relative `$ref`s; `None` for a text held in memory.
    pub dir: Option<PathBuf>,
    /// Its content.
    pub root: Value,
}

/// The spec (document 0) and every file its `$ref`s reach.
#[derive(Debug)]
pub(crate) struct Sources {
    /// Index 0 is the spec itself.
    pub documents: Vec<Document>,
    /// Canonical path -> index in `documents`.
    by_path: BTreeMap<PathBuf, usize>,
}

impl Sources {
    /// Finds the document a `$ref`'s file part names, as seen from document `from`.
    pub(crate) fn document_for(&self, from: usize, file: &str) -> Option<usize> {
        if file.is_empty() {
            return Some(from);
        }
        let dir = self.documents.get(from)?.dir.as_ref()?;
        let path = dir.join(percent_decode(file)).canonicalize().ok()?;
        self.by_path.get(&path).copied()
    }
}

/// Reads the spec at `path` and the local files its `$ref`s name.
pub(crate) fn load_file(path: &Path) -> Result<Sources, LoadError> {
    let name = path.display().to_string();
    let text = read(path, &name)?;
    let root = parse_spec(&text, &name)?;
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mut sources = Sources {
        documents: vec![Document {
            name,
            dir: canonical.parent().map(Path::to_path_buf),
            root,
        }],
        by_path: BTreeMap::from([(canonical, 0)]),
    };
    load_referenced(&mut sources)?;
    Ok(sources)
}

/// Parses a spec held in memory; `name` is used in errors. `$ref`s to other files
/// cannot be followed from here (there is no directory): they are errors.
pub(crate) fn load_text(text: &str, name: &str) -> Result<Sources, LoadError> {
    let root = parse_spec(text, name)?;
    Ok(Sources {
        documents: vec![Document {
            name: name.to_owned(),
            dir: None,
            root,
        }],
        by_path: BTreeMap::new(),
    })
}

fn read(path: &Path, name: &str) -> Result<String, LoadError> {
    let bytes = std::fs::read(path)
        .map_err(|e| LoadError::new(name, format!("cannot read the file: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        LoadError::new(
            name,
            format!(
                "not UTF-8 text (byte {}): give a YAML or JSON file",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// Parses `text` and checks that it is an OpenAPI 3 document.
fn parse_spec(text: &str, name: &str) -> Result<Value, LoadError> {
    let value = parse_value(text, name)?;
    let Some(root) = value.as_object() else {
        return Err(LoadError::new(
            name,
            "not an OpenAPI document: the top level is not a mapping",
        ));
    };
    if let Some(swagger) = root.get("swagger") {
        return Err(LoadError::at(
            name,
            "/swagger",
            format!(
                "Swagger {} is not OpenAPI 3: convert it first (for example with \
                 swagger2openapi)",
                scalar_text(swagger)
            ),
        ));
    }
    let Some(openapi) = root.get("openapi") else {
        return Err(LoadError::new(
            name,
            "not an OpenAPI document: there is no `openapi: 3.x` field at the top",
        ));
    };
    let version = scalar_text(openapi);
    if !version.starts_with("3.") && version != "3" {
        return Err(LoadError::at(
            name,
            "/openapi",
            format!("OpenAPI {version} is not supported: give an OpenAPI 3.0 or 3.1 document"),
        ));
    }
    Ok(value)
}

/// YAML, or JSON (parsed as JSON so that JSON that is not valid YAML still reads).
pub(crate) fn parse_value(text: &str, name: &str) -> Result<Value, LoadError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(LoadError::new(
            name,
            "the file is empty: give an OpenAPI 3 document",
        ));
    }
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text).map_err(|e| {
            LoadError::line(name, e.line(), e.column(), format!("not valid JSON: {e}"))
        });
    }
    let syntax = |e: serde_yaml::Error| match e.location() {
        Some(at) => LoadError::line(
            name,
            at.line(),
            at.column(),
            format!("not valid YAML or JSON: {e}"),
        ),
        None => LoadError::new(name, format!("not valid YAML or JSON: {e}")),
    };
    if !text.contains("<<") {
        return serde_yaml::from_str::<JsonValue>(text)
            .map(|v| v.0)
            .map_err(syntax);
    }
    // `<<: *base` merge keys, as YAML 1.1 readers apply them, need serde_yaml's own value
    // tree; a malformed one stays a key.
    let mut yaml: serde_yaml::Value = serde_yaml::from_str(text).map_err(syntax)?;
    let _ = yaml.apply_merge();
    Ok(yaml_to_json(yaml))
}

/// A YAML value as JSON: non-string keys become their text, tags are dropped, numbers
/// JSON cannot hold (`.nan`, `.inf`) become strings.
fn yaml_to_json(value: serde_yaml::Value) -> Value {
    match value {
        serde_yaml::Value::Null => Value::Null,
        serde_yaml::Value::Bool(b) => Value::Bool(b),
        serde_yaml::Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .unwrap_or_else(|| Value::String(n.to_string()))
            }
        }
        serde_yaml::Value::String(s) => Value::String(s),
        serde_yaml::Value::Sequence(items) => {
            Value::Array(items.into_iter().map(yaml_to_json).collect())
        }
        serde_yaml::Value::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (key_text(k), yaml_to_json(v)))
                .collect(),
        ),
        serde_yaml::Value::Tagged(tagged) => yaml_to_json(tagged.value),
    }
}

fn key_text(key: serde_yaml::Value) -> String {
    match key {
        serde_yaml::Value::String(s) => s,
        serde_yaml::Value::Null => "null".to_owned(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Number(n) => n.to_string(),
        other => serde_json::to_string(&yaml_to_json(other)).unwrap_or_default(),
    }
}

/// `3.0.1` for a string, `3.1` for a number YAML read from `openapi: 3.1`.
pub(crate) fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Loads every local file reached through `$ref`s, breadth first.
fn load_referenced(sources: &mut Sources) -> Result<(), LoadError> {
    let mut next = 0;
    while next < sources.documents.len() {
        let mut files = Vec::new();
        collect_file_refs(
            &sources.documents[next].root,
            &mut String::new(),
            &mut files,
        );
        for (pointer, file) in files {
            let document = &sources.documents[next];
            let name = document.name.clone();
            let Some(dir) = document.dir.clone() else {
                continue;
            };
            if file.contains("://") {
                return Err(LoadError::at(
                    &name,
                    &pointer,
                    format!(
                        "$ref {file} is a remote reference; it is not fetched: bundle the \
                         spec into local files first"
                    ),
                ));
            }
            let path = dir.join(percent_decode(&file));
            let canonical = path.canonicalize().map_err(|e| {
                LoadError::at(
                    &name,
                    &pointer,
                    format!("$ref {file}: cannot read {}: {e}", path.display()),
                )
            })?;
            if sources.by_path.contains_key(&canonical) {
                continue;
            }
            if sources.documents.len() >= MAX_FILES {
                return Err(LoadError::at(
                    &name,
                    &pointer,
                    format!("the $refs reach more than {MAX_FILES} files"),
                ));
            }
            let shown = path.display().to_string();
            let text = read(&canonical, &shown)?;
            let root = parse_value(&text, &shown)?;
            sources
                .by_path
                .insert(canonical.clone(), sources.documents.len());
            sources.documents.push(Document {
                name: shown,
                dir: canonical.parent().map(Path::to_path_buf),
                root,
            });
        }
        next += 1;
    }
    Ok(())
}

/// Every `$ref` whose file part is not empty, with the pointer where it stands.
fn collect_file_refs(value: &Value, pointer: &mut String, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                let file = reference.split('#').next().unwrap_or_default();
                if !file.is_empty() {
                    out.push((pointer.clone(), file.to_owned()));
                }
            }
            for (key, child) in map {
                let len = pointer.len();
                push_segment(pointer, key);
                collect_file_refs(child, pointer, out);
                pointer.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let len = pointer.len();
                push_segment(pointer, &i.to_string());
                collect_file_refs(child, pointer, out);
                pointer.truncate(len);
            }
        }
        _ => {}
    }
}

/// Appends `/segment` to a JSON pointer, escaped.
pub(crate) fn push_segment(pointer: &mut String, segment: &str) {
    pointer.push('/');
    for c in segment.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

/// `%7B` -> `{` in a `$ref` (URI-encoded, as some tools write them).
pub(crate) fn percent_decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
