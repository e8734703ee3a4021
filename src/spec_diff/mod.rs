//! What changed between two versions of an OpenAPI 3.0 spec, how much it can hurt a
//! client, and what it means for this crate (feature `spec-diff`; `vipps-token spec diff`).
//!
//! The crate is regenerated when Vipps MobilePay updates the spec. A changed
//! generated-code snapshot says *that* something changed; this says *what*: each change
//! gets a level, and, where this crate's hand-written layer already copes with it or a
//! Rust item is reached, a note saying so.
//!
//! ```no_run
//! use std::path::Path;
//! use vipps_access_token::spec_diff::{Format, diff_files};
//!
//! let report = diff_files(Path::new("openapi/access-token.yaml"), Path::new("new.yaml"))?;
//! print!("{}", report.render(Format::Markdown));
//! std::process::exit(if report.has_breaking() { 1 } else { 0 });
//! # Ok::<(), vipps_access_token::spec_diff::LoadError>(())
//! ```
//!
//! # Levels
//!
//! - **breaking** (oasdiff `ERR`): a client built on the old spec can fail against the new.
//! - **warning** (oasdiff `WARN`): some clients may fail.
//! - **info** (oasdiff `INFO`): no client can fail.
//!
//! Descriptions, summaries, examples, titles and tags are compared apart and listed as
//! documentation-only changes.
//!
//! # Rules
//!
//! Ids and levels are oasdiff's, except where marked *(ours)*. `{body|property}` means the
//! rule exists for the body's top-level schema and for a property in it.
//!
//! | Rule id | Level | Meaning |
//! |---|---|---|
//! | `endpoint-added` | info | an operation was added |
//! | `api-path-removed-without-deprecation` | breaking | a path and all its operations removed, not deprecated first |
//! | `api-path-removed-with-deprecation` | info | the same, after deprecation |
//! | `api-removed-without-deprecation` | breaking | an operation removed (its path stays), not deprecated first |
//! | `api-removed-with-deprecation` | info | the same, after deprecation |
//! | `endpoint-deprecated` / `endpoint-reactivated` | info | `deprecated` set / cleared |
//! | `api-operation-id-removed` | info | `operationId` changed or removed (renames the generated method) |
//! | `api-operation-id-added` | info | `operationId` added |
//! | `api-security-added` | warning | a security requirement added to an operation (oasdiff: info; here warning, as a client without it is refused) |
//! | `api-security-removed` | info | a security requirement removed |
//! | `api-security-component-added` / `-removed` / `-type-changed` | info | `components.securitySchemes` changed |
//! | `api-server-removed` *(ours)* | warning | a server URL removed: clients pointed at it may fail |
//! | `api-server-added` *(ours)* | info | a server URL added |
//! | `new-required-request-parameter` | breaking | a required header, query or cookie parameter added |
//! | `new-optional-request-parameter` | info | an optional parameter added |
//! | `new-request-path-parameter` | breaking | a path parameter added |
//! | `request-parameter-removed` | warning | a parameter removed (clients still send it) |
//! | `request-parameter-became-required` | breaking | an optional parameter became required |
//! | `request-parameter-became-optional` | info | a required parameter became optional |
//! | `request-parameter-type-changed` | breaking | a parameter's type or format changed |
//! | `request-parameter-type-generalized` | info | a parameter's format removed, type kept |
//! | `request-parameter-became-enum` | breaking | a parameter gained an `enum` |
//! | `request-parameter-enum-value-added` / `-removed` | info / breaking | a parameter's `enum` widened / narrowed |
//! | `request-parameter-max-length-set` / `-decreased` / `-increased` | warning / breaking / info | `maxLength` on a parameter |
//! | `request-parameter-pattern-added` / `-changed` / `-removed` | breaking / warning / info | `pattern` on a parameter |
//! | `request-body-added-required` / `-added-optional` | breaking / info | a request body added |
//! | `request-body-removed` | breaking | the request body removed |
//! | `request-body-became-required` / `-became-optional` | breaking / info | `requestBody.required` changed |
//! | `request-body-media-type-removed` / `-added` | breaking / info | a request media type removed / added |
//! | `new-required-request-property` / `new-optional-request-property` | breaking / info | a request property added |
//! | `request-property-removed` | warning | a request property removed |
//! | `request-property-became-required` / `-became-optional` | breaking / info | a request property's `required` changed |
//! | `request-{body\|property}-type-changed` | breaking | a request schema's type or format changed |
//! | `request-{body\|property}-type-generalized` | info | a request schema's format removed, type kept |
//! | `request-{body\|property}-became-enum` | breaking | a request schema gained an `enum` |
//! | `request-{body\|property}-enum-value-added` / `-removed` | info / breaking | a request `enum` widened / narrowed |
//! | `request-{body\|property}-became-nullable` / `-became-not-nullable` | info / breaking | `nullable` on a request schema |
//! | `request-{body\|property}-max-length-set` / `-decreased` / `-increased` | warning / breaking / info | `maxLength` on a request schema |
//! | `request-{body\|property}-pattern-added` / `-changed` / `-removed` | breaking / warning / info | `pattern` on a request schema |
//! | `response-success-status-removed` | breaking | a 2xx status removed |
//! | `response-success-status-added` | info | a 2xx status added |
//! | `response-non-success-status-removed` / `-added` | info | a non-2xx status removed / added |
//! | `response-media-type-removed` / `-added` | breaking / info | a response media type removed / added |
//! | `response-required-property-removed` | breaking | a required response property removed |
//! | `response-optional-property-removed` | warning | an optional response property removed |
//! | `response-required-property-added` / `response-optional-property-added` | info | a response property added |
//! | `response-property-became-optional` | breaking | a required response property became optional |
//! | `response-property-became-required` | info | an optional response property became required |
//! | `response-{body\|property}-type-changed` | breaking | a response schema's type or format changed |
//! | `response-{body\|property}-became-nullable` | breaking | a response schema became nullable |
//! | `response-{body\|property}-enum-value-added` | warning | a response `enum` widened: clients may not know the value |
//! | `response-{body\|property}-enum-value-removed` | info | a response `enum` narrowed |
//!
//! Not compared: `oneOf`/`anyOf`/`not` members (only the kind), numeric bounds,
//! `minLength`, response headers, callbacks, links, webhooks, `x-` extensions.
//!
//! # This crate's knowledge
//!
//! A change the hand-written layer already absorbs says so: integer <-> string on
//! `expires_in`, `ext_expires_in`, `expires_on`, `not_before` (read by
//! [`integer_or_digits`](crate::integer_or_digits)); any string format on the token
//! types' string fields; fields added to the replaced response types (ignored); non-2xx
//! statuses (build.rs drops them, the error parser reads any body). A change that reaches
//! a Rust item names it: a generated method, builder or type (crate-private, in the
//! `generated` module), or a public hand-written item such as `StandardTokenResponse`.
//!
//! # Inputs
//!
//! YAML or JSON, OpenAPI 3.0.x, one file: local `$ref`s (`#/components/...`) are
//! resolved; external ones, dangling ones and alias cycles are errors ([`LoadError`]).

