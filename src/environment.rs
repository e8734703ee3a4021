//! [`Environment`]: test or production, and where each is.

use std::fmt;

/// A Vipps MobilePay environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Environment {
    /// `https://apitest.vipps.no`: test keys, the test app, test data.
    Test,
    /// `https://api.vipps.no`: production keys, the real app, live data.
    Production,
}

impl Environment {
    /// The environment's base URL.
    pub fn base_url(self) -> &'static str {
        match self {
            Self::Test => "https://apitest.vipps.no",
            Self::Production => "https://api.vipps.no",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Test => "test",
            Self::Production => "production",
        })
    }
}
