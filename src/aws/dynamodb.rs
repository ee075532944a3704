//! DynamoDB: the state table (read-only for the daemon) and the control table.

use std::collections::HashMap;

use aws_sdk_dynamodb as dynamodb;
use aws_smithy_types::Blob;
use dynamodb::types::AttributeValue;

use super::pages::all_pages;
use super::{Api, AwsError};
use crate::model::item::{AttrValue, Item};
use crate::reconcile::protection::{DeletePolicy, judge_delete_policy};

const SERVICE: &str = "dynamodb";

/// The most items one `Scan` page holds. Without a limit a page is up to 1 MB of items, and the
/// SDK holds a page as maps of attribute values, about ten times its size (some 9 MB for a page
/// of load-balancer records) until every item of it is read. A limit of 250 bounds that to a
/// quarter, for one `Scan` call per 250 records (40 for 10,000, well within the DynamoDB budget).
pub const SCAN_PAGE_ITEMS: i32 = 250;

/// A DynamoDB client that answers in plain data.
#[derive(Debug, Clone)]
pub struct Dynamo {
    client: dynamodb::Client,
    api: Api,
}

impl Dynamo {
    /// Requests this client sent, per operation: (calls, retries).
    pub fn calls(&self) -> std::collections::BTreeMap<&'static str, (u64, u64)> {
        self.api.counter().snapshot()
    }

    /// The last operation answered with a throttle, and when.
    pub fn last_throttled(&self) -> Option<(&'static str, tokio::time::Instant)> {
        self.api.last_throttled()
    }

    /// The shared part of this client, to adjust.
    pub fn api_mut(&mut self) -> &mut Api {
        &mut self.api
    }

    /// Sends nothing while `gate` is closed.
    pub fn set_gate(&mut self, gate: std::sync::Arc<crate::aws::gate::Gate>) {
        self.api.set_gate(gate);
    }

    /// This client, its requests waiting on no budget: for the lease, whose few calls must
    /// never queue behind the state table's.
    pub fn without_budget(&self) -> Self {
        Dynamo {
            client: self.client.clone(),
            api: self.api.without_budget(),
        }
    }

    pub fn new(config: &aws_config::SdkConfig, api: Api) -> Self {
        let config = dynamodb::config::Builder::from(config).build();
        Dynamo {
            client: dynamodb::Client::from_conf(config),
            api,
        }
    }

    /// Every item of `table`, a table playing role `role` (as errors name it: "state table",
    /// "lease table"): a full scan with `ConsistentRead`, every page of at most
    /// [`SCAN_PAGE_ITEMS`] items. A table that does not exist is an error of class `NotFound`.
    pub async fn scan_table<T>(
        &self,
        role: &str,
        table: &str,
        mut each: impl FnMut(Item) -> T,
    ) -> Result<Vec<T>, AwsError> {
        const OP: &str = "Scan";
        // The error names the table it was for (docs/architecture.md#commands).
        let for_table = |mut err: AwsError| {
            err.message = format!("{} (for {role} {table})", err.message);
            err
        };
        let each = &mut each;
        let each = std::sync::Mutex::new(each);
        all_pages(
            SERVICE,
            OP,
            |start: Option<HashMap<String, AttributeValue>>| {
                let each = &each;
                async move {
                    let out = self
                        .api
                        .call(OP, || {
                            self.client
                                .scan()
                                .table_name(table)
                                .consistent_read(true)
                                .limit(SCAN_PAGE_ITEMS)
                                .set_exclusive_start_key(start.clone())
                                .send()
                        })
                        .await?;
                    let mut each = each.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    let mut items = Vec::with_capacity(out.items().len());
                    for item in out.items() {
                        items.push((*each)(from_sdk_item(item).map_err(|message| {
                            AwsError::unexpected(SERVICE, OP, format!("table {table}: {message}"))
                        })?));
                    }
                    let next = out
                        .last_evaluated_key()
                        .filter(|key| !key.is_empty())
                        .cloned();
                    Ok((items, next))
                }
            },
        )
        .await
        .map_err(for_table)
    }

    /// Whether `table` exists (`DescribeTable`).
    pub async fn table_exists(&self, table: &str) -> Result<bool, AwsError> {
        match self
            .api
            .call("DescribeTable", || {
                self.client.describe_table().table_name(table).send()
            })
            .await
        {
            Ok(_) => Ok(true),
            Err(err) if err.is_not_found() => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Writes `item`. With a condition, a failed condition is an error whose
    /// [`AwsError::is_condition_failed`] is true: someone else wrote first.
    pub async fn put(
        &self,
        table: &str,
        item: &Item,
        condition: Option<&Condition>,
    ) -> Result<(), AwsError> {
        let request = || {
            let mut request = self
                .client
                .put_item()
                .table_name(table)
                .set_item(Some(to_sdk_item(item)));
            if let Some(condition) = condition {
                request = request
                    .condition_expression(&condition.expression)
                    .set_expression_attribute_names(condition.sdk_names())
                    .set_expression_attribute_values(condition.sdk_values());
            }
            request.send()
        };
        self.api.call("PutItem", request).await.map(|_| ())
    }

    /// Writes `item` under `condition` only if `check` holds too (the lease of the replica
    /// writing, docs/architecture.md#replicas), in one transaction. A failed `condition` is an error whose
    /// [`AwsError::is_condition_failed`] is true; a failed `check` one whose
    /// [`AwsError::is_not_leader`] is.
    pub async fn put_checked(
        &self,
        table: &str,
        item: &Item,
        condition: Option<&Condition>,
        check: &ItemCheck<'_>,
    ) -> Result<(), AwsError> {
        use dynamodb::types::{ConditionCheck, Put, TransactWriteItem};
        let broken = |err: dynamodb::error::BuildError| {
            AwsError::unexpected(SERVICE, TRANSACT, err.to_string())
        };
        let guard = ConditionCheck::builder()
            .table_name(check.table)
            .key(check.key_name, AttributeValue::S(check.key.to_string()))
            .condition_expression(&check.condition.expression)
            .set_expression_attribute_names(check.condition.sdk_names())
            .set_expression_attribute_values(check.condition.sdk_values());
        let mut put = Put::builder()
            .table_name(table)
            .set_item(Some(to_sdk_item(item)));
        if let Some(condition) = condition {
            put = put
                .condition_expression(&condition.expression)
                .set_expression_attribute_names(condition.sdk_names())
                .set_expression_attribute_values(condition.sdk_values());
        }
        let items = vec![
            TransactWriteItem::builder()
                .condition_check(guard.build().map_err(broken)?)
                .build(),
            TransactWriteItem::builder()
                .put(put.build().map_err(broken)?)
                .build(),
        ];
        let Some(cancelled) = self.transact(items, None).await? else {
            return Ok(());
        };
        let failed = |i: usize| {
            cancelled
                .get(i)
                .is_some_and(|(code, _)| code.as_deref() == Some(CHECK_FAILED_CODE))
        };
        let (class, code, message) = if failed(0) {
            (
                super::ErrorClass::NotLeader,
                None,
                format!("the check on {} {} failed", check.table, check.key),
            )
        } else if failed(1) {
            (
                super::ErrorClass::Service,
                Some(CONDITION_FAILED),
                format!("the condition on the write to {table} failed"),
            )
        } else {
            (
                super::ErrorClass::Service,
                Some("TransactionCanceledException"),
                format!("table {table}: the transaction was cancelled"),
            )
        };
        Err(AwsError {
            service: SERVICE,
            operation: TRANSACT,
            class,
            code: code.map(str::to_string),
            message,
        })
    }

    /// Sends one `TransactWriteItems`. `Ok(None)`: written; `Ok(Some(reasons))`: cancelled,
    /// with each item's cancellation code (`ConditionalCheckFailed`, ...; `None` or `"None"`
    /// for an item that did not cause it) and message; an error for anything else.
    ///
    /// `token`: the `ClientRequestToken`, the same on every attempt, so an attempt retried
    /// after a timeout whose write landed is answered as written, not as a failed condition
    /// (DynamoDB keeps a token for ten minutes). Without one the SDK makes a new token per
    /// attempt.
    async fn transact(
        &self,
        items: Vec<dynamodb::types::TransactWriteItem>,
        token: Option<&str>,
    ) -> Result<Option<Vec<(Option<String>, Option<String>)>>, AwsError> {
        use dynamodb::operation::transact_write_items::TransactWriteItemsError;
        let sent = self
            .api
            .send(TRANSACT, || {
                self.client
                    .transact_write_items()
                    .set_transact_items(Some(items.clone()))
                    .set_client_request_token(token.map(str::to_string))
                    .send()
            })
            .await;
        match sent {
            Ok(_) => Ok(None),
            Err(err) => match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => Ok(Some(
                    cancelled
                        .cancellation_reasons()
                        .iter()
                        .map(|reason| {
                            (
                                reason.code().map(str::to_string),
                                reason.message().map(str::to_string),
                            )
                        })
                        .collect(),
                )),
                _ => Err(super::classify(SERVICE, TRANSACT, err)),
            },
        }
    }

    /// Writes up to 100 items in one transaction, each under its own condition, with `token`
    /// as its `ClientRequestToken` (see [`new_request_token`]; the same token must not be sent
    /// with other items). Returns each item's outcome: when the transaction is cancelled,
    /// nothing was written; the items whose condition failed are `ConditionFailed`, those
    /// refused for themselves (a `ValidationError`, ...) `Refused`, and the others `Retry`.
    pub async fn transact_put(
        &self,
        table: &str,
        puts: &[(Item, Condition)],
        token: &str,
    ) -> Result<Vec<PutOutcome>, AwsError> {
        use dynamodb::types::{Put, TransactWriteItem};
        let mut items = Vec::with_capacity(puts.len());
        for (item, condition) in puts {
            let put = Put::builder()
                .table_name(table)
                .set_item(Some(to_sdk_item(item)))
                .condition_expression(&condition.expression)
                .set_expression_attribute_names(condition.sdk_names())
                .set_expression_attribute_values(condition.sdk_values())
                .build()
                .map_err(|err| AwsError::unexpected(SERVICE, TRANSACT, err.to_string()))?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        Ok(match self.transact(items, Some(token)).await? {
            None => vec![PutOutcome::Written; puts.len()],
            Some(cancelled) => (0..puts.len())
                .map(|i| match cancelled.get(i) {
                    Some((code, message)) => item_outcome(code.as_deref(), message.as_deref()),
                    None => PutOutcome::Retry,
                })
                .collect(),
        })
    }

    /// Creates a table keyed by one string attribute, billed on demand, with deletion
    /// protection, and waits until it is active.
    pub async fn create_table(&self, table: &str, key: &str) -> Result<(), AwsError> {
        use dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        let key_schema = KeySchemaElement::builder()
            .attribute_name(key)
            .key_type(KeyType::Hash)
            .build()
            .map_err(|err| AwsError::unexpected(SERVICE, "CreateTable", err.to_string()))?;
        let definition = AttributeDefinition::builder()
            .attribute_name(key)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|err| AwsError::unexpected(SERVICE, "CreateTable", err.to_string()))?;
        self.api
            .call("CreateTable", || {
                self.client
                    .create_table()
                    .table_name(table)
                    .key_schema(key_schema.clone())
                    .attribute_definitions(definition.clone())
                    .billing_mode(BillingMode::PayPerRequest)
                    .deletion_protection_enabled(true)
                    .send()
            })
            .await?;
        for _ in 0..120 {
            let out = self
                .api
                .call("DescribeTable", || {
                    self.client.describe_table().table_name(table).send()
                })
                .await?;
            let active = out
                .table()
                .and_then(|t| t.table_status())
                .is_some_and(|status| status.as_str() == "ACTIVE");
            if active {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        Err(AwsError::unexpected(
            SERVICE,
            "DescribeTable",
            format!("table {table} did not become active within a minute"),
        ))
    }

    /// The protection of `table`: point-in-time recovery, deletion protection and what its
    /// resource policy does about deletes, each read on its own so that one that cannot be read
    /// (access denied, say) is unknown while the others are still known. The resource policy
    /// is asked for by the table's ARN, which `DescribeTable` gives: without it that one is
    /// unknown too.
    pub async fn protection(&self, table: &str) -> Protection {
        // The error names the table it was for (docs/architecture.md#commands).
        let for_table = |mut err: AwsError| {
            err.message = format!("{} (for state table {table})", err.message);
            err
        };
        let described = self
            .api
            .call("DescribeTable", || {
                self.client.describe_table().table_name(table).send()
            })
            .await
            .map_err(for_table);
        let deletion_protection = described.as_ref().map_err(Clone::clone).map(|out| {
            out.table()
                .and_then(|t| t.deletion_protection_enabled())
                .unwrap_or(false)
        });
        let pitr = self
            .api
            .call("DescribeContinuousBackups", || {
                self.client
                    .describe_continuous_backups()
                    .table_name(table)
                    .send()
            })
            .await
            .map_err(for_table)
            .map(|backups| {
                backups
                    .continuous_backups_description()
                    .and_then(|d| d.point_in_time_recovery_description())
                    .and_then(|p| p.point_in_time_recovery_status())
                    .is_some_and(|status| status.as_str() == "ENABLED")
            });
        let delete_policy = match described {
            Err(err) => Err(err),
            Ok(out) => match out.table().and_then(|t| t.table_arn()) {
                None => Err(AwsError::unexpected(
                    SERVICE,
                    "DescribeTable",
                    format!("no TableArn in the answer for state table {table}"),
                )),
                Some(arn) => self.delete_policy(arn).await.map_err(for_table),
            },
        };
        Protection {
            pitr,
            deletion_protection,
            delete_policy,
        }
    }

    /// The table's current stream, with its view type (`NEW_AND_OLD_IMAGES`, ...): none when
    /// the table has no stream enabled.
    pub async fn stream_of(&self, table: &str) -> Result<Option<(String, String)>, AwsError> {
        let out = self
            .api
            .call("DescribeTable", || {
                self.client.describe_table().table_name(table).send()
            })
            .await
            .map_err(|mut err| {
                err.message = format!("{} (for state table {table})", err.message);
                err
            })?;
        let Some(description) = out.table() else {
            return Ok(None);
        };
        let specification = description.stream_specification();
        let enabled = specification.is_some_and(|s| s.stream_enabled());
        let view_type = specification
            .and_then(|s| s.stream_view_type())
            .map(|v| v.as_str().to_string())
            .unwrap_or_default();
        Ok(description
            .latest_stream_arn()
            .filter(|_| enabled)
            .map(|arn| (arn.to_string(), view_type)))
    }

    /// What the resource policy of the table `arn` does about deletes; a table without one is
    /// [`DeletePolicy::NoPolicy`], not an error.
    async fn delete_policy(&self, arn: &str) -> Result<DeletePolicy, AwsError> {
        const OP: &str = "GetResourcePolicy";
        match self
            .api
            .call(OP, || {
                self.client.get_resource_policy().resource_arn(arn).send()
            })
            .await
        {
            Ok(out) => Ok(match out.policy() {
                Some(policy) => judge_delete_policy(policy, arn),
                None => DeletePolicy::NoPolicy,
            }),
            Err(err) if err.code.as_deref() == Some(POLICY_NOT_FOUND) => Ok(DeletePolicy::NoPolicy),
            Err(err) => Err(err),
        }
    }

    /// One item by its string partition key, read consistently; `None` when there is none.
    pub async fn get(
        &self,
        table: &str,
        key_name: &str,
        key: &str,
    ) -> Result<Option<Item>, AwsError> {
        const OP: &str = "GetItem";
        let out = self
            .api
            .call(OP, || {
                self.client
                    .get_item()
                    .table_name(table)
                    .key(key_name, AttributeValue::S(key.to_string()))
                    .consistent_read(true)
                    .send()
            })
            .await?;
        out.item()
            .map(from_sdk_item)
            .transpose()
            .map_err(|message| {
                AwsError::unexpected(SERVICE, OP, format!("table {table}: {message}"))
            })
    }

    /// Deletes one item by its string partition key, only if `condition` holds (a failed
    /// condition is an error whose [`AwsError::is_condition_failed`] is true). Only the lease
    /// table's replica items are ever deleted (docs/leader-election.md#sharing).
    pub async fn delete(
        &self,
        table: &str,
        key_name: &str,
        key: &str,
        condition: &Condition,
    ) -> Result<(), AwsError> {
        self.api
            .call("DeleteItem", || {
                self.client
                    .delete_item()
                    .table_name(table)
                    .key(key_name, AttributeValue::S(key.to_string()))
                    .condition_expression(&condition.expression)
                    .set_expression_attribute_names(condition.sdk_names())
                    .set_expression_attribute_values(condition.sdk_values())
                    .send()
            })
            .await
            .map(|_| ())
    }
}

/// A condition on a write: an expression with its attribute names and values.
#[derive(Debug, Clone, Default)]
pub struct Condition {
    pub expression: String,
    pub names: Vec<(String, String)>,
    pub values: Vec<(String, AttrValue)>,
}

impl Condition {
    /// The expression's attribute names as the SDK takes them; `None` when there are none
    /// (DynamoDB refuses an empty map).
    fn sdk_names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.iter().cloned().collect())
    }

    /// The expression's values as the SDK takes them; `None` when there are none.
    fn sdk_values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| {
            self.values
                .iter()
                .map(|(name, value)| (name.clone(), to_sdk(value)))
                .collect()
        })
    }
}

