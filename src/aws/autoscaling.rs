//! Auto Scaling: finding the groups behind target groups, suspending and resuming processes.

use std::collections::BTreeSet;

use aws_sdk_autoscaling as autoscaling;

use super::pages::{all_pages, token};
use super::{Api, AwsError};

const SERVICE: &str = "autoscaling";
/// The largest page `DescribeAutoScalingGroups` returns.
const PAGE_SIZE: i32 = 100;

/// One Auto Scaling group, as the pauser needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingGroup {
    pub name: String,
    pub target_group_arns: BTreeSet<String>,
    /// Processes suspended now.
    pub suspended: BTreeSet<String>,
}

/// An Auto Scaling client that answers in plain data.
#[derive(Debug, Clone)]
pub struct AutoScaling {
    client: autoscaling::Client,
    api: Api,
}

impl AutoScaling {
    /// Sends nothing while `gate` is closed.
    pub fn set_gate(&mut self, gate: std::sync::Arc<crate::aws::gate::Gate>) {
        self.api.set_gate(gate);
    }

    pub fn new(config: &aws_config::SdkConfig, api: Api) -> Self {
        let config = autoscaling::config::Builder::from(config).build();
        AutoScaling {
            client: autoscaling::Client::from_conf(config),
            api,
        }
    }

    /// Every group of the account and region, all pages.
    pub async fn groups(&self) -> Result<Vec<ScalingGroup>, AwsError> {
        const OP: &str = "DescribeAutoScalingGroups";
        all_pages(SERVICE, OP, |next_token: Option<String>| async move {
            let out = self
                .api
                .call(OP, || {
                    self.client
                        .describe_auto_scaling_groups()
                        .max_records(PAGE_SIZE)
                        .set_next_token(next_token.clone())
                        .send()
                })
                .await?;
            let groups = out
                .auto_scaling_groups()
                .iter()
                .filter_map(|group| {
                    Some(ScalingGroup {
                        name: group.auto_scaling_group_name()?.to_string(),
                        target_group_arns: group.target_group_arns().iter().cloned().collect(),
                        suspended: group
                            .suspended_processes()
                            .iter()
                            .filter_map(|process| process.process_name().map(str::to_string))
                            .collect(),
                    })
                })
                .collect();
            Ok((groups, token(out.next_token())))
        })
        .await
    }

    /// Suspends `processes` on group `name`.
    pub async fn suspend(&self, name: &str, processes: &BTreeSet<String>) -> Result<(), AwsError> {
        self.api
            .call("SuspendProcesses", || {
                self.client
                    .suspend_processes()
                    .auto_scaling_group_name(name)
                    .set_scaling_processes(Some(processes.iter().cloned().collect()))
                    .send()
            })
            .await
            .map(|_| ())
    }

    /// Resumes `processes` on group `name`.
    pub async fn resume(&self, name: &str, processes: &BTreeSet<String>) -> Result<(), AwsError> {
        self.api
            .call("ResumeProcesses", || {
                self.client
                    .resume_processes()
                    .auto_scaling_group_name(name)
                    .set_scaling_processes(Some(processes.iter().cloned().collect()))
                    .send()
            })
            .await
            .map(|_| ())
    }
}
