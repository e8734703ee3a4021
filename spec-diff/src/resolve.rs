//! Builds the [`Api`] model from a loaded spec: follows `$ref`s (in the spec, or in the
//! local files it names), reads OpenAPI 3.0 and 3.1 alike, and warns rather than refuses
//! where oasdiff reads on (a missing `responses`, `content: null`).
//!
//! A dangling `$ref`, an alias cycle (`A: $ref B`, `B: $ref A`), or a `$ref` to another
//! file from a spec held in memory is an error naming the file and the JSON pointer; a
//! schema that refers back to itself through a property is legal and is compared by name
//! at the point where it recurses.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
};

use serde_json::{Map, Value};

use super::{
    load::{LoadError, Sources, percent_decode, push_segment, scalar_text},
    model::{
        Api, Body, Bounds, Content, Header, Operation, Parameter, Response, Schema, Security,
        SecurityScheme,
    },
};

/// Schema nodes one spec may hold (each named schema counts once, however often it is
/// reached); past this a spec is refused rather than left to exhaust memory.
const MAX_SCHEMA_NODES: usize = 2_000_000;

/// `$ref` hops followed from one place before calling it a cycle.
const MAX_REF_HOPS: usize = 64;

/// How deep inline schemas are read; deeper ones are left out with a warning.
const MAX_SCHEMA_DEPTH: usize = 64;

/// JSON Schema keywords that hold one subschema.
const SUBSCHEMA_KEYWORDS: &[&str] = &[
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
];

/// How a webhook is keyed among the operations: `webhook newPet`.
pub(crate) const WEBHOOK_PREFIX: &str = "webhook ";

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// A parameter's key in [`Operation::parameters`]: (`in`, name).
type ParameterKey = (String, String);

/// A place in the loaded files: a document and a JSON pointer into it.
#[derive(Clone)]
struct At<'v> {
    doc: usize,
    pointer: String,
    value: &'v Value,
}

impl<'v> At<'v> {
    fn child(&self, key: &str) -> Option<At<'v>> {
        let value = match self.value {
            Value::Object(map) => map.get(key)?,
            Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
        let mut pointer = self.pointer.clone();
        push_segment(&mut pointer, key);
        Some(At {
            doc: self.doc,
            pointer,
            value,
        })
    }

