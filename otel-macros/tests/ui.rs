//! Compile-time errors: each misuse in `tests/ui/*.rs` fails with the message in its
//! `.stderr`, pointing at the offending token.

#[test]
fn misuse_is_reported_at_the_offending_token() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
