//! Properties of the tolerant numeric fields (`vipps_access_token::integer_or_digits`),
//! as `StandardTokenResponse` and `PartnerTokenResponse` use them: a `u64` is read from a
//! JSON integer or from a string of ASCII digits, and nothing else is.
//!
//! The field an error is about is read with `serde_path_to_error`, as the library itself
//! does when it reports `Error::InvalidResponse`.

use proptest::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};
use vipps_access_token::{PartnerTokenResponse, StandardTokenResponse};

const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1Ni.tolerant-numbers";

/// The four numeric fields of the standard response.
const STANDARD_FIELDS: [&str; 4] = ["expires_in", "ext_expires_in", "expires_on", "not_before"];

/// What `integer_or_digits` says it expects, in every error it gives.
const EXPECTING: &str = "a non-negative integer, as a JSON number or a string of digits";

/// A field of our own with the rule, as other crates are invited to use it.
#[derive(Debug, Deserialize)]
struct Tolerant {
    #[serde(deserialize_with = "vipps_access_token::integer_or_digits")]
    value: u64,
}

fn standard_with(numbers: [Value; 4]) -> Value {
    let [expires_in, ext_expires_in, expires_on, not_before] = numbers;
    json!({
        "token_type": "Bearer",
        "expires_in": expires_in,
        "ext_expires_in": ext_expires_in,
        "expires_on": expires_on,
        "not_before": not_before,
        "resource": "00000002-0000-0000-c000-000000000000",
        "access_token": TOKEN,
    })
}

fn partner_with(expires_in: Value) -> Value {
    json!({"access_token": TOKEN, "token_type": "Bearer", "expires_in": expires_in})
}

