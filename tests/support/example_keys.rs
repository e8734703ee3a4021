//! The documented example keys: the only keys tests and benches use.
#![allow(dead_code)] // each test binary uses the ones it needs

pub const CLIENT_ID: &str = "fb492b5e-7907-4d83-ba20-c7fb60ca35de";
pub const CLIENT_SECRET: &str = "Y8Kteew6GE2ZmeycEt6egg==";
pub const SUBSCRIPTION_KEY: &str = "0f14ebcab0ec4b29ae0cb90d91b4a84a";
