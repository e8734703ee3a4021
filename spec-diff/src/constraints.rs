//! Bounds, patterns, defaults and `const`: what a schema lets through. A request may
//! loosen them (a client's values still pass), a response may tighten them (a client
//! still reads every value); the other way round is breaking. Which rule exists at which
//! place, and its level, is oasdiff's (`levels.rs`); a rule oasdiff has not got for a
//! place is not reported.

use super::{model::Schema, rules::Rules, schema_rules::Node};

/// Which way a bound moved.
fn moved(before: Option<f64>, after: Option<f64>) -> Option<&'static str> {
    match (before, after) {
        (None, Some(_)) => Some("set"),
        (Some(_), None) => Some("unset"),
        (Some(a), Some(b)) if b > a => Some("increased"),
        (Some(a), Some(b)) if b < a => Some("decreased"),
        _ => None,
    }
}

fn text(value: Option<f64>) -> String {
    value
        .map(|v| v.to_string())
        .unwrap_or_else(|| "none".into())
}

impl Rules {
    pub(crate) fn constraints(&mut self, node: &Node<'_>, old: &Schema, new: &Schema) {
        let (a, b) = (&old.bounds, &new.bounds);
        let size = |v: Option<u64>| v.map(|v| v as f64);
        // `minLength` and `minItems` are 0 when absent; the others are absent.
        let zero = |v: Option<u64>| Some(v.unwrap_or(0) as f64);
        let bounds = [
            ("max", "maximum", a.maximum, b.maximum),
            ("min", "minimum", a.minimum, b.minimum),
            (
                "exclusive-max",
                "exclusiveMaximum",
                a.exclusive_maximum,
                b.exclusive_maximum,
            ),
            (
                "exclusive-min",
                "exclusiveMinimum",
                a.exclusive_minimum,
                b.exclusive_minimum,
            ),
            (
                "max-length",
                "maxLength",
                size(a.max_length),
                size(b.max_length),
            ),
            (
                "min-length",
                "minLength",
                zero(a.min_length),
                zero(b.min_length),
            ),
            (
                "max-items",
                "maxItems",
                size(a.max_items),
                size(b.max_items),
            ),
            (
                "min-items",
                "minItems",
                zero(a.min_items),
                zero(b.min_items),
            ),
            (
                "max-contains",
                "maxContains",
                size(a.max_contains),
                size(b.max_contains),
            ),
            // JSON Schema's default `minContains` is 1.
            (
                "min-contains",
                "minContains",
                Some(a.min_contains.unwrap_or(1) as f64),
                Some(b.min_contains.unwrap_or(1) as f64),
            ),
        ];
        for (rule, keyword, before, after) in bounds {
            let Some(way) = moved(before, after) else {
                continue;
            };
            // `min-items-set`: oasdiff's name for a minimum that appears where there was none.
            let way = match (rule, a.min_items) {
                ("min-items", None)
                    if way == "increased" && self.has_rule(node, "min-items-set") =>
                {
                    "set"
                }
                _ => way,
            };
            self.at(
                node,
                &format!("{rule}-{way}"),
                format!("{keyword} changed from {} to {}", text(before), text(after)),
            );
        }
        match (&old.pattern, &new.pattern) {
            (None, Some(p)) => self.at(node, "pattern-added", format!("pattern `{p}` added")),
            (Some(p), None) => self.at(node, "pattern-removed", format!("pattern `{p}` removed")),
            (Some(x), Some(y)) if x != y => self.at(
                node,
                "pattern-changed",
                format!("pattern changed from `{x}` to `{y}`"),
            ),
            _ => {}
        }
        for (rule, keyword, before, after) in [
            ("default-value", "default", &old.default, &new.default),
            ("const", "const", &old.constant, &new.constant),
        ] {
            let way = match (before, after) {
                (None, Some(v)) => Some(("added", format!("{keyword} {v} added"))),
                (Some(v), None) => Some(("removed", format!("{keyword} {v} removed"))),
                (Some(x), Some(y)) if x != y => {
                    Some(("changed", format!("{keyword} changed from {x} to {y}")))
                }
                _ => None,
            };
            if let Some((way, what)) = way {
                self.at(node, &format!("{rule}-{way}"), what);
            }
        }
    }

    fn has_rule(&self, node: &Node<'_>, rule: &str) -> bool {
        super::levels::level(&node.part.id(node.top(), rule)).is_some()
    }
}
