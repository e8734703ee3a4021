//! Reading a spec file (YAML or JSON) and resolving its `$ref`s into the [`Api`] model.
//!
//! Only local references (`#/components/...`) are followed: the crate's spec has no
//! others, and following a URL would reach beyond the machine. A dangling reference, an
//! alias cycle (`A: $ref B`, `B: $ref A`) or an external reference is an error that names
//! the file and the reference; a schema that refers back to itself through a property is
//! legal and is compared by name at the point where it recurses.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use openapiv3::{
    Components, OpenAPI, Parameter as SpecParameter, ParameterSchemaOrContent, ReferenceOr,
    RequestBody, Response, Schema as SpecSchema, SchemaKind, SecurityScheme, StatusCode, Type,
};

use super::model::{Api, Body, Content, Operation, Parameter, Schema};

/// Schema nodes one spec may expand to; a spec past this (a `$ref` fan-out that grows
/// exponentially) is refused rather than left to exhaust memory.
const MAX_SCHEMA_NODES: usize = 100_000;

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

/// A spec that could not be read, parsed or resolved. Names the file; says what to fix.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct LoadError {
    /// The file as given.
    pub file: String,
    /// What is wrong with it.
    pub reason: String,
}

impl LoadError {
    fn new(file: &str, reason: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Reads and resolves the spec at `path`.
pub(crate) fn load_file(path: &Path) -> Result<Api, LoadError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| LoadError::new(&name, format!("cannot read the file: {e}")))?;
    load_text(&text, &name)
}

/// Parses and resolves a spec held in memory; `name` is used in errors.
pub(crate) fn load_text(text: &str, name: &str) -> Result<Api, LoadError> {
    let value = parse_value(text, name)?;
    let openapi = value
        .get("openapi")
        .and_then(serde_yaml::Value::as_str)
        .ok_or_else(|| {
            LoadError::new(
                name,
                "not an OpenAPI document: there is no `openapi: 3.0.x` field at the top",
            )
        })?;
    if !openapi.starts_with("3.0") {
        return Err(LoadError::new(
            name,
            format!("OpenAPI {openapi} is not supported: give an OpenAPI 3.0.x document"),
        ));
    }
    let spec: OpenAPI = serde_yaml::from_value(value.clone())
        .map_err(|e| LoadError::new(name, format!("not a valid OpenAPI 3.0 document: {e}")))?;
    let mut api = Resolver::new(&spec, name).api()?;
    collect_docs(&value, &mut String::new(), false, &mut api);
    Ok(api)
}

/// YAML, or JSON (parsed as JSON so that JSON that is not valid YAML still reads).
fn parse_value(text: &str, name: &str) -> Result<serde_yaml::Value, LoadError> {
    if text.trim().is_empty() {
        return Err(LoadError::new(
            name,
            "the file is empty: give an OpenAPI 3.0 document",
        ));
    }
    let value = if text.trim_start().starts_with('{') {
        let json: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| LoadError::new(name, format!("not valid JSON: {e}")))?;
        serde_yaml::to_value(json)
            .map_err(|e| LoadError::new(name, format!("cannot convert the JSON: {e}")))?
    } else {
        serde_yaml::from_str(text)
            .map_err(|e| LoadError::new(name, format!("not valid YAML or JSON: {e}")))?
    };
    if !value.is_mapping() {
        return Err(LoadError::new(
            name,
            "not an OpenAPI document: the top level is not a mapping",
        ));
    }
    Ok(value)
}

/// Records every documentation-only value, and every container, by JSON pointer.
fn collect_docs(value: &serde_yaml::Value, pointer: &mut String, in_doc: bool, api: &mut Api) {
    if in_doc {
        let text = match value {
            serde_yaml::Value::String(s) => s.clone(),
            // Through serde_json::Value, whose maps sort their keys: a YAML and a JSON
            // copy of one spec then give the same text.
            other => serde_json::to_value(other)
                .map(|v| v.to_string())
                .unwrap_or_default(),
        };
        api.docs.insert(pointer.clone(), text);
        return;
    }
    if value.is_mapping() || value.is_sequence() {
        api.containers.insert(pointer.clone());
    }
    let children: Vec<(String, &serde_yaml::Value)> = match value {
        serde_yaml::Value::Mapping(map) => map
            .iter()
            .map(|(k, v)| (key_text(k), v))
            .filter(|(k, _)| !k.starts_with("x-"))
            .collect(),
        serde_yaml::Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        serde_yaml::Value::Tagged(tagged) => vec![(String::new(), &tagged.value)],
        _ => return,
    };
    let in_mapping = value.is_mapping();
    for (key, child) in children {
        let len = pointer.len();
        pointer.push('/');
        pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
        // `properties: {description: ...}` names a property, not a description.
        let parent_is_name_map = pointer[..len].ends_with("/properties");
        let doc = in_mapping && !parent_is_name_map && DOC_KEYS.contains(&key.as_str());
        collect_docs(child, pointer, doc, api);
        pointer.truncate(len);
    }
}

