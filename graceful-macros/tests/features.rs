//! Attribute keys that need a crate feature are spanned errors naming the feature while it is
//! off. Runs in `cargo test --workspace` too: every package reaches graceful-macros as a
//! proc-macro, whose features cargo resolves apart from this test's, so this test and its trybuild
//! cases see the feature off unless it is asked for here (`--all-features` skips the test).

#[cfg(not(feature = "health"))]
#[test]
fn keys_needing_a_feature_name_it() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
