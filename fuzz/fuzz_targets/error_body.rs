//! Error bodies: any bytes are recognised as one of the shapes or kept as text, and can
//! be displayed, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipps_access_token::ErrorBody;

fuzz_target!(|body: &[u8]| {
    let parsed = ErrorBody::parse(body);
    let _ = parsed.to_string();
    let _ = parsed.description();
    let _ = parsed.error_code();
});
