//! What changed between two versions of an OpenAPI spec (3.0 or 3.1), how much it can
//! hurt a client, and what it means for the `vipps-access-token` crate (`vipps-token spec
//! diff` on the command line).
//!
//! The crate is regenerated when Vipps MobilePay updates the spec. A changed
//! generated-code snapshot says *that* something changed; this says *what*: each change
//! gets oasdiff's rule id and level, and, where this crate's hand-written layer copes
//! with it (proven, see below) or a Rust item is reached, a note saying so.
//!
//! ```no_run
//! use std::path::Path;
//! use vipps_spec_diff::{FailOn, Format, Gate, diff_files};
//!
//! let report = diff_files(Path::new("openapi/access-token.yaml"), Path::new("new.yaml"))?;
//! print!("{}", report.render(Format::Markdown));
//! // Fail CI on what is breaking and not absorbed by the crate.
//! let gate = Gate { fail_on: FailOn::Breaking, ignore_absorbed: true };
//! std::process::exit(if report.fails(gate) { 7 } else { 0 });
//! # Ok::<(), vipps_spec_diff::LoadError>(())
//! ```
//!
//! # Levels and the gate
//!
//! - **breaking** (oasdiff `ERR`): a client built on the old spec can fail against the new.
//! - **warning** (oasdiff `WARN`): some clients may fail.
//! - **info** (oasdiff `INFO`): no client can fail.
//!
//! A [`Gate`] fails on changes at or above a level ([`FailOn::Breaking`], oasdiff's
//! `--fail-on ERR`; [`FailOn::Warning`], `--fail-on WARN`), optionally leaving out what
//! the crate absorbs. `vipps-token spec diff --fail-on breaking|warning
//! [--ignore-absorbed]` exits 0 when nothing is at or above the level, 7 when something
//! is, 2 when a spec cannot be read, 1 when stdout cannot be written.
//!
//! Descriptions, summaries, examples, titles and tags are compared apart and listed as
//! documentation-only changes.
//!
//! # Rules
//!
//! Ids and levels are oasdiff's (its `checker/rules.go`, its `checker/*_test.go` as the
//! definition of each), except where marked *(ours)* or *(differs)*. A schema rule exists
//! at several places: `{body}` is `request-body` / `response-body` for the top of a body,
//! `{property}` is `request-property` / `response-property` below it,
//! `request-parameter` and `request-parameter-property` for a parameter's schema,
//! `response-header` for a response header's. A rule oasdiff has not got for a place is
//! not reported there either (a response `maxLength` that shrinks breaks nobody).
//!
//! | Rule id | Level | Meaning |
//! |---|---|---|
//! | `endpoint-added` | info | an operation was added |
//! | `api-path-removed-without-deprecation` | breaking | a path and all its operations removed, not deprecated first |
//! | `api-path-removed-with-deprecation` | info | the same, after deprecation |
//! | `api-removed-without-deprecation` | breaking | an operation removed (its path stays), not deprecated first |
//! | `api-removed-with-deprecation` | info | the same, after deprecation |
//! | `endpoint-deprecated` / `endpoint-reactivated` | info | `deprecated` set / cleared |
//! | `webhook-added` / `webhook-removed` | info / breaking | a 3.1 webhook added / removed |
//! | `api-operation-id-removed` / `-added` | info | `operationId` changed or removed / added (renames the generated method) |
//! | `api-security-added` *(differs)* | warning | a security requirement added to an operation (oasdiff: info; here a warning, as a client without it is refused) |
//! | `api-security-removed`, `api-security-scope-added` / `-removed` | info | an operation's own `security` changed |
//! | `api-global-security-added` / `-removed` / `-scope-added` / `-scope-removed` | info | the top-level `security` changed, reported once rather than per operation |
//! | `api-security-component-added` / `-removed` / `-type-changed` / `-oauth-scope-added` / `-oauth-scope-removed` | info | `components.securitySchemes` changed |
//! | `api-schema-removed` | info | a `components.schemas` entry removed |
//! | `crate-replaced-schema-removed` *(ours)* | breaking | a schema build.rs replaces by name is gone: the file that then stops compiling is named |
//! | `api-server-removed` / `api-server-added` *(ours)* | warning / info | a server URL removed (clients pointed at it may fail) / added |
//! | `new-required-request-parameter` / `new-request-path-parameter` | breaking | a required parameter added; a path parameter renamed in place (`/books/{bookId}` -> `/books/{id}`) is not one |
//! | `new-optional-request-parameter` | info | an optional parameter added |
//! | `new-required-request-default-parameter-to-existing-path` / `new-optional-…` | breaking / info | a parameter added to a path item, for all its operations |
//! | `request-parameter-removed` | warning | a parameter removed (clients still send it) |
//! | `request-parameter-became-required` / `-became-optional` | breaking / info | `required` changed |
//! | `request-body-added-required` / `-added-optional` | breaking / info | a request body added |
//! | `request-body-removed` | breaking | the request body removed |
//! | `request-body-became-required` / `-became-optional` | breaking / info | `requestBody.required` changed |
//! | `request-body-media-type-removed` / `-added` | breaking / info | a request media type removed / added |
//! | `request-body-media-type-schema-added` / `-removed`, `response-body-media-type-schema-added` / `-removed` | breaking / info, info / warning | a media type gained or lost its schema |
//! | `new-required-request-property` (`-with-default`) / `new-optional-request-property` | breaking / info | a request property added; not for a `readOnly` one (a client never sends it) |
//! | `new-required-request-header-property`, `request-header-property-became-required` / `-became-enum` | breaking | a header parameter's object schema tightened |
//! | `request-property-removed` | warning | a request property removed (not a `readOnly` one) |
//! | `request-property-became-required` / `-became-optional` | breaking / info | a request property's `required` changed (not a `readOnly` one) |
//! | `request-{required,optional}-property-became-{,not-}{read,write}-only`, `response-…` | info (`response-required-property-became-not-write-only`: warning) | `readOnly` / `writeOnly` changed |
//! | `response-success-status-removed` / `-added` | breaking / info | a 2xx status removed / added |
//! | `response-non-success-status-removed` / `-added` | info | a non-2xx status removed / added |
//! | `response-media-type-removed` / `-added` | breaking / info | a response media type removed / added |
//! | `response-required-property-removed` / `response-optional-property-removed` | breaking / warning | a response property removed (a `writeOnly` one: `response-…-write-only-property-removed`, info) |
//! | `response-required-property-added` / `response-optional-property-added` | info | a response property added |
//! | `response-property-became-optional` / `-became-required` | breaking / info | a response property's `required` changed |
//! | `required-response-header-removed` / `optional-response-header-removed` | breaking / warning | a response header removed |
//! | `response-header-added` / `response-header-became-optional` | info / breaking | a response header added / no longer required |
//! | `{body,property}-type-changed` | breaking | a type or format change a client can fail on |
//! | `request-{body,property}-type-generalized` / `-type-compatible` | info | the new type accepts every old value (integer -> number, a format dropped, date -> date-time) / is a text media type's string |
//! | `response-{body,property}-type-specialized` / `-type-compatible` | info | the new type yields only old values (number -> integer) |
//! | `response-{body,property}-type-generalized` | breaking | the new type yields more (integer -> number) |
//! | `{body,property}-list-of-types-widened` / `-narrowed` | request: info / breaking; response: breaking / info | a type list (`type: [a, b]`, or a `oneOf` of bare types replacing a type) grew / shrank |
//! | `{body,property}-became-nullable` / `-became-not-nullable` | request: info / breaking; response: breaking / info | `nullable` (3.0) or `null` in `type` (3.1) |
//! | `{body,property}-became-enum`, `-enum-value-added` / `-removed` | request: breaking, info / breaking; response: –, warning / info | `enum` |
//! | `request-{parameter,property}-x-extensible-enum-value-removed` | breaking | `x-extensible-enum` narrowed in a request |
//! | `{body,property}-max-…`, `-min-…`, `-exclusive-max-…`, `-exclusive-min-…`, `-max-length-…`, `-min-length-…`, `-min-items-…`, `request-parameter-max-items-…` | request: tightened breaking, set warning, loosened info; response: loosened breaking (`-increased`, `-decreased`, `-unset`) | numeric, length and size bounds |
//! | `{body,property}-pattern-added` / `-changed` / `-removed` | request: breaking / warning / info; response property: info | `pattern`; an empty pattern is no pattern |
//! | `{body,property}-default-value-added` / `-changed` / `-removed` | info (parameters: breaking) | `default` |
//! | `{body,property}-const-added` / `-changed` / `-removed` | request: breaking / breaking / info; response: info / breaking / breaking | `const` |
//! | `{body,property}-one-of-added` / `-removed`, `-any-of-…`, `-all-of-…` (`-annotation-only`) | request: added info (allOf: breaking), removed breaking (allOf: warning); response: oneOf added breaking, else info | `oneOf`/`anyOf`/`allOf` members, matched by schema name, then an inline member by shape (a member moved into `components`); `allOf` is not merged |
//! | `{body}-wrapped-in-one-of` | breaking | a body became a `oneOf` holding what it was |
//! | `{body,property}-contains-…`, `-min-contains-…`, `-max-contains-…`, `-if-…`, `-then-…`, `-else-…`, `-dependent-required-…`, `-dependent-schema-…`, `-pattern-property-…`, `-prefix-items-…`, `-property-names-…`, `-unevaluated-items-…`, `-unevaluated-properties-…`, `-content-schema-…`, `-content-media-type-changed`, `-content-encoding-changed` | as oasdiff | JSON Schema 2020-12 keywords (3.1); subschemas under them (and under `not`) are compared like any |
//!
//! Not compared: callbacks, links, `discriminator`, `x-` extensions (but
//! `x-extensible-enum`), deprecation of parameters and properties, stability levels.
//!
//! ## Agreement with oasdiff
//!
//! `python3 scripts/oasdiff-agreement OASDIFF_CHECKOUT` (with `vipps-token` built) takes
//! every `checker/*_test.go` test that opens two spec files of oasdiff's `data/` and does
//! not change them in code, and compares breaking-or-not with what the test expects
//! (tests on one pair and check taken together). At oasdiff commit 4553c69d: 251 pairs,
//! none refused, **247 agree**; no breaking change missed, 4 false alarms:
//!
//! - false alarm, deliberate: a `maxItems` inside an `allOf` member, which oasdiff
//!   compares only after flattening and this compares as it is.
//! - false alarm, deliberate: `[string, integer]` -> an array of strings on an exploded
//!   query parameter (oasdiff: safe for form explosion; here a type change).
//! - false alarm, perhaps the measure's: two pairs where `contentMediaType` and
//!   `contentEncoding` change beside `contentSchema`; this reports
//!   `{body,property}-content-media-type-changed` and `-content-encoding-changed`, which
//!   oasdiff's rules rate breaking, while the tests name only the schema change.
//!
//! With `--read` it diffs every file of `data/` with itself: of 632, 6 are refused, none
//! of them OpenAPI 3 (no `openapi` field, an empty one, a top level that is not a
//! mapping); none panics or hangs.
//!
//! # This crate's knowledge: absorbed, proven
//!
//! A change to a response schema that build.rs replaces with a hand-written type
//! (`AuthorizationTokenResponse` -> [`StandardTokenResponse`](vipps_access_token::StandardTokenResponse),
//! `TokenResponse` -> [`PartnerTokenResponse`](vipps_access_token::PartnerTokenResponse)) is
//! *absorbed* only if every instance of the NEW schema parses with that type's real
//! parser: the schema's examples, plus values built from type, format, pattern, enum and
//! bounds (a `date-time` string, `12.5` where a pattern allows decimals, a fraction for a
//! `number`; a bare `string` is taken at its examples' word). Otherwise the report names
//! the value that the type rejects. A change to the standard flow's request is absorbed
//! only if the request the crate sends (its headers, the documented example values, no
//! body) meets the new spec. Non-2xx statuses are absorbed by build.rs (it drops them)
//! and the error parser (it reads any body). A schema build.rs replaces that is gone is
//! its own breaking change, `crate-replaced-schema-removed`, naming the file that stops
//! compiling. [`crate_facts`] lists what this relies on; tests tie each fact to build.rs,
//! `src/wire/response.rs` and a real request. A change that reaches a Rust item names it: a
//! generated method, builder or type (crate-private, in the `generated` module), or a
//! public hand-written item such as `StandardTokenResponse::expires_in`.
//!
//! # Inputs
//!
//! YAML or JSON, OpenAPI 3.0 or 3.1. `$ref`s are followed within the file and into other
//! local files beside it (`common.yaml#/components/schemas/Money`); remote ones are not
//! fetched. YAML map keys that are not strings are read as strings; an operation
//! without `responses`, a response without `description`, `content: null` are read with a
//! warning ([`Report::warnings`]). What cannot be read is a [`LoadError`] naming the file
//! and the place (`line:column` for syntax, a JSON pointer for structure): not YAML or
//! JSON, not OpenAPI 3 (Swagger 2.0, no `openapi`), a dangling `$ref`, an alias cycle.

