//! The three token flows: which endpoint was asked, named in errors, hints and tokens.

/// Which endpoint issued a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flow {
    /// `POST /accesstoken/get`.
    Standard,
    /// `POST /miami/v1/token` (or its announced name `/authentication/v1/token`).
    Partner,
    /// `POST /api/v2/accesstoken/jwt`, deprecated.
    Legacy,
}
