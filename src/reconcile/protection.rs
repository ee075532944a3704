//! The state table's protection (docs/architecture.md#guard): what lbrecon reads about it, and the pure judgement
//! of its resource-based policy (`delete_policy`, the change-management remedy of 2012).
//!
//! A policy is in force when, for every action that deletes records or the table, some `Deny`
//! statement applies to every principal (`"*"`), to the table itself, and exempts at most
//! principals it names (`ArnNotEquals` / `ArnNotLike` / `StringNotEquals` / `StringNotLike` on
//! `aws:PrincipalArn`). Anything else (an `Allow`-only policy, a deny narrowed by another
//! condition, `NotPrincipal`, `NotResource`, an exemption by wildcard) is judged not in force,
//! and says why: a wrong "protected" is worse than a wrong "unprotected".

use serde_json::Value;

/// The actions that delete records or the table. `BatchWriteItem` has no delete-only action in
/// IAM, and `PartiQLDelete` is `ExecuteStatement`'s `DELETE`; a transaction's `Delete` needs
/// `DeleteItem`.
pub const DELETE_ACTIONS: &[&str] = &[
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLDelete",
    "dynamodb:DeleteTable",
];

/// The condition operators that exempt principals from a deny (with or without `IfExists`,
/// which changes nothing for `aws:PrincipalArn`: every request has one).
const EXEMPTING_OPERATORS: &[&str] = &[
    "ArnNotEquals",
    "ArnNotLike",
    "StringNotEquals",
    "StringNotLike",
];

/// What a table's resource policy does about deletes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeletePolicy {
    /// Every delete action is denied to every principal but those listed (the exempt ARNs or
    /// patterns, sorted; empty when the deny spares no one).
    Denied { exempt: Vec<String> },
    /// The table has no resource policy.
    NoPolicy,
    /// A policy exists but leaves these delete actions open to principals it does not name;
    /// `why` says, per statement that came close, why it did not count.
    NotDenied {
        not_denied: Vec<&'static str>,
        why: Vec<String>,
    },
}

impl DeletePolicy {
    /// Whether the protection is in force (`lbrecon_state_table_protection{kind="delete_policy"}`).
    pub fn in_force(&self) -> bool {
        matches!(self, DeletePolicy::Denied { .. })
    }

    /// One line for logs and `status`: what is denied, or what is not and why.
    pub fn describe(&self) -> String {
        match self {
            DeletePolicy::Denied { exempt } if exempt.is_empty() => {
                "deletes are denied to every principal".to_string()
            }
            DeletePolicy::Denied { exempt } => {
                format!(
                    "deletes are denied to every principal but {}",
                    exempt.join(", ")
                )
            }
            DeletePolicy::NoPolicy => "the table has no resource policy".to_string(),
            DeletePolicy::NotDenied { not_denied, why } => {
                let mut line = format!(
                    "the resource policy does not deny {} to every principal but named ones",
                    not_denied.join(", ")
                );
                if !why.is_empty() {
                    line.push_str(&format!(" ({})", why.join("; ")));
                }
                line
            }
        }
    }
}

/// Judges the resource policy `policy` (the JSON `GetResourcePolicy` returns) of the table
/// `table_arn`.
pub fn judge_delete_policy(policy: &str, table_arn: &str) -> DeletePolicy {
    let document: Value = match serde_json::from_str(policy) {
        Ok(document) => document,
        Err(err) => {
            return DeletePolicy::NotDenied {
                not_denied: DELETE_ACTIONS.to_vec(),
                why: vec![format!("the policy is not valid JSON: {err}")],
            };
        }
    };
    let statements: Vec<&Value> = match document.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => vec![],
    };
    let mut why = Vec::new();
    let mut exempt = Vec::new();
    let mut covered = vec![false; DELETE_ACTIONS.len()];
    for (index, statement) in statements.iter().enumerate() {
        let name = statement
            .get("Sid")
            .and_then(Value::as_str)
            .map(|sid| format!("statement {sid}"))
            .unwrap_or_else(|| format!("statement {}", index + 1));
        if statement.get("Effect").and_then(Value::as_str) != Some("Deny") {
            continue;
        }
        let actions: Vec<bool> = DELETE_ACTIONS
            .iter()
            .map(|action| applies_to_action(statement, action))
            .collect();
        if !actions.iter().any(|&a| a) {
            continue;
        }
        match deny_reaches(statement, table_arn) {
            Ok(names) => {
                for (done, applies) in covered.iter_mut().zip(&actions) {
                    *done |= *applies;
                }
                exempt.extend(names);
            }
            Err(reason) => why.push(format!("{name}: {reason}")),
        }
    }
    let not_denied: Vec<&'static str> = DELETE_ACTIONS
        .iter()
        .zip(&covered)
        .filter(|(_, done)| !**done)
        .map(|(action, _)| *action)
        .collect();
    if not_denied.is_empty() {
        exempt.sort();
        exempt.dedup();
        DeletePolicy::Denied { exempt }
    } else {
        DeletePolicy::NotDenied { not_denied, why }
    }
}

