//! The mapping rules this crate implements, and why (SPEC.md sections 5
//! and 6).
//!
//! This module has no code; it is the design rationale, kept next to the
//! code it explains, in the manner of rustls's `manual`.
//!
//! # Topics
//!
//! An MQTT topic `A/B/C` has a first-level, *parent* topic `A` and a
//! *subtopic* `/B/C` (everything from the first `/`, slash included). The
//! parent topic maps to a RocketMQ topic, of the same name unless a rule says
//! otherwise; the subtopic rides in the property `mqttSecondTopic`. So the
//! MQTT topic is always `parent + mqttSecondTopic`, a plain concatenation,
//! which is why a subtopic that does not start with `/` is refused: `A` +
//! `B/C` would silently become the unrelated topic `AB/C`.
//!
//! | MQTT topic | parent | `mqttSecondTopic` |
//! |---|---|---|
//! | `A/B/C` | `A` | `/B/C` |
//! | `A` | `A` | absent |
//! | `A/` | `A` | `/` |
//! | `/A` | refused: empty parent | |
//!
//! # Properties
//!
//! | key | written by MQTT -> RocketMQ | read by RocketMQ -> MQTT |
//! |---|---|---|
//! | `mqttSecondTopic` | the subtopic, when there is one | appended to the parent topic; absent or empty: none |
//! | `qoslevel` | the PUBLISH's QoS, `0`, `1` or `2` | `0`, `1` or `2`; **default 1**; anything else is an error |
//! | `cleansessionflag` | the sender's cleanSession, when known | P2P only: `true` / `false` (any case); **default true**; ignored for pub/sub |
//! | `mqttRealTopic` | never | the topic the receiving client sees; must be a valid topic name |
//! | `clientId` | the sending MQTT client | ignored: it is read-only from RocketMQ, a RocketMQ producer is not an MQTT client |
//!
//! `qoslevel` and `cleansessionflag` are seen in the wild in two spellings,
//! the SPEC's lower case and the camel case (`qosLevel`, `cleanSessionFlag`)
//! of some SDK samples. Both are always read; if both are present they must
//! agree, since picking one silently would hide a producer bug. The spelling
//! written is [`PropertyStyle`](crate::PropertyStyle), lower case by default.
//!
//! The MQTT RETAIN flag has no RocketMQ property and is not carried:
//! messages that come from RocketMQ are never retained.
//!
//! # P2P
//!
//! On the MQTT side a P2P message is published to
//! `{parent}/p2p/{targetClientId}`; on the RocketMQ side it is the parent
//! topic with `mqttSecondTopic = /p2p/{targetClientId}`. Both are the same
//! concatenation, so both directions parse the full topic with
//! `mqgate_topic::P2pAddress`, the parser the router uses: the bridge and the
//! router can never disagree about what is P2P. A malformed address
//! (`/p2p/`, `/p2p/a/b`, an invalid client id) is an error, not a pub/sub
//! message on a strange topic.
//!
//! A P2P message from RocketMQ arrives at the client on `mqttRealTopic` when
//! it is set, otherwise on the P2P topic itself, `{parent}/p2p/{clientId}`.
//! Its `cleansessionflag` (default true) says whether it may be kept for the
//! client while it is offline with a persistent session (`false`).
//!
//! # Status events
//!
//! The events of a group go to the RocketMQ topic of the group's status rule:
//! tag = event type (`connect`, `disconnect`, `tcpclean`), body = the event's
//! JSON (see `mqgate_status`), key = the client id.
//!
//! # Rules
//!
//! Rules come from configuration as [`BridgeRules`](crate::BridgeRules):
//!
//! ```toml
//! property_style = "lowercase"
//!
//! [[outflow]]                     # devices report, backends consume
//! mqtt_parent_topic = "sensors"
//! rocketmq_topic = "sensor_reports"   # optional: defaults to the parent topic
//!
//! [[inflow]]                      # backends command devices
//! rocketmq_topic = "commands"
//! mqtt_parent_topic = "cmd"           # optional: defaults to the RocketMQ topic
//!
//! [[status]]
//! group_id = "GID_devices"
//! rocketmq_topic = "device_status"
//! ```
//!
//! Validation refuses empty names, RocketMQ topic names outside
//! `[A-Za-z0-9_%|-]` or longer than 127 characters, MQTT parent topics that
//! are not one level (`/`, `+`, `#`, U+0000), group ids that are not
//! `GID_` + name, and two rules of a list with the same key (one parent topic
//! mapped twice, one RocketMQ topic consumed twice, one group notified
//! twice): the answer would depend on the order of the list.
