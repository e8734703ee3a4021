//! Compares two schemas at one place (a body, a parameter, a header) and everything below
//! them: type, nullability, enum, properties (with `readOnly`/`writeOnly`), items and
//! `additionalProperties`. Bounds are in `constraints.rs`, `oneOf`/`anyOf`/`allOf` in
//! `composition.rs`, the type verdicts in `type_change.rs`.

use super::{
    levels::level,
    model::Schema,
    rules::{Direction, Level, Part, Place, Rules, Subject, join},
    type_change::{self, TypeChange},
};

/// How far nested schemas are compared; deeper ones are not.
const MAX_DEPTH: usize = 32;

/// One schema comparison: where it is, and what the changes found there name.
pub(crate) struct Node<'a> {
    pub place: &'a Place,
    pub part: Part,
    /// The property path below the part's top schema, `a/b/items`; empty at the top.
    pub path: &'a str,
    /// The nearest named schema above (or at) this one.
    pub owner: Option<String>,
}

impl Node<'_> {
    /// At the top of its part: oasdiff names a parameter's array items after the
    /// parameter itself.
    pub(crate) fn top(&self) -> bool {
        self.path.is_empty()
            || (matches!(self.part, Part::Parameter { .. })
                && self.path.split('/').all(|s| s == "items"))
    }

    /// `request body `application/json`: property `a/b``.
    pub(crate) fn label(&self) -> String {
        if self.top() {
            self.place.part.clone()
        } else {
            format!("{}: property `{}`", self.place.part, self.path)
        }
    }

    pub(crate) fn subject(&self) -> Subject {
        Subject {
            schema: self.owner.clone(),
            property: self
                .path
                .rsplit('/')
                .next()
                .filter(|p| !p.is_empty())
                .map(str::to_owned),
            ..Subject::default()
        }
    }
}

impl Rules {
    /// Reports the change `rule` at `node` if oasdiff has that rule for that place.
    pub(crate) fn at(&mut self, node: &Node<'_>, rule: &str, what: String) {
        let subject = node.subject();
        let id = node.part.id(node.top(), rule);
        if let Some(level) = level(&id) {
            // `property `a` type changed`, `property `a`: enum value 1 added`.
            let joint = if what.starts_with("type changed") || what.starts_with("became") {
                " "
            } else {
                ": "
            };
            self.push(
                &id,
                level,
                node.place,
                format!("{}{joint}{what}", node.label()),
                subject,
            );
        }
    }

    /// Compares a schema one level below `node`, at `path`: a property, the items, a member
    /// or a subschema, whose changes belong to `owner`, the nearest named schema above.
    pub(crate) fn below(
        &mut self,
        node: &Node,
        path: &str,
        owner: &Option<String>,
        old: &Schema,
        new: &Schema,
        depth: usize,
    ) {
        let above = Subject {
            schema: owner.clone(),
            ..Subject::default()
        };
        self.schema(node.place, node.part, path, above, old, new, depth + 1);
    }

