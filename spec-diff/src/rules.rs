//! The rules: compares two resolved specs, operation by operation, and classifies each
//! change by level. Schemas are compared in `schema_rules.rs`, their bounds in
//! `constraints.rs`, `oneOf`/`anyOf`/`allOf` in `composition.rs`, security in
//! `security_rules.rs`.
//!
//! Rule ids and levels follow oasdiff's where oasdiff has the rule (see the table in the
//! module docs of [`super`]); the few of our own, and the deliberate differences, are
//! marked there.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;

use super::{
    model::{Api, Body, Content, Header, Operation, Parameter, Response},
    resolve::WEBHOOK_PREFIX,
};

/// What a change can do to a client built on the old spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Such a client can fail against the new spec (oasdiff `ERR`).
    Breaking,
    /// Some clients may fail (oasdiff `WARN`).
    Warning,
    /// No client can fail (oasdiff `INFO`).
    Info,
}

impl Level {
    /// `breaking`, `warning`, `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Breaking => "breaking",
            Level::Warning => "warning",
            Level::Info => "info",
        }
    }
}

/// One change that matters to a client.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    /// The rule id, oasdiff's where it has one: `response-property-type-changed`.
    pub id: String,
    /// Its level.
    pub level: Level,
    /// The operation it is in, `POST /accesstoken/get`; `None` for spec-wide changes.
    pub operation: Option<String>,
    /// What changed, in one sentence.
    pub message: String,
    /// How the crate's hand-written layer already copes with it, if it does.
    pub absorbed_by_crate: Option<String>,
    /// The Rust item of this crate that the change reaches, if any.
    pub rust_api: Option<String>,
    /// What the crate knowledge needs to recognise the change.
    #[serde(skip)]
    pub(crate) subject: Subject,
}

/// The parts of a change that the crate knowledge matches on.
#[derive(Clone, Debug, Default)]
pub(crate) struct Subject {
    /// The operation's `operationId`.
    pub operation_id: Option<String>,
    /// The parameter's name.
    pub parameter: Option<String>,
    /// The `components.schemas` name nearest above the property.
    pub schema: Option<String>,
    /// The property's name (the last segment of its path).
    pub property: Option<String>,
    /// The server URL, for server changes.
    pub server: Option<String>,
    /// The response status, for response changes.
    pub status: Option<String>,
    /// A `components.schemas` name that disappeared, for the crate's build.rs check.
    pub removed_schema: Option<String>,
}

/// A description, summary, example or tag that changed: cannot affect a client.
#[derive(Clone, Debug, Serialize)]
pub struct DocChange {
    /// JSON pointer into the new spec (the old one for a removal).
    pub location: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
}

/// Where a schema is used: requests and responses change clients in opposite ways.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Direction {
    /// The client sends it.
    Request,
    /// The client reads it.
    Response,
}

/// Which part of an operation a schema belongs to: it decides the rule ids.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Part {
    /// The request body.
    RequestBody,
    /// A parameter; `header` for header parameters (oasdiff names two rules for them).
    Parameter { header: bool },
    /// A response body.
    ResponseBody,
    /// A response header.
    ResponseHeader,
}

impl Part {
    pub(crate) fn direction(self) -> Direction {
        match self {
            Part::RequestBody | Part::Parameter { .. } => Direction::Request,
            Part::ResponseBody | Part::ResponseHeader => Direction::Response,
        }
    }

    /// The oasdiff rule id for `rule` at the top of this part (`top`) or below it.
    pub(crate) fn id(self, top: bool, rule: &str) -> String {
        let prefix = match (self, top) {
            (Part::RequestBody, true) => "request-body",
            (Part::RequestBody, false) => "request-property",
            (Part::Parameter { .. }, true) => "request-parameter",
            (Part::Parameter { header: true }, false)
                if rule == "became-enum" || rule == "became-required" =>
            {
                "request-header-property"
            }
            (Part::Parameter { .. }, false) => "request-parameter-property",
            (Part::ResponseBody, true) => "response-body",
            (Part::ResponseBody, false) => "response-property",
            (Part::ResponseHeader, _) => "response-header",
        };
        format!("{prefix}-{rule}")
    }
}

/// Every change from `old` to `new`, breaking first, and the documentation changes.
pub(crate) fn compare(old: &Api, new: &Api) -> (Vec<Change>, Vec<DocChange>) {
    let mut rules = Rules::default();
    rules.servers(old, new);
    rules.security_components(old, new);
    rules.global_security(old, new);
    rules.operations(old, new);
    rules.schema_names(old, new);
    let mut changes = rules.changes;
    changes.sort_by_key(|c| c.level);
    (changes, docs(old, new))
}

