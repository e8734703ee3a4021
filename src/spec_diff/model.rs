//! A spec as the rules see it: every `$ref` resolved, only what a client depends on.
//!
//! The loader builds this from an `openapiv3::OpenAPI`; the rules compare two of them.
//! Keys are sorted (`BTreeMap`) so that a report lists changes in a stable order.

use std::collections::{BTreeMap, BTreeSet};

/// One spec, resolved.
#[derive(Debug, Default)]
pub(crate) struct Api {
    /// `info.version`.
    pub version: String,
    /// `servers[].url`.
    pub servers: BTreeSet<String>,
    /// `components.securitySchemes`: name -> a one-line summary of the scheme.
    pub security_schemes: BTreeMap<String, String>,
    /// Every operation, keyed by path then upper-case method.
    pub operations: BTreeMap<(String, String), Operation>,
    /// Description, summary, example and tag texts by JSON pointer: they cannot break a
    /// client, and are reported apart.
    pub docs: BTreeMap<String, String>,
    /// JSON pointers of every mapping and list: a documentation text added inside
    /// something that is itself new belongs to that addition, not to the doc changes.
    pub containers: BTreeSet<String>,
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
    pub responses: BTreeMap<String, Content>,
    /// The security requirements in force (the operation's, else the global ones), each
    /// alternative written as its scheme names joined by `+`.
    pub security: BTreeSet<String>,
}

/// A parameter.
#[derive(Debug)]
pub(crate) struct Parameter {
    /// The name as the spec spells it (the key is lower-cased for headers).
    pub name: String,
    /// `required`.
    pub required: bool,
    /// `schema`, or the schema of its single `content` entry.
    pub schema: Schema,
}

/// A request body.
#[derive(Debug)]
pub(crate) struct Body {
    /// `required`.
    pub required: bool,
    /// The media types and their schemas.
    pub content: Content,
}

/// Media type -> schema (`None` when the media type declares no schema).
pub(crate) type Content = BTreeMap<String, Option<Schema>>;

/// A schema, resolved.
#[derive(Debug, Default, Clone)]
pub(crate) struct Schema {
    /// The `components.schemas` name it was reached through, if any.
    pub name: Option<String>,
    /// A `$ref` back to a schema being expanded: compared by name only.
    pub recursive: bool,
    /// `string`, `integer`, `number`, `boolean`, `object`, `array`, `oneOf`, `anyOf`,
    /// `not`, or empty for a schema without a type.
    pub kind: String,
    /// `format`, if any.
    pub format: Option<String>,
    /// `enum` values as JSON text, if the schema is an enum.
    pub enumeration: Option<BTreeSet<String>>,
    /// Object properties (an `allOf` has its members' merged).
    pub properties: BTreeMap<String, Schema>,
    /// Required property names.
    pub required: BTreeSet<String>,
    /// Array items.
    pub items: Option<Box<Schema>>,
    /// `nullable: true`.
    pub nullable: bool,
    /// `maxLength`.
    pub max_length: Option<usize>,
    /// `pattern`.
    pub pattern: Option<String>,
}

impl Schema {
    /// The type as a report shows it: `string`, `string/byte`.
    pub fn type_label(&self) -> String {
        let kind = if self.kind.is_empty() {
            "any"
        } else {
            &self.kind
        };
        match &self.format {
            Some(format) => format!("{kind}/{format}"),
            None => kind.to_owned(),
        }
    }
}
