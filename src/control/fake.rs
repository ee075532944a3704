//! In-memory stand-ins for the calls the guard's effects make, for unit tests: a control table
//! that honours write conditions as DynamoDB does, and Auto Scaling groups with suspended
//! processes. One [`FakeAws`] answers both, so its journal holds every call in the order it was
//! made. Failures are injected per operation ([`FakeAws::fail`]), and another actor's write
//! between two calls is a hook run just before a call ([`FakeAws::before`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use crate::aws::autoscaling::ScalingGroup;
use crate::aws::control_calls::{AutoScalingCalls, ControlTableCalls};
use crate::aws::dynamodb::{CONDITION_FAILED, Condition, ItemCheck};
use crate::aws::{AwsError, ErrorClass};
use crate::control::ControlItem;
use crate::model::item::{AttrValue, Item};

/// The operations, by their API names.
pub const GET_ITEM: &str = "GetItem";
pub const PUT_ITEM: &str = "PutItem";
pub const TRANSACT_WRITE_ITEMS: &str = "TransactWriteItems";
pub const DESCRIBE_GROUPS: &str = "DescribeAutoScalingGroups";
pub const SUSPEND: &str = "SuspendProcesses";
pub const RESUME: &str = "ResumeProcesses";

/// One call, as it was made.
#[derive(Debug, Clone)]
pub struct Call {
    /// The API's operation name ([`PUT_ITEM`], [`SUSPEND`], ...).
    pub operation: &'static str,
    /// The item's key for a table call, the group for a group call; empty for
    /// `DescribeAutoScalingGroups`.
    pub subject: String,
    /// The item a write sent.
    pub item: Option<Item>,
    /// The processes a suspend or resume sent.
    pub processes: BTreeSet<String>,
    /// The error it was answered with.
    pub error: Option<AwsError>,
}

impl Call {
    /// The control item a write sent.
    pub fn control(&self) -> Option<ControlItem> {
        self.item
            .as_ref()
            .map(|item| ControlItem::from_item(item).expect("a control item was written"))
    }

    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

/// Which calls of an operation a fault or a hook applies to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum When {
    /// The Nth call of the operation, counting from 1.
    Nth(usize),
    /// The Nth call and every one after it.
    From(usize),
}

impl When {
    fn matches(self, count: usize) -> bool {
        match self {
            When::Nth(n) => count == n,
            When::From(n) => count >= n,
        }
    }
}

type Hook = Box<dyn FnMut(&mut Data) + Send>;

/// The fake's data: tables by name, each with its key attribute and items by key, and the
/// Auto Scaling groups by name.
#[derive(Debug, Default)]
pub struct Data {
    pub tables: BTreeMap<String, (String, BTreeMap<String, Item>)>,
    pub groups: BTreeMap<String, ScalingGroup>,
}

impl Data {
    /// The control item stored under `key`.
    pub fn control(&self, table: &str, key: &str) -> Option<ControlItem> {
        let (_, items) = self.tables.get(table)?;
        items
            .get(key)
            .map(|item| ControlItem::from_item(item).expect("a control item is stored"))
    }

    /// Stores `control` as it is (its `version` included), as another writer would.
    pub fn store_control(&mut self, table: &str, control: &ControlItem) {
        let (key_name, items) = self.tables.get_mut(table).expect("the table exists");
        let item = control.to_item();
        let key = key_of(key_name, &item);
        items.insert(key, item);
    }

    /// Changes the control item under `key` as another writer would; `bump` raises its
    /// version (lbrecon does on every write; a person's `UpdateItem` by hand does not).
    pub fn edit_control(
        &mut self,
        table: &str,
        key: &str,
        bump: bool,
        change: impl FnOnce(&mut ControlItem),
    ) {
        let mut control = self.control(table, key).expect("the control item exists");
        change(&mut control);
        if bump {
            control.version += 1;
        }
        self.store_control(table, &control);
    }

    /// The processes suspended now on `group`.
    pub fn suspended(&self, group: &str) -> BTreeSet<String> {
        self.groups[group].suspended.clone()
    }
}

