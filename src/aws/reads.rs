//! The reads the layers above make at the edge, as small traits: the ELBv2 Describe calls of
//! the presence pass and the deep reads ([`ElbReads`]), and the scan of a table
//! ([`TableScans`]). [`Elb`] and [`Dynamo`] answer them by their own methods; a test answers
//! them from memory, so what reads them (the reader, the cycle) is tested without an endpoint.
//!
//! Each method returns a future that is `Send`, so a caller generic over these traits can
//! still be spawned.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use serde_json::Value;

use super::AwsError;
use super::dynamodb::Dynamo;
use super::elb::Elb;
use crate::model::item::Item;
use crate::model::live::{LiveListener, LiveLoadBalancer, LiveRule, LiveTargetGroup};
use crate::model::node::Node;

/// Requests a client sent, per operation: (calls, retries).
pub type Calls = BTreeMap<&'static str, (u64, u64)>;

/// The ELBv2 reads of one target, as [`Elb`] makes them (see its methods for each one's call
/// and answer).
pub trait ElbReads: Send + Sync {
    /// Every load balancer, all pages of `DescribeLoadBalancers`.
    fn load_balancers(
        &self,
    ) -> impl Future<Output = Result<Vec<LiveLoadBalancer>, AwsError>> + Send;

    /// Every target group, all pages of `DescribeTargetGroups`.
    fn target_groups(&self) -> impl Future<Output = Result<Vec<LiveTargetGroup>, AwsError>> + Send;

    /// The listeners of one load balancer.
    fn listeners(
        &self,
        load_balancer_arn: &str,
    ) -> impl Future<Output = Result<Vec<LiveListener>, AwsError>> + Send;

    /// The rules of one listener, its default rule included (flagged).
    fn rules(
        &self,
        listener_arn: &str,
    ) -> impl Future<Output = Result<Vec<LiveRule>, AwsError>> + Send;

    /// A listener's non-default certificates.
    fn additional_certificates(
        &self,
        listener_arn: &str,
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;

    /// A load balancer's attributes.
    fn load_balancer_attributes(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<Node, AwsError>> + Send;

    /// A target group's attributes.
    fn target_group_attributes(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<Node, AwsError>> + Send;

    /// The tags of up to [`super::elb::TAGS_PER_CALL`] resources in one `DescribeTags` call,
    /// by ARN; `again`: the call narrows an earlier one that answered NotFound.
    fn tags(
        &self,
        arns: &[String],
        again: bool,
    ) -> impl Future<Output = Result<BTreeMap<String, Node>, AwsError>> + Send;

    /// The targets registered in a target group, as `{id, port}`.
    fn targets(
        &self,
        target_group_arn: &str,
    ) -> impl Future<Output = Result<Vec<Value>, AwsError>> + Send;

    /// Which of `names` are live load balancers now (`DescribeLoadBalancers` by name).
    fn live_names(
        &self,
        names: &[String],
    ) -> impl Future<Output = Result<BTreeSet<String>, AwsError>> + Send;

    /// Requests sent, per operation.
    fn calls(&self) -> Calls;
}

/// The scan of a table, as [`Dynamo`] makes it.
pub trait TableScans: Send + Sync {
    /// Every item of `table`, a table playing role `role` (as errors name it: "state table"):
    /// a full consistent scan, each item handed to `each` as its page arrives. A table that
    /// does not exist is an error of class `NotFound`.
    fn scan_table<T: Send>(
        &self,
        role: &str,
        table: &str,
        each: impl FnMut(Item) -> T + Send,
    ) -> impl Future<Output = Result<Vec<T>, AwsError>> + Send;

    /// [`TableScans::scan_table`] of the state table.
    fn scan<T: Send>(
        &self,
        table: &str,
        each: impl FnMut(Item) -> T + Send,
    ) -> impl Future<Output = Result<Vec<T>, AwsError>> + Send {
        self.scan_table("state table", table, each)
    }

    /// Requests sent, per operation.
    fn calls(&self) -> Calls;
}

impl ElbReads for Elb {
    fn load_balancers(
        &self,
    ) -> impl Future<Output = Result<Vec<LiveLoadBalancer>, AwsError>> + Send {
        Elb::load_balancers(self)
    }

    fn target_groups(&self) -> impl Future<Output = Result<Vec<LiveTargetGroup>, AwsError>> + Send {
        Elb::target_groups(self)
    }

    fn listeners(
        &self,
        load_balancer_arn: &str,
    ) -> impl Future<Output = Result<Vec<LiveListener>, AwsError>> + Send {
        Elb::listeners(self, load_balancer_arn)
    }

    fn rules(
        &self,
        listener_arn: &str,
    ) -> impl Future<Output = Result<Vec<LiveRule>, AwsError>> + Send {
        Elb::rules(self, listener_arn)
    }

    fn additional_certificates(
        &self,
        listener_arn: &str,
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send {
        Elb::additional_certificates(self, listener_arn)
    }

    fn load_balancer_attributes(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<Node, AwsError>> + Send {
        Elb::load_balancer_attributes(self, arn)
    }

    fn target_group_attributes(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<Node, AwsError>> + Send {
        Elb::target_group_attributes(self, arn)
    }

    fn tags(
        &self,
        arns: &[String],
        again: bool,
    ) -> impl Future<Output = Result<BTreeMap<String, Node>, AwsError>> + Send {
        Elb::tags(self, arns, again)
    }

    fn targets(
        &self,
        target_group_arn: &str,
    ) -> impl Future<Output = Result<Vec<Value>, AwsError>> + Send {
        Elb::targets(self, target_group_arn)
    }

    fn live_names(
        &self,
        names: &[String],
    ) -> impl Future<Output = Result<BTreeSet<String>, AwsError>> + Send {
        Elb::live_names(self, names)
    }

    fn calls(&self) -> Calls {
        Elb::calls(self)
    }
}

impl TableScans for Dynamo {
    fn scan_table<T: Send>(
        &self,
        role: &str,
        table: &str,
        each: impl FnMut(Item) -> T + Send,
    ) -> impl Future<Output = Result<Vec<T>, AwsError>> + Send {
        Dynamo::scan_table(self, role, table, each)
    }

    fn calls(&self) -> Calls {
        Dynamo::calls(self)
    }
}
