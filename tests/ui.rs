//! Compile-time behaviour of the attributes, with trybuild: every misuse is an error on the
//! offending token that says what to write instead (one mistake, one error), and every
//! supported fn shape compiles and runs.
//!
//! Misuses that are errors only while a feature is off (the `health` key) are tested in
//! `graceful-macros/tests/features.rs`: this package's dev-dependencies turn the features on.

#[test]
fn attributes() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
    cases.pass("tests/pass/*.rs");
}
