//! A spec as the rules see it: every `$ref` resolved, only what a client depends on.
//!
//! `resolve.rs` builds this from the JSON value of a spec (OpenAPI 3.0 or 3.1); the rules
//! compare two of them. Keys are sorted (`BTreeMap`) so that a report lists changes in a
//! stable order.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    sync::Arc,
};

/// One spec, resolved.
#[derive(Debug, Default)]
pub(crate) struct Api {
    /// `info.version`.
    pub version: String,
    /// `servers[].url`.
    pub servers: BTreeSet<String>,
    /// `components.securitySchemes`: name -> the scheme.
    pub security_schemes: BTreeMap<String, SecurityScheme>,
    /// The top-level `security` block: alternatives, each scheme name -> its scopes.
    pub global_security: Security,
    /// Every operation, keyed by path then upper-case method.
    pub operations: BTreeMap<(String, String), Operation>,
    /// `components.schemas` names, for the crate's build.rs replacements.
    pub schema_names: BTreeSet<String>,
    /// Description, summary, example and tag texts by JSON pointer: they cannot break a
    /// client, and are reported apart.
    pub docs: HashMap<String, String>,
    /// JSON pointers of every mapping and list: a documentation text added inside
    /// something that is itself new belongs to that addition, not to the doc changes.
    pub containers: HashSet<String>,
    /// What was read although it is not valid OpenAPI (a missing `responses`), by pointer.
    pub warnings: Vec<String>,
}

/// Security requirement alternatives: each one, its scheme names -> required scopes.
pub(crate) type Security = BTreeSet<BTreeMap<String, BTreeSet<String>>>;

/// A security scheme from `components.securitySchemes`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SecurityScheme {
    /// A one-line summary: `apiKey X in header`, `http bearer`, `oauth2`.
    pub summary: String,
    /// OAuth 2 flows: flow name -> its scopes.
    pub oauth_scopes: BTreeMap<String, BTreeSet<String>>,
}

/// One operation (path + method).
#[derive(Debug, Default)]
pub(crate) struct Operation {
    /// `operationId`: progenitor names the generated method and builder after it.
    pub id: Option<String>,
    /// `deprecated: true`.
    pub deprecated: bool,
    /// Path-level and operation-level parameters merged, keyed by (`in`, name); header
    /// names are compared case-insensitively, so they are stored lower-case.
    pub parameters: BTreeMap<(String, String), Parameter>,
    /// `requestBody`.
    pub request_body: Option<Body>,
    /// Responses by status (`200`, `4XX`, `default`).
    pub responses: BTreeMap<String, Response>,
    /// The operation's own `security`, if it has one (else the global one applies).
    pub security: Option<Security>,
}

/// A parameter.
#[derive(Debug)]
pub(crate) struct Parameter {
    /// The name as the spec spells it (the key is lower-cased for headers).
    pub name: String,
    /// `required`.
    pub required: bool,
    /// Declared on the path item (for all its operations), not on the operation.
    pub path_level: bool,
    /// `schema`, or the schema of its single `content` entry.
    pub schema: Arc<Schema>,
}

/// A request body.
#[derive(Debug)]
pub(crate) struct Body {
    /// `required`.
    pub required: bool,
    /// The media types and their schemas.
    pub content: Content,
}

/// A response.
#[derive(Debug, Default)]
pub(crate) struct Response {
    /// Its headers, keyed by lower-case name.
    pub headers: BTreeMap<String, Header>,
    /// The media types and their schemas.
    pub content: Content,
}

/// A response header.
#[derive(Debug)]
pub(crate) struct Header {
    /// The name as the spec spells it.
    pub name: String,
    /// `required`.
    pub required: bool,
    /// Its schema.
    pub schema: Arc<Schema>,
}

/// Media type -> schema (`None` when the media type declares no schema).
pub(crate) type Content = BTreeMap<String, Option<Arc<Schema>>>;

