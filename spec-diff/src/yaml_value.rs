//! YAML read straight into a `serde_json::Value`, without serde_yaml's own value tree in
//! between (half the time on a big spec): map keys that are not strings (`0:`, `true:`)
//! become their text, tags (`!foo`) are dropped, numbers JSON cannot hold (`.nan`) become
//! strings, and a key given twice is an error, as in any YAML reader.

use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A JSON value deserialised from YAML.
pub(crate) struct JsonValue(pub Value);

impl<'de> Deserialize<'de> for JsonValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor).map(JsonValue)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(v.to_string())))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        JsonValue::deserialize(deserializer).map(|v| v.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(JsonValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let JsonValue(value) = map.next_value()?;
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!("the key `{key}` is given twice")));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }

    /// `!tag value`: the value.
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (_, variant): (de::IgnoredAny, _) = data.variant()?;
        de::VariantAccess::newtype_variant::<JsonValue>(variant).map(|v| v.0)
    }
}

/// A map key as text.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_any(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map key: a string, a number, a boolean or null")
    }

    fn visit_bool<E>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_u64<E>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_f64<E>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_str<E>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E>(self, v: String) -> Result<String, E> {
        Ok(v)
    }

    fn visit_unit<E>(self) -> Result<String, E> {
        Ok("null".to_owned())
    }

    fn visit_none<E>(self) -> Result<String, E> {
        Ok("null".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(text: &str) -> Result<Value, serde_yaml::Error> {
        serde_yaml::from_str::<JsonValue>(text).map(|v| v.0)
    }

    #[test]
    fn keys_that_are_not_strings_become_their_text() {
        let value =
            read("examples:\n  0: {value: a}\n  true: 1\n  ~: 2\n  1.5: 3\n").expect("reads");
        assert_eq!(
            value,
            json!({"examples": {"0": {"value": "a"}, "true": 1, "null": 2, "1.5": 3}})
        );
    }

    #[test]
    fn tags_are_dropped_and_nan_is_text() {
        assert_eq!(
            read("a: !custom {b: 1}\nc: .nan\n").expect("reads"),
            json!({"a": {"b": 1}, "c": "NaN"})
        );
    }

    #[test]
    fn a_key_given_twice_is_an_error_with_a_place() {
        let error = read("a: 1\nb: 2\na: 3\n").expect_err("duplicate");
        assert!(error.to_string().contains("`a` is given twice"), "{error}");
    }
}
