//! Message trace end to end: real MQTT clients (rumqttc) and the signed HTTP API's four
//! `QueryMqttTrace*` actions: a device's connects, refusals, takeover and disconnect in order
//! with their channel ids, paged both ways; closes for silence, a dropped socket and a
//! protocol violation; one message to an online and an offline
//! subscriber; a `SendMessage`'s id; retention; the trace directory across a restart; bad
//! parameters; trace turned off.
#![allow(clippy::unwrap_used)]

mod auth_support;
mod support;

use std::time::Duration;

use auth_support::*;
use mqgate_broker::{BrokerConfig, BrokerHandle};
use mqgate_codec::Packet;
use rumqttc::{ConnectReturnCode as Code, QoS};
use serde_json::Value;
use support::{subscribe, Client, Raw};

const I: (&str, &str) = ("InstanceId", INSTANCE);
const REGION: (&str, &str) = ("MqttRegionId", "cn-test");

fn config(top: &str) -> BrokerConfig {
    api_config(top, "", "groups = [\"GID_a\"]")
}

/// A trace query that must succeed, over the whole time range.
async fn trace(broker: &BrokerHandle, action: &str, params: &[(&str, &str)]) -> Value {
    let end = (now_ms() + 60_000).to_string();
    let mut all = vec![I, REGION, ("BeginTime", "0"), ("EndTime", end.as_str())];
    all.extend_from_slice(params);
    ok(&api_get(broker, AK, SECRET, action, &all).await)
}

/// Queries until `list` has `n` entries in total (the writer batches records: bounded wait).
async fn trace_until(
    broker: &BrokerHandle,
    action: &str,
    params: &[(&str, &str)],
    list: &str,
    n: usize,
) -> Value {
    let mut answer = Value::Null;
    for _ in 0..50 {
        answer = trace(broker, action, params).await;
        if answer[list].as_array().map_or(0, Vec::len) >= n {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{action} never had {n} entries: {answer}");
}

fn column<'a>(list: &'a Value, field: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| e[field].as_str().unwrap())
        .collect()
}

