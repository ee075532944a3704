//! The ELBv2 reader: every Describe call lbrecon makes, with pagination and batching done
//! here, answers mapped into [`crate::model::live`] types.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_elasticloadbalancingv2 as elbv2;
use elbv2::types::{Action, Listener, LoadBalancer, Rule, RuleCondition, TargetGroup};
use serde_json::{Map, Value, json};

use super::pages::{all_pages, token};
use super::{Api, AwsError};
use crate::model::live::{LiveListener, LiveLoadBalancer, LiveRule, LiveTargetGroup};
use crate::model::node::{self, Node};

/// The largest page the Describe calls accept.
pub const PAGE_SIZE: i32 = 400;
/// The most resources one `DescribeTags` call accepts.
pub const TAGS_PER_CALL: usize = 20;
const SERVICE: &str = "elasticloadbalancing";

pub use crate::model::schema::ATTRIBUTE_KEYS;

/// What `DescribeTags` said of one resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Tagged<T> {
    /// Its tags (a map).
    Tags(T),
    /// It does not exist any more: deleted since the presence pass listed it.
    Gone,
}

/// The answer for one ARN of a `DescribeTags` batch.
pub(crate) type TagAnswer<T> = (String, Result<Tagged<T>, AwsError>);

/// Asks `ask` for the tags of `arns` (one batch) and narrows a NotFound answer until the gone
/// ARNs are known and the others are read (docs/architecture.md#terms).
///
/// AWS fails a whole `DescribeTags` call with `LoadBalancerNotFound` or `TargetGroupNotFound`
/// when any one of its ARNs is gone, so one deleted resource would otherwise fail its 19
/// neighbours. The ARNs the error message names are taken as gone and the rest asked again; a
/// message that names none of them is narrowed by halves. `ask` gets the ARNs and whether the
/// call asks again (counted as a retry, apart from the full read's calls). A resource the
/// answer leaves out has no tags.
pub async fn narrow_tags<T, F, Fut>(arns: Vec<String>, mut ask: F) -> Vec<TagAnswer<T>>
where
    T: Default,
    F: FnMut(Vec<String>, bool) -> Fut,
    Fut: std::future::Future<Output = Result<BTreeMap<String, T>, AwsError>>,
{
    let mut answers = Vec::with_capacity(arns.len());
    let mut queue: Vec<(Vec<String>, bool)> = vec![(arns, false)];
    while let Some((batch, again)) = queue.pop() {
        if batch.is_empty() {
            continue;
        }
        match ask(batch.clone(), again).await {
            Ok(mut found) => answers.extend(batch.into_iter().map(|arn| {
                let tags = found.remove(&arn).unwrap_or_default();
                (arn, Ok(Tagged::Tags(tags)))
            })),
            Err(err) if err.is_not_found() && batch.len() == 1 => {
                answers.extend(batch.into_iter().map(|arn| (arn, Ok(Tagged::Gone))));
            }
            Err(err) if err.is_not_found() => {
                let (named, rest): (Vec<String>, Vec<String>) = batch
                    .into_iter()
                    .partition(|arn| names_arn(&err.message, arn));
                if named.is_empty() {
                    let mut first = rest;
                    let second = first.split_off(first.len() / 2);
                    queue.push((second, true));
                    queue.push((first, true));
                } else {
                    answers.extend(named.into_iter().map(|arn| (arn, Ok(Tagged::Gone))));
                    queue.push((rest, true));
                }
            }
            Err(err) => answers.extend(batch.into_iter().map(|arn| (arn, Err(err.clone())))),
        }
    }
    answers
}

/// Whether `message` names `arn` (or a load balancer's name) whole: not as the start or the end
/// of a longer ARN or name.
pub(crate) fn names_arn(message: &str, arn: &str) -> bool {
    let after = |c: char| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_');
    let before = |c: char| after(c) || c == ':';
    message.match_indices(arn).any(|(at, _)| {
        !message[at + arn.len()..].starts_with(after) && !message[..at].ends_with(before)
    })
}

