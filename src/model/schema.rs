//! The load-balancer document's schema (docs/architecture.md#document): every field, its type and how it compares.
//! Plain data, below both [`crate::model::node`] (which holds schema names as static names) and
//! [`crate::model::document`] (which validates and keys documents by it).

use std::sync::OnceLock;

/// How one field is typed and compared.
#[derive(Debug)]
pub enum Shape {
    /// A string, compared by equality.
    Str,
    /// A number, compared by value.
    Num,
    /// A boolean.
    Bool,
    /// A list compared without order, as one value. A single string is accepted where the
    /// elements are strings.
    Set(&'static Shape),
    /// A map of strings; only the keys the record holds are compared.
    Map,
    /// A map of tags: as `Map`, but keys under `aws:` are never compared.
    Tags,
    /// An object; only the fields the record holds are compared, each at its own path.
    Object(&'static [Field]),
    /// A list of objects keyed by identity and compared whole: a live item the record does not
    /// hold is drift.
    Keyed(&'static [Field], Key),
    /// An action list, compared in `order` as one value.
    Actions,
    /// A condition list, compared without order as one value.
    Conditions,
    /// An ordered list, compared as part of the value that holds it.
    List(&'static Shape),
}

/// A named field of an object shape.
pub type Field = (&'static str, Shape);

/// What identifies an item of a keyed list.
#[derive(Debug, Clone, Copy)]
pub enum Key {
    /// Listeners: the port; a gateway load balancer's listener has none and is keyed `gateway`.
    Port,
    /// Rules: the priority.
    Priority,
    /// Target groups: the name.
    Name,
}

/// The key under which a gateway load balancer's port-less listener is kept.
pub const GATEWAY_LISTENER_KEY: &str = "gateway";

pub const STRINGS: Shape = Shape::Set(&Shape::Str);

/// The fields of a load-balancer document.
pub const LOAD_BALANCER: &[Field] = &[
    ("name", Shape::Str),
    ("type", Shape::Str),
    ("scheme", Shape::Str),
    ("ip_address_type", Shape::Str),
    ("subnets", STRINGS),
    ("security_groups", STRINGS),
    ("attributes", Shape::Map),
    ("tags", Shape::Tags),
    ("listeners", Shape::Keyed(LISTENER, Key::Port)),
    ("target_groups", Shape::Keyed(TARGET_GROUP, Key::Name)),
];

pub const LISTENER: &[Field] = &[
    ("port", Shape::Num),
    ("protocol", Shape::Str),
    ("ssl_policy", Shape::Str),
    ("certificates", STRINGS),
    ("additional_certificates", STRINGS),
    ("alpn_policy", STRINGS),
    ("default_actions", Shape::Actions),
    ("rules", Shape::Keyed(RULE, Key::Priority)),
];

pub const RULE: &[Field] = &[
    ("priority", Shape::Num),
    ("conditions", Shape::Conditions),
    ("actions", Shape::Actions),
];

pub const TARGET_GROUP: &[Field] = &[
    ("name", Shape::Str),
    ("protocol", Shape::Str),
    ("protocol_version", Shape::Str),
    ("port", Shape::Num),
    ("target_type", Shape::Str),
    ("vpc_id", Shape::Str),
    ("health_check", Shape::Object(HEALTH_CHECK)),
    ("attributes", Shape::Map),
    ("tags", Shape::Tags),
    ("targets", Shape::Set(&Shape::Object(TARGET))),
];

pub const HEALTH_CHECK: &[Field] = &[
    ("enabled", Shape::Bool),
    ("protocol", Shape::Str),
    ("port", Shape::Str),
    ("path", Shape::Str),
    ("interval_seconds", Shape::Num),
    ("timeout_seconds", Shape::Num),
    ("healthy_threshold_count", Shape::Num),
    ("unhealthy_threshold_count", Shape::Num),
    (
        "matcher",
        Shape::Object(&[("http_code", Shape::Str), ("grpc_code", Shape::Str)]),
    ),
];

pub const TARGET: &[Field] = &[("id", Shape::Str), ("port", Shape::Num)];

/// The fields of one action.
pub const ACTION: &[Field] = &[
    ("type", Shape::Str),
    ("order", Shape::Num),
    ("target_group", Shape::Str),
    (
        "forward_config",
        Shape::Object(&[
            (
                "target_groups",
                Shape::List(&Shape::Object(&[
                    ("target_group", Shape::Str),
                    ("weight", Shape::Num),
                ])),
            ),
            (
                "target_group_stickiness_config",
                Shape::Object(&[("enabled", Shape::Bool), ("duration_seconds", Shape::Num)]),
            ),
        ]),
    ),
    (
        "redirect_config",
        Shape::Object(&[
            ("protocol", Shape::Str),
            ("port", Shape::Str),
            ("host", Shape::Str),
            ("path", Shape::Str),
            ("query", Shape::Str),
            ("status_code", Shape::Str),
        ]),
    ),
    (
        "fixed_response_config",
        Shape::Object(&[
            ("message_body", Shape::Str),
            ("status_code", Shape::Str),
            ("content_type", Shape::Str),
        ]),
    ),
    (
        "authenticate_oidc_config",
        Shape::Object(&[
            ("issuer", Shape::Str),
            ("authorization_endpoint", Shape::Str),
            ("token_endpoint", Shape::Str),
            ("user_info_endpoint", Shape::Str),
            ("client_id", Shape::Str),
            ("client_secret", Shape::Str),
            ("session_cookie_name", Shape::Str),
            ("scope", Shape::Str),
            ("session_timeout", Shape::Num),
            ("authentication_request_extra_params", Shape::Map),
            ("on_unauthenticated_request", Shape::Str),
            ("use_existing_client_secret", Shape::Bool),
        ]),
    ),
    (
        "authenticate_cognito_config",
        Shape::Object(&[
            ("user_pool_arn", Shape::Str),
            ("user_pool_client_id", Shape::Str),
            ("user_pool_domain", Shape::Str),
            ("session_cookie_name", Shape::Str),
            ("scope", Shape::Str),
            ("session_timeout", Shape::Num),
            ("authentication_request_extra_params", Shape::Map),
            ("on_unauthenticated_request", Shape::Str),
        ]),
    ),
];

pub const VALUES: &[Field] = &[("values", STRINGS)];

/// The fields of one rule condition.
pub const CONDITION: &[Field] = &[
    ("field", Shape::Str),
    ("values", STRINGS),
    ("host_header_config", Shape::Object(VALUES)),
    ("path_pattern_config", Shape::Object(VALUES)),
    (
        "http_header_config",
        Shape::Object(&[("http_header_name", Shape::Str), ("values", STRINGS)]),
    ),
    (
        "query_string_config",
        Shape::Object(&[(
            "values",
            Shape::List(&Shape::Object(&[
                ("key", Shape::Str),
                ("value", Shape::Str),
            ])),
        )]),
    ),
    ("http_request_method_config", Shape::Object(VALUES)),
    ("source_ip_config", Shape::Object(VALUES)),
];

/// The load-balancer and target-group attribute keys ELBv2 documents, sorted: held as static
/// names in every attribute map instead of one allocation per key per map. A key not listed
/// (a new one) is held as read.
pub const ATTRIBUTE_KEYS: &[&str] = &[
    "access_logs.s3.bucket",
    "access_logs.s3.enabled",
    "access_logs.s3.prefix",
    "client_keep_alive.seconds",
    "connection_logs.s3.bucket",
    "connection_logs.s3.enabled",
    "connection_logs.s3.prefix",
    "deletion_protection.enabled",
    "deregistration_delay.connection_termination.enabled",
    "deregistration_delay.timeout_seconds",
    "dns_record.client_routing_policy",
    "health_check_logs.s3.bucket",
    "health_check_logs.s3.enabled",
    "health_check_logs.s3.prefix",
    "idle_timeout.timeout_seconds",
    "ipv6.deny_all_igw_traffic",
    "lambda.multi_value_headers.enabled",
    "load_balancing.algorithm.anomaly_mitigation",
    "load_balancing.algorithm.type",
    "load_balancing.cross_zone.enabled",
    "preserve_client_ip.enabled",
    "proxy_protocol_v2.enabled",
    "routing.http.desync_mitigation_mode",
    "routing.http.drop_invalid_header_fields.enabled",
    "routing.http.preserve_host_header.enabled",
    "routing.http.x_amzn_tls_version_and_cipher_suite.enabled",
    "routing.http.xff_client_port.enabled",
    "routing.http.xff_header_processing.mode",
    "routing.http2.enabled",
    "secondary_ips.auto_assigned.per_subnet",
    "slow_start.duration_seconds",
    "stickiness.app_cookie.cookie_name",
    "stickiness.app_cookie.duration_seconds",
    "stickiness.enabled",
    "stickiness.lb_cookie.duration_seconds",
    "stickiness.type",
    "target_failover.on_deregistration",
    "target_failover.on_unhealthy",
    "target_group_health.dns_failover.minimum_healthy_targets.count",
    "target_group_health.dns_failover.minimum_healthy_targets.percentage",
    "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count",
    "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
    "target_health_state.unhealthy.connection_termination.enabled",
    "target_health_state.unhealthy.draining_interval_seconds",
    "waf.fail_open.enabled",
    "zonal_shift.config.enabled",
];

/// Every field name of the schema, and the names API answers use in their place
/// (`target_group_arn`), sorted: what a node built from an API answer holds as static names
/// rather than one allocation per key.
pub fn field_names() -> &'static [&'static str] {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        fn walk(fields: &'static [Field], names: &mut Vec<&'static str>) {
            for (name, shape) in fields {
                names.push(name);
                walk_shape(shape, names);
            }
        }
        fn walk_shape(shape: &'static Shape, names: &mut Vec<&'static str>) {
            match shape {
                Shape::Object(fields) | Shape::Keyed(fields, _) => walk(fields, names),
                Shape::Set(inner) | Shape::List(inner) => walk_shape(inner, names),
                _ => {}
            }
        }
        let mut names = vec!["target_group_arn"];
        for fields in [LOAD_BALANCER, ACTION, CONDITION] {
            walk(fields, &mut names);
        }
        names.sort_unstable();
        names.dedup();
        names
    })
}
