//! Partner-flow bodies: any bytes give a response or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipps_access_token::PartnerTokenResponse;

fuzz_target!(|body: &[u8]| {
    if let Err(error) = PartnerTokenResponse::from_json(body) {
        let _ = error.to_string();
    }
});