/// A valid standard body with `field` set to the raw JSON text `raw`. Raw text, so that
/// numbers past `u64::MAX` and exact float spellings reach the parser as written.
fn standard_raw(field: &str, raw: &str) -> String {
    let mut body = standard_with([json!(1), json!(2), json!(3), json!(4)]);
    body[field] = json!("PLACEHOLDER");
    body.to_string().replace(r#""PLACEHOLDER""#, raw)
}

fn partner_raw(raw: &str) -> String {
    partner_with(json!("PLACEHOLDER"))
        .to_string()
        .replace(r#""PLACEHOLDER""#, raw)
}

/// `u64` as a JSON number, or as a JSON string of its digits.
fn as_json(n: u64, as_string: bool) -> Value {
    if as_string {
        json!(n.to_string())
    } else {
        json!(n)
    }
}

/// Parses `body` as `T`; on failure, the path of the field at fault and the message.
fn parse<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, (String, String)> {
    let mut json = serde_json::Deserializer::from_str(body);
    serde_path_to_error::deserialize(&mut json)
        .map_err(|e| (e.path().to_string(), e.into_inner().to_string()))
}

/// Checks that `raw` in every tolerant field, of both responses and of [`Tolerant`], is
/// an error that names the field and says what was expected.
fn assert_rejected_everywhere(raw: &str) -> Result<(), TestCaseError> {
    for field in STANDARD_FIELDS {
        let body = standard_raw(field, raw);
        match parse::<StandardTokenResponse>(&body) {
            Ok(parsed) => {
                return Err(TestCaseError::fail(format!(
                    "{field} = {raw} was accepted: {parsed:?}"
                )));
            }
            Err((path, message)) => {
                prop_assert_eq!(&path, field, "{} = {}: {}", field, raw, message);
                prop_assert!(message.contains(EXPECTING), "{}", message);
            }
        }
    }
    match parse::<PartnerTokenResponse>(&partner_raw(raw)) {
        Ok(parsed) => {
            return Err(TestCaseError::fail(format!(
                "partner expires_in = {raw} was accepted: {parsed:?}"
            )));
        }
        Err((path, message)) => {
            prop_assert_eq!(path, "expires_in", "{}: {}", raw, message);
            prop_assert!(message.contains(EXPECTING), "{}", message);
        }
    }
    let own = parse::<Tolerant>(&format!(r#"{{"value":{raw}}}"#));
    prop_assert!(own.is_err(), "{} was accepted: {:?}", raw, own);
    Ok(())
}

/// Strings that are not a non-empty run of ASCII digits, in the shapes a server or a
/// proxy might produce.
fn not_all_digits() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[+-][0-9]{1,19}",
        " [0-9]{1,10}",
        "[0-9]{1,10} ",
        "[0-9]{1,5} [0-9]{1,5}",
        "[\t\n\r][0-9]{1,5}",
        "[0-9]{0,5}[a-zA-Z][0-9a-zA-Z]{0,5}",
        "[0-9]{1,10}\\.[0-9]{0,5}",
        "\\.[0-9]{1,5}",
        "[0-9]{1,5}[eE][+-]?[0-9]{1,3}",
        "0[xXbBoO][0-9a-fA-F]{1,8}",
        "[0-9]{1,3}[_,'][0-9]{3}",
        "[١٢٣٤٥٦٧٨٩٠]{1,5}",
        "[０-９]{1,5}",
        "[०-९]{1,3}",
        "[0-9]{1,3}[١٢][0-9]{0,3}",
        "(NaN|Infinity|-Infinity|null|true|undefined)",
        // Anything at all that is not a non-empty run of ASCII digits.
        any::<String>().prop_filter("not all ASCII digits", |s| {
            s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit())
        }),
    ]
}

/// JSON values of every type but integer and string, as raw JSON text.
fn other_types() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("true".to_owned()),
        Just("false".to_owned()),
        Just("null".to_owned()),
        // Floats with a fraction.
        (0u64..1_000_000_000, 1u32..1_000_000)
            .prop_map(|(whole, fraction)| format!("{whole}.{fraction:06}")),
        any::<f64>()
            .prop_filter("finite with a fraction", |f| f.is_finite()
                && f.fract() != 0.0)
            .prop_map(|f| json!(f).to_string()),
        // Negative integers.
        (i64::MIN..0).prop_map(|n| n.to_string()),
        Just("-0.5".to_owned()),
        // Arrays and objects, empty or holding a perfectly good number.
        any::<u64>().prop_map(|n| format!("[{n}]")),
        any::<u64>().prop_map(|n| format!(r#"["{n}"]"#)),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        any::<u64>().prop_map(|n| format!(r#"{{"value":{n}}}"#)),
    ]
}

/// Integers past `u64::MAX`, as digits.
fn above_u64_max() -> impl Strategy<Value = String> {
    prop_oneof![
        (u128::from(u64::MAX) + 1..=u128::MAX).prop_map(|n| n.to_string()),
        Just("18446744073709551616".to_owned()),
        "[1-9][0-9]{20,60}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_u64_round_trips_in_every_standard_field(
        numbers in any::<[u64; 4]>(),
        as_strings in any::<[bool; 4]>(),
    ) {
        let body = standard_with(std::array::from_fn(|i| as_json(numbers[i], as_strings[i])));
        let parsed: StandardTokenResponse =
            serde_json::from_str(&body.to_string()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parsed.expires_in, numbers[0]);
        prop_assert_eq!(parsed.ext_expires_in, numbers[1]);
        prop_assert_eq!(parsed.expires_on, numbers[2]);
        prop_assert_eq!(parsed.not_before, numbers[3]);
        prop_assert_eq!(parsed.access_token.expose_secret(), TOKEN);
    }

    #[test]
    fn every_u64_round_trips_in_the_partner_expires_in(n in any::<u64>(), as_string in any::<bool>()) {
        let body = partner_with(as_json(n, as_string)).to_string();
        let parsed: PartnerTokenResponse =
            serde_json::from_str(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parsed.expires_in, n);
        // And through a field of our own with the same rule.
        let own: Tolerant = serde_json::from_value(json!({"value": as_json(n, as_string)}))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(own.value, n);
    }

    #[test]
    fn edge_values_round_trip(pick in 0usize..6, as_string in any::<bool>()) {
        let n = [0, 1, u64::from(u32::MAX), i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX][pick];
        let body = partner_with(as_json(n, as_string)).to_string();
        let parsed: PartnerTokenResponse =
            serde_json::from_str(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parsed.expires_in, n);
    }

    #[test]
    fn digits_with_leading_zeros_are_read_as_their_value(zeros in 0usize..30, n in any::<u64>()) {
        let digits = format!("{}{n}", "0".repeat(zeros));
        let body = partner_with(json!(digits)).to_string();
        let parsed: PartnerTokenResponse =
            serde_json::from_str(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parsed.expires_in, n);
    }

    #[test]
    fn strings_that_are_not_all_ascii_digits_are_errors_naming_the_field(text in not_all_digits()) {
        prop_assume!(text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()));
        assert_rejected_everywhere(&json!(text).to_string())?;
    }

    #[test]
    fn values_of_other_json_types_are_errors_naming_the_field(raw in other_types()) {
        prop_assert!(serde_json::from_str::<Value>(&raw).is_ok(), "not JSON: {}", raw);
        assert_rejected_everywhere(&raw)?;
    }

    #[test]
    fn numbers_and_digit_strings_above_u64_max_are_errors(digits in above_u64_max()) {
        prop_assert!(digits.parse::<u64>().is_err(), "{} fits in a u64", digits);
        assert_rejected_everywhere(&digits)?;
        assert_rejected_everywhere(&json!(digits).to_string())?;
    }
}

