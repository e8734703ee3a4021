//! Whether a change of `type` or `format` can break a client, by direction, the way
//! oasdiff decides it: a request may widen (integer -> number, a format dropped, a type
//! added to a list), a response may narrow (number -> integer); in a text media type any
//! value reads as a string.

use std::collections::BTreeSet;

use super::{model::Schema, rules::Direction};

/// The verdict on a type or format change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TypeChange {
    /// A client can fail.
    Changed,
    /// Another type, but one a loosely typed (text) media type carries alike.
    Compatible,
    /// The new type accepts more (safe in a request; in a response, breaking).
    Generalized,
    /// The new type accepts less (safe in a response).
    Specialized,
}

/// `integer` fits where `number` is expected.
fn is_subtype(sub: &str, sup: &str) -> bool {
    sub == sup || (sub == "integer" && sup == "number")
}

/// Every type of `sub` is covered by one of `sup` (and `sub` has a type).
fn covered(sub: &BTreeSet<String>, sup: &BTreeSet<String>) -> bool {
    !sub.is_empty() && sub.iter().all(|t| sup.iter().any(|s| is_subtype(t, s)))
}

/// The type set of a schema and whether it is a list: `type: [a, b]`, or a `oneOf` or
/// `anyOf` of members that are bare types. `None` for a composition of richer members.
pub(crate) fn type_list(schema: &Schema) -> Option<(BTreeSet<String>, bool)> {
    let members = if schema.one_of.is_empty() {
        &schema.any_of
    } else {
        &schema.one_of
    };
    if members.is_empty() {
        return Some((schema.types.clone(), schema.types.len() > 1));
    }
    if !schema.types.is_empty() {
        return None;
    }
    let bare = members.iter().all(|m| {
        m.types.len() == 1
            && m.properties.is_empty()
            && m.items.is_none()
            && m.one_of.is_empty()
            && m.any_of.is_empty()
            && m.all_of.is_empty()
            && m.name.is_none()
    });
    bare.then(|| {
        let types = members
            .iter()
            .flat_map(|m| m.types.iter().cloned())
            .collect();
        (types, true)
    })
}

/// Whether the single type in `removed` fits the single type in `added`, or (loosely
/// typed media) the new type is a string or none.
fn contained(added: &BTreeSet<String>, removed: &BTreeSet<String>, strongly_typed: bool) -> bool {
    if let ([to], [from]) = (
        added.iter().collect::<Vec<_>>().as_slice(),
        removed.iter().collect::<Vec<_>>().as_slice(),
    ) && is_subtype(from, to)
    {
        return true;
    }
    !strongly_typed && (added.is_empty() || (added.len() == 1 && added.contains("string")))
}

/// A format change from `from` to `to` that every value of `from` still satisfies.
fn format_contained(types: &BTreeSet<String>, to: Option<&str>, from: Option<&str>) -> bool {
    let Some(to) = to else {
        return true;
    };
    let from = from.unwrap_or_default();
    match (types.len(), types.iter().next().map(String::as_str)) {
        (1, Some("number")) => to == "double" && from == "float",
        (1, Some("integer")) => {
            matches!(
                (from, to),
                ("int32", "int64") | ("int32", "bigint") | ("int64", "bigint")
            )
        }
        (1, Some("string")) => to == "date-time" && (from == "date" || from == "time"),
        _ => false,
    }
}

/// Classifies a change of type or format from `old` to `new` at a place read in
/// `direction`; `strongly_typed` for JSON media types.
pub(crate) fn classify(
    direction: Direction,
    old: &Schema,
    new: &Schema,
    strongly_typed: bool,
) -> TypeChange {
    let (before, after) = (&old.types, &new.types);
    let type_diff = before != after;
    let format_diff = old.format != new.format;
    let widened = type_diff && covered(before, after);
    let narrowed = type_diff && covered(after, before);
    let both_concrete = !before.is_empty() && !after.is_empty();
    match direction {
        Direction::Request => {
            let type_diff_left = type_diff && !widened;
            let breaking = if type_diff_left && after.is_empty() {
                false
            } else {
                let added = after.difference(before).cloned().collect();
                let removed = before.difference(after).cloned().collect();
                let type_breaking = type_diff_left && !contained(&added, &removed, strongly_typed);
                let format_breaking = format_diff
                    && !format_contained(after, new.format.as_deref(), old.format.as_deref());
                type_breaking || format_breaking
            };
            if breaking {
                TypeChange::Changed
            } else if type_diff && both_concrete && !widened {
                TypeChange::Compatible
            } else {
                TypeChange::Generalized
            }
        }
        Direction::Response => {
            let type_diff_left = type_diff && !narrowed;
            let breaking = if type_diff_left && before.is_empty() {
                false
            } else {
                let added = before.difference(after).cloned().collect();
                let removed = after.difference(before).cloned().collect();
                let type_breaking = type_diff_left && !contained(&added, &removed, strongly_typed);
                let format_breaking = format_diff
                    && !format_contained(before, old.format.as_deref(), new.format.as_deref());
                type_breaking || format_breaking
            };
            if breaking && widened {
                TypeChange::Generalized
            } else if breaking {
                TypeChange::Changed
            } else if type_diff && both_concrete && !narrowed {
                TypeChange::Compatible
            } else {
                TypeChange::Specialized
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(types: &[&str], format: Option<&str>) -> Schema {
        Schema {
            types: types.iter().map(|t| (*t).to_owned()).collect(),
            format: format.map(str::to_owned),
            ..Schema::default()
        }
    }

    #[test]
    fn integer_to_number_is_safe_in_a_request_and_breaks_a_response() {
        let (int, num) = (schema(&["integer"], None), schema(&["number"], None));
        assert_eq!(
            classify(Direction::Request, &int, &num, true),
            TypeChange::Generalized
        );
        assert_eq!(
            classify(Direction::Response, &int, &num, true),
            TypeChange::Generalized
        );
        assert_eq!(
            classify(Direction::Response, &num, &int, true),
            TypeChange::Specialized
        );
        assert_eq!(
            classify(Direction::Request, &num, &int, true),
            TypeChange::Changed
        );
    }

    #[test]
    fn a_string_is_compatible_only_in_text() {
        let (int, string) = (schema(&["integer"], None), schema(&["string"], None));
        assert_eq!(
            classify(Direction::Request, &int, &string, false),
            TypeChange::Compatible
        );
        assert_eq!(
            classify(Direction::Request, &int, &string, true),
            TypeChange::Changed
        );
    }

    #[test]
    fn formats_widen_only_along_known_lines() {
        let (date, date_time) = (
            schema(&["string"], Some("date")),
            schema(&["string"], Some("date-time")),
        );
        assert_eq!(
            classify(Direction::Request, &date, &date_time, true),
            TypeChange::Generalized
        );
        assert_eq!(
            classify(Direction::Response, &date, &date_time, true),
            TypeChange::Changed
        );
        let none = schema(&["string"], None);
        assert_eq!(
            classify(Direction::Request, &date, &none, true),
            TypeChange::Generalized
        );
    }
}
