//! The docs a reader is sent to (README.md, docs/*.md, cli/README.md,
//! spec-diff/README.md): the README stays a front door, every relative link leads to a
//! file, every guide is compiled as the crate's docs, and no doc teaches an HTTP client
//! that panics for want of a TLS provider.

use std::path::{Path, PathBuf};

/// The workspace root: this package's directory.
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The longest the README may grow: past it, a section belongs in a guide.
const README_MAX_LINES: usize = 250;

/// The calls that build a reqwest client without the crate's TLS provider.
const PANICKING_CLIENTS: [&str; 2] = ["reqwest::Client::new(", "reqwest::Client::builder("];

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The guides: every Markdown file in docs/.
fn guides() -> Vec<PathBuf> {
    let mut guides: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .expect("docs/")
        .map(|entry| entry.expect("a docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    guides.sort();
    guides
}

/// Every doc a reader is sent to.
fn docs() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = ["README.md", "cli/README.md", "spec-diff/README.md"]
        .iter()
        .map(|path| Path::new(ROOT).join(path))
        .collect();
    docs.extend(guides());
    docs
}

/// The text outside fenced code blocks.
fn prose(markdown: &str) -> String {
    let mut in_code = false;
    let mut prose = String::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        } else if !in_code {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    prose
}

/// The targets of the inline links `[text](target)` and the reference definitions
/// `[name]: target` in `markdown`'s prose.
fn link_targets(markdown: &str) -> Vec<String> {
    let prose = prose(markdown);
    let inline = prose.match_indices("](").filter_map(|(at, open)| {
        let rest = &prose[at + open.len()..];
        rest.find(')').map(|end| rest[..end].to_owned())
    });
    let definitions = prose.lines().filter_map(|line| {
        let line = line.trim_start();
        let (label, target) = line.strip_prefix('[')?.split_once("]: ")?;
        (!label.is_empty()).then(|| target.trim().to_owned())
    });
    inline.chain(definitions).collect()
}

/// A target within the repository: not a URL, an anchor or an intra-doc path.
fn is_relative_file(target: &str) -> bool {
    !(target.is_empty()
        || target.starts_with('#')
        || target.contains("://")
        || target.starts_with("mailto:")
        || target.contains("::"))
}

#[test]
fn the_readme_is_a_front_door() {
    let readme = read(&Path::new(ROOT).join("README.md"));
    let lines = readme.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, more than {README_MAX_LINES}: move a section to a guide in docs/"
    );
    for needed in [
        // THE test command, as `.ci/run` runs it.
        "cargo test --workspace --all-features",
        // What the store tests need installed.
        "apt-get install redis-server redis-tools redis-sentinel openssl",
        // The CLI's install.
        "cargo install --locked --path cli",
    ] {
        assert!(readme.contains(needed), "README.md does not say `{needed}`");
    }
}

#[test]
fn every_relative_link_leads_to_a_file() {
    let mut broken = Vec::new();
    for doc in docs() {
        let dir = doc.parent().expect("a doc's directory");
        for target in link_targets(&read(&doc)) {
            if !is_relative_file(&target) {
                continue;
            }
            let file = target.split('#').next().unwrap_or_default();
            if !dir.join(file).exists() {
                broken.push(format!("{}: {target}", doc.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links to no file:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_link_check_sees_links() {
    let targets = link_targets(
        "[a](docs/a.md) and [b](https://x.y) [c](crate::C)\n```\n[no](code.md)\n```\n[d]: e.md\n",
    );
    assert_eq!(targets, ["docs/a.md", "https://x.y", "crate::C", "e.md"]);
    let relative: Vec<_> = targets.iter().filter(|t| is_relative_file(t)).collect();
    assert_eq!(relative, ["docs/a.md", "e.md"]);
}

#[test]
fn every_guide_is_compiled_as_the_crates_docs() {
    // src/guide.rs includes each guide, so that its examples run as doctests.
    let guide_module = read(&Path::new(ROOT).join("src/guide.rs"));
    for guide in guides() {
        let name = guide.file_name().expect("a name").to_string_lossy();
        let include = format!("include_str!(\"../docs/{name}\")");
        assert!(
            guide_module.contains(&include),
            "src/guide.rs does not include docs/{name}: its examples would go untested"
        );
    }
}

/// The Rust doc comments (`///`, `//!`) of every `.rs` file under `dir`, with their paths.
fn doc_comments(dir: &Path, found: &mut Vec<(PathBuf, String)>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            doc_comments(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let docs: String = read(&path)
                .lines()
                .filter_map(|line| {
                    let line = line.trim_start();
                    line.strip_prefix("///")
                        .or_else(|| line.strip_prefix("//!"))
                })
                .map(|line| format!("{line}\n"))
                .collect();
            found.push((path, docs));
        }
    }
}

/// The code of the fenced blocks in `markdown`: what a doc teaches to type.
fn code_blocks(markdown: &str) -> String {
    let mut in_code = false;
    let mut code = String::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        } else if in_code {
            code.push_str(line);
            code.push('\n');
        }
    }
    code
}

#[test]
fn no_doc_teaches_a_client_without_the_tls_provider() {
    // The crate enables reqwest's `rustls-no-provider`: these calls give a client that
    // panics on its first build unless the program installed a rustls provider itself.
    // Markdown docs may not name them at all; a doc comment may warn against one in its
    // prose, but its examples may not use one.
    let mut taught = Vec::new();
    for doc in docs() {
        let text = read(&doc);
        for call in PANICKING_CLIENTS {
            if text.contains(call) {
                taught.push(format!("{}: {call}", doc.display()));
            }
        }
    }
    let mut comments = Vec::new();
    for dir in ["src", "cli/src", "spec-diff/src"] {
        doc_comments(&Path::new(ROOT).join(dir), &mut comments);
    }
    assert!(comments.len() > 10, "the doc comments were found");
    for (file, docs) in comments {
        let examples = code_blocks(&docs);
        for call in PANICKING_CLIENTS {
            if examples.contains(call) {
                taught.push(format!("{} (a doc example): {call}", file.display()));
            }
        }
    }
    assert!(
        taught.is_empty(),
        "start every reqwest client from vipps_access_token::http_client_builder():\n{}",
        taught.join("\n")
    );
}