/// Strings of a policy element that may be one string or a list of them.
fn strings(value: &Value) -> Vec<&str> {
    match value {
        Value::String(one) => vec![one.as_str()],
        Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

/// Whether `statement` applies to `action`, by `Action` or `NotAction` (IAM's matching: case
/// insensitive, `*` and `?` wildcards).
fn applies_to_action(statement: &Value, action: &str) -> bool {
    if let Some(listed) = statement.get("Action") {
        return strings(listed).iter().any(|pattern| {
            wildcard_match(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase())
        });
    }
    if let Some(excluded) = statement.get("NotAction") {
        // A deny with NotAction denies every action it does not list.
        return !strings(excluded).iter().any(|pattern| {
            wildcard_match(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase())
        });
    }
    false
}

/// Whether a deny statement reaches every principal on the table, sparing at most named ones:
/// the names it spares, or why it does not count.
fn deny_reaches(statement: &Value, table_arn: &str) -> Result<Vec<String>, String> {
    if statement.get("NotPrincipal").is_some() {
        return Err("it uses NotPrincipal, which cannot name a role's sessions reliably".into());
    }
    let everyone = match statement.get("Principal") {
        Some(Value::String(star)) => star == "*",
        Some(Value::Object(map)) => map.get("AWS").is_some_and(|aws| strings(aws) == ["*"]),
        _ => false,
    };
    if !everyone {
        return Err("its Principal is not every principal (\"*\")".into());
    }
    if statement.get("NotResource").is_some() {
        return Err("it uses NotResource".into());
    }
    let on_table = statement.get("Resource").is_some_and(|resource| {
        strings(resource)
            .iter()
            .any(|pattern| wildcard_match(pattern, table_arn))
    });
    if !on_table {
        return Err(format!("its Resource does not cover the table {table_arn}"));
    }
    match statement.get("Condition") {
        None => Ok(vec![]),
        Some(Value::Object(conditions)) => {
            let mut names = Vec::new();
            for (operator, keys) in conditions {
                let base = operator.strip_suffix("IfExists").unwrap_or(operator);
                if !EXEMPTING_OPERATORS.contains(&base) {
                    return Err(format!("its Condition also limits the deny by {operator}"));
                }
                let Value::Object(keys) = keys else {
                    return Err(format!("its Condition {operator} is not a map of keys"));
                };
                for (key, values) in keys {
                    if !key.eq_ignore_ascii_case("aws:PrincipalArn") {
                        return Err(format!(
                            "its Condition also limits the deny by {operator} on {key}"
                        ));
                    }
                    // IAM matches wildcards in both ARN operators (ArnNotEquals too) and in
                    // StringNotLike; only StringNotEquals compares literally.
                    let wildcards = base != "StringNotEquals";
                    for value in strings(values) {
                        if wildcards && !names_principals(value) {
                            return Err(format!(
                                "its Condition {operator} aws:PrincipalArn {value} exempts principals by wildcard, not by name"
                            ));
                        }
                        names.push(value.to_string());
                    }
                }
            }
            Ok(names)
        }
        Some(_) => Err("its Condition is not a map".into()),
    }
}

/// Whether a pattern on `aws:PrincipalArn` (of an operator that matches wildcards) names principals rather than sparing a
/// whole account or everyone: `arn:PARTITION:iam::ACCOUNT:role/NAME...` or `...:user/...`
/// with the partition and the twelve-digit account spelled out, and a name that starts with
/// something other than a wildcard (`role/ops-*` names roles; `role/*` spares every role).
fn names_principals(pattern: &str) -> bool {
    let parts: Vec<&str> = pattern.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts.as_slice() else {
        return false;
    };
    let literal = |s: &str| !s.is_empty() && !s.contains(['*', '?']);
    let named_resource = resource.split_once('/').is_some_and(|(kind, name)| {
        literal(kind) && name.chars().next().is_some_and(|c| c != '*' && c != '?')
    });
    *arn == "arn"
        && literal(partition)
        && (*service == "iam" || *service == "sts")
        && region.is_empty()
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && named_resource
}

/// IAM's wildcard match: `*` any run of characters, `?` any one character.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TABLE: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/lb-state";
    const WRITER: &str = "arn:aws:iam::123456789012:role/control-plane-writer";
    const OPERATOR: &str = "arn:aws:iam::123456789012:role/lbrecon-change-managed";

    fn deny(action: Value, principal: Value, condition: Option<Value>) -> Value {
        let mut statement = json!({
            "Sid": "DenyDeletes",
            "Effect": "Deny",
            "Principal": principal,
            "Action": action,
            "Resource": TABLE,
        });
        if let Some(condition) = condition {
            statement["Condition"] = condition;
        }
        statement
    }

    fn exempt_named() -> Value {
        json!({"ArnNotEquals": {"aws:PrincipalArn": [WRITER, OPERATOR]}})
    }

    fn policy(statements: Vec<Value>) -> String {
        json!({"Version": "2012-10-17", "Statement": statements}).to_string()
    }

    /// `Ok`: denied, sparing these; `Err`: these delete actions left open.
    type Expected = Result<Vec<String>, Vec<&'static str>>;

    fn all_deletes() -> Value {
        json!(DELETE_ACTIONS)
    }

    #[test]
    fn judges_each_policy() {
        let named = vec![WRITER.to_string(), OPERATOR.to_string()];
        let cases: Vec<(&str, String, Expected)> = vec![
            (
                "every delete action denied, two roles exempt",
                policy(vec![deny(all_deletes(), json!("*"), Some(exempt_named()))]),
                Ok(named.clone()),
            ),
            (
                "dynamodb:* with Principal {AWS: *}",
                policy(vec![deny(
                    json!("dynamodb:*"),
                    json!({"AWS": "*"}),
                    Some(exempt_named()),
                )]),
                Ok(named.clone()),
            ),
            (
                "wildcards dynamodb:Delete* and dynamodb:*Write*, lower case",
                policy(vec![deny(
                    json!(["dynamodb:delete*", "dynamodb:*Write*", "dynamodb:PartiQL*"]),
                    json!("*"),
                    Some(exempt_named()),
                )]),
                Ok(named.clone()),
            ),
            (
                "the deny split over two statements",
                policy(vec![
                    deny(
                        json!(["dynamodb:DeleteItem", "dynamodb:BatchWriteItem"]),
                        json!("*"),
                        Some(exempt_named()),
                    ),
                    deny(
                        json!(["dynamodb:PartiQLDelete", "dynamodb:DeleteTable"]),
                        json!("*"),
                        Some(exempt_named()),
                    ),
                ]),
                Ok(named.clone()),
            ),
            (
                "a deny without condition spares no one",
                policy(vec![deny(json!("dynamodb:*"), json!("*"), None)]),
                Ok(vec![]),
            ),
            (
                "ArnNotLike with a named role prefix and StringNotEqualsIfExists",
                policy(vec![deny(
                    all_deletes(),
                    json!("*"),
                    Some(json!({
                        "ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/cp-writer-*"},
                        "StringNotEqualsIfExists": {"aws:principalarn": OPERATOR},
                    })),
                )]),
                Ok(vec![
                    "arn:aws:iam::123456789012:role/cp-writer-*".to_string(),
                    OPERATOR.to_string(),
                ]),
            ),
            (
                "NotAction that leaves the delete actions in the deny",
                policy(vec![deny_not_action(json!([
                    "dynamodb:GetItem",
                    "dynamodb:Scan"
                ]))]),
                Ok(named.clone()),
            ),
            (
                "Allow-only policy",
                policy(vec![json!({
                    "Effect": "Allow", "Principal": {"AWS": WRITER},
                    "Action": "dynamodb:*", "Resource": TABLE,
                })]),
                Err(DELETE_ACTIONS.to_vec()),
            ),
            (
                "DeleteTable left out",
                policy(vec![deny(
                    json!([
                        "dynamodb:DeleteItem",
                        "dynamodb:BatchWriteItem",
                        "dynamodb:PartiQLDelete"
                    ]),
                    json!("*"),
                    Some(exempt_named()),
                )]),
                Err(vec!["dynamodb:DeleteTable"]),
            ),
            (
                "NotAction that excludes DeleteItem",
                policy(vec![deny_not_action(json!("dynamodb:Delete*"))]),
                Err(vec!["dynamodb:DeleteItem", "dynamodb:DeleteTable"]),
            ),
            (
                "exempts everyone by wildcard",
                policy(vec![deny(
                    all_deletes(),
                    json!("*"),
                    Some(json!({"ArnNotLike": {"aws:PrincipalArn": "*"}})),
                )]),
                Err(DELETE_ACTIONS.to_vec()),
            ),
            (
                "ArnNotEquals matches wildcards as ArnNotLike does",
                policy(vec![deny(
                    all_deletes(),
                    json!("*"),
                    Some(
                        json!({"ArnNotEquals": {"aws:PrincipalArn": ["arn:aws:iam::*:role/*", WRITER]}}),
                    ),
                )]),
                Err(DELETE_ACTIONS.to_vec()),
            ),
            (
                "StringNotEquals compares literally: a star names no one",
                policy(vec![deny(
                    all_deletes(),
                    json!("*"),
                    Some(json!({"StringNotEquals": {"aws:PrincipalArn": ["*"]}})),
                )]),
                Ok(vec!["*".to_string()]),
            ),
            (
                "exempts every role of the account by wildcard",
                policy(vec![deny(
                    all_deletes(),
                    json!("*"),
                    Some(
                        json!({"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/*"}}),
                    ),
                )]),
                Err(DELETE_ACTIONS.to_vec()),
            ),
            (
                "exempts every account by wildcard",
                policy(vec![deny(
                    all_deletes(),
                    json!("*"),
                    Some(
                        json!({"StringNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/writer"}}),
                    ),
                )]),
                Err(DELETE_ACTIONS.to_vec()),
            ),
            (
                "a deny narrowed by another condition",
                policy(vec![deny(
                    all_deletes(),
                    json!("*"),
                    Some(
                        json!({"ArnNotEquals": {"aws:PrincipalArn": WRITER}, "Bool": {"aws:SecureTransport": "false"}}),
                    ),
                )]),
                Err(DELETE_ACTIONS.to_vec()),
            ),
            (
                "a deny to one principal only",
                policy(vec![deny(all_deletes(), json!({"AWS": WRITER}), None)]),
                Err(DELETE_ACTIONS.to_vec()),
            ),
            (
                "a deny on another table",
                policy(vec![{
                    let mut statement = deny(all_deletes(), json!("*"), Some(exempt_named()));
                    statement["Resource"] =
                        json!("arn:aws:dynamodb:us-east-1:123456789012:table/other");
                    statement
                }]),
                Err(DELETE_ACTIONS.to_vec()),
            ),
            (
                "NotPrincipal judged conservatively",
                policy(vec![{
                    let mut statement = deny(all_deletes(), json!("*"), None);
                    let object = statement.as_object_mut().unwrap();
                    object.remove("Principal");
                    object.insert("NotPrincipal".into(), json!({"AWS": WRITER}));
                    statement
                }]),
                Err(DELETE_ACTIONS.to_vec()),
            ),
            ("not JSON", "{".to_string(), Err(DELETE_ACTIONS.to_vec())),
        ];
        for (name, policy, expected) in cases {
            let judged = judge_delete_policy(&policy, TABLE);
            match expected {
                Ok(exempt) => assert_eq!(judged, DeletePolicy::Denied { exempt }, "{name}"),
                Err(open) => match &judged {
                    DeletePolicy::NotDenied { not_denied, .. } => {
                        assert_eq!(not_denied, &open, "{name}")
                    }
                    other => panic!("{name}: judged {other:?}"),
                },
            }
            assert_eq!(
                judged.in_force(),
                matches!(judged, DeletePolicy::Denied { .. }),
                "{name}"
            );
        }
    }

    fn deny_not_action(excluded: Value) -> Value {
        let mut statement = deny(json!("*"), json!("*"), Some(exempt_named()));
        let object = statement.as_object_mut().unwrap();
        object.remove("Action");
        object.insert("NotAction".into(), excluded);
        statement
    }

    #[test]
    fn the_shipped_resource_policy_is_judged_in_force() {
        let shipped = include_str!("../../deploy/iam/state-table-resource-policy.json")
            .replace("${StateTableArn}", TABLE)
            .replace("${WriterRoleArn}", WRITER)
            .replace("${ChangeManagedRoleArn}", OPERATOR);
        assert_eq!(
            judge_delete_policy(&shipped, TABLE),
            DeletePolicy::Denied {
                exempt: vec![WRITER.to_string(), OPERATOR.to_string()]
            }
        );
    }

    #[test]
    fn says_why_a_statement_did_not_count() {
        let judged = judge_delete_policy(
            &policy(vec![deny(
                all_deletes(),
                json!("*"),
                Some(json!({"ArnNotLike": {"aws:PrincipalArn": "*"}})),
            )]),
            TABLE,
        );
        let line = judged.describe();
        assert!(line.contains("dynamodb:DeleteItem"), "{line}");
        assert!(line.contains("statement DenyDeletes"), "{line}");
        assert!(line.contains("by wildcard"), "{line}");
    }

    #[test]
    fn wildcards_match_as_iam_does() {
        for (pattern, text, matches) in [
            ("*", "anything", true),
            ("dynamodb:*", "dynamodb:DeleteItem", true),
            ("dynamodb:Delete?tem", "dynamodb:DeleteItem", true),
            ("dynamodb:*Item", "dynamodb:DeleteTable", false),
            ("arn:aws:dynamodb:*:*:table/lb-state", TABLE, true),
            ("arn:aws:dynamodb:*:*:table/lb-state/index/*", TABLE, false),
            ("", "x", false),
        ] {
            assert_eq!(
                wildcard_match(pattern, text),
                matches,
                "{pattern} vs {text}"
            );
        }
    }
}