// The README's example runs as a doctest, so that it cannot teach code that does not build.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

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
mod yaml_value;

use std::path::Path;

use serde::Serialize;

pub use crate_facts::{CrateFacts, crate_facts};
pub use load::LoadError;
pub use rules::{Change, DocChange, Level};

/// What a CI gate fails on: changes at or above this level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOn {
    /// Breaking changes only (oasdiff `--fail-on ERR`).
    Breaking,
    /// Breaking changes and warnings (oasdiff `--fail-on WARN`).
    Warning,
}

impl FailOn {
    fn level(self) -> Level {
        match self {
            FailOn::Breaking => Level::Breaking,
            FailOn::Warning => Level::Warning,
        }
    }
}

impl std::str::FromStr for FailOn {
    type Err = String;

    /// `breaking` or `ERR`; `warning` or `WARN` (any case).
    fn from_str(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "breaking" | "err" => Ok(FailOn::Breaking),
            "warning" | "warn" => Ok(FailOn::Warning),
            _ => Err(format!(
                "`{text}` is not a level to fail on: use breaking (ERR) or warning (WARN)"
            )),
        }
    }
}

/// A CI gate: which changes make [`Report::fails`] true.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gate {
    /// The lowest level that fails.
    pub fail_on: FailOn,
    /// Leave out the changes the crate absorbs (proven: see the module docs).
    pub ignore_absorbed: bool,
}

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
    /// What was read although it is not valid OpenAPI (`file at /pointer: what`), from
    /// both specs.
    pub warnings: Vec<String>,
}