/// A schema, resolved. A named schema is resolved once and shared (`Arc`) wherever a
/// `$ref` reaches it, so a spec that reuses its schemas stays its own size in memory.
#[derive(Debug, Default, Clone)]
pub(crate) struct Schema {
    /// A hash of everything the rules compare, children included: equal fingerprints,
    /// nothing to compare below (a spec diffed with itself is not walked at all).
    pub fingerprint: u64,
    /// The `components.schemas` name it was reached through, if any.
    pub name: Option<String>,
    /// A `$ref` back to a schema being expanded: compared by name only.
    pub recursive: bool,
    /// `type`, without `null` (3.1 lists, or one 3.0 type); empty for any type.
    pub types: BTreeSet<String>,
    /// `format`, if any.
    pub format: Option<String>,
    /// `nullable: true` (3.0) or `null` among the types (3.1).
    pub nullable: bool,
    /// `enum` values as JSON text, if the schema is an enum.
    pub enumeration: Option<BTreeSet<String>>,
    /// `x-extensible-enum` values as JSON text: values a server may add to.
    pub extensible_enum: Option<BTreeSet<String>>,
    /// `const` as JSON text.
    pub constant: Option<String>,
    /// `default` as JSON text.
    pub default: Option<String>,
    /// Object properties.
    pub properties: BTreeMap<String, Arc<Schema>>,
    /// Required property names.
    pub required: BTreeSet<String>,
    /// `additionalProperties` when it is a schema.
    pub additional: Option<Arc<Schema>>,
    /// Array items.
    pub items: Option<Arc<Schema>>,
    /// `oneOf` members.
    pub one_of: Vec<Arc<Schema>>,
    /// `anyOf` members.
    pub any_of: Vec<Arc<Schema>>,
    /// `allOf` members, kept apart (a client sees their conjunction, not a merge).
    pub all_of: Vec<Arc<Schema>>,
    /// JSON Schema 2020-12 subschemas (`not` too), by keyword and key: `if`, `contains`,
    /// `prefixItems/0`, `patternProperties/^x-`, `dependentSchemas/card`.
    pub subschemas: BTreeMap<String, Arc<Schema>>,
    /// `dependentRequired`: property -> the properties it then requires, as JSON text.
    pub dependent_required: BTreeMap<String, String>,
    /// `contentMediaType` and `contentEncoding` of a string.
    pub content: (Option<String>, Option<String>),
    /// Numeric bounds.
    pub bounds: Bounds,
    /// `pattern`; an empty one is no pattern.
    pub pattern: Option<String>,
    /// `readOnly`.
    pub read_only: bool,
    /// `writeOnly`.
    pub write_only: bool,
    /// `example` and `examples` values, for the crate's instance check.
    pub examples: Vec<serde_json::Value>,
}

/// The numeric, length and size bounds of a schema.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Bounds {
    /// `minimum`.
    pub minimum: Option<f64>,
    /// `maximum`.
    pub maximum: Option<f64>,
    /// `exclusiveMinimum` as a number (3.1).
    pub exclusive_minimum: Option<f64>,
    /// `exclusiveMaximum` as a number (3.1).
    pub exclusive_maximum: Option<f64>,
    /// `minLength`.
    pub min_length: Option<u64>,
    /// `maxLength`.
    pub max_length: Option<u64>,
    /// `minItems`.
    pub min_items: Option<u64>,
    /// `maxItems`.
    pub max_items: Option<u64>,
    /// `minContains`.
    pub min_contains: Option<u64>,
    /// `maxContains`.
    pub max_contains: Option<u64>,
}

impl Schema {
    /// Computes [`Self::fingerprint`] from the fields and the children's fingerprints.
    pub fn seal(mut self) -> Self {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.name.hash(&mut h);
        self.recursive.hash(&mut h);
        self.types.hash(&mut h);
        self.format.hash(&mut h);
        self.nullable.hash(&mut h);
        self.enumeration.hash(&mut h);
        self.extensible_enum.hash(&mut h);
        self.constant.hash(&mut h);
        self.default.hash(&mut h);
        self.required.hash(&mut h);
        self.dependent_required.hash(&mut h);
        self.content.hash(&mut h);
        self.pattern.hash(&mut h);
        self.read_only.hash(&mut h);
        self.write_only.hash(&mut h);
        let b = &self.bounds;
        for bound in [
            b.minimum,
            b.maximum,
            b.exclusive_minimum,
            b.exclusive_maximum,
        ] {
            bound.map(f64::to_bits).hash(&mut h);
        }
        for size in [
            b.min_length,
            b.max_length,
            b.min_items,
            b.max_items,
            b.min_contains,
            b.max_contains,
        ] {
            size.hash(&mut h);
        }
        for (name, child) in &self.properties {
            name.hash(&mut h);
            child.fingerprint.hash(&mut h);
        }
        for (key, child) in &self.subschemas {
            key.hash(&mut h);
            child.fingerprint.hash(&mut h);
        }
        for (tag, child) in [("items", &self.items), ("additional", &self.additional)] {
            tag.hash(&mut h);
            child.as_ref().map(|c| c.fingerprint).hash(&mut h);
        }
        for (tag, members) in [
            ("oneOf", &self.one_of),
            ("anyOf", &self.any_of),
            ("allOf", &self.all_of),
        ] {
            tag.hash(&mut h);
            for member in members {
                member.fingerprint.hash(&mut h);
            }
        }
        // Never 0: 0 is "not computed" (a default schema).
        self.fingerprint = h.finish() | 1;
        self
    }

    /// The type as a report shows it: `string`, `string/byte`, `integer, string`.
    pub fn type_label(&self) -> String {
        let kind = if self.types.is_empty() {
            "any".to_owned()
        } else {
            self.types.iter().cloned().collect::<Vec<_>>().join(", ")
        };
        match &self.format {
            Some(format) => format!("{kind}/{format}"),
            None => kind,
        }
    }
}
