//! The report as text (a terminal), Markdown (a pull request, the CHANGELOG) or JSON
//! (tools; the fields are documented on [`Report`]).

use std::fmt::Write;

use super::{Report, rules::Level};

/// Plain text, one change a block, breaking first.
pub(crate) fn text(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "spec diff: {} ({}) -> {} ({})",
        report.old.file, report.old.version, report.new.file, report.new.version
    );
    let _ = writeln!(out, "{}", summary_line(report));
    for change in &report.changes {
        let _ = writeln!(
            out,
            "\n{:<9}{}{}",
            change.level.as_str(),
            change.id,
            change
                .operation
                .as_deref()
                .map(|o| format!("  {o}"))
                .unwrap_or_default()
        );
        let _ = writeln!(out, "         {}", change.message);
        if let Some(absorbed) = &change.absorbed_by_crate {
            let _ = writeln!(out, "         absorbed by the crate: {absorbed}");
        }
        if let Some(item) = &change.rust_api {
            let _ = writeln!(out, "         Rust API: {item}");
        }
    }
    if !report.documentation.is_empty() {
        let _ = writeln!(
            out,
            "\ndocumentation only, cannot affect clients ({}):",
            report.documentation.len()
        );
        for doc in &report.documentation {
            let _ = writeln!(out, "  {:<8} {}", doc.change, doc.location);
        }
    }
    out
}

/// Markdown: a summary, a table of changes, documentation changes folded away.
pub(crate) fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### OpenAPI spec {} → {}\n",
        report.old.version, report.new.version
    );
    let _ = writeln!(out, "{}\n", summary_line(report));
    if !report.changes.is_empty() {
        out.push_str("| Level | Rule | Operation | Change | This crate |\n");
        out.push_str("|---|---|---|---|---|\n");
        for change in &report.changes {
            let mut crate_notes = Vec::new();
            if let Some(absorbed) = &change.absorbed_by_crate {
                crate_notes.push(format!("absorbed by the crate: {absorbed}"));
            }
            if let Some(item) = &change.rust_api {
                crate_notes.push(format!("Rust API: {item}"));
            }
            let level = match change.level {
                Level::Breaking => "**breaking**",
                Level::Warning => "warning",
                Level::Info => "info",
            };
            let _ = writeln!(
                out,
                "| {level} | `{}` | {} | {} | {} |",
                change.id,
                change
                    .operation
                    .as_deref()
                    .map(|o| format!("`{o}`"))
                    .unwrap_or_default(),
                cell(&change.message),
                cell(&crate_notes.join("; "))
            );
        }
        out.push('\n');
    }
    if !report.documentation.is_empty() {
        let _ = writeln!(
            out,
            "<details><summary>Documentation-only changes, cannot affect clients ({})</summary>\n",
            report.documentation.len()
        );
        for doc in &report.documentation {
            let _ = writeln!(out, "- {} `{}`", doc.change, doc.location);
        }
        out.push_str("\n</details>\n");
    }
    out
}

/// Pretty JSON of the whole report.
pub(crate) fn json(report: &Report) -> String {
    // A report holds only strings, numbers and enums: serialising it cannot fail, and if
    // it ever did the message says so rather than panicking.
    serde_json::to_string_pretty(report)
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialise the report: {e}\"}}"))
        + "\n"
}

fn summary_line(report: &Report) -> String {
    let s = &report.summary;
    if report.changes.is_empty() {
        return format!(
            "no change that affects clients; {} documentation-only",
            s.documentation
        );
    }
    format!(
        "{} breaking ({} absorbed by the crate), {} warning, {} info; {} documentation-only",
        s.breaking, s.breaking_absorbed_by_crate, s.warning, s.info, s.documentation
    )
}

/// A Markdown table cell: no pipes, no line breaks.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
