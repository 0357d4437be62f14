//! Attribute keys that need a crate feature are spanned errors naming the feature while it is
//! off. Runs with this package alone (`cargo test -p graceful-macros`): in a workspace-wide
//! build, the examples' dev-dependencies turn the features on.

#[cfg(not(feature = "health"))]
#[test]
fn keys_needing_a_feature_name_it() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