    fn entries(&self) -> Vec<(String, At<'v>)> {
        match self.value {
            Value::Object(map) => map
                .keys()
                .filter_map(|k| Some((k.clone(), self.child(k)?)))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn items(&self) -> Vec<At<'v>> {
        match self.value {
            Value::Array(items) => (0..items.len())
                .filter_map(|i| self.child(&i.to_string()))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn object(&self) -> Option<&'v Map<String, Value>> {
        self.value.as_object()
    }

    fn str(&self, key: &str) -> Option<&'v str> {
        self.object()?.get(key)?.as_str()
    }

    fn bool(&self, key: &str) -> bool {
        self.object()
            .and_then(|m| m.get(key))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

/// Builds the model of `sources` (document 0 is the spec).
pub(crate) fn api(sources: &Sources) -> Result<Api, LoadError> {
    let root = At {
        doc: 0,
        pointer: String::new(),
        value: &sources.documents[0].root,
    };
    let mut resolver = Resolver {
        sources,
        resolved: HashMap::new(),
        expanding: Vec::new(),
        nodes: 0,
        warnings: Vec::new(),
    };
    let mut api = resolver.api(&root)?;
    api.warnings.append(&mut resolver.warnings);
    super::documentation::collect(root.value, &mut api);
    Ok(api)
}

struct Resolver<'v> {
    sources: &'v Sources,
    /// Named schemas already resolved, by document and pointer: each is built once.
    resolved: HashMap<(usize, String), Arc<Schema>>,
    /// The named schemas being expanded, innermost last: a `$ref` to one is recursion.
    expanding: Vec<(usize, String)>,
    nodes: usize,
    warnings: Vec<String>,
}

impl<'v> Resolver<'v> {
    fn error(&self, at: &At<'_>, reason: impl Into<String>) -> LoadError {
        LoadError::at(&self.sources.documents[at.doc].name, &at.pointer, reason)
    }

    fn warn(&mut self, at: &At<'_>, what: &str) {
        let file = &self.sources.documents[at.doc].name;
        let pointer = if at.pointer.is_empty() {
            "/"
        } else {
            &at.pointer
        };
        self.warnings
            .push(format!("{file} at {pointer}: {what}; read on"));
    }

    /// Follows `$ref`s from `at` to the value they lead to.
    fn deref(&self, at: At<'v>) -> Result<At<'v>, LoadError> {
        let mut current = at.clone();
        let mut seen = BTreeSet::new();
        for _ in 0..MAX_REF_HOPS {
            let Some(reference) = current.str("$ref") else {
                return Ok(current);
            };
            let (file, fragment) = reference.split_once('#').unwrap_or((reference, ""));
            let Some(doc) = self.sources.document_for(current.doc, file) else {
                return Err(self.error(
                    &current,
                    format!(
                        "$ref {reference} names another file, which cannot be read from here: \
                         give the spec as a file beside it, or bundle the spec into one file"
                    ),
                ));
            };
            let pointer = percent_decode(fragment);
            if !seen.insert((doc, pointer.clone())) {
                break;
            }
            let value = self.sources.documents[doc]
                .root
                .pointer(&pointer)
                .ok_or_else(|| {
                    self.error(
                        &current,
                        format!("$ref {reference} points at nothing (dangling)"),
                    )
                })?;
            current = At {
                doc,
                pointer,
                value,
            };
        }
        Err(self.error(
            &at,
            format!(
                "$ref {} is a cycle of references that never reaches a definition",
                at.str("$ref").unwrap_or_default()
            ),
        ))
    }

    fn api(&mut self, root: &At<'v>) -> Result<Api, LoadError> {
        let mut api = Api {
            version: root
                .child("info")
                .and_then(|i| i.child("version"))
                .map(|v| scalar_text(v.value))
                .unwrap_or_default(),
            ..Api::default()
        };
        if root.child("info").is_none() {
            self.warn(root, "no `info`");
        }
        for server in root.child("servers").map(|s| s.items()).unwrap_or_default() {
            if let Some(url) = server.str("url") {
                api.servers.insert(url.to_owned());
            }
        }
        if let Some(components) = root.child("components") {
            for (name, scheme) in components
                .child("securitySchemes")
                .map(|s| s.entries())
                .unwrap_or_default()
            {
                let scheme = self.deref(scheme)?;
                api.security_schemes.insert(name, security_scheme(&scheme));
            }
            api.schema_names = components
                .child("schemas")
                .map(|s| s.entries().into_iter().map(|(name, _)| name).collect())
                .unwrap_or_default();
        }
        api.global_security = root
            .child("security")
            .map(|s| security(&s))
            .unwrap_or_default();
        let paths = root.child("paths");
        if paths.is_none() && root.child("webhooks").is_none() {
            self.warn(root, "no `paths`");
        }
        // 3.1 webhooks: requests the API sends, keyed apart from the paths.
        let webhooks = root
            .child("webhooks")
            .map(|w| w.entries())
            .unwrap_or_default()
            .into_iter()
            .map(|(name, item)| (format!("{WEBHOOK_PREFIX}{name}"), item));
        for (path, item) in paths
            .map(|p| p.entries())
            .unwrap_or_default()
            .into_iter()
            .chain(webhooks)
        {
            if path.starts_with("x-") {
                continue;
            }
            let item = self.deref(item)?;
            let shared = item.child("parameters");
            for method in METHODS {
                let Some(operation) = item.child(method) else {
                    continue;
                };
                let resolved = self.operation(&operation, shared.as_ref())?;
                api.operations
                    .insert((path.clone(), method.to_uppercase()), resolved);
            }
        }
        Ok(api)
    }

    fn operation(
        &mut self,
        operation: &At<'v>,
        shared: Option<&At<'v>>,
    ) -> Result<Operation, LoadError> {
        let mut resolved = Operation {
            id: operation.str("operationId").map(str::to_owned),
            deprecated: operation.bool("deprecated"),
            security: operation.child("security").map(|s| security(&s)),
            ..Operation::default()
        };
        let path_level = shared.map(At::items).unwrap_or_default();
        let own = operation
            .child("parameters")
            .map(|p| p.items())
            .unwrap_or_default();
        let parameters = path_level
            .into_iter()
            .map(|p| (true, p))
            .chain(own.into_iter().map(|p| (false, p)));
        for (path_level, parameter) in parameters {
            if let Some((key, mut parameter)) = self.parameter(parameter)? {
                parameter.path_level = path_level;
                resolved.parameters.insert(key, parameter);
            }
        }
        if let Some(body) = operation
            .child("requestBody")
            .filter(|b| !b.value.is_null())
        {
            let body = self.deref(body)?;
            resolved.request_body = Some(Body {
                required: body.bool("required"),
                content: self.content(body.child("content"))?,
            });
        }
        match operation
            .child("responses")
            .filter(|r| r.object().is_some())
        {
            None => self.warn(operation, "an operation without `responses`"),
            Some(responses) => {
                for (status, response) in responses.entries() {
                    if status.starts_with("x-") {
                        continue;
                    }
                    let response = self.deref(response)?;
                    let resolved_response = self.response(&response)?;
                    resolved
                        .responses
                        .insert(status.to_uppercase(), resolved_response);
                }
            }
        }
        Ok(resolved)
    }

    fn parameter(
        &mut self,
        parameter: At<'v>,
    ) -> Result<Option<(ParameterKey, Parameter)>, LoadError> {
        let parameter = self.deref(parameter)?;
        let (Some(name), Some(location)) = (parameter.str("name"), parameter.str("in")) else {
            self.warn(&parameter, "a parameter without `name` or `in` is left out");
            return Ok(None);
        };
        let schema = self.schema_or_content(&parameter)?;
        let key_name = if location == "header" {
            name.to_ascii_lowercase()
        } else {
            name.to_owned()
        };
        Ok(Some((
            (location.to_owned(), key_name),
            Parameter {
                name: name.to_owned(),
                required: parameter.bool("required") || location == "path",
                path_level: false,
                schema,
            },
        )))
    }

    /// A parameter's or header's `schema`, or the schema of its one `content` entry.
    fn schema_or_content(&mut self, at: &At<'v>) -> Result<Arc<Schema>, LoadError> {
        if let Some(schema) = at.child("schema") {
            return self.schema(schema, 0);
        }
        let first = at
            .child("content")
            .and_then(|c| c.entries().into_iter().next())
            .and_then(|(_, media)| media.child("schema"));
        match first {
            Some(schema) => self.schema(schema, 0),
            None => Ok(Arc::new(Schema::default())),
        }
    }

    fn response(&mut self, response: &At<'v>) -> Result<Response, LoadError> {
        if response.object().is_none() {
            self.warn(
                response,
                "a response that is not a mapping is read as empty",
            );
            return Ok(Response::default());
        }
        if response.child("description").is_none() {
            self.warn(response, "a response without `description`");
        }
        let mut headers = BTreeMap::new();
        for (name, header) in response
            .child("headers")
            .map(|h| h.entries())
            .unwrap_or_default()
        {
            let header = self.deref(header)?;
            let schema = self.schema_or_content(&header)?;
            headers.insert(
                name.to_ascii_lowercase(),
                Header {
                    name,
                    required: header.bool("required"),
                    schema,
                },
            );
        }
        Ok(Response {
            headers,
            content: self.content(response.child("content"))?,
        })
    }

    fn content(&mut self, content: Option<At<'v>>) -> Result<Content, LoadError> {
        let mut resolved = BTreeMap::new();
        let Some(content) = content else {
            return Ok(resolved);
        };
        if content.object().is_none() {
            let what = if content.value.is_null() {
                "`content: null` is read as no content"
            } else {
                "`content` that is not a mapping is read as empty"
            };
            self.warn(&content, what);
            return Ok(resolved);
        }
        for (media_type, media) in content.entries() {
            let media = self.deref(media)?;
            let schema = match media.child("schema").filter(|s| !s.value.is_null()) {
                Some(schema) => Some(self.schema(schema, 0)?),
                None => None,
            };
            resolved.insert(media_type, schema);
        }
        Ok(resolved)
    }

    fn schema(&mut self, at: At<'v>, depth: usize) -> Result<Arc<Schema>, LoadError> {
        if depth > MAX_SCHEMA_DEPTH {
            self.warn(&at, "a schema nested deeper than this is not compared");
            return Ok(Arc::new(Schema::default()));
        }
        let Some(reference) = at.str("$ref").map(str::to_owned) else {
            return Ok(Arc::new(self.inline_schema(&at, None, depth)?));
        };
        let target = self.deref(at.clone())?;
        let key = (target.doc, target.pointer.clone());
        if let Some(done) = self.resolved.get(&key) {
            return Ok(Arc::clone(done));
        }
        let name = schema_name(&target.pointer, &reference);
        if self.expanding.contains(&key) {
            return Ok(Arc::new(
                Schema {
                    name: Some(name),
                    recursive: true,
                    ..Schema::default()
                }
                .seal(),
            ));
        }
        self.expanding.push(key.clone());
        let resolved = self.inline_schema(&target, Some(name), depth);
        self.expanding.pop();
        let resolved = Arc::new(resolved?);
        self.resolved.insert(key, Arc::clone(&resolved));
        Ok(resolved)
    }

    fn inline_schema(
        &mut self,
        at: &At<'v>,
        name: Option<String>,
        depth: usize,
    ) -> Result<Schema, LoadError> {
        self.nodes += 1;
        if self.nodes > MAX_SCHEMA_NODES {
            return Err(self.error(
                at,
                format!("the spec has more than {MAX_SCHEMA_NODES} schema nodes"),
            ));
        }
        let mut schema = Schema {
            name,
            ..Schema::default()
        };
        let Some(map) = at.object() else {
            // `true`/`false` are 3.1 schemas (anything / nothing); other values are errors
            // in the spec that a client cannot act on.
            if !at.value.is_boolean() && !at.value.is_null() {
                self.warn(at, "a schema that is not a mapping is read as `any`");
            }
            return Ok(schema.seal());
        };
        match map.get("type") {
            Some(Value::String(t)) => {
                schema.types.insert(t.clone());
            }
            Some(Value::Array(types)) => {
                schema
                    .types
                    .extend(types.iter().filter_map(Value::as_str).map(str::to_owned));
            }
            _ => {}
        }
        schema.nullable = at.bool("nullable") || schema.types.remove("null");
        schema.format = at
            .str("format")
            .filter(|f| !f.is_empty())
            .map(str::to_owned);
        if let Some(Value::Array(values)) = map.get("x-extensible-enum") {
            schema.extensible_enum = Some(values.iter().map(Value::to_string).collect());
        }
        if let Some(Value::Array(values)) = map.get("enum") {
            let mut values: BTreeSet<String> = values.iter().map(Value::to_string).collect();
            // A 3.1 `enum: [a, null]` states nullability, not a value.
            if values.remove("null") {
                schema.nullable = true;
            }
            schema.enumeration = Some(values);
        }
        schema.constant = map.get("const").map(Value::to_string);
        schema.default = map.get("default").map(Value::to_string);
        schema.pattern = at
            .str("pattern")
            .filter(|p| !p.is_empty())
            .map(str::to_owned);
        schema.read_only = at.bool("readOnly");
        schema.write_only = at.bool("writeOnly");
        schema.bounds = bounds(map);
        if let Some(Value::Array(required)) = map.get("required") {
            schema.required = required
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
        }
        if let Some(example) = map.get("example") {
            schema.examples.push(example.clone());
        }
        if let Some(Value::Array(examples)) = map.get("examples") {
            schema.examples.extend(examples.iter().cloned());
        }
        for (property, child) in at
            .child("properties")
            .map(|p| p.entries())
            .unwrap_or_default()
        {
            let child = self.schema(child, depth + 1)?;
            schema.properties.insert(property, child);
        }
        if let Some(additional) = at
            .child("additionalProperties")
            .filter(|a| a.object().is_some())
        {
            schema.additional = Some(self.schema(additional, depth + 1)?);
        }
        if let Some(items) = at.child("items") {
            let items = match items.value {
                // Tuple form (draft 4 style): the first item stands for all.
                Value::Array(_) => items.child("0"),
                _ => Some(items),
            };
            if let Some(items) = items {
                schema.items = Some(self.schema(items, depth + 1)?);
            }
        }
        for key in SUBSCHEMA_KEYWORDS {
            if let Some(child) = at
                .child(key)
                .filter(|c| c.object().is_some() || c.value.is_boolean())
            {
                let child = self.schema(child, depth + 1)?;
                schema.subschemas.insert((*key).to_owned(), child);
            }
        }
        for (i, child) in at
            .child("prefixItems")
            .map(|p| p.items())
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let child = self.schema(child, depth + 1)?;
            schema.subschemas.insert(format!("prefixItems/{i}"), child);
        }
        for keyword in ["patternProperties", "dependentSchemas"] {
            for (key, child) in at.child(keyword).map(|p| p.entries()).unwrap_or_default() {
                let child = self.schema(child, depth + 1)?;
                schema.subschemas.insert(format!("{keyword}/{key}"), child);
            }
        }
        if let Some(Value::Object(dependent)) = map.get("dependentRequired") {
            schema.dependent_required = dependent
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect();
        }
        schema.content = (
            at.str("contentMediaType").map(str::to_owned),
            at.str("contentEncoding").map(str::to_owned),
        );
        for (key, members) in [
            ("oneOf", &mut schema.one_of),
            ("anyOf", &mut schema.any_of),
            ("allOf", &mut schema.all_of),
        ] {
            for member in at.child(key).map(|m| m.items()).unwrap_or_default() {
                members.push(self.schema(member, depth + 1)?);
            }
        }
        Ok(schema.seal())
    }
}

/// `Widget` for `#/components/schemas/Widget`; the file's stem for a whole-file `$ref`.
fn schema_name(pointer: &str, reference: &str) -> String {
    match pointer.rsplit('/').next().filter(|s| !s.is_empty()) {
        Some(last) => last.replace("~1", "/").replace("~0", "~"),
        None => {
            let file = reference.split('#').next().unwrap_or(reference);
            let file = file.rsplit('/').next().unwrap_or(file);
            file.split('.').next().unwrap_or(file).to_owned()
        }
    }
}

fn bounds(map: &Map<String, Value>) -> Bounds {
    let number = |key: &str| map.get(key).and_then(Value::as_f64);
    let size = |key: &str| map.get(key).and_then(Value::as_u64);
    Bounds {
        minimum: number("minimum"),
        maximum: number("maximum"),
        // 3.1's numeric form; 3.0's `exclusiveMinimum: true` only qualifies `minimum`.
        exclusive_minimum: number("exclusiveMinimum"),
        exclusive_maximum: number("exclusiveMaximum"),
        min_length: size("minLength"),
        max_length: size("maxLength"),
        min_items: size("minItems"),
        max_items: size("maxItems"),
        min_contains: size("minContains"),
        max_contains: size("maxContains"),
    }
}

/// A `security` list: each alternative, scheme name -> scopes.
fn security(at: &At<'_>) -> Security {
    at.items()
        .iter()
        .filter_map(|alternative| alternative.object())
        .map(|alternative| {
            alternative
                .iter()
                .map(|(scheme, scopes)| {
                    let scopes = scopes
                        .as_array()
                        .map(|s| {
                            s.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default();
                    (scheme.clone(), scopes)
                })
                .collect()
        })
        .collect()
}

fn security_scheme(at: &At<'_>) -> SecurityScheme {
    let kind = at.str("type").unwrap_or_default();
    let summary = match kind {
        "apiKey" => format!(
            "apikey {} in {}",
            at.str("name").unwrap_or_default(),
            at.str("in").unwrap_or_default()
        )
        .to_lowercase(),
        "http" => format!(
            "http {}",
            at.str("scheme").unwrap_or_default().to_lowercase()
        ),
        "openIdConnect" => format!(
            "openIdConnect {}",
            at.str("openIdConnectUrl").unwrap_or_default()
        ),
        other => other.to_owned(),
    };
    let oauth_scopes = at
        .child("flows")
        .map(|f| f.entries())
        .unwrap_or_default()
        .into_iter()
        .map(|(flow, body)| {
            let scopes = body
                .child("scopes")
                .and_then(|s| s.object().map(|m| m.keys().cloned().collect()))
                .unwrap_or_default();
            (flow, scopes)
        })
        .collect();
    SecurityScheme {
        summary,
        oauth_scopes,
    }
}