/// JSON values of any shape, with the token response's own keys among the others.
fn arbitrary_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("token_type".to_owned()),
        Just("expires_in".to_owned()),
        Just("ext_expires_in".to_owned()),
        Just("expires_on".to_owned()),
        Just("not_before".to_owned()),
        Just("resource".to_owned()),
        Just("access_token".to_owned()),
        "[a-z_]{0,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        "[0-9]{0,25}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..10)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Field `name` of an object, or element `index` of an array.
fn field_of(value: &Value, name: &str, index: usize) -> Value {
    match value {
        Value::Array(items) => items.get(index).cloned().unwrap_or(Value::Null),
        other => other[name].clone(),
    }
}

/// A valid body, then damaged: cut, a byte overwritten, bytes inserted.
fn damaged_body() -> impl Strategy<Value = Vec<u8>> {
    let valid = standard_with([json!("86398"), json!("0"), json!(1495271273), json!("1")])
        .to_string()
        .into_bytes();
    let length = valid.len();
    (
        0..=length,
        prop::collection::vec((0..length, any::<u8>()), 0..4),
        prop::collection::vec((0..length, any::<u8>()), 0..4),
    )
        .prop_map(move |(cut, overwrites, inserts)| {
            let mut body = valid.clone();
            for (at, byte) in overwrites {
                body[at] = byte;
            }
            for (at, byte) in inserts {
                body.insert(at.min(body.len()), byte);
            }
            body.truncate(cut.max(1));
            body
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        // Ok or Err, never a panic (proptest fails the case on one).
        let _ = serde_json::from_slice::<StandardTokenResponse>(&bytes);
        let _ = serde_json::from_slice::<PartnerTokenResponse>(&bytes);
    }

    #[test]
    fn arbitrary_json_never_panics(value in arbitrary_json()) {
        let text = value.to_string();
        let standard = serde_json::from_slice::<StandardTokenResponse>(text.as_bytes());
        let partner = serde_json::from_slice::<PartnerTokenResponse>(text.as_bytes());
        // Whatever is accepted holds what the JSON said. (serde's derive also takes a
        // struct as an array of its fields in declaration order.)
        if let Ok(parsed) = standard {
            prop_assert_eq!(json!(parsed.token_type), field_of(&value, "token_type", 0));
            prop_assert_eq!(
                json!(parsed.access_token.expose_secret()),
                field_of(&value, "access_token", 6)
            );
        }
        if let Ok(parsed) = partner {
            prop_assert_eq!(
                json!(parsed.access_token.expose_secret()),
                field_of(&value, "access_token", 0)
            );
            prop_assert_eq!(json!(parsed.token_type), field_of(&value, "token_type", 1));
        }
    }

    #[test]
    fn damaged_bodies_never_panic(body in damaged_body()) {
        let _ = serde_json::from_slice::<StandardTokenResponse>(&body);
        let _ = serde_json::from_slice::<PartnerTokenResponse>(&body);
    }
}
