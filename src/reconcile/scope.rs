//! A target's scope (docs/architecture.md#terms): the live load balancers its control plane owns.
//!
//! `[targets.scope]` narrows the account and region by name (`names`, `exclude`: globs, free to
//! evaluate from the presence pass) and by tag (`tags`: every pair must match, from the deep
//! pass's `DescribeTags`). A load balancer with a record is always in scope: the record is the
//! evidence of ownership. One whose tags are needed and not read yet is pending: treated like
//! one inside its grace period (not counted), and its tags are read first.

use std::collections::BTreeMap;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use crate::model::node::Node;

/// `[targets.scope]`: which live load balancers belong to a target. A load balancer with a
/// record is always in scope.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeConfig {
    /// Globs over load-balancer names; a load balancer must match one.
    #[serde(default = "default_scope_names")]
    pub names: Vec<String>,
    /// Globs over load-balancer names; one that matches is out of scope.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Tags a load balancer must carry, every one (from `DescribeTags`).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl Default for ScopeConfig {
    fn default() -> Self {
        ScopeConfig {
            names: default_scope_names(),
            exclude: Vec::new(),
            tags: BTreeMap::new(),
        }
    }
}

fn default_scope_names() -> Vec<String> {
    vec!["*".to_string()]
}

/// Where one live load balancer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// Its control plane owns it: reported, counted, paused for.
    In,
    /// Not the target's: never reported, counted by the guard, quarantined, paused for or
    /// adopted; only counted as `out_of_scope`.
    Out,
    /// Its tags decide, and they are not known yet.
    Pending,
}

/// Compiled scope rules.
#[derive(Debug, Clone)]
pub struct ScopeRules {
    names: GlobSet,
    exclude: GlobSet,
    tags: BTreeMap<String, String>,
    /// The rules are the default (`names = ["*"]`, nothing else): everything is in scope.
    everything: bool,
}

impl Default for ScopeRules {
    fn default() -> Self {
        ScopeRules::new(&ScopeConfig::default(), "targets[0]").expect("the default scope compiles")
    }
}

