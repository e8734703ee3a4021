//! `/accesstoken/get` bodies: any bytes give a response or an error, never a panic, and
//! the error's message can always be built.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipps_access_token::StandardTokenResponse;

fuzz_target!(|body: &[u8]| {
    if let Err(error) = StandardTokenResponse::from_json(body) {
        let _ = error.to_string();
    }
});