fn key_text(key: &serde_yaml::Value) -> String {
    match key {
        serde_yaml::Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .map(|s| s.trim_end().to_owned())
            .unwrap_or_default(),
    }
}

/// Follows `$ref`s in one spec, counting the schema nodes it builds.
struct Resolver<'a> {
    spec: &'a OpenAPI,
    components: Option<&'a Components>,
    file: &'a str,
    expanding: Vec<String>,
    nodes: usize,
}

impl<'a> Resolver<'a> {
    fn new(spec: &'a OpenAPI, file: &'a str) -> Self {
        Self {
            spec,
            components: spec.components.as_ref(),
            file,
            expanding: Vec::new(),
            nodes: 0,
        }
    }

    fn error(&self, reason: impl Into<String>) -> LoadError {
        LoadError::new(self.file, reason)
    }

    fn api(mut self) -> Result<Api, LoadError> {
        let spec = self.spec;
        let mut api = Api {
            version: spec.info.version.clone(),
            servers: spec.servers.iter().map(|s| s.url.clone()).collect(),
            ..Api::default()
        };
        if let Some(components) = self.components {
            for (name, scheme) in &components.security_schemes {
                let summary = match scheme {
                    ReferenceOr::Item(scheme) => scheme_summary(scheme),
                    ReferenceOr::Reference { reference } => format!("$ref {reference}"),
                };
                api.security_schemes.insert(name.clone(), summary);
            }
        }
        let global_security = security_set(spec.security.as_deref().unwrap_or(&[]));
        for (path, item) in spec.paths.iter() {
            let ReferenceOr::Item(item) = item else {
                return Err(self.error(format!(
                    "path {path} is a $ref; only inline path items are supported"
                )));
            };
            for (method, operation) in item.iter() {
                let mut resolved = Operation {
                    id: operation.operation_id.clone(),
                    deprecated: operation.deprecated,
                    security: operation
                        .security
                        .as_deref()
                        .map(security_set)
                        .unwrap_or_else(|| global_security.clone()),
                    ..Operation::default()
                };
                for parameter in item.parameters.iter().chain(&operation.parameters) {
                    let (key, parameter) = self.parameter(parameter)?;
                    resolved.parameters.insert(key, parameter);
                }
                if let Some(body) = &operation.request_body {
                    resolved.request_body = Some(self.request_body(body)?);
                }
                let statuses = operation
                    .responses
                    .responses
                    .iter()
                    .map(|(status, response)| (status_text(status), response))
                    .chain(
                        operation
                            .responses
                            .default
                            .iter()
                            .map(|response| ("default".to_owned(), response)),
                    );
                for (status, response) in statuses {
                    let response = self.response(response)?;
                    resolved.responses.insert(status, response);
                }
                api.operations
                    .insert((path.clone(), method.to_uppercase()), resolved);
            }
        }
        Ok(api)
    }

    /// Looks `reference` up in one `components` map, following alias chains.
    fn component<T>(
        &self,
        reference: &str,
        kind: &str,
        lookup: impl Fn(&'a Components, &str) -> Option<&'a ReferenceOr<T>>,
    ) -> Result<&'a T, LoadError> {
        let mut seen = BTreeSet::new();
        let mut current = reference.to_owned();
        loop {
            let prefix = format!("#/components/{kind}/");
            let Some(name) = current.strip_prefix(&prefix) else {
                return Err(self.error(format!(
                    "$ref {current} is not a local `{prefix}...` reference; \
                     bundle the spec into one file first"
                )));
            };
            if !seen.insert(current.clone()) {
                return Err(self.error(format!(
                    "$ref {reference} is a cycle of references that never reaches a definition"
                )));
            }
            let found = self
                .components
                .and_then(|c| lookup(c, &unescape(name)))
                .ok_or_else(|| {
                    self.error(format!("$ref {current} points at nothing (dangling)"))
                })?;
            match found {
                ReferenceOr::Item(item) => return Ok(item),
                ReferenceOr::Reference { reference } => current = reference.clone(),
            }
        }
    }