/// The documentation texts that changed; texts inside an added or removed container
/// (a new operation, a removed schema) belong to that change and are left out.
fn docs(old: &Api, new: &Api) -> Vec<DocChange> {
    let parent = |pointer: &str| pointer.rsplit_once('/').map(|(p, _)| p.to_owned());
    let mut changes = Vec::new();
    for (location, text) in &new.docs {
        match old.docs.get(location) {
            None if parent(location).is_some_and(|p| !old.containers.contains(&p)) => {}
            None => changes.push(DocChange {
                location: location.clone(),
                change: "added",
            }),
            Some(before) if before != text => changes.push(DocChange {
                location: location.clone(),
                change: "changed",
            }),
            Some(_) => {}
        }
    }
    for location in old.docs.keys().filter(|l| !new.docs.contains_key(*l)) {
        if parent(location).is_some_and(|p| !new.containers.contains(&p)) {
            continue;
        }
        changes.push(DocChange {
            location: location.clone(),
            change: "removed",
        });
    }
    changes.sort_by(|a, b| a.location.cmp(&b.location));
    changes
}

/// The operation a change is in, and where inside it.
#[derive(Clone, Default)]
pub(crate) struct Place {
    pub operation: Option<String>,
    pub operation_id: Option<String>,
    /// `request body application/json`, `response 200 application/json`.
    pub part: String,
    /// The response status, for response changes.
    pub status: Option<String>,
    /// Whether the media type is JSON (`1` and `"1"` differ); text media types are not.
    pub strongly_typed: bool,
}

#[derive(Default)]
pub(crate) struct Rules {
    pub changes: Vec<Change>,
    /// Named schema pairs compared, by place and fingerprints.
    pub compared: HashSet<(String, u64, u64)>,
}

impl Rules {
    pub(crate) fn push(
        &mut self,
        id: &str,
        level: Level,
        place: &Place,
        message: String,
        subject: Subject,
    ) {
        let subject = Subject {
            operation_id: place.operation_id.clone(),
            status: place.status.clone(),
            ..subject
        };
        self.changes.push(Change {
            id: id.to_owned(),
            level,
            operation: place.operation.clone(),
            message,
            absorbed_by_crate: None,
            rust_api: None,
            subject,
        });
    }

    fn servers(&mut self, old: &Api, new: &Api) {
        let place = Place::default();
        for url in old.servers.difference(&new.servers) {
            self.push(
                "api-server-removed",
                Level::Warning,
                &place,
                format!("server {url} removed"),
                Subject {
                    server: Some(url.clone()),
                    ..Subject::default()
                },
            );
        }
        for url in new.servers.difference(&old.servers) {
            self.push(
                "api-server-added",
                Level::Info,
                &place,
                format!("server {url} added"),
                Subject {
                    server: Some(url.clone()),
                    ..Subject::default()
                },
            );
        }
    }

    /// A removed `components.schemas` entry: reported for the crate (build.rs names
    /// some), not as a client change (oasdiff's `api-schema-removed` is info).
    fn schema_names(&mut self, old: &Api, new: &Api) {
        for name in old.schema_names.difference(&new.schema_names) {
            self.push(
                "api-schema-removed",
                Level::Info,
                &Place::default(),
                format!("schema `{name}` removed from components"),
                Subject {
                    removed_schema: Some(name.clone()),
                    ..Subject::default()
                },
            );
        }
    }

