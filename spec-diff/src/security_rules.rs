//! Security rules: `components.securitySchemes` (and their OAuth scopes), the global
//! `security` block (reported once, as `api-global-security-*`, not per operation), and
//! each operation's own `security`.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    model::{Api, Operation, Security},
    rules::{Level, Place, Rules, Subject},
};

/// One alternative of a security requirement: scheme names joined by `+`.
fn alternatives(security: &Security) -> BTreeMap<String, &BTreeMap<String, BTreeSet<String>>> {
    security
        .iter()
        .map(|alternative| {
            let names: Vec<&str> = alternative.keys().map(String::as_str).collect();
            (names.join("+"), alternative)
        })
        .collect()
}

impl Rules {
    pub(crate) fn security_components(&mut self, old: &Api, new: &Api) {
        let place = Place::default();
        for (name, scheme) in &old.security_schemes {
            let Some(after) = new.security_schemes.get(name) else {
                self.push(
                    "api-security-component-removed",
                    Level::Info,
                    &place,
                    format!("security scheme `{name}` removed from components"),
                    Subject::default(),
                );
                continue;
            };
            if after.summary != scheme.summary {
                self.push(
                    "api-security-component-type-changed",
                    Level::Info,
                    &place,
                    format!(
                        "security scheme `{name}` changed from `{}` to `{}`",
                        scheme.summary, after.summary
                    ),
                    Subject::default(),
                );
            }
            for (flow, scopes) in &scheme.oauth_scopes {
                let empty = BTreeSet::new();
                let now = after.oauth_scopes.get(flow).unwrap_or(&empty);
                for scope in scopes.difference(now) {
                    self.push(
                        "api-security-component-oauth-scope-removed",
                        Level::Info,
                        &place,
                        format!("security scheme `{name}`, flow `{flow}`: scope `{scope}` removed"),
                        Subject::default(),
                    );
                }
                for scope in now.difference(scopes) {
                    self.push(
                        "api-security-component-oauth-scope-added",
                        Level::Info,
                        &place,
                        format!("security scheme `{name}`, flow `{flow}`: scope `{scope}` added"),
                        Subject::default(),
                    );
                }
            }
        }
        for name in new
            .security_schemes
            .keys()
            .filter(|n| !old.security_schemes.contains_key(*n))
        {
            self.push(
                "api-security-component-added",
                Level::Info,
                &place,
                format!("security scheme `{name}` added to components"),
                Subject::default(),
            );
        }
    }

    pub(crate) fn global_security(&mut self, old: &Api, new: &Api) {
        self.security_change(
            &Place::default(),
            "api-global-security",
            Level::Info,
            &old.global_security,
            &new.global_security,
        );
    }

    /// An operation's own `security`; where one side has none, the other side's global
    /// block stands in (a change of the global block alone was reported once above).
    pub(crate) fn operation_security(
        &mut self,
        place: &Place,
        old_api: &Api,
        old: &Operation,
        new_api: &Api,
        new: &Operation,
    ) {
        let (before, after) = match (&old.security, &new.security) {
            (None, None) => return,
            (Some(before), Some(after)) => (before, after),
            (Some(before), None) => (before, &new_api.global_security),
            (None, Some(after)) => (&old_api.global_security, after),
        };
        // oasdiff: info. Here a warning: a client that does not send the new
        // credentials is refused.
        self.security_change(place, "api-security", Level::Warning, before, after);
    }

    fn security_change(
        &mut self,
        place: &Place,
        prefix: &str,
        added_level: Level,
        old: &Security,
        new: &Security,
    ) {
        let (before, after) = (alternatives(old), alternatives(new));
        for (name, requirement) in &after {
            let Some(was) = before.get(name) else {
                self.push(
                    &format!("{prefix}-added"),
                    added_level,
                    place,
                    format!("security requirement `{name}` added"),
                    Subject::default(),
                );
                continue;
            };
            for (scheme, scopes) in requirement.iter() {
                let empty = BTreeSet::new();
                let had = was.get(scheme).unwrap_or(&empty);
                for scope in scopes.difference(had) {
                    self.push(
                        &format!("{prefix}-scope-added"),
                        Level::Info,
                        place,
                        format!("security `{scheme}`: scope `{scope}` added"),
                        Subject::default(),
                    );
                }
                for scope in had.difference(scopes) {
                    self.push(
                        &format!("{prefix}-scope-removed"),
                        Level::Info,
                        place,
                        format!("security `{scheme}`: scope `{scope}` removed"),
                        Subject::default(),
                    );
                }
            }
        }
        for name in before.keys().filter(|n| !after.contains_key(*n)) {
            self.push(
                &format!("{prefix}-removed"),
                Level::Info,
                place,
                format!("security requirement `{name}` removed"),
                Subject::default(),
            );
        }
    }
}
