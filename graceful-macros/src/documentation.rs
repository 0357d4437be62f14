//! Checks that the documents the macros must agree with have not fallen behind: every
//! `#[graceful::main]` key in the macro's docs and in the README's key table, and every item
//! of graceful's hidden module that the expansions name in docs/PRIVATE-API.md.

use std::collections::BTreeSet;
use std::path::Path;

use crate::main_attr::MAIN_KEYS;

const LIB_RS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs"));
const README: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"));
const PRIVATE_API: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../docs/PRIVATE-API.md"
));

/// The path segment generated code reaches the runtime through.
const PRIVATE: &str = "__private";

#[test]
fn every_main_key_is_in_the_docs_of_graceful_main() {
    let docs = doc_comment_of(LIB_RS, "pub fn main(");
    let missing: Vec<&str> = MAIN_KEYS
        .iter()
        .copied()
        .filter(|key| !docs.contains(&format!("`{key} =")))
        .collect();
    assert!(
        missing.is_empty(),
        "keys without a `key = ..` in the docs of `pub fn main` in src/lib.rs: {missing:?}"
    );
}

#[test]
fn every_main_key_has_a_row_in_the_readme_key_table() {
    let rows = readme_key_rows();
    let missing: Vec<&str> = MAIN_KEYS
        .iter()
        .copied()
        .filter(|key| !rows.contains(*key))
        .collect();
    assert!(
        missing.is_empty(),
        "keys without a row in README.md's \"Keys and environment\" table: {missing:?}"
    );
}

#[test]
fn every_private_item_the_expansions_name_is_declared_in_private_api_md() {
    let emitted = private_names_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(emitted.contains("Builder"), "the scan found {emitted:?}");
    let declared = private_api_declarations();
    let missing: Vec<&String> = emitted.difference(&declared).collect();
    assert!(
        missing.is_empty(),
        "named by the expansions but not declared in docs/PRIVATE-API.md's `pub mod {PRIVATE}` block: {missing:?}"
    );
}

/// The `///` lines right above `item` (attributes between them skipped), joined.
fn doc_comment_of(source: &str, item: &str) -> String {
    let before = &source[..source.find(item).expect("the item is in the source")];
    let mut lines: Vec<&str> = before
        .lines()
        .rev()
        .skip_while(|line| line.trim().is_empty() || line.trim_start().starts_with("#["))
        .take_while(|line| line.trim_start().starts_with("///"))
        .collect();
    lines.reverse();
    lines.join("\n")
}

/// The key each row of the README's "Keys and environment" table starts with.
fn readme_key_rows() -> BTreeSet<String> {
    let section = README
        .split_once("## Keys and environment")
        .expect("README.md has a \"Keys and environment\" section")
        .1;
    section
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        // The header and the `|---|` line.
        .skip(2)
        .filter_map(|row| {
            let cell = row.split('|').nth(1)?.trim().strip_prefix('`')?;
            Some(leading_identifier(cell).to_owned())
        })
        .collect()
}

/// Every `NAME` after `__private::` in the crate's code, its test modules left out (they
/// repeat the expansions' names as text) and this file too (it names none).
fn private_names_in(directory: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(directory).expect("src is readable") {
        let path = entry.expect("src is readable").path();
        if path.is_dir() {
            names.extend(private_names_in(&path));
            continue;
        }
        if path.extension().is_none_or(|extension| extension != "rs")
            || path.ends_with("documentation.rs")
        {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("a source file is readable");
        let code = source
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap_or_default();
        let needle = format!("{PRIVATE}::");
        for (at, _) in code.match_indices(&needle) {
            let name = leading_identifier(&code[at + needle.len()..]);
            if !name.is_empty() {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

/// The names the `pub mod __private { .. }` block of docs/PRIVATE-API.md declares: the last
/// segment of each `pub use`, and the name after the keywords of each other `pub` item.
fn private_api_declarations() -> BTreeSet<String> {
    let block = PRIVATE_API
        .split_once(&format!("pub mod {PRIVATE} {{"))
        .expect("docs/PRIVATE-API.md shows the module")
        .1;
    let block = block.split_once("\n}").map_or(block, |(inside, _)| inside);
    block
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("pub "))
        .map(|declaration| match declaration.strip_prefix("use ") {
            Some(path) => {
                let path = path.split(';').next().unwrap_or_default();
                path.rsplit("::").next().unwrap_or_default().trim()
            }
            None => {
                let keywords = [
                    "const", "unsafe", "async", "fn", "struct", "enum", "trait", "static", "type",
                    "mut",
                ];
                let name = declaration
                    .split_whitespace()
                    .find(|word| !keywords.contains(word))
                    .unwrap_or_default();
                leading_identifier(name)
            }
        })
        .map(str::to_owned)
        .collect()
}

fn leading_identifier(text: &str) -> &str {
    let end = text
        .find(|character: char| !(character.is_alphanumeric() || character == '_'))
        .unwrap_or(text.len());
    &text[..end]
}