mod absorbed;
mod composition;
mod constraints;
mod crate_facts;
mod crate_knowledge;
mod documentation;
mod instances;
mod levels;
mod load;
mod model;
mod render;
mod resolve;
mod rules;
mod schema_rules;
mod security_rules;
mod type_change;

use std::path::Path;

use serde::Serialize;

pub use crate_facts::{CrateFacts, crate_facts};
pub use load::LoadError;
pub use rules::{Change, DocChange, Level};

/// An output form for [`Report::render`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// For a terminal.
    Text,
    /// For a pull request or the CHANGELOG.
    Markdown,
    /// For tools: the [`Report`] fields, serialised.
    Json,
}

/// Which spec a side of the report is.
#[derive(Clone, Debug, Serialize)]
pub struct SpecSummary {
    /// The file as given.
    pub file: String,
    /// Its `info.version`.
    pub version: String,
}

/// Counts by level.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Breaking changes.
    pub breaking: usize,
    /// Breaking changes that the crate's hand-written layer absorbs.
    pub breaking_absorbed_by_crate: usize,
    /// Warnings.
    pub warning: usize,
    /// Info changes.
    pub info: usize,
    /// Documentation-only changes.
    pub documentation: usize,
}

/// Every change between two specs. Serialised as the `--format json` output.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The old spec.
    pub old: SpecSummary,
    /// The new spec.
    pub new: SpecSummary,
    /// Counts by level.
    pub summary: Summary,
    /// The changes that matter to a client, breaking first.
    pub changes: Vec<Change>,
    /// Description, summary, example, title and tag changes.
    pub documentation: Vec<DocChange>,
}

impl Report {
    /// Whether any change is breaking (the CLI then exits 1).
    pub fn has_breaking(&self) -> bool {
        self.summary.breaking > 0
    }

    /// The report in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Text => render::text(self),
            Format::Markdown => render::markdown(self),
            Format::Json => render::json(self),
        }
    }
}

/// Compares the spec files `old` and `new`.
pub fn diff_files(old: &Path, new: &Path) -> Result<Report, LoadError> {
    let old_api = resolve::api(&load::load_file(old)?)?;
    let new_api = resolve::api(&load::load_file(new)?)?;
    Ok(report(
        old.display().to_string(),
        old_api,
        new.display().to_string(),
        new_api,
    ))
}

/// Compares two specs held in memory; the names are used in the report and in errors.
pub fn diff_texts(
    old_name: &str,
    old_text: &str,
    new_name: &str,
    new_text: &str,
) -> Result<Report, LoadError> {
    let old_api = resolve::api(&load::load_text(old_text, old_name)?)?;
    let new_api = resolve::api(&load::load_text(new_text, new_name)?)?;
    Ok(report(
        old_name.to_owned(),
        old_api,
        new_name.to_owned(),
        new_api,
    ))
}

fn report(old_file: String, old: model::Api, new_file: String, new: model::Api) -> Report {
    let (mut changes, documentation) = rules::compare(&old, &new);
    crate_knowledge::annotate(&mut changes, &old, &new);
    let count = |level| changes.iter().filter(|c| c.level == level).count();
    let summary = Summary {
        breaking: count(Level::Breaking),
        breaking_absorbed_by_crate: changes
            .iter()
            .filter(|c| c.level == Level::Breaking && c.absorbed_by_crate.is_some())
            .count(),
        warning: count(Level::Warning),
        info: count(Level::Info),
        documentation: documentation.len(),
    };
    Report {
        old: SpecSummary {
            file: old_file,
            version: old.version,
        },
        new: SpecSummary {
            file: new_file,
            version: new.version,
        },
        summary,
        changes,
        documentation,
    }
}