/// An ELBv2 client that answers in plain data.
#[derive(Debug, Clone)]
pub struct Elb {
    client: elbv2::Client,
    api: Api,
}

/// Every entry of a presence page, or an error when one lacks its name or ARN: a page read in
/// part is never taken for the whole (a load balancer dropped would look deleted).
fn every<T>(
    entries: impl Iterator<Item = Option<T>>,
    operation: &'static str,
) -> Result<Vec<T>, AwsError> {
    entries.collect::<Option<Vec<T>>>().ok_or_else(|| {
        AwsError::unexpected(
            SERVICE,
            operation,
            "an entry of the answer has no name or ARN: not a whole list".into(),
        )
    })
}

impl Elb {
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

    pub fn new(config: &aws_config::SdkConfig, api: Api) -> Self {
        let config = elbv2::config::Builder::from(config).build();
        Elb {
            client: elbv2::Client::from_conf(config),
            api,
        }
    }

    /// Every load balancer, all pages of `DescribeLoadBalancers`.
    pub async fn load_balancers(&self) -> Result<Vec<LiveLoadBalancer>, AwsError> {
        const OP: &str = "DescribeLoadBalancers";
        all_pages(SERVICE, OP, |marker| async move {
            let out = self
                .api
                .call(OP, || {
                    self.client
                        .describe_load_balancers()
                        .page_size(PAGE_SIZE)
                        .set_marker(marker.clone())
                        .send()
                })
                .await?;
            let items = every(out.load_balancers().iter().map(load_balancer), OP)?;
            Ok((items, token(out.next_marker())))
        })
        .await
    }

    /// Every target group, all pages of `DescribeTargetGroups`.
    pub async fn target_groups(&self) -> Result<Vec<LiveTargetGroup>, AwsError> {
        const OP: &str = "DescribeTargetGroups";
        all_pages(SERVICE, OP, |marker| async move {
            let out = self
                .api
                .call(OP, || {
                    self.client
                        .describe_target_groups()
                        .page_size(PAGE_SIZE)
                        .set_marker(marker.clone())
                        .send()
                })
                .await?;
            let items = every(out.target_groups().iter().map(target_group), OP)?;
            Ok((items, token(out.next_marker())))
        })
        .await
    }

    /// The listeners of one load balancer.
    pub async fn listeners(&self, load_balancer_arn: &str) -> Result<Vec<LiveListener>, AwsError> {
        const OP: &str = "DescribeListeners";
        all_pages(SERVICE, OP, |marker| async move {
            let out = self
                .api
                .call(OP, || {
                    self.client
                        .describe_listeners()
                        .load_balancer_arn(load_balancer_arn)
                        .page_size(PAGE_SIZE)
                        .set_marker(marker.clone())
                        .send()
                })
                .await?;
            let items = out.listeners().iter().filter_map(listener).collect();
            Ok((items, token(out.next_marker())))
        })
        .await
    }

    /// The rules of one listener, its default rule included (flagged).
    pub async fn rules(&self, listener_arn: &str) -> Result<Vec<LiveRule>, AwsError> {
        const OP: &str = "DescribeRules";
        all_pages(SERVICE, OP, |marker| async move {
            let out = self
                .api
                .call(OP, || {
                    self.client
                        .describe_rules()
                        .listener_arn(listener_arn)
                        .page_size(PAGE_SIZE)
                        .set_marker(marker.clone())
                        .send()
                })
                .await?;
            let items = out.rules().iter().map(rule).collect();
            Ok((items, token(out.next_marker())))
        })
        .await
    }

    /// A listener's non-default certificates.
    pub async fn additional_certificates(
        &self,
        listener_arn: &str,
    ) -> Result<Vec<String>, AwsError> {
        const OP: &str = "DescribeListenerCertificates";
        all_pages(SERVICE, OP, |marker| async move {
            let out = self
                .api
                .call(OP, || {
                    self.client
                        .describe_listener_certificates()
                        .listener_arn(listener_arn)
                        .page_size(PAGE_SIZE)
                        .set_marker(marker.clone())
                        .send()
                })
                .await?;
            let items = out
                .certificates()
                .iter()
                .filter(|cert| !cert.is_default().unwrap_or(false))
                .filter_map(|cert| cert.certificate_arn().map(str::to_string))
                .collect();
            Ok((items, token(out.next_marker())))
        })
        .await
    }