#[derive(Default)]
struct State {
    data: Data,
    journal: Vec<Call>,
    counts: BTreeMap<&'static str, usize>,
    faults: Vec<(&'static str, When, AwsError)>,
    hooks: Vec<(&'static str, When, Hook)>,
}

/// The control table and the Auto Scaling groups, in memory.
#[derive(Default)]
pub struct FakeAws {
    state: Mutex<State>,
}

/// The error the real client gives for `class` on `operation` (with the code AWS answers).
pub fn error(operation: &'static str, class: ErrorClass) -> AwsError {
    let code = match class {
        ErrorClass::Throttled => Some("ThrottlingException"),
        ErrorClass::NotFound => Some("ResourceNotFoundException"),
        ErrorClass::AccessDenied => Some("AccessDeniedException"),
        ErrorClass::Service => Some("InternalFailure"),
        ErrorClass::Timeout | ErrorClass::Network | ErrorClass::NotLeader => None,
    };
    AwsError {
        service: service_of(operation),
        operation,
        class,
        code: code.map(str::to_string),
        message: format!("injected {} failure", class.as_str()),
    }
}

fn service_of(operation: &str) -> &'static str {
    match operation {
        DESCRIBE_GROUPS | SUSPEND | RESUME => "autoscaling",
        _ => "dynamodb",
    }
}

/// A write whose condition failed, as DynamoDB answers it.
fn condition_failed(operation: &'static str, table: &str) -> AwsError {
    AwsError {
        service: "dynamodb",
        operation,
        class: ErrorClass::Service,
        code: Some(CONDITION_FAILED.to_string()),
        message: format!("the conditional request on {table} failed"),
    }
}

fn no_table(operation: &'static str) -> AwsError {
    AwsError {
        service: "dynamodb",
        operation,
        class: ErrorClass::NotFound,
        code: Some("ResourceNotFoundException".to_string()),
        message: "Requested resource not found".to_string(),
    }
}

fn key_of(key_name: &str, item: &Item) -> String {
    match item.get(key_name) {
        Some(AttrValue::S(key)) => key.clone(),
        other => panic!("an item's key {key_name} must be a string, not {other:?}"),
    }
}

/// Whether `condition` holds on `item` (`None`: no item under the key). Understands what the
/// control table's and the lease's writes say: `attribute_exists(#a)`,
/// `attribute_not_exists(#a)` and `#a = :v`, joined by `AND`. Anything else panics, so a
/// condition the fake does not understand never passes unseen.
fn holds(condition: &Condition, item: Option<&Item>) -> bool {
    let name = |placeholder: &str| -> &str {
        condition
            .names
            .iter()
            .find(|(p, _)| p == placeholder)
            .map(|(_, name)| name.as_str())
            .unwrap_or_else(|| panic!("{placeholder} is not in the condition's names"))
    };
    let value = |placeholder: &str| -> &AttrValue {
        condition
            .values
            .iter()
            .find(|(p, _)| p == placeholder)
            .map(|(_, value)| value)
            .unwrap_or_else(|| panic!("{placeholder} is not in the condition's values"))
    };
    let attribute = |placeholder: &str| item.and_then(|item| item.get(name(placeholder)));
    condition.expression.split(" AND ").all(|term| {
        let term = term.trim();
        if let Some(inner) = term
            .strip_prefix("attribute_not_exists(")
            .and_then(|rest| rest.strip_suffix(')'))
        {
            attribute(inner.trim()).is_none()
        } else if let Some(inner) = term
            .strip_prefix("attribute_exists(")
            .and_then(|rest| rest.strip_suffix(')'))
        {
            attribute(inner.trim()).is_some()
        } else if let Some((left, right)) = term.split_once(" = ") {
            attribute(left.trim()) == Some(value(right.trim()))
        } else {
            panic!("the fake table does not understand the condition {term:?}")
        }
    })
}

impl FakeAws {
    pub fn new() -> Self {
        FakeAws::default()
    }

    /// Creates an empty table keyed by `key_name`.
    pub fn with_table(self, table: &str, key_name: &str) -> Self {
        self.data(|data| {
            data.tables
                .insert(table.to_string(), (key_name.to_string(), BTreeMap::new()));
        });
        self
    }