    fn operations(&mut self, old: &Api, new: &Api) {
        // `/books/{bookId}` and `/books/{id}` are one path: a renamed path parameter
        // does not remove the path.
        let template = |path: &str| path_template(path);
        let new_by_template: BTreeMap<(String, &String), (&String, &Operation)> = new
            .operations
            .iter()
            .map(|((path, method), op)| ((template(path), method), (path, op)))
            .collect();
        let old_templates: BTreeSet<(String, &String)> = old
            .operations
            .keys()
            .map(|(path, method)| (template(path), method))
            .collect();
        let new_paths: BTreeSet<String> = new.operations.keys().map(|(p, _)| template(p)).collect();
        for ((path, method), operation) in &old.operations {
            let place = Place {
                operation: Some(format!("{method} {path}")),
                operation_id: operation.id.clone(),
                ..Place::default()
            };
            let Some((_, after)) = new_by_template.get(&(template(path), method)) else {
                let webhook = path.starts_with(WEBHOOK_PREFIX);
                let (id, level) = match (new_paths.contains(&template(path)), operation.deprecated)
                {
                    _ if webhook => ("webhook-removed", Level::Breaking),
                    (false, false) => ("api-path-removed-without-deprecation", Level::Breaking),
                    (false, true) => ("api-path-removed-with-deprecation", Level::Info),
                    (true, false) => ("api-removed-without-deprecation", Level::Breaking),
                    (true, true) => ("api-removed-with-deprecation", Level::Info),
                };
                self.push(
                    id,
                    level,
                    &place,
                    format!("{method} {path} removed"),
                    Subject::default(),
                );
                continue;
            };
            let renames = path_renames(path, new_path_of(&new_by_template, path, method));
            self.operation(&place, &renames, old, operation, new, after);
        }
        for ((path, method), operation) in &new.operations {
            if !old_templates.contains(&(template(path), method)) {
                let place = Place {
                    operation: Some(format!("{method} {path}")),
                    operation_id: operation.id.clone(),
                    ..Place::default()
                };
                let id = if path.starts_with(WEBHOOK_PREFIX) {
                    "webhook-added"
                } else {
                    "endpoint-added"
                };
                self.push(
                    id,
                    Level::Info,
                    &place,
                    format!("{method} {path} added"),
                    Subject::default(),
                );
            }
        }
    }

    fn operation(
        &mut self,
        place: &Place,
        renames: &BTreeMap<String, String>,
        old_api: &Api,
        old: &Operation,
        new_api: &Api,
        new: &Operation,
    ) {
        match (old.deprecated, new.deprecated) {
            (false, true) => self.push(
                "endpoint-deprecated",
                Level::Info,
                place,
                "operation deprecated".into(),
                Subject::default(),
            ),
            (true, false) => self.push(
                "endpoint-reactivated",
                Level::Info,
                place,
                "operation no longer deprecated".into(),
                Subject::default(),
            ),
            _ => {}
        }
        match (&old.id, &new.id) {
            (Some(before), after) if after.as_ref() != Some(before) => {
                let message = match after {
                    Some(after) => format!("operationId changed from `{before}` to `{after}`"),
                    None => format!("operationId `{before}` removed"),
                };
                self.push(
                    "api-operation-id-removed",
                    Level::Info,
                    place,
                    message,
                    Subject::default(),
                );
            }
            (None, Some(after)) => self.push(
                "api-operation-id-added",
                Level::Info,
                place,
                format!("operationId `{after}` added"),
                Subject::default(),
            ),
            _ => {}
        }
        self.operation_security(place, old_api, old, new_api, new);
        self.parameters(place, renames, &old.parameters, &new.parameters);
        self.request_body(place, old.request_body.as_ref(), new.request_body.as_ref());
        self.responses(place, &old.responses, &new.responses);
    }

    /// `renames`: old path parameter name -> new, for `{bookId}` -> `{id}` at one
    /// place in the path: matched by position, as a client fills them in.
    fn parameters(
        &mut self,
        place: &Place,
        renames: &BTreeMap<String, String>,
        old: &BTreeMap<(String, String), Parameter>,
        new: &BTreeMap<(String, String), Parameter>,
    ) {
        let find = |location: &str, key: &str| -> Option<&Parameter> {
            let key = match renames.get(key) {
                Some(renamed) if location == "path" => renamed.as_str(),
                _ => key,
            };
            new.get(&(location.to_owned(), key.to_owned()))
        };
        let renamed_to: BTreeSet<&String> = renames.values().collect();
        for ((location, key), parameter) in old {
            let subject = Subject {
                parameter: Some(parameter.name.clone()),
                ..Subject::default()
            };
            let label = format!("{location} parameter `{}`", parameter.name);
            let Some(after) = find(location, key) else {
                self.push(
                    "request-parameter-removed",
                    Level::Warning,
                    place,
                    format!("{label} removed"),
                    subject,
                );
                continue;
            };
            match (parameter.required, after.required) {
                (false, true) => self.push(
                    "request-parameter-became-required",
                    Level::Breaking,
                    place,
                    format!("{label} became required"),
                    subject.clone(),
                ),
                (true, false) => self.push(
                    "request-parameter-became-optional",
                    Level::Info,
                    place,
                    format!("{label} became optional"),
                    subject.clone(),
                ),
                _ => {}
            }
            let place = Place {
                part: label,
                strongly_typed: false,
                ..place.clone()
            };
            let part = Part::Parameter {
                header: location == "header",
            };
            self.schema(
                &place,
                part,
                "",
                subject,
                &parameter.schema,
                &after.schema,
                0,
            );
        }
        for ((location, key), parameter) in new {
            if old.contains_key(&(location.clone(), key.clone()))
                || (location == "path" && renamed_to.contains(key))
            {
                continue;
            }
            // oasdiff's ids for a parameter the path item now gives all its operations.
            let (id, level) = if location == "path" {
                ("new-request-path-parameter", Level::Breaking)
            } else if parameter.path_level && parameter.required {
                (
                    "new-required-request-default-parameter-to-existing-path",
                    Level::Breaking,
                )
            } else if parameter.path_level {
                (
                    "new-optional-request-default-parameter-to-existing-path",
                    Level::Info,
                )
            } else if parameter.required {
                ("new-required-request-parameter", Level::Breaking)
            } else {
                ("new-optional-request-parameter", Level::Info)
            };
            let required = if parameter.required {
                "required"
            } else {
                "optional"
            };
            self.push(
                id,
                level,
                place,
                format!("{required} {location} parameter `{}` added", parameter.name),
                Subject {
                    parameter: Some(parameter.name.clone()),
                    ..Subject::default()
                },
            );
        }
    }