    /// A load balancer's attributes.
    pub async fn load_balancer_attributes(&self, arn: &str) -> Result<Node, AwsError> {
        let out = self
            .api
            .call("DescribeLoadBalancerAttributes", || {
                self.client
                    .describe_load_balancer_attributes()
                    .load_balancer_arn(arn)
                    .send()
            })
            .await?;
        Ok(node::string_map(
            out.attributes()
                .iter()
                .filter_map(|a| Some((a.key()?, a.value().unwrap_or("")))),
            ATTRIBUTE_KEYS,
        ))
    }

    /// A target group's attributes.
    pub async fn target_group_attributes(&self, arn: &str) -> Result<Node, AwsError> {
        let out = self
            .api
            .call("DescribeTargetGroupAttributes", || {
                self.client
                    .describe_target_group_attributes()
                    .target_group_arn(arn)
                    .send()
            })
            .await?;
        Ok(node::string_map(
            out.attributes()
                .iter()
                .filter_map(|a| Some((a.key()?, a.value().unwrap_or("")))),
            ATTRIBUTE_KEYS,
        ))
    }

    /// The tags of up to [`TAGS_PER_CALL`] resources in one `DescribeTags` call, by ARN.
    /// `again`: the call narrows an earlier one that answered NotFound, and is counted as a
    /// retry. AWS fails the whole call when one ARN of it is gone
    /// ([`narrow_tags`] finds which).
    pub async fn tags(
        &self,
        arns: &[String],
        again: bool,
    ) -> Result<BTreeMap<String, Node>, AwsError> {
        const OP: &str = "DescribeTags";
        if arns.len() > TAGS_PER_CALL {
            return Err(AwsError::unexpected(
                SERVICE,
                OP,
                format!(
                    "{} resources in one call; the API takes at most {TAGS_PER_CALL}",
                    arns.len()
                ),
            ));
        }
        let request = || {
            self.client
                .describe_tags()
                .set_resource_arns(Some(arns.to_vec()))
                .send()
        };
        let out = if again {
            self.api.call_again(OP, request).await?
        } else {
            self.api.call(OP, request).await?
        };
        let mut tags = BTreeMap::new();
        for description in out.tag_descriptions() {
            let Some(arn) = description.resource_arn() else {
                continue;
            };
            let map = node::string_map(
                description
                    .tags()
                    .iter()
                    .filter_map(|tag| Some((tag.key()?, tag.value().unwrap_or("")))),
                &[],
            );
            tags.insert(arn.to_string(), map);
        }
        Ok(tags)
    }

    /// Which of `names` are live load balancers now: `DescribeLoadBalancers` by name, 20 names
    /// a call (a presence request: ahead of every deep read). AWS fails the whole call with
    /// `LoadBalancerNotFound` when one name of it is gone; [`narrow_tags`] finds which.
    pub async fn live_names(&self, names: &[String]) -> Result<BTreeSet<String>, AwsError> {
        const OP: &str = "DescribeLoadBalancers";
        let mut live = BTreeSet::new();
        for batch in names.chunks(TAGS_PER_CALL) {
            let answers = narrow_tags(batch.to_vec(), |names: Vec<String>, again| async move {
                let request = || {
                    self.client
                        .describe_load_balancers()
                        .set_names(Some(names.clone()))
                        .send()
                };
                let out = if again {
                    self.api.call_again(OP, request).await?
                } else {
                    self.api.call(OP, request).await?
                };
                Ok(out
                    .load_balancers()
                    .iter()
                    .filter_map(|lb| lb.load_balancer_name())
                    .map(|name| (name.to_string(), true))
                    .collect::<BTreeMap<String, bool>>())
            })
            .await;
            for (name, answer) in answers {
                match answer? {
                    Tagged::Tags(true) => {
                        live.insert(name);
                    }
                    Tagged::Tags(false) | Tagged::Gone => {}
                }
            }
        }
        Ok(live)
    }

