//! The rules: compares two resolved specs and classifies each change by level.
//!
//! Rule ids and levels follow oasdiff's where oasdiff has the rule (see the table in the
//! module docs of [`super`]); the few of our own are marked there.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::model::{Api, Body, Content, Operation, Parameter, Schema};

/// How far nested schemas are compared; deeper ones are not (no spec here comes close).
const MAX_DEPTH: usize = 32;

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
    /// The type before and after, for type changes: `integer`, `string/byte`.
    pub types: Option<(String, String)>,
    /// The server URL, for server changes.
    pub server: Option<String>,
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
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Request,
    Response,
}

impl Direction {
    fn word(self) -> &'static str {
        match self {
            Direction::Request => "request",
            Direction::Response => "response",
        }
    }
}

/// Every change from `old` to `new`, breaking first, and the documentation changes.
pub(crate) fn compare(old: &Api, new: &Api) -> (Vec<Change>, Vec<DocChange>) {
    let mut rules = Rules::default();
    rules.servers(old, new);
    rules.security_schemes(old, new);
    rules.operations(old, new);
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
struct Place {
    operation: Option<String>,
    operation_id: Option<String>,
    /// `request body application/json`, `response 200 application/json`.
    part: String,
}

#[derive(Default)]
struct Rules {
    changes: Vec<Change>,
}

impl Rules {
    fn push(&mut self, id: &str, level: Level, place: &Place, message: String, subject: Subject) {
        let subject = Subject {
            operation_id: place.operation_id.clone(),
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

    fn security_schemes(&mut self, old: &Api, new: &Api) {
        let place = Place::default();
        for (name, summary) in &old.security_schemes {
            match new.security_schemes.get(name) {
                None => self.push(
                    "api-security-component-removed",
                    Level::Info,
                    &place,
                    format!("security scheme `{name}` removed from components"),
                    Subject::default(),
                ),
                Some(after) if after != summary => self.push(
                    "api-security-component-type-changed",
                    Level::Info,
                    &place,
                    format!("security scheme `{name}` changed from `{summary}` to `{after}`"),
                    Subject::default(),
                ),
                Some(_) => {}
            }
        }
        for name in new
            .security_schemes
            .keys()
            .filter(|n| !old.security_schemes.contains_key(*n))
        {
            self.push(
                "api-security-component-added",
                Level::Info,
                &place,
                format!("security scheme `{name}` added to components"),
                Subject::default(),
            );
        }
    }

    fn operations(&mut self, old: &Api, new: &Api) {
        let new_paths: BTreeSet<&String> = new.operations.keys().map(|(p, _)| p).collect();
        for ((path, method), operation) in &old.operations {
            let place = Place {
                operation: Some(format!("{method} {path}")),
                operation_id: operation.id.clone(),
                ..Place::default()
            };
            let Some(after) = new.operations.get(&(path.clone(), method.clone())) else {
                let (id, level) = match (new_paths.contains(path), operation.deprecated) {
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
            self.operation(&place, operation, after);
        }
        for ((path, method), operation) in &new.operations {
            if !old.operations.contains_key(&(path.clone(), method.clone())) {
                let place = Place {
                    operation: Some(format!("{method} {path}")),
                    operation_id: operation.id.clone(),
                    ..Place::default()
                };
                self.push(
                    "endpoint-added",
                    Level::Info,
                    &place,
                    format!("{method} {path} added"),
                    Subject::default(),
                );
            }
        }
    }

    fn operation(&mut self, place: &Place, old: &Operation, new: &Operation) {
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
        for alternative in new.security.difference(&old.security) {
            self.push(
                "api-security-added",
                Level::Warning,
                place,
                format!("security requirement `{alternative}` added"),
                Subject::default(),
            );
        }
        for alternative in old.security.difference(&new.security) {
            self.push(
                "api-security-removed",
                Level::Info,
                place,
                format!("security requirement `{alternative}` removed"),
                Subject::default(),
            );
        }
        self.parameters(place, &old.parameters, &new.parameters);
        self.request_body(place, old.request_body.as_ref(), new.request_body.as_ref());
        self.responses(place, &old.responses, &new.responses);
    }

    fn parameters(
        &mut self,
        place: &Place,
        old: &BTreeMap<(String, String), Parameter>,
        new: &BTreeMap<(String, String), Parameter>,
    ) {
        for ((location, key), parameter) in old {
            let subject = Subject {
                parameter: Some(parameter.name.clone()),
                ..Subject::default()
            };
            let label = format!("{location} parameter `{}`", parameter.name);
            let Some(after) = new.get(&(location.clone(), key.clone())) else {
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
            self.parameter_schema(place, &label, subject, &parameter.schema, &after.schema);
        }
        for ((location, key), parameter) in new {
            if old.contains_key(&(location.clone(), key.clone())) {
                continue;
            }
            let (id, level) = if location == "path" {
                ("new-request-path-parameter", Level::Breaking)
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

    fn parameter_schema(
        &mut self,
        place: &Place,
        label: &str,
        subject: Subject,
        old: &Schema,
        new: &Schema,
    ) {
        let (before, after) = (old.type_label(), new.type_label());
        if before != after {
            let generalized = old.kind == new.kind && new.format.is_none();
            let (id, level) = if generalized {
                ("request-parameter-type-generalized", Level::Info)
            } else {
                ("request-parameter-type-changed", Level::Breaking)
            };
            self.push(
                id,
                level,
                place,
                format!("{label} type changed from `{before}` to `{after}`"),
                Subject {
                    types: Some((before, after)),
                    ..subject.clone()
                },
            );
        }
        self.enum_values(
            place,
            "request-parameter",
            Direction::Request,
            label,
            &subject,
            old,
            new,
        );
        self.request_constraints(place, "request-parameter", label, &subject, old, new);
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
                self.content(place, Direction::Request, &before.content, &after.content);
            }
        }
    }

    fn responses(
        &mut self,
        place: &Place,
        old: &BTreeMap<String, Content>,
        new: &BTreeMap<String, Content>,
    ) {
        for (status, content) in old {
            let success = status.starts_with('2');
            let Some(after) = new.get(status) else {
                let (id, level) = if success {
                    ("response-success-status-removed", Level::Breaking)
                } else {
                    ("response-non-success-status-removed", Level::Info)
                };
                self.push(
                    id,
                    level,
                    place,
                    format!("response status {status} removed"),
                    Subject::default(),
                );
                continue;
            };
            let place = Place {
                part: format!("response {status}"),
                ..place.clone()
            };
            self.content(&place, Direction::Response, content, after);
        }
        for status in new.keys().filter(|s| !old.contains_key(*s)) {
            let id = if status.starts_with('2') {
                "response-success-status-added"
            } else {
                "response-non-success-status-added"
            };
            self.push(
                id,
                Level::Info,
                place,
                format!("response status {status} added"),
                Subject::default(),
            );
        }
    }

    fn content(&mut self, place: &Place, direction: Direction, old: &Content, new: &Content) {
        let word = direction.word();
        let owner = match direction {
            Direction::Request => "request body".to_owned(),
            Direction::Response => place.part.clone(),
        };
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
            if let (Some(before), Some(after)) = (schema, after) {
                let place = Place {
                    part: format!("{owner} `{media_type}`"),
                    ..place.clone()
                };
                self.schema(&place, direction, "", before.name.clone(), before, after, 0);
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
                format!("{owner}: media type `{media_type}` added ({word})"),
                Subject::default(),
            );
        }
    }

    /// Compares one schema, and its properties and items below it.
    #[allow(clippy::too_many_arguments)]
    fn schema(
        &mut self,
        place: &Place,
        direction: Direction,
        path: &str,
        owner: Option<String>,
        old: &Schema,
        new: &Schema,
        depth: usize,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        let word = direction.word();
        let (noun, label) = if path.is_empty() {
            ("body", format!("{}: body", place.part))
        } else {
            ("property", format!("{}: property `{path}`", place.part))
        };
        // A property's change belongs to the schema that holds it; the schema it refers
        // to (if named) holds the properties below it.
        let holder = if path.is_empty() {
            new.name.clone().or(owner.clone())
        } else {
            owner
        };
        let owner = new.name.clone().or(holder.clone());
        let subject = Subject {
            schema: holder,
            property: path
                .rsplit('/')
                .next()
                .filter(|p| !p.is_empty())
                .map(str::to_owned),
            ..Subject::default()
        };
        if old.recursive || new.recursive {
            if old.name != new.name {
                self.push(
                    &format!("{word}-{noun}-type-changed"),
                    Level::Breaking,
                    place,
                    format!(
                        "{label} changed from `{}` to `{}`",
                        old.name.as_deref().unwrap_or("?"),
                        new.name.as_deref().unwrap_or("?")
                    ),
                    subject,
                );
            }
            return;
        }
        let (before, after) = (old.type_label(), new.type_label());
        if before != after {
            let generalized =
                direction == Direction::Request && old.kind == new.kind && new.format.is_none();
            let (id, level) = if generalized {
                (format!("{word}-{noun}-type-generalized"), Level::Info)
            } else {
                (format!("{word}-{noun}-type-changed"), Level::Breaking)
            };
            self.push(
                &id,
                level,
                place,
                format!("{label} type changed from `{before}` to `{after}`"),
                Subject {
                    types: Some((before, after)),
                    ..subject.clone()
                },
            );
        }
        match (direction, old.nullable, new.nullable) {
            (Direction::Response, false, true) => self.push(
                &format!("response-{noun}-became-nullable"),
                Level::Breaking,
                place,
                format!("{label} became nullable"),
                subject.clone(),
            ),
            (Direction::Request, true, false) => self.push(
                &format!("request-{noun}-became-not-nullable"),
                Level::Breaking,
                place,
                format!("{label} became not nullable"),
                subject.clone(),
            ),
            (Direction::Request, false, true) => self.push(
                &format!("request-{noun}-became-nullable"),
                Level::Info,
                place,
                format!("{label} became nullable"),
                subject.clone(),
            ),
            _ => {}
        }
        let prefix = format!("{word}-{noun}");
        self.enum_values(place, &prefix, direction, &label, &subject, old, new);
        if direction == Direction::Request {
            self.request_constraints(place, &prefix, &label, &subject, old, new);
        }
        self.properties(place, direction, path, owner.clone(), old, new, depth);
        if let (Some(before), Some(after)) = (&old.items, &new.items) {
            let path = join(path, "items");
            self.schema(place, direction, &path, owner, before, after, depth + 1);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn properties(
        &mut self,
        place: &Place,
        direction: Direction,
        path: &str,
        owner: Option<String>,
        old: &Schema,
        new: &Schema,
        depth: usize,
    ) {
        let subject = |property: &str| Subject {
            schema: owner.clone(),
            property: Some(property.to_owned()),
            ..Subject::default()
        };
        for (property, before) in &old.properties {
            let full = join(path, property);
            let label = format!("{}: property `{full}`", place.part);
            let was_required = old.required.contains(property);
            let Some(after) = new.properties.get(property) else {
                let (id, level) = match (direction, was_required) {
                    (Direction::Request, _) => ("request-property-removed", Level::Warning),
                    (Direction::Response, true) => {
                        ("response-required-property-removed", Level::Breaking)
                    }
                    (Direction::Response, false) => {
                        ("response-optional-property-removed", Level::Warning)
                    }
                };
                self.push(
                    id,
                    level,
                    place,
                    format!("{label} removed"),
                    subject(property),
                );
                continue;
            };
            let is_required = new.required.contains(property);
            let required_change = match (direction, was_required, is_required) {
                (Direction::Request, false, true) => Some((
                    "request-property-became-required",
                    Level::Breaking,
                    "required",
                )),
                (Direction::Request, true, false) => {
                    Some(("request-property-became-optional", Level::Info, "optional"))
                }
                (Direction::Response, true, false) => Some((
                    "response-property-became-optional",
                    Level::Breaking,
                    "optional",
                )),
                (Direction::Response, false, true) => {
                    Some(("response-property-became-required", Level::Info, "required"))
                }
                _ => None,
            };
            if let Some((id, level, now)) = required_change {
                self.push(
                    id,
                    level,
                    place,
                    format!("{label} became {now}"),
                    subject(property),
                );
            }
            self.schema(
                place,
                direction,
                &full,
                owner.clone(),
                before,
                after,
                depth + 1,
            );
        }
        for property in new.properties.keys() {
            if old.properties.contains_key(property) {
                continue;
            }
            let full = join(path, property);
            let required = new.required.contains(property);
            let (id, level) = match (direction, required) {
                (Direction::Request, true) => ("new-required-request-property", Level::Breaking),
                (Direction::Request, false) => ("new-optional-request-property", Level::Info),
                (Direction::Response, true) => ("response-required-property-added", Level::Info),
                (Direction::Response, false) => ("response-optional-property-added", Level::Info),
            };
            let kind = if required { "required" } else { "optional" };
            self.push(
                id,
                level,
                place,
                format!("{}: {kind} property `{full}` added", place.part),
                subject(property),
            );
        }
    }

    /// `enum` widened or narrowed; a request that gains an `enum` is narrowed too.
    #[allow(clippy::too_many_arguments)]
    fn enum_values(
        &mut self,
        place: &Place,
        prefix: &str,
        direction: Direction,
        label: &str,
        subject: &Subject,
        old: &Schema,
        new: &Schema,
    ) {
        match (&old.enumeration, &new.enumeration) {
            (None, Some(_)) if direction == Direction::Request => self.push(
                &format!("{prefix}-became-enum"),
                Level::Breaking,
                place,
                format!("{label} became an enum"),
                subject.clone(),
            ),
            (Some(before), Some(after)) => {
                let (added_level, removed_level) = match direction {
                    Direction::Request => (Level::Info, Level::Breaking),
                    Direction::Response => (Level::Warning, Level::Info),
                };
                for value in after.difference(before) {
                    self.push(
                        &format!("{prefix}-enum-value-added"),
                        added_level,
                        place,
                        format!("{label}: enum value {value} added"),
                        subject.clone(),
                    );
                }
                for value in before.difference(after) {
                    self.push(
                        &format!("{prefix}-enum-value-removed"),
                        removed_level,
                        place,
                        format!("{label}: enum value {value} removed"),
                        subject.clone(),
                    );
                }
            }
            _ => {}
        }
    }

    /// `maxLength` and `pattern` on what the client sends.
    fn request_constraints(
        &mut self,
        place: &Place,
        prefix: &str,
        label: &str,
        subject: &Subject,
        old: &Schema,
        new: &Schema,
    ) {
        let max_length = match (old.max_length, new.max_length) {
            (None, Some(max)) => Some(("max-length-set", Level::Warning, format!("set to {max}"))),
            (Some(a), Some(b)) if b < a => Some((
                "max-length-decreased",
                Level::Breaking,
                format!("decreased from {a} to {b}"),
            )),
            (Some(a), Some(b)) if b > a => Some((
                "max-length-increased",
                Level::Info,
                format!("increased from {a} to {b}"),
            )),
            _ => None,
        };
        if let Some((rule, level, what)) = max_length {
            self.push(
                &format!("{prefix}-{rule}"),
                level,
                place,
                format!("{label}: maxLength {what}"),
                subject.clone(),
            );
        }
        let pattern = match (&old.pattern, &new.pattern) {
            (None, Some(p)) => Some(("pattern-added", Level::Breaking, format!("`{p}` added"))),
            (Some(p), None) => Some(("pattern-removed", Level::Info, format!("`{p}` removed"))),
            (Some(a), Some(b)) if a != b => Some((
                "pattern-changed",
                Level::Warning,
                format!("changed from `{a}` to `{b}`"),
            )),
            _ => None,
        };
        if let Some((rule, level, what)) = pattern {
            self.push(
                &format!("{prefix}-{rule}"),
                level,
                place,
                format!("{label}: pattern {what}"),
                subject.clone(),
            );
        }
    }
}

fn join(path: &str, segment: &str) -> String {
    if path.is_empty() {
        segment.to_owned()
    } else {
        format!("{path}/{segment}")
    }
}
