//! Compile-time behaviour of the attributes, with trybuild: every misuse is an error on the
//! offending token that says what to write instead (one mistake, one error), and every
//! supported fn shape compiles and runs.
//!
//! The cases build with graceful's `health` feature on (this package's dev-dependencies ask for
//! it): misuses that are errors only while a feature is off (the `health` key) are tested in
//! `graceful-macros/tests/features.rs`, whose cases build without it.

#[test]
fn attributes() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
    cases.pass("tests/pass/*.rs");
}