fn is_time(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 23
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            _ => c.is_ascii_digit(),
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_devices_connects_refusal_takeover_and_disconnect_in_order_paged_both_ways() {
    let broker = start(config("storage = \"memory\""), None).await;
    let id = "GID_a@@@dev1";
    let first = Client::with_options(signed(&broker, id, AK, SECRET)).await;
    let refused = connack_code(signed(&broker, id, AK, "wrong-secret")).await;
    assert_ne!(refused, Code::Success);
    let second = Client::with_options(signed(&broker, id, AK, SECRET)).await;
    second.disconnect().await;
    drop(first);

    let all = [("ClientId", id), ("CurrentPage", "1"), ("PageSize", "100")];
    let answer = trace_until(&broker, "QueryMqttTraceDevice", &all, "DeviceInfoList", 5).await;
    assert_eq!(answer["Total"], 5, "{answer}");
    let list = &answer["DeviceInfoList"];
    assert_eq!(
        column(list, "Action"),
        ["connect", "connect", "close", "connect", "disconnect"],
        "{answer}"
    );
    assert_eq!(
        column(list, "ActionInfo"),
        [
            "accepted",
            "not authorized",
            "clientId conflict",
            "accepted",
            "disconnected by client"
        ],
        "{answer}"
    );
    assert_eq!(
        column(list, "ActionCode"),
        [
            "mqtt.trace.action.connect",
            "mqtt.trace.action.connect",
            "mqtt.trace.action.close",
            "mqtt.trace.action.connect",
            "mqtt.trace.action.disconnect"
        ]
    );
    let channels = column(list, "ChannelId");
    assert!(channels.iter().all(|c| c.len() == 32), "{channels:?}");
    // The first connection's connect and close share its channel; the takeover's connect
    // and disconnect share another; the refusal had its own.
    assert_eq!(channels[0], channels[2]);
    assert_eq!(channels[3], channels[4]);
    assert!(channels[0] != channels[1] && channels[1] != channels[3] && channels[0] != channels[3]);
    let times = column(list, "Time");
    assert!(times.iter().all(|t| is_time(t)), "{times:?}");
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");

    // Pages of two, oldest first, then newest first; Total is the whole answer on each.
    let mut forward = Vec::new();
    for page in ["1", "2", "3", "4"] {
        let params = [("ClientId", id), ("CurrentPage", page), ("PageSize", "2")];
        let answer = trace(&broker, "QueryMqttTraceDevice", &params).await;
        assert_eq!(answer["Total"], 5);
        assert_eq!(answer["CurrentPage"].to_string(), page);
        assert_eq!(answer["PageSize"], 2);
        forward.extend(answer["DeviceInfoList"].as_array().unwrap().clone());
    }
    assert_eq!(forward, *list.as_array().unwrap());
    let mut backward = Vec::new();
    for page in ["1", "2", "3"] {
        let params = [
            ("ClientId", id),
            ("CurrentPage", page),
            ("PageSize", "2"),
            ("Reverse", "true"),
        ];
        let answer = trace(&broker, "QueryMqttTraceDevice", &params).await;
        backward.extend(answer["DeviceInfoList"].as_array().unwrap().clone());
    }
    backward.reverse();
    assert_eq!(backward, *list.as_array().unwrap());

    // A time range before any of it selects nothing.
    let params = [
        I,
        REGION,
        ("ClientId", id),
        ("CurrentPage", "1"),
        ("PageSize", "10"),
        ("BeginTime", "0"),
        ("EndTime", "1000"),
    ];
    let answer = ok(&api_get(&broker, AK, SECRET, "QueryMqttTraceDevice", &params).await);
    assert_eq!(answer["Total"], 0);
    assert_eq!(answer["DeviceInfoList"], Value::Array(Vec::new()));
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_a_dropped_socket_and_a_protocol_violation_close_with_their_reasons() {
    let broker = start(config("storage = \"memory\"\nallow_anonymous = true"), None).await;
    let mut silent = Raw::connect(&broker, "GID_a@@@silent", 1).await;
    let dropped = Raw::connect(&broker, "GID_a@@@dropped", 30).await;
    drop(dropped);
    let mut bad = Raw::connect(&broker, "GID_a@@@bad", 30).await;
    bad.send(Packet::Connect(Box::default())).await; // a second CONNECT
    bad.expect_closed().await;
    silent.expect_closed().await; // keep-alive 1 s: closed after 1.5 s
    let cases = [
        ("GID_a@@@silent", "no heart"),
        ("GID_a@@@dropped", "closed by client"),
        ("GID_a@@@bad", "invalid param"),
    ];
    for (id, why) in cases {
        let params = [("ClientId", id), ("CurrentPage", "1"), ("PageSize", "10")];
        let answer = trace_until(
            &broker,
            "QueryMqttTraceDevice",
            &params,
            "DeviceInfoList",
            2,
        )
        .await;
        let list = &answer["DeviceInfoList"];
        assert_eq!(
            column(list, "Action"),
            ["connect", "close"],
            "{id}: {answer}"
        );
        assert_eq!(
            column(list, "ActionInfo"),
            ["accepted", why],
            "{id}: {answer}"
        );
    }
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_to_an_online_and_an_offline_subscriber_has_one_id_throughout() {
    one_message_to_an_online_and_an_offline_subscriber("storage = \"memory\"").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_offline_is_recorded_for_a_queue_read_back_from_disk() {
    // On a durable store the offline queue stays on disk and comes back a page at a time
    // after the reconnect: each message read back is recorded as push_offline too.
    let dir = tempfile::tempdir().unwrap();
    let top = format!(
        "storage = \"redb\"\ndata_dir = {:?}",
        dir.path().display().to_string()
    );
    one_message_to_an_online_and_an_offline_subscriber(&top).await;
}

async fn one_message_to_an_online_and_an_offline_subscriber(top: &str) {
    let broker = start(config(top), None).await;
    let connect = |id: &str, clean: bool| {
        let mut options = signed(&broker, id, AK, SECRET);
        options.set_clean_session(clean);
        options
    };
    let mut online = Client::with_options(connect("GID_a@@@on", true)).await;
    subscribe(&mut online, "t/x", QoS::AtLeastOnce).await;
    let mut offline = Client::with_options(connect("GID_a@@@off", false)).await;
    subscribe(&mut offline, "t/x", QoS::AtLeastOnce).await;
    offline.disconnect().await;

    let mut publisher = Client::with_options(connect("GID_a@@@pub", true)).await;
    publisher
        .client
        .publish("t/x", QoS::AtLeastOnce, false, "hello")
        .await
        .unwrap();
    publisher.acked(1).await;
    assert_eq!(&online.next().await.payload[..], b"hello");
    let mut back = Client::with_options(connect("GID_a@@@off", false)).await;
    assert_eq!(&back.next().await.payload[..], b"hello");

    let page = [("CurrentPage", "1"), ("PageSize", "100")];
    let mut params = vec![("ClientId", "GID_a@@@pub")];
    params.extend(page);
    let published = trace_until(
        &broker,
        "QueryMqttTraceMessageOfClient",
        &params,
        "MessageOfClientList",
        1,
    )
    .await;
    let list = &published["MessageOfClientList"];
    assert_eq!(column(list, "Action"), ["pub_mqtt"], "{published}");
    assert_eq!(column(list, "ActionInfo"), ["Pub From Mqtt Client"]);
    let id = column(list, "MsgId")[0].to_owned();
    assert_eq!(id.len(), 32);

    let how = trace(&broker, "QueryMqttTraceMessagePublish", &[("MsgId", &id)]).await;
    let list = &how["MessageTraceLists"];
    assert_eq!(column(list, "Action"), ["pub_mqtt"], "{how}");
    assert_eq!(
        column(list, "ActionCode"),
        ["mqtt.trace.action.msg.pub.mqtt"]
    );
    assert_eq!(column(list, "ClientId"), ["GID_a@@@pub"]);
    assert_eq!(column(list, "MsgId"), [id.as_str()]);

    let mut params = vec![("MsgId", id.as_str())];
    params.extend(page);
    let to = trace_until(
        &broker,
        "QueryMqttTraceMessageSubscribe",
        &params,
        "MessageTraceLists",
        2,
    )
    .await;
    assert_eq!(to["Total"], 2, "{to}");
    let list = &to["MessageTraceLists"];
    assert_eq!(column(list, "Action"), ["sub", "push_offline"], "{to}");
    assert_eq!(column(list, "ClientId"), ["GID_a@@@on", "GID_a@@@off"]);
    assert_eq!(
        column(list, "ActionInfo"),
        ["Push To Mqtt Client", "Push Offline Msg To Mqtt Client"]
    );
    assert_eq!(column(list, "MsgId"), [id.as_str(), id.as_str()]);

    params.push(("ClientId", "GID_a@@@off"));
    let only = trace(&broker, "QueryMqttTraceMessageSubscribe", &params).await;
    assert_eq!(only["Total"], 1);
    assert_eq!(
        column(&only["MessageTraceLists"], "Action"),
        ["push_offline"]
    );

    let params = [
        ("ClientId", "GID_a@@@off"),
        ("CurrentPage", "1"),
        ("PageSize", "100"),
    ];
    let received = trace(&broker, "QueryMqttTraceMessageOfClient", &params).await;
    let list = &received["MessageOfClientList"];
    assert_eq!(column(list, "Action"), ["push_offline"], "{received}");
    assert_eq!(column(list, "MsgId"), [id.as_str()]);
    drop((online, back, publisher));
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_message_id_is_traceable() {
    let broker = start(config("storage = \"memory\""), None).await;
    let mut device = Client::with_options(signed(&broker, "GID_a@@@cmd", AK, SECRET)).await;
    subscribe(&mut device, "cmd/all", QoS::AtLeastOnce).await;
    let params = [I, ("MqttTopic", "cmd/all"), ("Payload", "reboot")];
    let sent = ok(&api_post(&broker, AK, SECRET, "SendMessage", &params).await);
    let id = sent["MsgId"].as_str().unwrap().to_owned();
    assert_eq!(&device.next().await.payload[..], b"reboot");

    let how = trace(&broker, "QueryMqttTraceMessagePublish", &[("MsgId", &id)]).await;
    let list = &how["MessageTraceLists"];
    assert_eq!(column(list, "Action"), ["pub_mq"], "{how}");
    assert_eq!(column(list, "ActionInfo"), ["Pub From MQ"]);
    assert_eq!(column(list, "MsgId"), [id.as_str()]);
    // Lower-case hex finds it too.
    let lower = id.to_lowercase();
    let again = trace(
        &broker,
        "QueryMqttTraceMessagePublish",
        &[("MsgId", &lower)],
    )
    .await;
    assert_eq!(again["MessageTraceLists"], *list);

    let params = [
        ("MsgId", id.as_str()),
        ("CurrentPage", "1"),
        ("PageSize", "10"),
    ];
    let to = trace_until(
        &broker,
        "QueryMqttTraceMessageSubscribe",
        &params,
        "MessageTraceLists",
        1,
    )
    .await;
    assert_eq!(
        column(&to["MessageTraceLists"], "ClientId"),
        ["GID_a@@@cmd"]
    );
    assert_eq!(column(&to["MessageTraceLists"], "Action"), ["sub"]);
    // What was written shows on /metrics (nothing dropped here).
    let addr = broker
        .local_addr(mqgate_broker::ListenerKind::Http)
        .unwrap();
    let metrics = http(addr, "GET", "/metrics", &[], b"").await.body;
    let counter = |name: &str| {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&format!("mqgate_{name}_total ")))
            .and_then(|value| value.trim().parse::<u64>().ok())
    };
    assert!(
        counter("trace_written").is_some_and(|n| n >= 3),
        "{metrics}"
    );
    assert_eq!(counter("trace_dropped"), Some(0), "{metrics}");
    drop(device);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_old_records() {
    // Small segments, so each connection's records end up in segments of their own.
    let top = "storage = \"memory\"\n[trace]\nretention_ms = 400\nsegment_bytes = 64";
    let broker = start(config(top), None).await;
    let old = Client::with_options(signed(&broker, "GID_a@@@old", AK, SECRET)).await;
    old.disconnect().await;
    let params = [
        ("ClientId", "GID_a@@@old"),
        ("CurrentPage", "1"),
        ("PageSize", "10"),
    ];
    let seen = trace_until(
        &broker,
        "QueryMqttTraceDevice",
        &params,
        "DeviceInfoList",
        2,
    )
    .await;
    assert_eq!(seen["Total"], 2);
    // The sweep runs every 100 ms; the records are gone once 400 ms old (bounded wait).
    let mut total = Value::Null;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        total = trace(&broker, "QueryMqttTraceDevice", &params).await["Total"].clone();
        if total == 0 {
            break;
        }
    }
    assert_eq!(total, 0, "old records still there");
    // New records are kept meanwhile.
    let new = Client::with_options(signed(&broker, "GID_a@@@new", AK, SECRET)).await;
    let params = [
        ("ClientId", "GID_a@@@new"),
        ("CurrentPage", "1"),
        ("PageSize", "10"),
    ];
    trace_until(
        &broker,
        "QueryMqttTraceDevice",
        &params,
        "DeviceInfoList",
        1,
    )
    .await;
    drop(new);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_is_kept_in_the_data_dir_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let top = format!("data_dir = {:?}", dir.path().display().to_string());
    let broker = start_retrying(|| config(&top)).await;
    let device = Client::with_options(signed(&broker, "GID_a@@@disk", AK, SECRET)).await;
    device.disconnect().await;
    let params = [
        ("ClientId", "GID_a@@@disk"),
        ("CurrentPage", "1"),
        ("PageSize", "10"),
    ];
    trace_until(
        &broker,
        "QueryMqttTraceDevice",
        &params,
        "DeviceInfoList",
        2,
    )
    .await;
    broker.shutdown().await;
    drop(broker);
    assert!(dir.path().join("trace").is_dir());

    let broker = start_retrying(|| config(&top)).await;
    let answer = trace(&broker, "QueryMqttTraceDevice", &params).await;
    let list = &answer["DeviceInfoList"];
    assert_eq!(
        column(list, "Action"),
        ["connect", "disconnect"],
        "{answer}"
    );
    broker.shutdown().await;
}

/// An action, the parameters changed from a valid request, the error code expected.
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_get_the_services_error_codes() {
    let broker = start(config("storage = \"memory\""), None).await;
    let cases: [Case; 10] = [
        (
            "QueryMqttTraceDevice",
            &[("ClientId", "")],
            "MissingParameter.ClientId",
        ),
        (
            "QueryMqttTraceDevice",
            &[("PageSize", "101")],
            "InvalidParameter.PageSize",
        ),
        (
            "QueryMqttTraceDevice",
            &[("PageSize", "0")],
            "InvalidParameter.PageSize",
        ),
        (
            "QueryMqttTraceDevice",
            &[("CurrentPage", "0")],
            "InvalidParameter.CurrentPage",
        ),
        (
            "QueryMqttTraceDevice",
            &[("Reverse", "maybe")],
            "InvalidParameter.Reverse",
        ),
        (
            "QueryMqttTraceDevice",
            &[("BeginTime", "x")],
            "InvalidParameter.BeginTime",
        ),
        (
            "QueryMqttTraceMessageOfClient",
            &[("EndTime", "1")],
            "InvalidParameter.EndTime",
        ),
        (
            "QueryMqttTraceMessageOfClient",
            &[("MqttRegionId", "")],
            "MissingParameter.MqttRegionId",
        ),
        (
            "QueryMqttTraceMessagePublish",
            &[("MsgId", "xyz")],
            "InvalidParameter.MsgId",
        ),
        (
            "QueryMqttTraceMessageSubscribe",
            &[("MsgId", "")],
            "MissingParameter.MsgId",
        ),
    ];
    for (action, changed, code) in cases {
        let mut params = vec![
            I,
            REGION,
            ("ClientId", "GID_a@@@x"),
            ("MsgId", "0123456789ABCDEF0123456789ABCDEF"),
            ("BeginTime", "1000"),
            ("EndTime", "2000"),
            ("CurrentPage", "1"),
            ("PageSize", "10"),
        ];
        for (name, value) in changed {
            params.retain(|(n, _)| n != name);
            params.push((name, value));
        }
        let response = api_get(&broker, AK, SECRET, action, &params).await;
        assert_eq!(response.status, 400, "{action} {changed:?}: {response:?}");
        assert_eq!(response.json()["Code"], code, "{action} {changed:?}");
    }
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_turned_off_records_nothing() {
    let broker = start(config("storage = \"memory\"\ntrace = false"), None).await;
    let mut device = Client::with_options(signed(&broker, "GID_a@@@quiet", AK, SECRET)).await;
    subscribe(&mut device, "t/q", QoS::AtLeastOnce).await;
    device
        .client
        .publish("t/q", QoS::AtLeastOnce, false, "x")
        .await
        .unwrap();
    device.next().await;
    device.disconnect().await;
    let params = [
        I,
        REGION,
        ("ClientId", "GID_a@@@quiet"),
        ("BeginTime", "0"),
        ("EndTime", "99999999999999"),
        ("CurrentPage", "1"),
        ("PageSize", "10"),
    ];
    let response = api_get(&broker, AK, SECRET, "QueryMqttTraceDevice", &params).await;
    assert_eq!(response.status, 403, "{response:?}");
    assert_eq!(response.json()["Code"], "Trace.Disabled");
    let metrics = broker.metrics();
    assert_eq!(
        (metrics.trace_written, metrics.trace_dropped),
        (0, 0),
        "{metrics:?}"
    );
    broker.shutdown().await;
}
