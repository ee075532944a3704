//! Bad input never panics: arbitrary DynamoDB items read as records, arbitrary text read as a
//! config. Each ends as a document, an `invalid_record`, or an error.

use std::collections::BTreeMap;
use std::path::Path;

use lbrecon::model::item::{AttrValue, Item};
use lbrecon::model::record::{Record, RecordContent, RecordRules};
use lbrecon::runtime::config::Config;
use proptest::prelude::*;

/// Keys a document knows, so generated items reach deep into the schema, mixed with others.
const KEYS: &[&str] = &[
    "name",
    "type",
    "scheme",
    "listeners",
    "port",
    "protocol",
    "rules",
    "priority",
    "conditions",
    "actions",
    "target_groups",
    "health_check",
    "matcher",
    "tags",
    "attributes",
    "forward_config",
    "target_group",
    "weight",
    "values",
    "field",
    "default_actions",
    "subnets",
    "order",
    "unknown",
];

fn attr() -> impl Strategy<Value = AttrValue> {
    let leaf = prop_oneof![
        any::<String>().prop_map(AttrValue::S),
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            Just("1e400".to_string()),
            Just("not a number".to_string()),
            Just("0.5".to_string()),
        ]
        .prop_map(AttrValue::N),
        any::<bool>().prop_map(AttrValue::Bool),
        Just(AttrValue::Null(true)),
        proptest::collection::vec(any::<u8>(), 0..4).prop_map(AttrValue::B),
        proptest::collection::vec(any::<String>(), 0..3).prop_map(AttrValue::Ss),
    ];
    leaf.prop_recursive(8, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(AttrValue::L),
            proptest::collection::btree_map(
                proptest::sample::select(KEYS).prop_map(str::to_string),
                inner,
                0..6
            )
            .prop_map(AttrValue::M),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_item_is_a_document_or_an_invalid_record(config in attr(), name in any::<String>()) {
        let item: Item = BTreeMap::from([
            ("name".to_string(), AttrValue::S(name.clone())),
            ("config".to_string(), config),
        ]);
        let record = Record::from_item(&item, 0, &RecordRules::default());
        prop_assert_eq!(&record.name, &name);
        if let RecordContent::Invalid(reason) = &record.content {
            prop_assert!(!reason.is_empty());
        }
    }

    #[test]
    fn any_text_is_a_config_or_an_error(text in "\\PC{0,200}") {
        let _ = Config::parse(&text, Path::new("fuzz.toml"));
    }

    #[test]
    fn any_toml_table_of_known_keys_is_a_config_or_an_error(
        interval in "[0-9a-z]{0,4}",
        listen in "\\PC{0,20}",
        ratio in any::<f64>(),
        name in "\\PC{0,10}",
    ) {
        let text = format!(
            "[daemon]\ninterval = {interval:?}\n[http]\nlisten = {listen:?}\n[guard]\nmax_missing_ratio = {ratio:?}\n\
             [[targets]]\nname = {name:?}\nregion = \"r\"\nstate_table = \"abc\"\ncontrol_table = \"abd\"\n"
        );
        let _ = Config::parse(&text, Path::new("fuzz.toml"));
    }
}

#[test]
fn a_very_large_and_deep_item_is_read_without_panicking() {
    // A 400 KB string, and nesting far deeper than any document.
    let mut deep = AttrValue::S("x".repeat(400 * 1024));
    for _ in 0..200 {
        deep = AttrValue::M(BTreeMap::from([(
            "listeners".to_string(),
            AttrValue::L(vec![deep]),
        )]));
    }
    let item: Item = BTreeMap::from([
        ("name".to_string(), AttrValue::S("big".into())),
        ("config".to_string(), deep),
    ]);
    let record = Record::from_item(&item, 0, &RecordRules::default());
    assert_eq!(record.name, "big");
    // The nested `listeners` are unknown fields of a listener: ignored, with a warning each.
    assert!(matches!(record.content, RecordContent::Valid(_)));
    assert!(!record.warnings.is_empty());
}
