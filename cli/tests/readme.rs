//! The CLI's README (`cli/README.md`) against the binary: every subcommand `--help` lists
//! is documented there, and every `vipps-token <subcommand>` it shows exists.

#[path = "../../tests/support/cli_binary.rs"]
mod cli_binary;
use cli_binary::bin;

use std::{collections::HashMap, process::Command};

const README: &str = include_str!("../README.md");

/// The subcommands the `--help` of `path` lists (`help` left out): the lines under
/// "Commands:" that are indented by two spaces (deeper ones continue a description).
fn subcommands(path: &[String]) -> Vec<String> {
    let output = Command::new(bin())
        .args(path)
        .arg("--help")
        .output()
        .expect("the binary runs");
    assert!(output.status.success(), "vipps-token {path:?} --help");
    let help = String::from_utf8(output.stdout).expect("the help is UTF-8");
    help.lines()
        .skip_while(|line| line.trim() != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// Every command that does something, as its words: `token`, `spec diff`, `cache list`...
fn leaf_commands() -> Vec<Vec<String>> {
    let mut leaves = Vec::new();
    let mut pending = vec![Vec::new()];
    while let Some(path) = pending.pop() {
        let children = subcommands(&path);
        if children.is_empty() {
            leaves.push(path);
            continue;
        }
        for child in children {
            let mut child_path = path.clone();
            child_path.push(child);
            pending.push(child_path);
        }
    }
    leaves.retain(|path| !path.is_empty());
    leaves.sort();
    leaves
}

/// The word after each `vipps-token ` in the README that names a command (lowercase
/// letters and dashes), with the word after it: `("cache", Some("list"))`.
fn commands_shown() -> Vec<(String, Option<String>)> {
    let is_command_word = |word: &str| {
        word.starts_with(|c: char| c.is_ascii_lowercase())
            && word.chars().all(|c| c.is_ascii_lowercase() || c == '-')
    };
    let bare = |word: &str| {
        word.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
            .to_owned()
    };
    README
        .match_indices("vipps-token ")
        .filter_map(|(at, prefix)| {
            let mut words = README[at + prefix.len()..].split_whitespace().map(bare);
            let command = words.next().filter(|word| is_command_word(word))?;
            let next = words.next().filter(|word| is_command_word(word));
            Some((command, next))
        })
        .collect()
}

#[test]
fn every_subcommand_is_in_the_cli_readme() {
    let leaves = leaf_commands();
    assert!(leaves.len() >= 10, "the subcommands found: {leaves:?}");
    for path in leaves {
        let shown = format!("vipps-token {}", path.join(" "));
        assert!(
            README.contains(&shown),
            "cli/README.md never shows `{shown}`"
        );
    }
}

#[test]
fn every_command_the_cli_readme_shows_exists() {
    let top = subcommands(&[]);
    let children: HashMap<&String, Vec<String>> = top
        .iter()
        .map(|command| (command, subcommands(std::slice::from_ref(command))))
        .collect();
    let shown = commands_shown();
    assert!(!shown.is_empty(), "cli/README.md shows no command");
    for (command, next) in shown {
        let Some(children) = children.get(&command) else {
            panic!(
                "cli/README.md shows `vipps-token {command}`, which --help does not list: {top:?}"
            );
        };
        if let (false, Some(next)) = (children.is_empty(), next) {
            assert!(
                children.contains(&next),
                "cli/README.md shows `vipps-token {command} {next}`, which `{command} --help` \
                 does not list: {children:?}"
            );
        }
    }
}
