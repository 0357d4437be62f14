//! Helpers shared by the expansion tests of every attribute.

/// An expansion with all whitespace removed, so tests compare tokens, not formatting.
pub(crate) fn squash(text: &str) -> String {
    text.split_whitespace().collect()
}