impl Report {
    /// Whether any change is breaking.
    pub fn has_breaking(&self) -> bool {
        self.summary.breaking > 0
    }

    /// The changes `gate` fails on, breaking first.
    pub fn failing(&self, gate: Gate) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(move |c| {
            c.level <= gate.fail_on.level()
                && !(gate.ignore_absorbed && c.absorbed_by_crate.is_some())
        })
    }

    /// Whether any change fails `gate` (the CLI then exits 7).
    pub fn fails(&self, gate: Gate) -> bool {
        self.failing(gate).next().is_some()
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
    let (old_api, new_api) = both(
        || resolve::api(&load::load_file(old)?),
        || resolve::api(&load::load_file(new)?),
    );
    Ok(report(
        old.display().to_string(),
        old_api?,
        new.display().to_string(),
        new_api?,
    ))
}

/// Compares two specs held in memory; the names are used in the report and in errors.
pub fn diff_texts(
    old_name: &str,
    old_text: &str,
    new_name: &str,
    new_text: &str,
) -> Result<Report, LoadError> {
    let (old_api, new_api) = both(
        || resolve::api(&load::load_text(old_text, old_name)?),
        || resolve::api(&load::load_text(new_text, new_name)?),
    );
    Ok(report(
        old_name.to_owned(),
        old_api?,
        new_name.to_owned(),
        new_api?,
    ))
}

/// Reads the two specs at once, one on a thread of its own: parsing a big YAML spec is
/// most of a diff's time. An error in the old spec is reported first, as before.
fn both<T: Send>(old: impl FnOnce() -> T + Send, new: impl FnOnce() -> T) -> (T, T) {
    std::thread::scope(|scope| {
        let old = scope.spawn(old);
        let new = new();
        let old = old
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (old, new)
    })
}

fn report(old_file: String, mut old: model::Api, new_file: String, mut new: model::Api) -> Report {
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
        warnings: {
            // A spec diffed with itself warns once, not twice.
            let mut warnings: Vec<String> = old.warnings.drain(..).collect();
            for warning in new.warnings.drain(..) {
                if !warnings.contains(&warning) {
                    warnings.push(warning);
                }
            }
            warnings
        },
    }
}
