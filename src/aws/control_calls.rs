//! The calls the guard's effects make at the edge, as small traits: the control table's reads
//! and writes ([`ControlTableCalls`]) and the Auto Scaling calls of the pausers
//! ([`AutoScalingCalls`]). [`Dynamo`] and [`AutoScaling`] implement them by delegating to their
//! own methods; the code above is generic over them, so its effects can be tested against an
//! in-memory table and groups.
//!
//! Every method returns a `Send` future, so a generic caller's future is `Send` too (the daemon
//! spawns it).

use std::collections::BTreeSet;
use std::future::Future;

use super::AwsError;
use super::autoscaling::{AutoScaling, ScalingGroup};
use super::dynamodb::{Condition, Dynamo, ItemCheck};
use crate::model::item::Item;

/// The DynamoDB calls made on the control table: [`Dynamo::get`], [`Dynamo::put`] and
/// [`Dynamo::put_checked`], with the same meaning (a failed condition is an error whose
/// [`AwsError::is_condition_failed`] is true, a missing table one whose
/// [`AwsError::is_not_found`] is).
pub trait ControlTableCalls: Sync {
    /// One item by its string partition key, read consistently; `None` when there is none.
    fn get(
        &self,
        table: &str,
        key_name: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Item>, AwsError>> + Send;

    /// Writes `item`, under `condition` when there is one.
    fn put(
        &self,
        table: &str,
        item: &Item,
        condition: Option<&Condition>,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// Writes `item` under `condition` only if `check` holds too, in one transaction.
    fn put_checked(
        &self,
        table: &str,
        item: &Item,
        condition: Option<&Condition>,
        check: &ItemCheck<'_>,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
}

impl ControlTableCalls for Dynamo {
    fn get(
        &self,
        table: &str,
        key_name: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Item>, AwsError>> + Send {
        Dynamo::get(self, table, key_name, key)
    }

    fn put(
        &self,
        table: &str,
        item: &Item,
        condition: Option<&Condition>,
    ) -> impl Future<Output = Result<(), AwsError>> + Send {
        Dynamo::put(self, table, item, condition)
    }

    fn put_checked(
        &self,
        table: &str,
        item: &Item,
        condition: Option<&Condition>,
        check: &ItemCheck<'_>,
    ) -> impl Future<Output = Result<(), AwsError>> + Send {
        Dynamo::put_checked(self, table, item, condition, check)
    }
}

/// The Auto Scaling calls of the pausers: [`AutoScaling::groups`], [`AutoScaling::suspend`]
/// and [`AutoScaling::resume`].
pub trait AutoScalingCalls: Sync {
    /// Every group of the account and region.
    fn groups(&self) -> impl Future<Output = Result<Vec<ScalingGroup>, AwsError>> + Send;

    /// Suspends `processes` on group `name`.
    fn suspend(
        &self,
        name: &str,
        processes: &BTreeSet<String>,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// Resumes `processes` on group `name`.
    fn resume(
        &self,
        name: &str,
        processes: &BTreeSet<String>,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
}

impl AutoScalingCalls for AutoScaling {
    fn groups(&self) -> impl Future<Output = Result<Vec<ScalingGroup>, AwsError>> + Send {
        AutoScaling::groups(self)
    }

    fn suspend(
        &self,
        name: &str,
        processes: &BTreeSet<String>,
    ) -> impl Future<Output = Result<(), AwsError>> + Send {
        AutoScaling::suspend(self, name, processes)
    }

    fn resume(
        &self,
        name: &str,
        processes: &BTreeSet<String>,
    ) -> impl Future<Output = Result<(), AwsError>> + Send {
        AutoScaling::resume(self, name, processes)
    }
}