/// A condition on another item that a write needs to hold ([`Dynamo::put_checked`]).
#[derive(Debug, Clone)]
pub struct ItemCheck<'a> {
    pub table: &'a str,
    pub key_name: &'a str,
    pub key: &'a str,
    pub condition: Condition,
}

/// The code of a failed write condition.
pub const CONDITION_FAILED: &str = "ConditionalCheckFailedException";
/// A transaction item's cancellation code when its condition failed.
const CHECK_FAILED_CODE: &str = "ConditionalCheckFailed";
const TRANSACT: &str = "TransactWriteItems";

/// What happened to one item of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    Written,
    /// Its condition failed: someone else wrote the item.
    ConditionFailed,
    /// The transaction was cancelled for another item, or for a conflict or throttle of its
    /// own that may pass: not written, try again.
    Retry,
    /// The item itself was refused (`ValidationError`, `ItemCollectionSizeLimitExceeded`,
    /// ...), with the code and message: asking again would be refused again.
    Refused(String),
}

/// Cancellation codes of an item that may pass if the item is sent again.
const TRANSIENT_CANCELLATIONS: &[&str] = &[
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
];

/// One item's outcome in a cancelled transaction, from its cancellation code.
fn item_outcome(code: Option<&str>, message: Option<&str>) -> PutOutcome {
    match code {
        None | Some("None") | Some("") => PutOutcome::Retry,
        Some(CHECK_FAILED_CODE) => PutOutcome::ConditionFailed,
        Some(code) if TRANSIENT_CANCELLATIONS.contains(&code) => PutOutcome::Retry,
        Some(code) => PutOutcome::Refused(match message {
            Some(message) if !message.is_empty() => format!("{code}: {message}"),
            _ => code.to_string(),
        }),
    }
}