    /// Adds an Auto Scaling group behind `target_groups` with `suspended` processes.
    pub fn with_group(self, name: &str, target_groups: &[&str], suspended: &[&str]) -> Self {
        self.data(|data| {
            data.groups.insert(
                name.to_string(),
                ScalingGroup {
                    name: name.to_string(),
                    target_group_arns: target_groups.iter().map(|t| t.to_string()).collect(),
                    suspended: suspended.iter().map(|p| p.to_string()).collect(),
                },
            );
        });
        self
    }

    /// Reads or changes the data directly, outside the journal.
    pub fn data<T>(&self, look: impl FnOnce(&mut Data) -> T) -> T {
        look(&mut self.state.lock().unwrap().data)
    }

    /// Answers the calls of `operation` that `when` picks with `error` (they have no effect).
    pub fn fail(&self, operation: &'static str, when: When, error: AwsError) {
        self.state
            .lock()
            .unwrap()
            .faults
            .push((operation, when, error));
    }

    /// Runs `hook` on the data just before the calls of `operation` that `when` picks: another
    /// actor's write landing in between.
    pub fn before(
        &self,
        operation: &'static str,
        when: When,
        hook: impl FnMut(&mut Data) + Send + 'static,
    ) {
        self.state
            .lock()
            .unwrap()
            .hooks
            .push((operation, when, Box::new(hook)));
    }

    /// Every call so far, in order.
    pub fn journal(&self) -> Vec<Call> {
        self.state.lock().unwrap().journal.clone()
    }

    /// The calls of `operation` so far, in order.
    pub fn calls(&self, operation: &str) -> Vec<Call> {
        self.journal()
            .into_iter()
            .filter(|call| call.operation == operation)
            .collect()
    }

    /// Counts the call, runs its hooks and answers it: an injected fault, or `answer` on the
    /// data. Journals it with its outcome.
    fn call<T>(
        &self,
        mut call: Call,
        answer: impl FnOnce(&mut Data) -> Result<T, AwsError>,
    ) -> Result<T, AwsError> {
        let mut state = self.state.lock().unwrap();
        let state = &mut *state;
        let count = {
            let count = state.counts.entry(call.operation).or_default();
            *count += 1;
            *count
        };
        for (operation, when, hook) in &mut state.hooks {
            if *operation == call.operation && when.matches(count) {
                hook(&mut state.data);
            }
        }
        let fault = state
            .faults
            .iter()
            .find(|(operation, when, _)| *operation == call.operation && when.matches(count))
            .map(|(_, _, error)| error.clone());
        let result = match fault {
            Some(error) => Err(error),
            None => answer(&mut state.data),
        };
        call.error = result.as_ref().err().cloned();
        state.journal.push(call);
        result
    }

    fn write(
        &self,
        operation: &'static str,
        table: &str,
        item: &Item,
        condition: Option<&Condition>,
        check: Option<&ItemCheck<'_>>,
    ) -> Result<(), AwsError> {
        let subject = self
            .data(|data| {
                data.tables
                    .get(table)
                    .map(|(key_name, _)| key_of(key_name, item))
            })
            .unwrap_or_default();
        let call = Call {
            operation,
            subject,
            item: Some(item.clone()),
            processes: BTreeSet::new(),
            error: None,
        };
        self.call(call, |data| {
            if let Some(check) = check {
                let (_, items) = data
                    .tables
                    .get(check.table)
                    .ok_or_else(|| no_table(operation))?;
                if !holds(&check.condition, items.get(check.key)) {
                    return Err(AwsError {
                        service: "dynamodb",
                        operation,
                        class: ErrorClass::NotLeader,
                        code: None,
                        message: format!("the check on {} {} failed", check.table, check.key),
                    });
                }
            }
            let (key_name, items) = data
                .tables
                .get_mut(table)
                .ok_or_else(|| no_table(operation))?;
            let key = key_of(key_name, item);
            if let Some(condition) = condition
                && !holds(condition, items.get(&key))
            {
                return Err(condition_failed(operation, table));
            }
            items.insert(key, item.clone());
            Ok(())
        })
    }

