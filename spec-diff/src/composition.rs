//! `oneOf`, `anyOf` and `allOf` membership. Members are matched by the schema name they
//! are reached through, else by their shape (type and property names); a matched pair is
//! compared like any schema, an unmatched member is added or removed. `allOf` is not
//! merged: a member added to it is one more constraint a request must meet.

use std::{collections::BTreeMap, sync::Arc};

use super::{
    model::Schema,
    rules::{Rules, join},
    schema_rules::Node,
};

/// What identifies a member across two versions.
fn signature(member: &Schema) -> String {
    if let Some(name) = &member.name {
        return format!("${name}");
    }
    let properties: Vec<&str> = member.properties.keys().map(String::as_str).collect();
    format!("{}{{{}}}", member.type_label(), properties.join(","))
}

/// What a member constrains, whatever it is called.
fn shape(member: &Schema) -> String {
    let properties: Vec<&str> = member.properties.keys().map(String::as_str).collect();
    format!(
        "{}{{{}}}{:?}",
        member.type_label(),
        properties.join(","),
        member.enumeration
    )
}

/// Only text (a description, a title): it constrains nothing.
fn annotation_only(member: &Schema) -> bool {
    member.name.is_none()
        && member.types.is_empty()
        && member.format.is_none()
        && member.properties.is_empty()
        && member.required.is_empty()
        && member.items.is_none()
        && member.additional.is_none()
        && member.enumeration.is_none()
        && member.constant.is_none()
        && member.one_of.is_empty()
        && member.any_of.is_empty()
        && member.all_of.is_empty()
        && member.pattern.is_none()
        && member.bounds == Default::default()
}

impl Rules {
    /// `skip_bare_types`: the members are bare types and `list-of-types` already
    /// reported them.
    pub(crate) fn composition(
        &mut self,
        node: &Node<'_>,
        owner: Option<String>,
        old: &Schema,
        new: &Schema,
        depth: usize,
        skip_bare_types: bool,
    ) {
        for (keyword, rule, before, after) in [
            ("oneOf", "one-of", &old.one_of, &new.one_of),
            ("anyOf", "any-of", &old.any_of, &new.any_of),
            ("allOf", "all-of", &old.all_of, &new.all_of),
        ] {
            if skip_bare_types && keyword != "allOf" {
                continue;
            }
            let index = |members: &[Arc<Schema>]| -> BTreeMap<String, Vec<usize>> {
                let mut index: BTreeMap<String, Vec<usize>> = BTreeMap::new();
                for (i, member) in members.iter().enumerate() {
                    index.entry(signature(member)).or_default().push(i);
                }
                index
            };
            let (old_index, new_index) = (index(before), index(after));
            let mut pairs = Vec::new();
            let (mut removed, mut added): (Vec<usize>, Vec<usize>) = (Vec::new(), Vec::new());
            for (sig, old_members) in &old_index {
                let new_members = new_index.get(sig).map(Vec::as_slice).unwrap_or_default();
                for (n, &i) in old_members.iter().enumerate() {
                    match new_members.get(n) {
                        Some(&j) => pairs.push((i, j)),
                        None => removed.push(i),
                    }
                }
            }
            for (sig, new_members) in &new_index {
                let matched = old_index.get(sig).map(Vec::len).unwrap_or_default();
                added.extend(new_members.iter().skip(matched));
            }
            // An inline member moved into `components` (or back) is the same member; two
            // named ones of one shape (`Cat` -> `Rabbit`) are not.
            removed.retain(|&i| {
                let was = shape(&before[i]);
                let same = |j: usize| {
                    (before[i].name.is_none() || after[j].name.is_none()) && shape(&after[j]) == was
                };
                match added.iter().position(|&j: &usize| same(j)) {
                    Some(k) => {
                        pairs.push((i, added.remove(k)));
                        false
                    }
                    None => true,
                }
            });
            for (i, j) in pairs {
                let path = join(node.path, &format!("{keyword}[{}]", signature(&before[i])));
                self.below(node, &path, &owner, &before[i], &after[j], depth);
            }
            for i in removed {
                self.membership(node, keyword, rule, "removed", &before[i]);
            }
            for j in added {
                self.membership(node, keyword, rule, "added", &after[j]);
            }
        }
    }

    fn membership(
        &mut self,
        node: &Node<'_>,
        keyword: &str,
        rule: &str,
        way: &str,
        member: &Schema,
    ) {
        let annotation = if keyword == "allOf" && annotation_only(member) {
            "-annotation-only"
        } else {
            ""
        };
        self.at(
            node,
            &format!("{rule}-{way}{annotation}"),
            format!("{keyword} member `{}` {way}", signature(member)),
        );
    }
}
