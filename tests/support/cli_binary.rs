//! The `vipps-token` binary under test, for the test files that run it black-box.

/// The binary `cargo test` built, or the one named by `VIPPS_TOKEN_BIN` (CI sets it to the
/// binary `cargo install` built, which has no dev-dependency features in it).
pub fn bin() -> String {
    std::env::var("VIPPS_TOKEN_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_vipps-token").to_owned())
}