impl ScopeRules {
    /// Compiles `config`, or lists every bad glob with its key (`{key}.scope.names[1]`).
    pub fn new(config: &ScopeConfig, key: &str) -> Result<ScopeRules, Vec<String>> {
        let mut problems = Vec::new();
        let names = compile(&config.names, &format!("{key}.scope.names"), &mut problems);
        let exclude = compile(
            &config.exclude,
            &format!("{key}.scope.exclude"),
            &mut problems,
        );
        if config.names.is_empty() {
            problems.push(format!(
                "{key}.scope.names: list at least one glob (\"*\" for every load balancer)"
            ));
        }
        for (tag, value) in &config.tags {
            if tag.is_empty() {
                problems.push(format!(
                    "{key}.scope.tags: a tag key is empty (value {value:?})"
                ));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(ScopeRules {
            names,
            exclude,
            tags: config.tags.clone(),
            everything: config.names.iter().all(|name| name == "*")
                && config.exclude.is_empty()
                && config.tags.is_empty(),
        })
    }

    /// Whether tags decide membership (so unrecorded load balancers' tags must be read).
    pub fn needs_tags(&self) -> bool {
        !self.tags.is_empty()
    }

    /// Whether the whole account and region is in scope.
    pub fn is_everything(&self) -> bool {
        self.everything
    }

    /// Where the load balancer `name` stands. `recorded`: the state table holds an item of
    /// that name (valid or not). `tags`: its tags, where read.
    pub fn membership(&self, name: &str, recorded: bool, tags: Option<&Node>) -> Membership {
        if recorded || self.everything {
            return Membership::In;
        }
        if !self.names.is_match(name) || self.exclude.is_match(name) {
            return Membership::Out;
        }
        if self.tags.is_empty() {
            return Membership::In;
        }
        let Some(tags) = tags else {
            return Membership::Pending;
        };
        let carries_all = self
            .tags
            .iter()
            .all(|(key, value)| tags.get(key).and_then(Node::as_str) == Some(value.as_str()));
        if carries_all {
            Membership::In
        } else {
            Membership::Out
        }
    }
}

fn compile(globs: &[String], key: &str, problems: &mut Vec<String>) -> GlobSet {
    let mut set = GlobSetBuilder::new();
    for (i, glob) in globs.iter().enumerate() {
        match Glob::new(glob) {
            Ok(glob) => {
                set.add(glob);
            }
            Err(err) => problems.push(format!(
                "{key}[{i}]: {glob:?} is not a glob ({})",
                err.kind()
            )),
        }
    }
    set.build().unwrap_or_else(|err| {
        problems.push(format!("{key}: {err}"));
        GlobSet::empty()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::node::Node;

    fn rules(names: &[&str], exclude: &[&str], tags: &[(&str, &str)]) -> ScopeRules {
        ScopeRules::new(
            &ScopeConfig {
                names: names.iter().map(|s| s.to_string()).collect(),
                exclude: exclude.iter().map(|s| s.to_string()).collect(),
                tags: tags
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
            "targets[0]",
        )
        .unwrap()
    }

    fn tags(pairs: &[(&str, &str)]) -> Node {
        Node::from_value(&serde_json::Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
                .collect(),
        ))
    }

    #[test]
    fn membership_by_name_tag_and_record() {
        use Membership::*;
        let owner = tags(&[("owner", "platform"), ("env", "prod")]);
        let other = tags(&[("owner", "k8s")]);
        // (case, rules, load balancer, recorded, its tags, expected)
        type Case<'a> = (
            &'a str,
            ScopeRules,
            &'a str,
            bool,
            Option<&'a Node>,
            Membership,
        );
        let cases: Vec<Case> = vec![
            (
                "the default takes everything",
                rules(&["*"], &[], &[]),
                "k8s-a",
                false,
                None,
                In,
            ),
            (
                "a name prefix",
                rules(&["web-*"], &[], &[]),
                "web-1",
                false,
                None,
                In,
            ),
            (
                "outside the prefix",
                rules(&["web-*"], &[], &[]),
                "k8s-a",
                false,
                None,
                Out,
            ),
            (
                "excluded",
                rules(&["*"], &["k8s-*"], &[]),
                "k8s-a",
                false,
                None,
                Out,
            ),
            (
                "a record is evidence of ownership",
                rules(&["web-*"], &["k8s-*"], &[("owner", "platform")]),
                "k8s-a",
                true,
                None,
                In,
            ),
            (
                "tags not read yet",
                rules(&["*"], &[], &[("owner", "platform")]),
                "web-1",
                false,
                None,
                Pending,
            ),
            (
                "every tag carried",
                rules(&["*"], &[], &[("owner", "platform")]),
                "web-1",
                false,
                Some(&owner),
                In,
            ),
            (
                "a tag with another value",
                rules(&["*"], &[], &[("owner", "platform")]),
                "web-1",
                false,
                Some(&other),
                Out,
            ),
            (
                "one of two tags missing",
                rules(&["*"], &[], &[("owner", "platform"), ("team", "a")]),
                "web-1",
                false,
                Some(&owner),
                Out,
            ),
            (
                "names are judged before tags",
                rules(&["web-*"], &[], &[("owner", "platform")]),
                "k8s-a",
                false,
                None,
                Out,
            ),
        ];
        for (name, rules, lb, recorded, tags, expected) in cases {
            assert_eq!(rules.membership(lb, recorded, tags), expected, "{name}");
        }
    }

    #[test]
    fn bad_globs_and_empty_names_are_listed_with_their_keys() {
        let problems = ScopeRules::new(
            &ScopeConfig {
                names: vec![],
                exclude: vec!["web-[".into()],
                tags: BTreeMap::from([(String::new(), "x".into())]),
            },
            "targets[1]",
        )
        .unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems[0].starts_with("targets[1].scope.exclude[0]"),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("targets[1].scope.names:"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("targets[1].scope.tags:"))
        );
    }

    #[test]
    fn the_default_is_everything_and_needs_no_tags() {
        let rules = ScopeRules::default();
        assert!(rules.is_everything());
        assert!(!rules.needs_tags());
    }
}