/// A fresh `ClientRequestToken` (at most 36 characters, as DynamoDB allows).
pub fn new_request_token() -> String {
    format!("lbrecon-{:028x}", rand::random::<u128>() >> 16)
}

/// The code `GetResourcePolicy` answers for a table without a resource policy.
const POLICY_NOT_FOUND: &str = "PolicyNotFoundException";

/// A table's protection, each part read on its own: an error is a part that could not be read,
/// which is unknown, never off (docs/architecture.md#guard).
#[derive(Debug, Clone)]
pub struct Protection {
    /// Point-in-time recovery is enabled.
    pub pitr: Result<bool, AwsError>,
    /// Deletion protection is on.
    pub deletion_protection: Result<bool, AwsError>,
    /// What the table's resource policy does about deletes.
    pub delete_policy: Result<DeletePolicy, AwsError>,
}

/// One protection as read: whether it is in force, with a line saying what was found, or the
/// error that left it unknown.
pub type Reading<'a> = Result<(bool, String), &'a AwsError>;

impl Protection {
    /// Each kind by its metric label (`pitr`, `deletion_protection`, `delete_policy`).
    pub fn kinds(&self) -> [(&'static str, Reading<'_>); 3] {
        [
            (
                "pitr",
                self.pitr
                    .as_ref()
                    .map(|&on| (on, "point-in-time recovery is disabled".to_string())),
            ),
            (
                "deletion_protection",
                self.deletion_protection
                    .as_ref()
                    .map(|&on| (on, "deletion protection is off".to_string())),
            ),
            (
                "delete_policy",
                self.delete_policy
                    .as_ref()
                    .map(|policy| (policy.in_force(), policy.describe())),
            ),
        ]
    }
}

