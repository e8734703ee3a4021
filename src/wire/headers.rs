//! The optional headers that identify the caller on every call: `Merchant-Serial-Number`
//! and the four `Vipps-System-*` headers. They are checked once, when the client is built.

use std::{fmt, str::FromStr};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::error::Error;

/// The longest value the spec allows for a `Vipps-System-*` header.
pub const SYSTEM_HEADER_MAX_CHARS: usize = 30;

/// A merchant serial number (MSN): four to six digits, as the spec's `^[0-9]{4,6}$` says.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MerchantSerialNumber(String);

impl MerchantSerialNumber {
    /// Checks and wraps an MSN such as `"123456"`.
    pub fn new(value: &str) -> Result<Self, Error> {
        if (4..=6).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(value.to_owned()))
        } else {
            Err(Error::invalid_input(
                "Merchant-Serial-Number",
                "must be 4 to 6 digits (the spec's pattern ^[0-9]{4,6}$)",
            ))
        }
    }

    /// The MSN as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for MerchantSerialNumber {
    type Err = Error;
    fn from_str(value: &str) -> Result<Self, Error> {
        Self::new(value)
    }
}

impl fmt::Display for MerchantSerialNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `Vipps-System-*` headers that tell Vipps MobilePay which system and plugin call,
/// so that their logs can be searched when something goes wrong.
///
/// ```
/// let system = vipps_access_token::SystemHeaders::new("acme", "3.1.2")
///     .with_plugin("acme-webshop", "4.5.6");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SystemHeaders {
    /// `Vipps-System-Name`, for example `acme`.
    pub name: Option<String>,
    /// `Vipps-System-Version`, for example `3.1.2`.
    pub version: Option<String>,
    /// `Vipps-System-Plugin-Name`, for example `acme-webshop`.
    pub plugin_name: Option<String>,
    /// `Vipps-System-Plugin-Version`, for example `4.5.6`.
    pub plugin_version: Option<String>,
}

impl SystemHeaders {
    /// The system's name and version.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            version: Some(version.into()),
            ..Self::default()
        }
    }

    /// Adds the plugin's name and version.
    pub fn with_plugin(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.plugin_name = Some(name.into());
        self.plugin_version = Some(version.into());
        self
    }

    /// Each header name with its value, in the order they are sent.
    pub(crate) fn pairs(&self) -> [(&'static str, Option<&str>); 4] {
        [
            ("Vipps-System-Name", self.name.as_deref()),
            ("Vipps-System-Version", self.version.as_deref()),
            ("Vipps-System-Plugin-Name", self.plugin_name.as_deref()),
            (
                "Vipps-System-Plugin-Version",
                self.plugin_version.as_deref(),
            ),
        ]
    }

    /// Checks every set header: at most 30 characters, and only characters an HTTP header may hold.
    pub fn validate(&self) -> Result<(), Error> {
        for (field, value) in self.pairs() {
            let Some(value) = value else { continue };
            header_value(field, value)?;
            if value.chars().count() > SYSTEM_HEADER_MAX_CHARS {
                return Err(Error::invalid_input(
                    field,
                    format!("is longer than {SYSTEM_HEADER_MAX_CHARS} characters"),
                ));
            }
        }
        Ok(())
    }
}

/// The headers that identify the caller: optional MSN and system headers, already checked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct CallerHeaders {
    pub(crate) merchant_serial_number: Option<MerchantSerialNumber>,
    pub(crate) system: SystemHeaders,
}

impl CallerHeaders {
    /// Adds the headers that are set to `headers`.
    pub(crate) fn insert_into(&self, headers: &mut HeaderMap) -> Result<(), Error> {
        if let Some(msn) = &self.merchant_serial_number {
            headers.insert(
                HeaderName::from_static("merchant-serial-number"),
                header_value("Merchant-Serial-Number", msn.as_str())?,
            );
        }
        for (field, value) in self.system.pairs() {
            if let Some(value) = value {
                headers.insert(field, header_value(field, value)?);
            }
        }
        Ok(())
    }
}

/// Turns `value` into a header value, or names `field` and says why it cannot be one.
/// The value itself is never echoed: it may be a secret.
pub(crate) fn header_value(field: &'static str, value: &str) -> Result<HeaderValue, Error> {
    if value.is_empty() {
        return Err(Error::invalid_input(field, "is empty"));
    }
    if value.trim() != value {
        return Err(Error::invalid_input(
            field,
            "starts or ends with whitespace (a copy-and-paste slip?)",
        ));
    }
    if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(Error::invalid_input(
            field,
            "holds a character an HTTP header cannot carry (a line break, a control character or a non-ASCII character)",
        ));
    }
    HeaderValue::from_str(value)
        .map_err(|_| Error::invalid_input(field, "is not a valid HTTP header value"))
}

/// Like [`header_value`], and marks the value sensitive so that `Debug` of a request hides it.
pub(crate) fn secret_header_value(field: &'static str, value: &str) -> Result<HeaderValue, Error> {
    let mut value = header_value(field, value)?;
    value.set_sensitive(true);
    Ok(value)
}
