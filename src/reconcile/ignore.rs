//! `[[ignore]]` rules: changes dropped before anything is reported or counted.

use globset::{Glob, GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};

use serde::{Deserialize, Serialize};

use crate::reconcile::diff::Change;

/// `[[ignore]]`: changes never reported.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IgnoreConfig {
    /// A glob over load-balancer names; every load balancer when absent.
    #[serde(default = "default_glob")]
    pub load_balancers: String,
    /// Globs over change paths (`*` stays within one segment, `**` crosses segments).
    pub paths: Vec<String>,
}

fn default_glob() -> String {
    "*".to_string()
}

/// Compiled ignore rules.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    load_balancers: GlobMatcher,
    paths: GlobSet,
}

impl IgnoreRules {
    /// Compiles the rules, or lists every bad glob with its key.
    pub fn new(configs: &[IgnoreConfig]) -> Result<IgnoreRules, Vec<String>> {
        let mut problems = Vec::new();
        let mut rules = Vec::new();
        for (i, config) in configs.iter().enumerate() {
            let load_balancers = match Glob::new(&config.load_balancers) {
                Ok(glob) => Some(glob.compile_matcher()),
                Err(err) => {
                    problems.push(format!(
                        "ignore[{i}].load_balancers: {:?} is not a glob ({})",
                        config.load_balancers,
                        err.kind()
                    ));
                    None
                }
            };
            if config.paths.is_empty() {
                problems.push(format!(
                    "ignore[{i}].paths: list at least one path glob, such as \"/tags/*\""
                ));
            }
            let mut paths = GlobSetBuilder::new();
            for (j, path) in config.paths.iter().enumerate() {
                if !path.starts_with('/') {
                    problems.push(format!(
                        "ignore[{i}].paths[{j}]: {path:?} must start with / (a change path such as \"/tags/team\")"
                    ));
                    continue;
                }
                // `*` stays within one path segment; `**` crosses segments.
                match GlobBuilder::new(path).literal_separator(true).build() {
                    Ok(glob) => {
                        paths.add(glob);
                    }
                    Err(err) => problems.push(format!(
                        "ignore[{i}].paths[{j}]: {path:?} is not a glob ({})",
                        err.kind()
                    )),
                }
            }
            match (load_balancers, paths.build()) {
                (Some(load_balancers), Ok(paths)) => rules.push(Rule {
                    load_balancers,
                    paths,
                }),
                (_, Err(err)) => problems.push(format!("ignore[{i}].paths: {err}")),
                _ => {}
            }
        }
        if problems.is_empty() {
            Ok(IgnoreRules { rules })
        } else {
            Err(problems)
        }
    }

    /// Whether the change at `path` of load balancer `name` is ignored.
    pub fn ignores(&self, name: &str, path: &str) -> bool {
        self.rules
            .iter()
            .any(|rule| rule.load_balancers.is_match(name) && rule.paths.is_match(path))
    }

    /// Drops the ignored changes of load balancer `name`.
    pub fn retain(&self, name: &str, changes: &mut Vec<Change>) {
        if !self.rules.is_empty() {
            changes.retain(|change| !self.ignores(name, &change.path));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(load_balancers: &str, paths: &[&str]) -> IgnoreRules {
        IgnoreRules::new(&[IgnoreConfig {
            load_balancers: load_balancers.into(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }])
        .unwrap()
    }

    #[test]
    fn globs_match_names_and_paths() {
        let rules = rules("web-*", &["/tags/*", "/listeners/*/ssl_policy"]);
        let cases = [
            ("web-1", "/tags/team", true),
            ("web-1", "/tags/team/extra", false),
            ("web-1", "/listeners/443/ssl_policy", true),
            ("web-1", "/listeners/443/rules/10/actions", false),
            ("api-1", "/tags/team", false),
        ];
        for (name, path, expected) in cases {
            assert_eq!(rules.ignores(name, path), expected, "{name} {path}");
        }
    }

    #[test]
    fn double_star_crosses_segments() {
        let rules = rules("*", &["/target_groups/**"]);
        assert!(rules.ignores("x", "/target_groups/api/health_check/path"));
        assert!(!rules.ignores("x", "/tags/a"));
    }

    #[test]
    fn bad_globs_are_reported_with_their_keys() {
        let problems = IgnoreRules::new(&[IgnoreConfig {
            load_balancers: "[".into(),
            paths: vec!["tags".into(), "/a/[".into()],
        }])
        .unwrap_err();
        let joined = problems.join("\n");
        assert!(joined.contains("ignore[0].load_balancers"), "{joined}");
        assert!(joined.contains("ignore[0].paths[0]"), "{joined}");
        assert!(joined.contains("ignore[0].paths[1]"), "{joined}");
    }
}
