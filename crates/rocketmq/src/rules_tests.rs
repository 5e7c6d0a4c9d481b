//! Validation of bridge rules: every refusal, with the rule and field named.

use crate::{BridgeRules, InflowRule, OutflowRule, PropertyStyle, RuleError, RuleKind, StatusRule};

fn outflow(parent: &str, topic: Option<&str>) -> OutflowRule {
    OutflowRule {
        mqtt_parent_topic: parent.into(),
        rocketmq_topic: topic.map(str::to_owned),
    }
}

fn inflow(topic: &str, parent: Option<&str>) -> InflowRule {
    InflowRule {
        rocketmq_topic: topic.into(),
        mqtt_parent_topic: parent.map(str::to_owned),
    }
}

fn status(group: &str, topic: &str) -> StatusRule {
    StatusRule {
        group_id: group.into(),
        rocketmq_topic: topic.into(),
    }
}

/// A short, stable summary of an error: its variant and the parts that
/// locate it.
fn locate(error: &RuleError) -> String {
    match error {
        RuleError::Empty { kind, index, field } => format!("empty {kind}#{index}.{field}"),
        RuleError::InvalidRocketMqTopic {
            kind, index, field, ..
        } => format!("rocketmq {kind}#{index}.{field}"),
        RuleError::InvalidMqttParentTopic {
            kind, index, field, ..
        } => format!("parent {kind}#{index}.{field}"),
        RuleError::InvalidGroupId { index, .. } => format!("group status#{index}"),
        RuleError::Duplicate {
            kind,
            first,
            second,
            ..
        } => format!("duplicate {kind}#{first},#{second}"),
    }
}

#[test]
fn validation_table() {
    let long_topic = "t".repeat(128);
    let max_topic = "t".repeat(127);
    let long_group = format!("GID_{}", "g".repeat(61));
    let ok = |rules: BridgeRules| (rules, None::<&str>);
    let bad = |rules: BridgeRules, located: &'static str| (rules, Some(located));
    let only_outflow = |rules: Vec<OutflowRule>| BridgeRules {
        outflow: rules,
        ..BridgeRules::default()
    };
    let only_inflow = |rules: Vec<InflowRule>| BridgeRules {
        inflow: rules,
        ..BridgeRules::default()
    };
    let only_status = |rules: Vec<StatusRule>| BridgeRules {
        status: rules,
        ..BridgeRules::default()
    };
    let table = vec![
        ok(BridgeRules::default()),
        ok(only_outflow(vec![
            outflow("sensors", None),
            outflow("b", Some("B_topic%|-1")),
        ])),
        ok(only_outflow(vec![outflow("a", Some(&max_topic))])),
        bad(
            only_outflow(vec![outflow("", Some("t"))]),
            "empty outflow#0.mqtt_parent_topic",
        ),
        bad(
            only_outflow(vec![outflow("a", Some(""))]),
            "empty outflow#0.rocketmq_topic",
        ),
        bad(
            only_outflow(vec![outflow("a/b", Some("t"))]),
            "parent outflow#0.mqtt_parent_topic",
        ),
        bad(
            only_outflow(vec![outflow("a+", Some("t"))]),
            "parent outflow#0.mqtt_parent_topic",
        ),
        bad(
            only_outflow(vec![outflow("a\0", Some("t"))]),
            "parent outflow#0.mqtt_parent_topic",
        ),
        bad(
            only_outflow(vec![outflow("a", Some("t.x"))]),
            "rocketmq outflow#0.rocketmq_topic",
        ),
        bad(
            only_outflow(vec![outflow("a", Some(&long_topic))]),
            "rocketmq outflow#0.rocketmq_topic",
        ),
        // The default RocketMQ topic is the parent's name: it must be a valid one.
        bad(
            only_outflow(vec![outflow("dotted.name", None)]),
            "rocketmq outflow#0.mqtt_parent_topic",
        ),
        bad(
            only_outflow(vec![
                outflow("a", None),
                outflow("b", None),
                outflow("a", Some("x")),
            ]),
            "duplicate outflow#0,#2",
        ),
        ok(only_inflow(vec![
            inflow("commands", None),
            inflow("c2", Some("cmd")),
        ])),
        bad(
            only_inflow(vec![inflow("", Some("p"))]),
            "empty inflow#0.rocketmq_topic",
        ),
        bad(
            only_inflow(vec![inflow("t", Some(""))]),
            "empty inflow#0.mqtt_parent_topic",
        ),
        bad(
            only_inflow(vec![inflow("t", Some("a/b"))]),
            "parent inflow#0.mqtt_parent_topic",
        ),
        bad(
            only_inflow(vec![inflow("t t", None)]),
            "rocketmq inflow#0.rocketmq_topic",
        ),
        bad(
            only_inflow(vec![inflow("t", None), inflow("t", Some("other"))]),
            "duplicate inflow#0,#1",
        ),
        ok(only_status(vec![
            status("GID_a", "s"),
            status("GID_b-1.x:y", "s"),
        ])),
        bad(
            only_status(vec![status("", "s")]),
            "empty status#0.group_id",
        ),
        bad(only_status(vec![status("a", "s")]), "group status#0"),
        bad(only_status(vec![status("GID_", "s")]), "group status#0"),
        bad(only_status(vec![status("gid_a", "s")]), "group status#0"),
        bad(
            only_status(vec![status("GID_a@@@b", "s")]),
            "group status#0",
        ),
        bad(
            only_status(vec![status(&long_group, "s")]),
            "group status#0",
        ),
        bad(
            only_status(vec![status("GID_a", "")]),
            "empty status#0.rocketmq_topic",
        ),
        bad(
            only_status(vec![status("GID_a", "s/t")]),
            "rocketmq status#0.rocketmq_topic",
        ),
        bad(
            only_status(vec![status("GID_a", "s"), status("GID_a", "t")]),
            "duplicate status#0,#1",
        ),
    ];
    for (rules, located) in table {
        let result = rules.validate().err();
        assert_eq!(result.as_ref().map(locate).as_deref(), located, "{rules:?}");
        assert_eq!(rules.compile().err(), result);
    }
}

