//! The four paths the mock serves, as one type the router, the counts and the handle share.

use crate::wire::paths::{
    LEGACY_TOKEN_PATH, PARTNER_TOKEN_PATH, RENAMED_PARTNER_TOKEN_PATH, STANDARD_TOKEN_PATH,
};

/// A path the mock serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Standard,
    Partner,
    RenamedPartner,
    Legacy,
}

impl Endpoint {
    pub(crate) const ALL: [Self; 4] = [
        Self::Standard,
        Self::Partner,
        Self::RenamedPartner,
        Self::Legacy,
    ];

    pub(crate) fn path(self) -> &'static str {
        match self {
            Self::Standard => STANDARD_TOKEN_PATH,
            Self::Partner => PARTNER_TOKEN_PATH,
            Self::RenamedPartner => RENAMED_PARTNER_TOKEN_PATH,
            Self::Legacy => LEGACY_TOKEN_PATH,
        }
    }

    /// The endpoint at `path`, if the mock serves one there.
    pub(super) fn at(path: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.path() == path)
    }
}