    /// Compares one schema, and its properties, items and members below it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn schema(
        &mut self,
        place: &Place,
        part: Part,
        path: &str,
        above: Subject,
        old: &Schema,
        new: &Schema,
        depth: usize,
    ) {
        // Equal fingerprints: nothing below differs.
        if depth > MAX_DEPTH || (old.fingerprint == new.fingerprint && old.fingerprint != 0) {
            return;
        }
        // A shared schema pair already compared in this place is reported once, at the
        // first path that reached it (a `$ref` fan-out would repeat it without end).
        if let (Some(_), Some(_)) = (&old.name, &new.name) {
            let key = (
                format!("{:?} {}", place.operation, place.part),
                old.fingerprint,
                new.fingerprint,
            );
            if !self.compared.insert(key) {
                return;
            }
        }
        let owner = if path.is_empty() {
            new.name.clone().or(above.schema)
        } else {
            above.schema
        };
        let node = Node {
            place,
            part,
            path,
            owner,
        };
        if old.recursive || new.recursive {
            if old.name != new.name {
                self.at(
                    &node,
                    "type-changed",
                    format!(
                        "changed from `{}` to `{}`",
                        old.name.as_deref().unwrap_or("?"),
                        new.name.as_deref().unwrap_or("?")
                    ),
                );
            }
            return;
        }
        let list_of_types = self.list_of_types(&node, old, new);
        if !list_of_types {
            self.type_change(&node, old, new);
        }
        self.wrapped_in_one_of(&node, old, new);
        self.nullable(&node, old, new);
        self.enum_values(&node, old, new);
        self.constraints(&node, old, new);
        // Below here, changes belong to the schema this one names, if it has a name.
        let owner = new.name.clone().or(node.owner.clone());
        self.composition(&node, owner.clone(), old, new, depth, list_of_types);
        self.properties(&node, owner.clone(), old, new, depth);
        self.subschemas(&node, owner.clone(), old, new, depth);
        if let (Some(before), Some(after)) = (&old.items, &new.items) {
            self.below(&node, &join(path, "items"), &owner, before, after, depth);
        }
        if let (Some(before), Some(after)) = (&old.additional, &new.additional) {
            let path = join(path, "additionalProperties");
            self.below(&node, &path, &owner, before, after, depth);
        }
    }

    /// A type list (`type: [string, integer]`, or a `oneOf` of bare types) that grew or
    /// shrank; `true` when that is what changed, so the plain type rule stays quiet.
    fn list_of_types(&mut self, node: &Node<'_>, old: &Schema, new: &Schema) -> bool {
        let (Some((before, old_list)), Some((after, new_list))) =
            (type_change::type_list(old), type_change::type_list(new))
        else {
            return false;
        };
        // Disjoint lists (`[string, integer]` -> `array`) are a plain type change.
        if before == after || !(old_list || new_list) || before.is_disjoint(&after) {
            return false;
        }
        let added: Vec<&String> = after.difference(&before).collect();
        let removed: Vec<&String> = before.difference(&after).collect();
        let narrowed = match node.part.direction() {
            Direction::Request => !removed.is_empty(),
            Direction::Response => added.is_empty(),
        };
        let rule = if narrowed {
            "list-of-types-narrowed"
        } else {
            "list-of-types-widened"
        };
        let list = |types: &std::collections::BTreeSet<String>| {
            types.iter().cloned().collect::<Vec<_>>().join(", ")
        };
        self.at(
            node,
            rule,
            format!(
                "types changed from `{}` to `{}`",
                list(&before),
                list(&after)
            ),
        );
        true
    }

    fn type_change(&mut self, node: &Node<'_>, old: &Schema, new: &Schema) {
        let (before, after) = (old.type_label(), new.type_label());
        if before == after {
            return;
        }
        let verdict =
            type_change::classify(node.part.direction(), old, new, node.place.strongly_typed);
        let rule = match (node.part, verdict) {
            (Part::Parameter { .. }, TypeChange::Compatible) if node.top() => "type-generalized",
            // oasdiff's names for a parameter's properties: a change that a value in the
            // URL may no longer meet is `specialized` (breaking).
            (Part::Parameter { .. }, TypeChange::Changed) if !node.top() => "type-specialized",
            (_, TypeChange::Changed) => "type-changed",
            (_, TypeChange::Compatible) => "type-compatible",
            (_, TypeChange::Generalized) => "type-generalized",
            (_, TypeChange::Specialized) => "type-specialized",
        };
        self.at(
            node,
            rule,
            format!("type changed from `{before}` to `{after}`"),
        );
    }

    /// JSON Schema 2020-12 keywords: a subschema added or removed, or compared below.
    fn subschemas(
        &mut self,
        node: &Node<'_>,
        owner: Option<String>,
        old: &Schema,
        new: &Schema,
        depth: usize,
    ) {
        let rule_of = |key: &str| -> Option<&'static str> {
            Some(match key.split('/').next().unwrap_or_default() {
                "if" => "if",
                "then" => "then",
                "else" => "else",
                "contains" => "contains",
                "propertyNames" => "property-names",
                "unevaluatedItems" => "unevaluated-items",
                "unevaluatedProperties" => "unevaluated-properties",
                "contentSchema" => "content-schema",
                "prefixItems" => "prefix-items",
                "patternProperties" => "pattern-property",
                "dependentSchemas" => "dependent-schema",
                _ => return None,
            })
        };
        for (key, before) in &old.subschemas {
            match new.subschemas.get(key) {
                Some(after) => {
                    self.below(node, &join(node.path, key), &owner, before, after, depth);
                }
                None => {
                    if let Some(rule) = rule_of(key) {
                        self.at(node, &format!("{rule}-removed"), format!("`{key}` removed"));
                    }
                }
            }
        }
        for key in new
            .subschemas
            .keys()
            .filter(|k| !old.subschemas.contains_key(*k))
        {
            if let Some(rule) = rule_of(key) {
                self.at(node, &format!("{rule}-added"), format!("`{key}` added"));
            }
        }
        for (key, before) in &old.dependent_required {
            match new.dependent_required.get(key) {
                None => self.at(
                    node,
                    "dependent-required-removed",
                    format!("dependentRequired `{key}` removed"),
                ),
                Some(after) if after != before => self.at(
                    node,
                    "dependent-required-changed",
                    format!("dependentRequired `{key}` changed from {before} to {after}"),
                ),
                Some(_) => {}
            }
        }
        for key in new
            .dependent_required
            .keys()
            .filter(|k| !old.dependent_required.contains_key(*k))
        {
            self.at(
                node,
                "dependent-required-added",
                format!("dependentRequired `{key}` added"),
            );
        }
        for (rule, keyword, before, after) in [
            (
                "content-media-type-changed",
                "contentMediaType",
                &old.content.0,
                &new.content.0,
            ),
            (
                "content-encoding-changed",
                "contentEncoding",
                &old.content.1,
                &new.content.1,
            ),
        ] {
            if let (Some(before), Some(after)) = (before, after)
                && before != after
            {
                self.at(
                    node,
                    rule,
                    format!("{keyword} changed from `{before}` to `{after}`"),
                );
            }
        }
    }

    fn nullable(&mut self, node: &Node<'_>, old: &Schema, new: &Schema) {
        match (old.nullable, new.nullable) {
            (false, true) => self.at(node, "became-nullable", "became nullable".into()),
            (true, false) => self.at(node, "became-not-nullable", "became not nullable".into()),
            _ => {}
        }
    }

    /// `enum` widened or narrowed; a request that gains an `enum` is narrowed too.
    fn enum_values(&mut self, node: &Node<'_>, old: &Schema, new: &Schema) {
        match (&old.enumeration, &new.enumeration) {
            (None, Some(_)) if node.part.direction() == Direction::Request => {
                self.at(node, "became-enum", "became an enum".into());
            }
            (Some(before), Some(after)) => {
                for value in after.difference(before) {
                    self.at(
                        node,
                        "enum-value-added",
                        format!("enum value {value} added"),
                    );
                }
                for value in before.difference(after) {
                    self.at(
                        node,
                        "enum-value-removed",
                        format!("enum value {value} removed"),
                    );
                }
            }
            _ => {}
        }
        if let (Some(before), Some(after)) = (&old.extensible_enum, &new.extensible_enum) {
            for value in before.difference(after) {
                self.at(
                    node,
                    "x-extensible-enum-value-removed",
                    format!("x-extensible-enum value {value} removed"),
                );
            }
        }
    }

    /// A body that became a `oneOf` holding what it was: oasdiff calls it breaking in
    /// both directions (a client must now say, or tell, which member it is).
    fn wrapped_in_one_of(&mut self, node: &Node<'_>, old: &Schema, new: &Schema) {
        let was_plain =
            old.one_of.is_empty() && (!old.types.is_empty() || !old.properties.is_empty());
        let now_one_of =
            !new.one_of.is_empty() && new.types.is_empty() && new.properties.is_empty();
        if was_plain && now_one_of && node.top() {
            self.at(node, "wrapped-in-one-of", "wrapped in a oneOf".into());
        }
    }

    fn properties(
        &mut self,
        node: &Node<'_>,
        owner: Option<String>,
        old: &Schema,
        new: &Schema,
        depth: usize,
    ) {
        let direction = node.part.direction();
        let body = matches!(node.part, Part::RequestBody | Part::ResponseBody);
        let subject = |property: &str| Subject {
            schema: owner.clone(),
            property: Some(property.to_owned()),
            ..Subject::default()
        };
        for (property, before) in &old.properties {
            let full = join(node.path, property);
            let label = format!("{}: property `{full}`", node.place.part);
            let was_required = old.required.contains(property);
            let Some(after) = new.properties.get(property) else {
                let removed = match direction {
                    // A client never sent a read-only property.
                    Direction::Request if before.read_only => None,
                    Direction::Request => Some(("request-property-removed", Level::Warning)),
                    Direction::Response if before.write_only => Some((
                        if was_required {
                            "response-required-write-only-property-removed"
                        } else {
                            "response-optional-write-only-property-removed"
                        },
                        Level::Info,
                    )),
                    Direction::Response if was_required => {
                        Some(("response-required-property-removed", Level::Breaking))
                    }
                    Direction::Response => {
                        Some(("response-optional-property-removed", Level::Warning))
                    }
                };
                if let Some((id, level)) = removed.filter(|_| body) {
                    self.push(
                        id,
                        level,
                        node.place,
                        format!("{label} removed"),
                        subject(property),
                    );
                }
                continue;
            };
            let is_required = new.required.contains(property);
            if body {
                self.required_change(
                    node,
                    &label,
                    before,
                    after,
                    was_required,
                    is_required,
                    &subject(property),
                );
            } else if node.part == (Part::Parameter { header: true })
                && !was_required
                && is_required
            {
                self.push(
                    "request-header-property-became-required",
                    Level::Breaking,
                    node.place,
                    format!("{label} became required"),
                    subject(property),
                );
            }
            // What a client neither sends nor reads cannot break it.
            let unseen = match direction {
                Direction::Request => after.read_only,
                Direction::Response => after.write_only,
            };
            if !unseen {
                self.below(node, &full, &owner, before, after, depth);
            }
        }
        for (property, after) in &new.properties {
            if old.properties.contains_key(property) {
                continue;
            }
            let full = join(node.path, property);
            let required = new.required.contains(property);
            let added = match (node.part, direction, required) {
                (Part::Parameter { header: true }, _, true) => {
                    Some(("new-required-request-header-property", Level::Breaking))
                }
                (Part::Parameter { .. } | Part::ResponseHeader, _, _) => None,
                // A client does not send a read-only property, required or not.
                (_, Direction::Request, true) if after.read_only => None,
                (_, Direction::Request, true) if after.default.is_some() => Some((
                    "new-required-request-property-with-default",
                    Level::Breaking,
                )),
                (_, Direction::Request, true) => {
                    Some(("new-required-request-property", Level::Breaking))
                }
                (_, Direction::Request, false) => {
                    Some(("new-optional-request-property", Level::Info))
                }
                (_, Direction::Response, true) if after.write_only => {
                    Some(("response-required-write-only-property-added", Level::Info))
                }
                (_, Direction::Response, false) if after.write_only => {
                    Some(("response-optional-write-only-property-added", Level::Info))
                }
                (_, Direction::Response, true) => {
                    Some(("response-required-property-added", Level::Info))
                }
                (_, Direction::Response, false) => {
                    Some(("response-optional-property-added", Level::Info))
                }
            };
            if let Some((id, level)) = added {
                let kind = if required { "required" } else { "optional" };
                self.push(
                    id,
                    level,
                    node.place,
                    format!("{}: {kind} property `{full}` added", node.place.part),
                    subject(property),
                );
            }
        }
    }

    /// `required` and `readOnly`/`writeOnly` changes of one property of a body.
    #[allow(clippy::too_many_arguments)]
    fn required_change(
        &mut self,
        node: &Node<'_>,
        label: &str,
        before: &Schema,
        after: &Schema,
        was_required: bool,
        is_required: bool,
        subject: &Subject,
    ) {
        let direction = node.part.direction();
        let change = match (direction, was_required, is_required) {
            (Direction::Request, false, true) if after.read_only => None,
            (Direction::Request, false, true) => Some((
                "request-property-became-required",
                Level::Breaking,
                "required",
            )),
            (Direction::Request, true, false) => {
                Some(("request-property-became-optional", Level::Info, "optional"))
            }
            (Direction::Response, true, false) if after.write_only => Some((
                "response-write-only-property-became-optional",
                Level::Info,
                "optional",
            )),
            (Direction::Response, true, false) => Some((
                "response-property-became-optional",
                Level::Breaking,
                "optional",
            )),
            (Direction::Response, false, true) if after.write_only => Some((
                "response-write-only-property-became-required",
                Level::Info,
                "required",
            )),
            (Direction::Response, false, true) => {
                Some(("response-property-became-required", Level::Info, "required"))
            }
            _ => None,
        };
        if let Some((id, level, now)) = change {
            self.push(
                id,
                level,
                node.place,
                format!("{label} became {now}"),
                subject.clone(),
            );
        }
        let word = match direction {
            Direction::Request => "request",
            Direction::Response => "response",
        };
        let kind = if is_required { "required" } else { "optional" };
        for (flag, was, is) in [
            ("read-only", before.read_only, after.read_only),
            ("write-only", before.write_only, after.write_only),
        ] {
            let rule = match (was, is) {
                (false, true) => format!("{word}-{kind}-property-became-{flag}"),
                (true, false) => format!("{word}-{kind}-property-became-not-{flag}"),
                _ => continue,
            };
            if let Some(level) = level(&rule) {
                let now = if is {
                    flag.to_owned()
                } else {
                    format!("not {flag}")
                };
                self.push(
                    &rule,
                    level,
                    node.place,
                    format!("{label} became {now}"),
                    subject.clone(),
                );
            }
        }
    }
}
