//! Compile-time behaviour of the attributes, with trybuild: every misuse is an error on the
//! offending token that says what to write instead, and every supported fn shape compiles and
//! runs.

#[test]
fn attributes() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
    cases.pass("tests/pass/*.rs");
}