    fn parameter(
        &mut self,
        parameter: &ReferenceOr<SpecParameter>,
    ) -> Result<((String, String), Parameter), LoadError> {
        let parameter = match parameter {
            ReferenceOr::Item(p) => p,
            ReferenceOr::Reference { reference } => {
                self.component(reference, "parameters", |c, n| c.parameters.get(n))?
            }
        };
        let location = match parameter {
            SpecParameter::Query { .. } => "query",
            SpecParameter::Header { .. } => "header",
            SpecParameter::Path { .. } => "path",
            SpecParameter::Cookie { .. } => "cookie",
        };
        let data = parameter.parameter_data_ref();
        let schema = match &data.format {
            ParameterSchemaOrContent::Schema(schema) => self.schema_ref(schema)?,
            ParameterSchemaOrContent::Content(content) => {
                match content.values().next().and_then(|m| m.schema.as_ref()) {
                    Some(schema) => self.schema_ref(schema)?,
                    None => Schema::default(),
                }
            }
        };
        let key_name = if location == "header" {
            data.name.to_ascii_lowercase()
        } else {
            data.name.clone()
        };
        Ok((
            (location.to_owned(), key_name),
            Parameter {
                name: data.name.clone(),
                required: data.required || location == "path",
                schema,
            },
        ))
    }

    fn request_body(&mut self, body: &ReferenceOr<RequestBody>) -> Result<Body, LoadError> {
        let body = match body {
            ReferenceOr::Item(b) => b,
            ReferenceOr::Reference { reference } => {
                self.component(reference, "requestBodies", |c, n| c.request_bodies.get(n))?
            }
        };
        Ok(Body {
            required: body.required,
            content: self.content(&body.content)?,
        })
    }

    fn response(&mut self, response: &ReferenceOr<Response>) -> Result<Content, LoadError> {
        let response = match response {
            ReferenceOr::Item(r) => r,
            ReferenceOr::Reference { reference } => {
                self.component(reference, "responses", |c, n| c.responses.get(n))?
            }
        };
        self.content(&response.content)
    }