#[test]
fn errors_read_well() {
    let rules = BridgeRules {
        status: vec![status("devices", "s")],
        ..BridgeRules::default()
    };
    let message = rules.validate().err().map(|e| e.to_string());
    assert_eq!(
        message.as_deref(),
        Some("status rule #0: group id \"devices\" is invalid (must start with GID_)")
    );
    let rules = BridgeRules {
        inflow: vec![inflow("a", None), inflow("a", None)],
        ..BridgeRules::default()
    };
    let message = rules.validate().err().map(|e| e.to_string());
    assert_eq!(
        message.as_deref(),
        Some("inflow rules #0 and #1 both map \"a\"")
    );
    assert_eq!(RuleKind::Outflow.to_string(), "outflow");
}

#[test]
fn deserialises_from_configuration() {
    let json = r#"{
        "property_style": "camelCase",
        "outflow": [{ "mqtt_parent_topic": "sensors", "rocketmq_topic": "reports" }, { "mqtt_parent_topic": "logs" }],
        "status": [{ "group_id": "GID_dev", "rocketmq_topic": "dev_status" }]
    }"#;
    let rules: Option<BridgeRules> = serde_json::from_str(json).ok();
    let compiled = rules.and_then(|rules| rules.compile().ok());
    let lookups = compiled.as_ref().map(|r| {
        (
            r.property_style,
            r.outflow_for("sensors"),
            r.outflow_for("logs"),
            r.status_for("GID_dev"),
            r.inflow_for("x"),
        )
    });
    assert_eq!(
        lookups,
        Some((
            PropertyStyle::CamelCase,
            Some("reports"),
            Some("logs"),
            Some("dev_status"),
            None
        ))
    );
}

#[test]
fn unknown_configuration_keys_are_refused() {
    let typo = r#"{ "outflow": [{ "mqtt_parent_topic": "a", "rocketmq_topc": "b" }] }"#;
    let error = serde_json::from_str::<BridgeRules>(typo)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("rocketmq_topc"), "{error}");
    let style = r#"{ "property_style": "Lowercase" }"#;
    assert!(serde_json::from_str::<BridgeRules>(style).is_err());
    let round_trip = serde_json::to_string(&BridgeRules {
        outflow: vec![outflow("a", None)],
        ..BridgeRules::default()
    });
    assert_eq!(
        round_trip.ok().as_deref(),
        Some(
            r#"{"outflow":[{"mqtt_parent_topic":"a"}],"inflow":[],"status":[],"property_style":"lowercase"}"#
        )
    );
}