crate::aws::attribute_conversion!(from_sdk_item, from_sdk);

/// Converts plain data into an SDK attribute value, for writes.
pub fn to_sdk(value: &AttrValue) -> AttributeValue {
    match value {
        AttrValue::S(s) => AttributeValue::S(s.clone()),
        AttrValue::N(n) => AttributeValue::N(n.clone()),
        AttrValue::B(b) => AttributeValue::B(Blob::new(b.clone())),
        AttrValue::Bool(b) => AttributeValue::Bool(*b),
        AttrValue::Null(n) => AttributeValue::Null(*n),
        AttrValue::M(map) => AttributeValue::M(
            map.iter()
                .map(|(key, value)| (key.clone(), to_sdk(value)))
                .collect(),
        ),
        AttrValue::L(list) => AttributeValue::L(list.iter().map(to_sdk).collect()),
        AttrValue::Ss(list) => AttributeValue::Ss(list.clone()),
        AttrValue::Ns(list) => AttributeValue::Ns(list.clone()),
        AttrValue::Bs(list) => {
            AttributeValue::Bs(list.iter().map(|b| Blob::new(b.clone())).collect())
        }
    }
}

/// Converts a plain item into an SDK item, for writes.
pub fn to_sdk_item(item: &Item) -> HashMap<String, AttributeValue> {
    item.iter()
        .map(|(key, value)| (key.clone(), to_sdk(value)))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn cancellation_codes_say_whether_an_item_is_tried_again() {
        assert_eq!(item_outcome(None, None), PutOutcome::Retry);
        assert_eq!(item_outcome(Some("None"), None), PutOutcome::Retry);
        assert_eq!(
            item_outcome(
                Some("ConditionalCheckFailed"),
                Some("The conditional request failed")
            ),
            PutOutcome::ConditionFailed
        );
        assert_eq!(
            item_outcome(Some("TransactionConflict"), None),
            PutOutcome::Retry
        );
        assert_eq!(
            item_outcome(
                Some("ValidationError"),
                Some("Item size has exceeded the maximum allowed size")
            ),
            PutOutcome::Refused(
                "ValidationError: Item size has exceeded the maximum allowed size".into()
            )
        );
    }

    #[test]
    fn request_tokens_fit_and_differ() {
        let (a, b) = (new_request_token(), new_request_token());
        assert!(a.len() <= 36 && a.starts_with("lbrecon-"), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn every_type_round_trips() {
        let item: Item = BTreeMap::from([
            ("s".to_string(), AttrValue::S("x".into())),
            ("n".to_string(), AttrValue::N("1.50".into())),
            ("b".to_string(), AttrValue::B(vec![0, 1])),
            ("bool".to_string(), AttrValue::Bool(true)),
            ("null".to_string(), AttrValue::Null(true)),
            (
                "m".to_string(),
                AttrValue::M(BTreeMap::from([(
                    "l".to_string(),
                    AttrValue::L(vec![AttrValue::Ss(vec!["a".into()])]),
                )])),
            ),
            ("ns".to_string(), AttrValue::Ns(vec!["1".into()])),
            ("bs".to_string(), AttrValue::Bs(vec![vec![9]])),
        ]);
        assert_eq!(from_sdk_item(&to_sdk_item(&item)).unwrap(), item);
    }
}