    fn content<'m>(
        &mut self,
        content: impl IntoIterator<Item = (&'m String, &'m openapiv3::MediaType)>,
    ) -> Result<Content, LoadError> {
        let mut resolved = BTreeMap::new();
        for (media_type, media) in content {
            let schema = match &media.schema {
                Some(schema) => Some(self.schema_ref(schema)?),
                None => None,
            };
            resolved.insert(media_type.clone(), schema);
        }
        Ok(resolved)
    }

    fn schema_ref(&mut self, schema: &ReferenceOr<SpecSchema>) -> Result<Schema, LoadError> {
        match schema {
            ReferenceOr::Item(schema) => self.schema(schema, None),
            ReferenceOr::Reference { reference } => self.named_schema(reference),
        }
    }

    fn boxed_schema_ref(
        &mut self,
        schema: &ReferenceOr<Box<SpecSchema>>,
    ) -> Result<Schema, LoadError> {
        match schema {
            ReferenceOr::Item(schema) => self.schema(schema, None),
            ReferenceOr::Reference { reference } => self.named_schema(reference),
        }
    }

    fn named_schema(&mut self, reference: &str) -> Result<Schema, LoadError> {
        let name = reference
            .rsplit('/')
            .next()
            .map(unescape)
            .unwrap_or_default();
        if self.expanding.contains(&name) {
            return Ok(Schema {
                name: Some(name),
                recursive: true,
                ..Schema::default()
            });
        }
        let spec_schema = self.component(reference, "schemas", |c, n| c.schemas.get(n))?;
        self.expanding.push(name.clone());
        let resolved = self.schema(spec_schema, Some(name));
        self.expanding.pop();
        resolved
    }

    fn schema(&mut self, schema: &SpecSchema, name: Option<String>) -> Result<Schema, LoadError> {
        self.nodes += 1;
        if self.nodes > MAX_SCHEMA_NODES {
            return Err(self.error(format!(
                "the schemas expand to more than {MAX_SCHEMA_NODES} nodes; \
                 is a $ref fanning out without end?"
            )));
        }
        let mut resolved = Schema {
            name,
            nullable: schema.schema_data.nullable,
            ..Schema::default()
        };
        match &schema.schema_kind {
            SchemaKind::Type(Type::String(t)) => {
                resolved.kind = "string".into();
                resolved.format = format_text(&t.format);
                resolved.enumeration = enum_set(&t.enumeration);
                resolved.max_length = t.max_length;
                resolved.pattern = t.pattern.clone();
            }
            SchemaKind::Type(Type::Integer(t)) => {
                resolved.kind = "integer".into();
                resolved.format = format_text(&t.format);
                resolved.enumeration = enum_set(&t.enumeration);
            }
            SchemaKind::Type(Type::Number(t)) => {
                resolved.kind = "number".into();
                resolved.format = format_text(&t.format);
                resolved.enumeration = enum_set(&t.enumeration);
            }
            SchemaKind::Type(Type::Boolean(t)) => {
                resolved.kind = "boolean".into();
                resolved.enumeration = enum_set(&t.enumeration);
            }
            SchemaKind::Type(Type::Object(t)) => {
                resolved.kind = "object".into();
                resolved.required = t.required.iter().cloned().collect();
                for (property, schema) in &t.properties {
                    let schema = self.boxed_schema_ref(schema)?;
                    resolved.properties.insert(property.clone(), schema);
                }
            }
            SchemaKind::Type(Type::Array(t)) => {
                resolved.kind = "array".into();
                if let Some(items) = &t.items {
                    resolved.items = Some(Box::new(self.boxed_schema_ref(items)?));
                }
            }
            SchemaKind::AllOf { all_of } => {
                // The members' properties and requirements, merged: what a client sees.
                for member in all_of {
                    let member = self.schema_ref(member)?;
                    if resolved.kind.is_empty() || resolved.kind == member.kind {
                        resolved.kind = member.kind;
                    }
                    resolved.required.extend(member.required);
                    resolved.properties.extend(member.properties);
                }
            }
            SchemaKind::OneOf { one_of } => {
                resolved.kind = "oneOf".into();
                for member in one_of {
                    self.schema_ref(member)?;
                }
            }
            SchemaKind::AnyOf { any_of } => {
                resolved.kind = "anyOf".into();
                for member in any_of {
                    self.schema_ref(member)?;
                }
            }
            SchemaKind::Not { not } => {
                resolved.kind = "not".into();
                self.schema_ref(not)?;
            }
            SchemaKind::Any(any) => {
                resolved.kind = any.typ.clone().unwrap_or_default();
                resolved.format = any.format.clone();
                resolved.required = any.required.iter().cloned().collect();
                resolved.max_length = any.max_length;
                resolved.pattern = any.pattern.clone();
                if !any.enumeration.is_empty() {
                    resolved.enumeration =
                        Some(any.enumeration.iter().map(|v| v.to_string()).collect());
                }
                for (property, schema) in &any.properties {
                    let schema = self.boxed_schema_ref(schema)?;
                    resolved.properties.insert(property.clone(), schema);
                }
                if let Some(items) = &any.items {
                    resolved.items = Some(Box::new(self.boxed_schema_ref(items)?));
                }
            }
        }
        Ok(resolved)
    }
}

fn status_text(status: &StatusCode) -> String {
    match status {
        StatusCode::Code(code) => code.to_string(),
        StatusCode::Range(range) => format!("{range}XX"),
    }
}

fn format_text<T: serde::Serialize>(
    format: &openapiv3::VariantOrUnknownOrEmpty<T>,
) -> Option<String> {
    match format {
        openapiv3::VariantOrUnknownOrEmpty::Empty => None,
        openapiv3::VariantOrUnknownOrEmpty::Unknown(text) => Some(text.clone()),
        openapiv3::VariantOrUnknownOrEmpty::Item(item) => serde_json::to_value(item)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned)),
    }
}

fn enum_set<T: serde::Serialize>(values: &[Option<T>]) -> Option<BTreeSet<String>> {
    if values.is_empty() {
        return None;
    }
    Some(
        values
            .iter()
            .map(|v| serde_json::to_string(v).unwrap_or_default())
            .collect(),
    )
}

fn security_set(requirements: &[openapiv3::SecurityRequirement]) -> BTreeSet<String> {
    requirements
        .iter()
        .map(|requirement| {
            let mut names: Vec<&str> = requirement.keys().map(String::as_str).collect();
            names.sort_unstable();
            names.join("+")
        })
        .collect()
}

fn scheme_summary(scheme: &SecurityScheme) -> String {
    match scheme {
        SecurityScheme::APIKey { location, name, .. } => {
            format!("apiKey {name} in {location:?}").to_lowercase()
        }
        SecurityScheme::HTTP { scheme, .. } => format!("http {scheme}"),
        SecurityScheme::OAuth2 { .. } => "oauth2".to_owned(),
        SecurityScheme::OpenIDConnect {
            open_id_connect_url,
            ..
        } => format!("openIdConnect {open_id_connect_url}"),
    }
}

/// JSON-pointer unescaping of one `$ref` segment.
fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}