    fn request_body(&mut self, place: &Place, old: Option<&Body>, new: Option<&Body>) {
        match (old, new) {
            (None, None) => {}
            (None, Some(body)) => {
                let (id, level, required) = if body.required {
                    ("request-body-added-required", Level::Breaking, "required")
                } else {
                    ("request-body-added-optional", Level::Info, "optional")
                };
                self.push(
                    id,
                    level,
                    place,
                    format!("{required} request body added"),
                    Subject::default(),
                );
            }
            (Some(_), None) => self.push(
                "request-body-removed",
                Level::Breaking,
                place,
                "request body removed".into(),
                Subject::default(),
            ),
            (Some(before), Some(after)) => {
                match (before.required, after.required) {
                    (false, true) => self.push(
                        "request-body-became-required",
                        Level::Breaking,
                        place,
                        "request body became required".into(),
                        Subject::default(),
                    ),
                    (true, false) => self.push(
                        "request-body-became-optional",
                        Level::Info,
                        place,
                        "request body became optional".into(),
                        Subject::default(),
                    ),
                    _ => {}
                }
                let place = Place {
                    part: "request body".into(),
                    ..place.clone()
                };
                self.content(&place, Part::RequestBody, &before.content, &after.content);
            }
        }
    }

    fn responses(
        &mut self,
        place: &Place,
        old: &BTreeMap<String, Response>,
        new: &BTreeMap<String, Response>,
    ) {
        for (status, response) in old {
            let success = status.starts_with('2');
            let place = Place {
                part: format!("response {status}"),
                status: Some(status.clone()),
                ..place.clone()
            };
            let Some(after) = new.get(status) else {
                let (id, level) = if success {
                    ("response-success-status-removed", Level::Breaking)
                } else {
                    ("response-non-success-status-removed", Level::Info)
                };
                self.push(
                    id,
                    level,
                    &place,
                    format!("response status {status} removed"),
                    Subject::default(),
                );
                continue;
            };
            self.response_headers(&place, &response.headers, &after.headers);
            self.content(
                &place,
                Part::ResponseBody,
                &response.content,
                &after.content,
            );
        }
        for status in new.keys().filter(|s| !old.contains_key(*s)) {
            let id = if status.starts_with('2') {
                "response-success-status-added"
            } else {
                "response-non-success-status-added"
            };
            let place = Place {
                status: Some(status.clone()),
                ..place.clone()
            };
            self.push(
                id,
                Level::Info,
                &place,
                format!("response status {status} added"),
                Subject::default(),
            );
        }
    }

