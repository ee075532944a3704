//! The control table: the item workflows read before acting (SPEC 8).
//!
//! The table's partition key is `target` (S); each target keeps one control item there, keyed
//! by the target's name. This module reads what `check` and `status` show of it.

use crate::aws::AwsError;
use crate::aws::dynamodb::Dynamo;
use crate::item::{AttrValue, Item};
use crate::report::GuardView;

/// The control table's partition key.
pub const KEY_ATTRIBUTE: &str = "target";

/// The guard note shown while the control table does not exist.
pub const NO_CONTROL_TABLE: &str = "no control table (run lbrecon init)";

/// What `check` needs of the control item.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlView {
    pub guard: GuardView,
    /// Whether lbrecon has seen the state table exist, so that its disappearance means every
    /// record is missing rather than a configuration mistake.
    pub state_table_seen: bool,
}

/// Reads the control item of `target`. A control table that does not exist is not an error
/// here: the view says so.
pub async fn read_view(
    dynamodb: &Dynamo,
    table: &str,
    target: &str,
) -> Result<ControlView, AwsError> {
    match dynamodb.get(table, KEY_ATTRIBUTE, target).await {
        Ok(item) => Ok(view_of(item.as_ref())),
        Err(err) if err.is_not_found() => Ok(ControlView {
            guard: GuardView {
                paused: false,
                reason: Some(NO_CONTROL_TABLE.to_string()),
            },
            state_table_seen: false,
        }),
        Err(err) => Err(err),
    }
}

/// The view of a control item; no item means never paused.
pub fn view_of(item: Option<&Item>) -> ControlView {
    let Some(item) = item else {
        return ControlView {
            guard: GuardView {
                paused: false,
                reason: None,
            },
            state_table_seen: false,
        };
    };
    let flag = |name: &str| matches!(item.get(name), Some(AttrValue::Bool(true)));
    let paused = flag("paused");
    let reason = match item.get("reason") {
        Some(AttrValue::S(reason)) if paused => Some(reason.clone()),
        _ => None,
    };
    ControlView {
        guard: GuardView { paused, reason },
        state_table_seen: flag("state_table_seen"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_reads_the_flag_and_reason() {
        let item: Item = [
            ("target".to_string(), AttrValue::S("prod".into())),
            ("paused".to_string(), AttrValue::Bool(true)),
            (
                "reason".to_string(),
                AttrValue::S("3 records missing".into()),
            ),
            ("state_table_seen".to_string(), AttrValue::Bool(true)),
        ]
        .into_iter()
        .collect();
        let view = view_of(Some(&item));
        assert!(view.guard.paused);
        assert_eq!(view.guard.reason.as_deref(), Some("3 records missing"));
        assert!(view.state_table_seen);
        assert_eq!(
            view_of(None).guard,
            GuardView {
                paused: false,
                reason: None
            }
        );
    }
}