    fn group_call(
        &self,
        operation: &'static str,
        name: &str,
        processes: &BTreeSet<String>,
        suspend: bool,
    ) -> Result<(), AwsError> {
        let call = Call {
            operation,
            subject: name.to_string(),
            item: None,
            processes: processes.clone(),
            error: None,
        };
        self.call(call, |data| {
            let Some(group) = data.groups.get_mut(name) else {
                return Err(AwsError {
                    service: "autoscaling",
                    operation,
                    class: ErrorClass::Service,
                    code: Some("ValidationError".to_string()),
                    message: format!("AutoScalingGroup name not found - {name}"),
                });
            };
            if suspend {
                group.suspended.extend(processes.iter().cloned());
            } else {
                group
                    .suspended
                    .retain(|process| !processes.contains(process));
            }
            Ok(())
        })
    }
}

impl ControlTableCalls for FakeAws {
    async fn get(&self, table: &str, key_name: &str, key: &str) -> Result<Option<Item>, AwsError> {
        let call = Call {
            operation: GET_ITEM,
            subject: key.to_string(),
            item: None,
            processes: BTreeSet::new(),
            error: None,
        };
        self.call(call, |data| {
            let (table_key, items) = data.tables.get(table).ok_or_else(|| no_table(GET_ITEM))?;
            assert_eq!(table_key, key_name, "the table's key attribute");
            Ok(items.get(key).cloned())
        })
    }

    async fn put(
        &self,
        table: &str,
        item: &Item,
        condition: Option<&Condition>,
    ) -> Result<(), AwsError> {
        self.write(PUT_ITEM, table, item, condition, None)
    }

    async fn put_checked(
        &self,
        table: &str,
        item: &Item,
        condition: Option<&Condition>,
        check: &ItemCheck<'_>,
    ) -> Result<(), AwsError> {
        self.write(TRANSACT_WRITE_ITEMS, table, item, condition, Some(check))
    }
}

impl AutoScalingCalls for FakeAws {
    async fn groups(&self) -> Result<Vec<ScalingGroup>, AwsError> {
        let call = Call {
            operation: DESCRIBE_GROUPS,
            subject: String::new(),
            item: None,
            processes: BTreeSet::new(),
            error: None,
        };
        self.call(call, |data| Ok(data.groups.values().cloned().collect()))
    }

    async fn suspend(&self, name: &str, processes: &BTreeSet<String>) -> Result<(), AwsError> {
        self.group_call(SUSPEND, name, processes, true)
    }