    fn response_headers(
        &mut self,
        place: &Place,
        old: &BTreeMap<String, Header>,
        new: &BTreeMap<String, Header>,
    ) {
        for (key, header) in old {
            let label = format!("{}: header `{}`", place.part, header.name);
            let Some(after) = new.get(key) else {
                let (id, level) = if header.required {
                    ("required-response-header-removed", Level::Breaking)
                } else {
                    ("optional-response-header-removed", Level::Warning)
                };
                self.push(
                    id,
                    level,
                    place,
                    format!("{label} removed"),
                    Subject::default(),
                );
                continue;
            };
            if header.required && !after.required {
                self.push(
                    "response-header-became-optional",
                    Level::Breaking,
                    place,
                    format!("{label} became optional"),
                    Subject::default(),
                );
            }
            let place = Place {
                part: label,
                strongly_typed: false,
                ..place.clone()
            };
            self.schema(
                &place,
                Part::ResponseHeader,
                "",
                Subject::default(),
                &header.schema,
                &after.schema,
                0,
            );
        }
        for (key, header) in new {
            if !old.contains_key(key) {
                self.push(
                    "response-header-added",
                    Level::Info,
                    place,
                    format!("{}: header `{}` added", place.part, header.name),
                    Subject::default(),
                );
            }
        }
    }

    fn content(&mut self, place: &Place, part: Part, old: &Content, new: &Content) {
        let owner = place.part.clone();
        let direction = part.direction();
        for (media_type, schema) in old {
            let Some(after) = new.get(media_type) else {
                let id = match direction {
                    Direction::Request => "request-body-media-type-removed",
                    Direction::Response => "response-media-type-removed",
                };
                self.push(
                    id,
                    Level::Breaking,
                    place,
                    format!("{owner}: media type `{media_type}` removed"),
                    Subject::default(),
                );
                continue;
            };
            let inner = Place {
                part: format!("{owner} `{media_type}`"),
                strongly_typed: is_json(media_type),
                ..place.clone()
            };
            match (schema, after) {
                (Some(before), Some(after)) => self.schema(
                    &inner,
                    part,
                    "",
                    Subject {
                        schema: before.name.clone(),
                        ..Subject::default()
                    },
                    before,
                    after,
                    0,
                ),
                (Some(_), None) => {
                    let (id, level) = match direction {
                        Direction::Request => {
                            ("request-body-media-type-schema-removed", Level::Info)
                        }
                        Direction::Response => {
                            ("response-body-media-type-schema-removed", Level::Warning)
                        }
                    };
                    self.push(
                        id,
                        level,
                        &inner,
                        format!("{}: schema removed", inner.part),
                        Subject::default(),
                    );
                }
                (None, Some(_)) => {
                    let (id, level) = match direction {
                        Direction::Request => {
                            ("request-body-media-type-schema-added", Level::Breaking)
                        }
                        Direction::Response => {
                            ("response-body-media-type-schema-added", Level::Info)
                        }
                    };
                    self.push(
                        id,
                        level,
                        &inner,
                        format!("{}: schema added", inner.part),
                        Subject::default(),
                    );
                }
                (None, None) => {}
            }
        }
        for media_type in new.keys().filter(|m| !old.contains_key(*m)) {
            let id = match direction {
                Direction::Request => "request-body-media-type-added",
                Direction::Response => "response-media-type-added",
            };
            self.push(
                id,
                Level::Info,
                place,
                format!("{owner}: media type `{media_type}` added"),
                Subject::default(),
            );
        }
    }
}

/// The path in the new spec that `path` (old) matches, by template.
fn new_path_of<'a>(
    new_by_template: &BTreeMap<(String, &String), (&'a String, &Operation)>,
    path: &'a str,
    method: &String,
) -> &'a str {
    new_by_template
        .get(&(path_template(path), method))
        .map(|(p, _)| p.as_str())
        .unwrap_or(path)
}

/// Path parameter names that differ at the same place: old name -> new name.
fn path_renames(old: &str, new: &str) -> BTreeMap<String, String> {
    let names = |path: &str| -> Vec<String> {
        path.split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_owned()))
            .collect()
    };
    names(old)
        .into_iter()
        .zip(names(new))
        .filter(|(a, b)| a != b)
        .collect()
}

/// `/books/{}` for `/books/{bookId}`: the path as a client calls it.
fn path_template(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_name = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_name = true;
                out.push('{');
            }
            '}' => {
                in_name = false;
                out.push('}');
            }
            _ if in_name => {}
            c => out.push(c),
        }
    }
    out
}

/// `application/json`, `application/problem+json`, `application/json;charset=UTF-8`.
fn is_json(media_type: &str) -> bool {
    let essence = media_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json") || essence.ends_with("+json")
}

/// `a/b` for a property `b` below `a`.
pub(crate) fn join(path: &str, segment: &str) -> String {
    if path.is_empty() {
        segment.to_owned()
    } else {
        format!("{path}/{segment}")
    }
}