    /// The targets registered in a target group, as `{id, port}`.
    pub async fn targets(&self, target_group_arn: &str) -> Result<Vec<Value>, AwsError> {
        let out = self
            .api
            .call("DescribeTargetHealth", || {
                self.client
                    .describe_target_health()
                    .target_group_arn(target_group_arn)
                    .send()
            })
            .await?;
        Ok(out
            .target_health_descriptions()
            .iter()
            .filter_map(|description| {
                let target = description.target()?;
                let mut map = Map::new();
                map.insert("id".into(), json!(target.id()?));
                if let Some(port) = target.port() {
                    map.insert("port".into(), json!(port));
                }
                Some(Value::Object(map))
            })
            .collect())
    }
}

fn insert_str(map: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(value) = value {
        map.insert(key.to_string(), Value::String(value.to_string()));
    }
}

fn insert_num(map: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(value) = value {
        map.insert(key.to_string(), value.into());
    }
}

fn strings(values: &[String]) -> Value {
    Value::Array(values.iter().cloned().map(Value::String).collect())
}

/// Skips a load balancer without a name or ARN: nothing could identify it.
fn load_balancer(lb: &LoadBalancer) -> Option<LiveLoadBalancer> {
    let mut fields = Map::new();
    insert_str(&mut fields, "type", lb.r#type().map(|t| t.as_str()));
    insert_str(&mut fields, "scheme", lb.scheme().map(|s| s.as_str()));
    insert_str(
        &mut fields,
        "ip_address_type",
        lb.ip_address_type().map(|t| t.as_str()),
    );
    let subnets: Vec<String> = lb
        .availability_zones()
        .iter()
        .filter_map(|zone| zone.subnet_id().map(str::to_string))
        .collect();
    fields.insert("subnets".into(), strings(&subnets));
    fields.insert("security_groups".into(), strings(lb.security_groups()));
    Some(LiveLoadBalancer {
        arn: lb.load_balancer_arn()?.to_string(),
        name: lb.load_balancer_name()?.to_string(),
        created_time: lb.created_time().map(|time| time.secs()),
        fields: fields.into(),
    })
}

fn target_group(group: &TargetGroup) -> Option<LiveTargetGroup> {
    let mut fields = Map::new();
    insert_str(
        &mut fields,
        "protocol",
        group.protocol().map(|p| p.as_str()),
    );
    insert_str(&mut fields, "protocol_version", group.protocol_version());
    insert_num(&mut fields, "port", group.port());
    insert_str(
        &mut fields,
        "target_type",
        group.target_type().map(|t| t.as_str()),
    );
    insert_str(&mut fields, "vpc_id", group.vpc_id());
    let mut health = Map::new();
    if let Some(enabled) = group.health_check_enabled() {
        health.insert("enabled".into(), Value::Bool(enabled));
    }
    insert_str(
        &mut health,
        "protocol",
        group.health_check_protocol().map(|p| p.as_str()),
    );
    insert_str(&mut health, "port", group.health_check_port());
    insert_str(&mut health, "path", group.health_check_path());
    insert_num(
        &mut health,
        "interval_seconds",
        group.health_check_interval_seconds(),
    );
    insert_num(
        &mut health,
        "timeout_seconds",
        group.health_check_timeout_seconds(),
    );
    insert_num(
        &mut health,
        "healthy_threshold_count",
        group.healthy_threshold_count(),
    );
    insert_num(
        &mut health,
        "unhealthy_threshold_count",
        group.unhealthy_threshold_count(),
    );
    if let Some(matcher) = group.matcher() {
        let mut map = Map::new();
        insert_str(&mut map, "http_code", matcher.http_code());
        insert_str(&mut map, "grpc_code", matcher.grpc_code());
        health.insert("matcher".into(), Value::Object(map));
    }
    fields.insert("health_check".into(), Value::Object(health));
    Some(LiveTargetGroup {
        arn: group.target_group_arn()?.to_string(),
        name: group.target_group_name()?.to_string(),
        load_balancer_arns: group.load_balancer_arns().to_vec(),
        fields: fields.into(),
    })
}

fn listener(listener: &Listener) -> Option<LiveListener> {
    let mut fields = Map::new();
    insert_num(&mut fields, "port", listener.port());
    insert_str(
        &mut fields,
        "protocol",
        listener.protocol().map(|p| p.as_str()),
    );
    // A security policy applies to HTTPS and TLS listeners only; an answer that names one for
    // another protocol carries no meaning and is not compared.
    if matches!(
        listener.protocol().map(|p| p.as_str()),
        Some("HTTPS" | "TLS")
    ) {
        insert_str(&mut fields, "ssl_policy", listener.ssl_policy());
    }
    let certificates: Vec<String> = listener
        .certificates()
        .iter()
        .filter_map(|cert| cert.certificate_arn().map(str::to_string))
        .collect();
    fields.insert("certificates".into(), strings(&certificates));
    if !listener.alpn_policy().is_empty() {
        fields.insert("alpn_policy".into(), strings(listener.alpn_policy()));
    }
    fields.insert(
        "default_actions".into(),
        Value::Array(listener.default_actions().iter().map(action).collect()),
    );
    Some(LiveListener {
        arn: listener.listener_arn()?.to_string(),
        fields: fields.into(),
    })
}

fn rule(rule: &Rule) -> LiveRule {
    let is_default = rule.is_default().unwrap_or(false) || rule.priority() == Some("default");
    let mut fields = Map::new();
    if let Some(priority) = rule.priority().and_then(|p| p.parse::<i64>().ok()) {
        fields.insert("priority".into(), json!(priority));
    }
    fields.insert(
        "conditions".into(),
        Value::Array(rule.conditions().iter().map(condition).collect()),
    );
    fields.insert(
        "actions".into(),
        Value::Array(rule.actions().iter().map(action).collect()),
    );
    LiveRule {
        is_default,
        fields: fields.into(),
    }
}

/// An action as the document writes it, but with target groups still named by ARN
/// (`target_group_arn`), for [`crate::model::live::assemble`] to map to names.
fn action(action: &Action) -> Value {
    let mut map = Map::new();
    insert_str(&mut map, "type", action.r#type().map(|t| t.as_str()));
    insert_num(&mut map, "order", action.order());
    insert_str(&mut map, "target_group_arn", action.target_group_arn());
    if let Some(forward) = action.forward_config() {
        let groups: Vec<Value> = forward
            .target_groups()
            .iter()
            .map(|tuple| {
                let mut map = Map::new();
                insert_str(&mut map, "target_group_arn", tuple.target_group_arn());
                insert_num(&mut map, "weight", tuple.weight());
                Value::Object(map)
            })
            .collect();
        let mut config = Map::new();
        config.insert("target_groups".into(), Value::Array(groups));
        if let Some(stickiness) = forward.target_group_stickiness_config() {
            let mut map = Map::new();
            if let Some(enabled) = stickiness.enabled() {
                map.insert("enabled".into(), Value::Bool(enabled));
            }
            insert_num(&mut map, "duration_seconds", stickiness.duration_seconds());
            config.insert("target_group_stickiness_config".into(), Value::Object(map));
        }
        map.insert("forward_config".into(), Value::Object(config));
    }
    if let Some(redirect) = action.redirect_config() {
        let mut config = Map::new();
        insert_str(&mut config, "protocol", redirect.protocol());
        insert_str(&mut config, "port", redirect.port());
        insert_str(&mut config, "host", redirect.host());
        insert_str(&mut config, "path", redirect.path());
        insert_str(&mut config, "query", redirect.query());
        insert_str(
            &mut config,
            "status_code",
            redirect.status_code().map(|s| s.as_str()),
        );
        map.insert("redirect_config".into(), Value::Object(config));
    }
    if let Some(fixed) = action.fixed_response_config() {
        let mut config = Map::new();
        insert_str(&mut config, "message_body", fixed.message_body());
        insert_str(&mut config, "status_code", fixed.status_code());
        insert_str(&mut config, "content_type", fixed.content_type());
        map.insert("fixed_response_config".into(), Value::Object(config));
    }
    if let Some(oidc) = action.authenticate_oidc_config() {
        let mut config = Map::new();
        insert_str(&mut config, "issuer", oidc.issuer());
        insert_str(
            &mut config,
            "authorization_endpoint",
            oidc.authorization_endpoint(),
        );
        insert_str(&mut config, "token_endpoint", oidc.token_endpoint());
        insert_str(&mut config, "user_info_endpoint", oidc.user_info_endpoint());
        insert_str(&mut config, "client_id", oidc.client_id());
        insert_str(
            &mut config,
            "session_cookie_name",
            oidc.session_cookie_name(),
        );
        insert_str(&mut config, "scope", oidc.scope());
        insert_num(&mut config, "session_timeout", oidc.session_timeout());
        if let Some(params) = oidc.authentication_request_extra_params() {
            config.insert(
                "authentication_request_extra_params".into(),
                string_map(params),
            );
        }
        insert_str(
            &mut config,
            "on_unauthenticated_request",
            oidc.on_unauthenticated_request().map(|b| b.as_str()),
        );
        if let Some(existing) = oidc.use_existing_client_secret() {
            config.insert("use_existing_client_secret".into(), Value::Bool(existing));
        }
        map.insert("authenticate_oidc_config".into(), Value::Object(config));
    }
    if let Some(cognito) = action.authenticate_cognito_config() {
        let mut config = Map::new();
        insert_str(&mut config, "user_pool_arn", cognito.user_pool_arn());
        insert_str(
            &mut config,
            "user_pool_client_id",
            cognito.user_pool_client_id(),
        );
        insert_str(&mut config, "user_pool_domain", cognito.user_pool_domain());
        insert_str(
            &mut config,
            "session_cookie_name",
            cognito.session_cookie_name(),
        );
        insert_str(&mut config, "scope", cognito.scope());
        insert_num(&mut config, "session_timeout", cognito.session_timeout());
        if let Some(params) = cognito.authentication_request_extra_params() {
            config.insert(
                "authentication_request_extra_params".into(),
                string_map(params),
            );
        }
        insert_str(
            &mut config,
            "on_unauthenticated_request",
            cognito.on_unauthenticated_request().map(|b| b.as_str()),
        );
        map.insert("authenticate_cognito_config".into(), Value::Object(config));
    }
    Value::Object(map)
}

fn string_map(map: &std::collections::HashMap<String, String>) -> Value {
    Value::Object(
        map.iter()
            .map(|(key, value)| (key.clone(), Value::String(value.clone())))
            .collect(),
    )
}

fn values_block(values: &[String]) -> Value {
    json!({ "values": strings(values) })
}

/// A condition as the API gives it: `field`, the legacy `values` where present, and the
/// field's configuration block where present.
fn condition(condition: &RuleCondition) -> Value {
    let mut map = Map::new();
    insert_str(&mut map, "field", condition.field());
    if !condition.values().is_empty() {
        map.insert("values".into(), strings(condition.values()));
    }
    if let Some(config) = condition.host_header_config() {
        map.insert("host_header_config".into(), values_block(config.values()));
    }
    if let Some(config) = condition.path_pattern_config() {
        map.insert("path_pattern_config".into(), values_block(config.values()));
    }
    if let Some(config) = condition.http_header_config() {
        let mut block = Map::new();
        insert_str(&mut block, "http_header_name", config.http_header_name());
        block.insert("values".into(), strings(config.values()));
        map.insert("http_header_config".into(), Value::Object(block));
    }
    if let Some(config) = condition.query_string_config() {
        let pairs: Vec<Value> = config
            .values()
            .iter()
            .map(|pair| {
                let mut map = Map::new();
                insert_str(&mut map, "key", pair.key());
                insert_str(&mut map, "value", pair.value());
                Value::Object(map)
            })
            .collect();
        map.insert("query_string_config".into(), json!({ "values": pairs }));
    }
    if let Some(config) = condition.http_request_method_config() {
        map.insert(
            "http_request_method_config".into(),
            values_block(config.values()),
        );
    }
    if let Some(config) = condition.source_ip_config() {
        map.insert("source_ip_config".into(), values_block(config.values()));
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_names_a_load_balancer_only_whole() {
        let message = "Load balancers '[web-3, api]' not found";
        assert!(names_arn(message, "web-3"));
        assert!(names_arn(message, "api"));
        // Part of a longer name is not named, at either end.
        assert!(!names_arn(message, "web"));
        assert!(!names_arn(message, "eb-3"));
        assert!(!names_arn(
            "Load balancers '[prod-web-3]' not found",
            "web-3"
        ));
        let arn = "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/a/1";
        assert!(names_arn(&format!("'{arn}' not found"), arn));
        assert!(!names_arn(&format!("'{arn}0' not found"), arn));
    }

    #[tokio::test]
    async fn a_gone_name_never_makes_its_neighbours_look_gone() {
        let live: BTreeSet<String> = ["a", "c"].map(String::from).into();
        let asked = std::sync::Mutex::new(Vec::new());
        let answers = narrow_tags(
            vec!["a".to_string(), "b".to_string(), "c".to_string()],
            |names: Vec<String>, _again| {
                asked.lock().unwrap().push(names.clone());
                let live = live.clone();
                async move {
                    // As AWS answers: the whole call fails when one name is gone.
                    if names.iter().any(|name| !live.contains(name)) {
                        return Err(AwsError {
                            service: "elasticloadbalancing",
                            operation: "DescribeLoadBalancers",
                            class: crate::aws::ErrorClass::NotFound,
                            code: Some("LoadBalancerNotFound".into()),
                            message: "One or more load balancers not found".into(),
                        });
                    }
                    Ok(names.into_iter().map(|name| (name, true)).collect())
                }
            },
        )
        .await;
        let found: BTreeMap<String, bool> = answers
            .into_iter()
            .map(|(name, answer)| (name, matches!(answer, Ok(Tagged::Tags(true)))))
            .collect();
        assert!(found["a"] && !found["b"] && found["c"], "{found:?}");
    }
    use elbv2::types::{
        ActionTypeEnum, ForwardActionConfig, PathPatternConditionConfig, TargetGroupTuple,
    };

    /// The keys the schema gives the object field `name` of an action.
    fn schema_keys(name: &str) -> Vec<&'static str> {
        let shape = crate::model::schema::ACTION
            .iter()
            .find(|(field, _)| *field == name)
            .map(|(_, shape)| shape)
            .expect("an action field of the schema");
        let crate::model::schema::Shape::Object(fields) = shape else {
            panic!("{name} is an object in the schema");
        };
        let mut keys: Vec<&str> = fields.iter().map(|(key, _)| *key).collect();
        keys.sort();
        keys
    }

    fn mapped_keys(action: &Value, name: &str) -> Vec<String> {
        let mut keys: Vec<String> = action[name]
            .as_object()
            .unwrap_or_else(|| panic!("{name} mapped: {action}"))
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    }

    #[test]
    fn oidc_and_cognito_map_every_field_the_document_lists() {
        use elbv2::types::{
            AuthenticateCognitoActionConditionalBehaviorEnum, AuthenticateCognitoActionConfig,
            AuthenticateOidcActionConditionalBehaviorEnum, AuthenticateOidcActionConfig,
        };
        let extra = std::collections::HashMap::from([("prompt".to_string(), "login".to_string())]);
        let oidc = Action::builder()
            .r#type(ActionTypeEnum::AuthenticateOidc)
            .order(1)
            .authenticate_oidc_config(
                AuthenticateOidcActionConfig::builder()
                    .issuer("https://idp")
                    .authorization_endpoint("https://idp/authorize")
                    .token_endpoint("https://idp/token")
                    .user_info_endpoint("https://idp/userinfo")
                    .client_id("client")
                    .client_secret("secret")
                    .session_cookie_name("cookie")
                    .scope("openid")
                    .session_timeout(3600)
                    .set_authentication_request_extra_params(Some(extra.clone()))
                    .on_unauthenticated_request(
                        AuthenticateOidcActionConditionalBehaviorEnum::Authenticate,
                    )
                    .use_existing_client_secret(true)
                    .build(),
            )
            .build();
        let cognito = Action::builder()
            .r#type(ActionTypeEnum::AuthenticateCognito)
            .order(1)
            .authenticate_cognito_config(
                AuthenticateCognitoActionConfig::builder()
                    .user_pool_arn("arn:aws:cognito-idp:us-east-1:123456789012:userpool/p")
                    .user_pool_client_id("client")
                    .user_pool_domain("domain")
                    .session_cookie_name("cookie")
                    .scope("openid")
                    .session_timeout(3600)
                    .set_authentication_request_extra_params(Some(extra))
                    .on_unauthenticated_request(
                        AuthenticateCognitoActionConditionalBehaviorEnum::Deny,
                    )
                    .build(),
            )
            .build();
        // AWS never returns the client secret: every other field the document lists is mapped.
        let mut oidc_fields = schema_keys("authenticate_oidc_config");
        oidc_fields.retain(|key| *key != "client_secret");
        assert_eq!(
            mapped_keys(&action(&oidc), "authenticate_oidc_config"),
            oidc_fields
        );
        assert_eq!(
            mapped_keys(&action(&cognito), "authenticate_cognito_config"),
            schema_keys("authenticate_cognito_config")
        );
        assert_eq!(
            action(&oidc)["authenticate_oidc_config"]["on_unauthenticated_request"],
            json!("authenticate")
        );
    }

    #[test]
    fn a_page_entry_without_a_name_fails_the_page() {
        let whole = LoadBalancer::builder()
            .load_balancer_name("web")
            .load_balancer_arn(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/1",
            )
            .build();
        let nameless = LoadBalancer::builder()
            .load_balancer_arn(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/x/2",
            )
            .build();
        let page = [whole.clone(), nameless];
        let err = every(page.iter().map(load_balancer), "DescribeLoadBalancers").unwrap_err();
        assert!(err.message.contains("not a whole list"), "{err}");
        let read = every([whole].iter().map(load_balancer), "DescribeLoadBalancers").unwrap();
        assert_eq!(read[0].name, "web");
    }

    #[test]
    fn attribute_keys_are_sorted_for_the_binary_search() {
        assert!(ATTRIBUTE_KEYS.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn actions_and_conditions_map_to_snake_case() {
        let sdk_action = Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .order(1)
            .forward_config(
                ForwardActionConfig::builder()
                    .target_groups(
                        TargetGroupTuple::builder()
                            .target_group_arn("arn:tg/a")
                            .weight(2)
                            .build(),
                    )
                    .build(),
            )
            .build();
        assert_eq!(
            action(&sdk_action),
            json!({"type": "forward", "order": 1,
                   "forward_config": {"target_groups": [{"target_group_arn": "arn:tg/a", "weight": 2}]}})
        );
        let sdk_condition = RuleCondition::builder()
            .field("path-pattern")
            .path_pattern_config(PathPatternConditionConfig::builder().values("/a/*").build())
            .build();
        assert_eq!(
            condition(&sdk_condition),
            json!({"field": "path-pattern", "path_pattern_config": {"values": ["/a/*"]}})
        );
    }

    #[test]
    fn the_default_rule_is_flagged_and_priorities_are_numbers() {
        let default = Rule::builder().priority("default").is_default(true).build();
        assert!(rule(&default).is_default);
        let ten = rule(&Rule::builder().priority("10").is_default(false).build());
        assert!(!ten.is_default);
        assert_eq!(ten.fields.to_value()["priority"], json!(10));
    }
}