    async fn resume(&self, name: &str, processes: &BTreeSet<String>) -> Result<(), AwsError> {
        self.group_call(RESUME, name, processes, false)
    }
}

/// Per group, processes: `[("asg-1", &["Launch"])]`.
pub fn per_group(groups: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
    groups
        .iter()
        .map(|(group, processes)| {
            (
                group.to_string(),
                processes.iter().map(|p| p.to_string()).collect(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version_is(version: i64) -> Condition {
        Condition {
            expression: "#version = :version AND #paused = :paused".into(),
            names: vec![
                ("#version".into(), "version".into()),
                ("#paused".into(), "paused".into()),
            ],
            values: vec![
                (":version".into(), AttrValue::N(version.to_string())),
                (":paused".into(), AttrValue::Bool(false)),
            ],
        }
    }

    fn item(key: &str, version: i64, paused: bool) -> Item {
        [
            ("target".to_string(), AttrValue::S(key.into())),
            ("version".to_string(), AttrValue::N(version.to_string())),
            ("paused".to_string(), AttrValue::Bool(paused)),
        ]
        .into_iter()
        .collect()
    }

    #[tokio::test]
    async fn the_table_honours_conditions_as_dynamodb_does() {
        let fake = FakeAws::new().with_table("control", "target");
        let absent = Condition {
            expression: "attribute_not_exists(#key)".into(),
            names: vec![("#key".into(), "target".into())],
            values: vec![],
        };
        fake.put("control", &item("prod", 1, false), Some(&absent))
            .await
            .unwrap();
        let again = fake
            .put("control", &item("prod", 1, false), Some(&absent))
            .await
            .unwrap_err();
        assert!(again.is_condition_failed(), "{again}");
        // The version must match, and so must the flag.
        fake.put("control", &item("prod", 2, false), Some(&version_is(1)))
            .await
            .unwrap();
        let stale = fake
            .put("control", &item("prod", 3, false), Some(&version_is(1)))
            .await
            .unwrap_err();
        assert!(stale.is_condition_failed());
        fake.data(|data| {
            let (_, items) = data.tables.get_mut("control").unwrap();
            items.insert("prod".into(), item("prod", 2, true));
        });
        let flag = fake
            .put("control", &item("prod", 3, false), Some(&version_is(2)))
            .await
            .unwrap_err();
        assert!(flag.is_condition_failed());
        assert_eq!(
            fake.get("control", "target", "prod").await.unwrap(),
            Some(item("prod", 2, true))
        );
        // A missing table is not found, for reads and writes.
        let gone = fake.get("other", "target", "prod").await.unwrap_err();
        assert!(gone.is_not_found() && !gone.is_condition_failed());
        assert!(
            fake.put("other", &item("x", 1, false), None)
                .await
                .unwrap_err()
                .is_not_found()
        );
        let journal = fake.journal();
        assert_eq!(journal.len(), 8);
        assert_eq!(
            journal.iter().filter(|call| call.succeeded()).count(),
            3,
            "{journal:?}"
        );
    }

    #[tokio::test]
    async fn a_checked_write_fails_as_not_leader_when_its_check_fails() {
        let fake = FakeAws::new()
            .with_table("control", "target")
            .with_table("leases", "target");
        let check = ItemCheck {
            table: "leases",
            key_name: "target",
            key: "prod",
            condition: Condition {
                expression: "attribute_exists(#key)".into(),
                names: vec![("#key".into(), "target".into())],
                values: vec![],
            },
        };
        let err = fake
            .put_checked("control", &item("prod", 1, false), None, &check)
            .await
            .unwrap_err();
        assert!(err.is_not_leader(), "{err}");
        fake.put("leases", &item("prod", 1, false), None)
            .await
            .unwrap();
        fake.put_checked("control", &item("prod", 1, false), None, &check)
            .await
            .unwrap();
        let err = fake
            .put_checked(
                "control",
                &item("prod", 2, false),
                Some(&version_is(7)),
                &check,
            )
            .await
            .unwrap_err();
        assert!(err.is_condition_failed() && err.operation == TRANSACT_WRITE_ITEMS);
    }

    #[tokio::test]
    async fn faults_and_hooks_pick_their_calls() {
        let fake = FakeAws::new()
            .with_group("asg-1", &["tg-a"], &["Launch"])
            .with_group("asg-2", &["tg-a"], &[]);
        fake.fail(SUSPEND, When::Nth(2), error(SUSPEND, ErrorClass::Throttled));
        fake.before(RESUME, When::From(1), |data| {
            data.groups
                .get_mut("asg-2")
                .unwrap()
                .suspended
                .insert("AZRebalance".into());
        });
        let both: BTreeSet<String> = ["Launch".to_string(), "Terminate".to_string()].into();
        fake.suspend("asg-1", &both).await.unwrap();
        let throttled = fake.suspend("asg-2", &both).await.unwrap_err();
        assert_eq!(throttled.class, ErrorClass::Throttled);
        fake.suspend("asg-2", &both).await.unwrap();
        assert!(fake.suspend("asg-9", &both).await.is_err());
        fake.resume("asg-1", &["Terminate".to_string()].into())
            .await
            .unwrap();
        assert_eq!(
            fake.data(|data| data.suspended("asg-1")),
            ["Launch".to_string()].into()
        );
        assert_eq!(
            fake.data(|data| data.suspended("asg-2")),
            [
                "AZRebalance".to_string(),
                "Launch".into(),
                "Terminate".into()
            ]
            .into()
        );
        let suspends: Vec<(String, bool)> = fake
            .calls(SUSPEND)
            .into_iter()
            .map(|call| {
                let ok = call.succeeded();
                (call.subject, ok)
            })
            .collect();
        assert_eq!(
            suspends,
            vec![
                ("asg-1".into(), true),
                ("asg-2".into(), false),
                ("asg-2".into(), true),
                ("asg-9".into(), false),
            ]
        );
    }
}
