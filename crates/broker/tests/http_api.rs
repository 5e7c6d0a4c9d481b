//! The HTTP API seen by a raw HTTP/1.1 client over TCP: JSON error shapes, parameters from
//! the query and from a form body, `/metrics` and `/healthz`.
// Test and benchmark code: an unwrap that fails is a failure to report (clippy.toml allows
// it inside #[test] functions only, not in their helpers).
#![allow(clippy::unwrap_used)]

mod auth_support;

use std::time::Duration;

use auth_support::*;
use mqgate_broker::{BrokerConfig, BrokerHandle, ListenerKind};

/// `[auth]` with a full key, a limited key and a key barred from the API; HTTP on port 0.
fn config() -> BrokerConfig {
    let keys = format!(
        r#"
        groups = ["{GROUP}"]
        [[auth.access_keys]]
        id = "{LIMITED_AK}"
        secret = "{LIMITED_SECRET}"
        publish = ["shop/#"]
        [[auth.access_keys]]
        id = "LTAI_MQTT_ONLY"
        secret = "mqtt-only"
        api = false
        "#
    );
    api_config("storage = \"memory\"", "max_body_bytes = 1024", &keys)
}

fn http_addr(broker: &BrokerHandle) -> std::net::SocketAddr {
    broker
        .local_addr(ListenerKind::Http)
        .expect("http listener")
}

/// Asserts an error answer: status, `Code`, and exactly the keys Code, Message, RequestId
/// (the same RequestId as the `x-acs-request-id` header).
fn assert_error(response: &HttpResponse, status: u16, code: &str) {
    assert_eq!(response.status, status, "{response:?}");
    assert!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{response:?}"
    );
    let body = response.json();
    let keys: Vec<&String> = body.as_object().expect("an object").keys().collect();
    assert_eq!(keys, ["Code", "Message", "RequestId"], "{body}");
    assert_eq!(body["Code"], code, "{body}");
    assert!(!body["Message"].as_str().unwrap_or_default().is_empty());
    assert_eq!(
        body["RequestId"].as_str(),
        response.header("x-acs-request-id")
    );
}

#[test]
fn the_test_clock_formats_dates_the_verifier_reads() {
    for ms in [0, 951_782_400_000, 1_800_000_000_123, now_ms()] {
        let text = iso8601(ms);
        assert_eq!(
            mqgate_auth::openapi::parse_iso8601_utc(&text),
            Ok(ms / 1000 * 1000),
            "{text}"
        );
    }
}

/// (AccessKeyId, secret, action, parameters, expected status, expected Code).
type Case<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a [(&'a str, &'a str)],
    u16,
    &'a str,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_json_naming_what_is_wrong() {
    let broker = start(config(), None).await;
    let addr = http_addr(&broker);
    let unsigned = http(
        addr,
        "GET",
        "/?Action=QuerySessionByClientId&ClientId=x",
        &[],
        b"",
    )
    .await;
    assert_error(&unsigned, 400, "MissingParameter.Signature");

    let instance = ("InstanceId", INSTANCE);
    let client = ("ClientId", "GID_a@@@x");
    let token = [("Resources", "a/#"), ("Actions", "R")];
    let cases: &[Case] = &[
        (
            AK,
            SECRET,
            "QuerySessionByClientId",
            &[instance],
            400,
            "MissingParameter.ClientId",
        ),
        (
            AK,
            SECRET,
            "QuerySessionByClientId",
            &[client],
            400,
            "MissingParameter.InstanceId",
        ),
        (
            AK,
            SECRET,
            "QuerySessionByClientId",
            &[("InstanceId", "other"), client],
            400,
            "InvalidParameter.InstanceId",
        ),
        (
            AK,
            SECRET,
            "NoSuchAction",
            &[instance],
            404,
            "InvalidAction.NotFound",
        ),
        (
            AK,
            SECRET,
            "QuerySessionByClientId",
            &[instance, client, ("Version", "2017-01-01")],
            400,
            "InvalidParameter.Version",
        ),
        (
            AK,
            SECRET,
            "ApplyToken",
            &[instance, token[0], token[1], ("ExpireTime", "soon")],
            400,
            "InvalidParameter.ExpireTime",
        ),
        (
            AK,
            SECRET,
            "ApplyToken",
            &[instance, token[0], token[1], ("ExpireTime", "1000")],
            400,
            "InvalidParameter.ExpireTime",
        ),
        (
            AK,
            SECRET,
            "ApplyToken",
            &[
                instance,
                ("Resources", "a/#/b"),
                token[1],
                ("ExpireTime", "99999999999999"),
            ],
            400,
            "InvalidParameter.Resources",
        ),
        (
            AK,
            SECRET,
            "BatchQuerySessionByClientIds",
            &[instance],
            400,
            "MissingParameter.ClientIdList",
        ),
        (
            AK,
            SECRET,
            "RegisterDeviceCredential",
            &[instance, ("ClientId", "GID_unknown@@@d")],
            400,
            "InvalidParameter.ClientId",
        ),
        (
            AK,
            SECRET,
            "GetDeviceCredential",
            &[instance, client],
            404,
            "DeviceCredential.NotFound",
        ),
        (
            AK,
            SECRET,
            "CreateGroupId",
            &[instance, ("GroupId", "shop")],
            400,
            "InvalidParameter.GroupId",
        ),
        (
            AK,
            SECRET,
            "DeleteGroupId",
            &[instance, ("GroupId", "GID_never")],
            404,
            "GroupId.NotFound",
        ),
        (
            AK,
            SECRET,
            "SendMessage",
            &[instance, ("MqttTopic", "a/+"), ("Payload", "x")],
            400,
            "InvalidParameter.MqttTopic",
        ),
        (
            AK,
            SECRET,
            "QuerySessionByClientId",
            &[instance, client, ("Timestamp", "2001-01-01T00:00:00Z")],
            400,
            "InvalidTimeStamp.Expired",
        ),
        (
            "LTAI_NOPE",
            "x",
            "QuerySessionByClientId",
            &[instance, client],
            404,
            "InvalidAccessKeyId.NotFound",
        ),
        (
            AK,
            "wrong",
            "QuerySessionByClientId",
            &[instance, client],
            400,
            "SignatureDoesNotMatch",
        ),
        (
            "LTAI_MQTT_ONLY",
            "mqtt-only",
            "QuerySessionByClientId",
            &[instance, client],
            403,
            "Forbidden.AccessKey",
        ),
        (
            LIMITED_AK,
            LIMITED_SECRET,
            "SendMessage",
            &[instance, ("MqttTopic", "news/x"), ("Payload", "p")],
            403,
            "Forbidden.MqttTopic",
        ),
        (
            LIMITED_AK,
            LIMITED_SECRET,
            "ApplyToken",
            &[
                instance,
                ("Resources", "news/#"),
                ("Actions", "W"),
                ("ExpireTime", "99999999999999"),
            ],
            403,
            "Forbidden.Resources",
        ),
    ];
    for (ak, secret, action, params, status, code) in cases {
        let response = api_get(&broker, ak, secret, action, params).await;
        assert_error(&response, *status, code);
    }

    // The same signed request twice is a replay.
    let target = format!(
        "/?{}",
        rpc_signed(
            "GET",
            AK,
            SECRET,
            "QuerySessionByClientId",
            &[instance, ("ClientId", "c")]
        )
    );
    assert_eq!(http(addr, "GET", &target, &[], b"").await.status, 200);
    assert_error(
        &http(addr, "GET", &target, &[], b"").await,
        400,
        "SignatureNonceUsed",
    );

    assert_error(
        &http(addr, "GET", "/nope", &[], b"").await,
        404,
        "InvalidPath",
    );
    let big = vec![b'a'; 4096];
    let form = [("content-type", "application/x-www-form-urlencoded")];
    assert_error(
        &http(addr, "POST", "/", &form, &big).await,
        413,
        "InvalidParameter.Body",
    );

    let metrics = broker.metrics();
    assert!(metrics.api_auth_failures >= 5, "{metrics:?}");
    assert!(metrics.api_errors >= 20, "{metrics:?}");
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_come_from_a_signed_form_body_too() {
    let broker = start(config(), None).await;
    let addr = http_addr(&broker);
    let _online = support_client(&broker, "GID_a@@@form").await;
    let body = rpc_signed(
        "POST",
        AK,
        SECRET,
        "BatchQuerySessionByClientIds",
        &[
            ("InstanceId", INSTANCE),
            ("ClientIdList.2", "GID_a@@@absent"),
            ("ClientIdList.1", "GID_a@@@form"),
        ],
    );
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let response = http(addr, "POST", "/", &form, body.as_bytes()).await;
    assert_eq!(response.status, 200, "{response:?}");
    let answer = response.json();
    assert_eq!(
        answer["OnlineStatusList"],
        serde_json::json!([
            {"ClientId": "GID_a@@@form", "OnlineStatus": true},
            {"ClientId": "GID_a@@@absent", "OnlineStatus": false},
        ])
    );
    assert_eq!(
        answer["RequestId"].as_str(),
        response.header("x-acs-request-id")
    );
    broker.shutdown().await;
}

async fn support_client(broker: &BrokerHandle, id: &str) -> rumqttc::AsyncClient {
    let (client, mut eventloop) = rumqttc::AsyncClient::new(signed(broker, id, AK, SECRET), 10);
    loop {
        match tokio::time::timeout(WAIT, eventloop.poll()).await {
            Ok(Ok(rumqttc::Event::Incoming(rumqttc::Incoming::ConnAck(_)))) => break,
            Ok(Ok(_)) => {}
            other => panic!("no CONNACK: {other:?}"),
        }
    }
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_answer_in_plain_text() {
    let broker = start(config(), None).await;
    let addr = http_addr(&broker);
    let health = http(addr, "GET", "/healthz", &[], b"").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));

    let mut refused = options(&broker, "GID_a@@@bad");
    refused.set_credentials(format!("Signature|{AK}|{INSTANCE}"), "bad");
    assert_eq!(
        connack_code(refused).await,
        rumqttc::ConnectReturnCode::BadUserNamePassword
    );
    let _online = support_client(&broker, "GID_a@@@m").await;

    let metrics = http(addr, "GET", "/metrics", &[], b"").await;
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")));
    for line in [
        "# TYPE mqgate_auth_failures_total counter",
        "mqgate_auth_failures_total 1",
        "mqgate_sessions_started_total 1",
        "mqgate_clients_online 1",
        "# TYPE mqgate_clients_online gauge",
        "# HELP mqgate_publish_denied_total PUBLISHes dropped because",
        "# TYPE mqgate_rocketmq_buffered gauge",
        "# TYPE mqgate_amqp_channels_open gauge",
        "# TYPE mqgate_amqp_consumers_open gauge",
        "mqgate_amqp_connections_open 0",
    ] {
        assert!(
            metrics.body.lines().any(|l| l.starts_with(line)),
            "{line} missing:\n{}",
            metrics.body
        );
    }
    assert!(!metrics.body.contains("mqgate_rocketmq_buffered_total"));
    // Every sample line is `name value` with a number.
    for line in metrics.body.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.split_once(' ').expect("name value");
        assert!(
            name.starts_with("mqgate_") && value.parse::<u64>().is_ok(),
            "{line}"
        );
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn no_http_listener_when_disabled() {
    let broker = start(BrokerConfig::ephemeral(), None).await;
    assert_eq!(broker.local_addr(ListenerKind::Http), None);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_send_message_and_close_connection_act_on_the_live_broker() {
    let broker = start(config(), None).await;
    let instance = ("InstanceId", INSTANCE);
    let id = "GID_a@@@live";
    let call = |action: &'static str, params: Vec<(&'static str, &'static str)>| {
        let broker = broker.clone();
        async move {
            let response = api_get(&broker, AK, SECRET, action, &params).await;
            assert_eq!(response.status, 200, "{action}: {response:?}");
            response.json()
        }
    };
    let online = || call("QuerySessionByClientId", vec![instance, ("ClientId", id)]);
    assert_eq!(online().await["OnlineStatus"], false);

    let (client, mut eventloop) = rumqttc::AsyncClient::new(signed(&broker, id, AK, SECRET), 10);
    let (events, mut seen) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let event = eventloop.poll().await;
            let end = event.is_err();
            let _ = events.send(event);
            if end {
                return;
            }
        }
    });
    client
        .subscribe("news/#", rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    // A message sent before the SUBACK has no receiver: retry (bounded) until one arrives.
    let mut delivered = None;
    for _ in 0..20 {
        let sent = call(
            "SendMessage",
            vec![instance, ("MqttTopic", "news/a"), ("Payload", "hi")],
        )
        .await;
        assert!(
            sent["MsgId"].as_str().is_some_and(|id| id.len() == 32),
            "{sent}"
        );
        if let Next::Publish(p) = next_publish(&mut seen, Duration::from_millis(200)).await {
            delivered = Some(p);
            break;
        }
    }
    let delivered = delivered.expect("SendMessage reaches the subscriber");
    assert_eq!(
        (delivered.topic.as_str(), &delivered.payload[..]),
        ("news/a", &b"hi"[..])
    );
    call(
        "SendMessage",
        vec![
            instance,
            ("MqttTopic", "cmd/p2p/GID_a@@@live"),
            ("Payload", "direct"),
        ],
    )
    .await;
    match next_publish(&mut seen, WAIT).await {
        Next::Publish(direct) => assert_eq!(&direct.payload[..], b"direct"),
        other => panic!("expected the P2P message, got {other:?}"),
    }

    assert_eq!(online().await["OnlineStatus"], true);
    let closed = call("CloseConnection", vec![instance, ("ClientId", id)]).await;
    assert_eq!(
        (closed["Success"].clone(), closed["Code"].clone()),
        (true.into(), 200.into())
    );
    assert!(
        matches!(next_publish(&mut seen, WAIT).await, Next::Ended),
        "the client's connection ends"
    );
    for _ in 0..50 {
        if online().await["OnlineStatus"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(online().await["OnlineStatus"], false);
    let again = call("CloseConnection", vec![instance, ("ClientId", id)]).await;
    assert_eq!(again["Success"], false);
    assert_eq!(broker.metrics().api_disconnects, 1);
    broker.shutdown().await;
}

#[derive(Debug)]
enum Next {
    Publish(rumqttc::Publish),
    Ended,
    Quiet,
}

/// The next PUBLISH the client's event loop saw, the end of its connection, or nothing
/// within `limit`.
async fn next_publish(
    seen: &mut tokio::sync::mpsc::UnboundedReceiver<
        Result<rumqttc::Event, rumqttc::ConnectionError>,
    >,
    limit: Duration,
) -> Next {
    let wait = async {
        loop {
            match seen.recv().await {
                Some(Ok(rumqttc::Event::Incoming(rumqttc::Incoming::Publish(p)))) => {
                    return Next::Publish(p)
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Next::Ended,
            }
        }
    };
    tokio::time::timeout(limit, wait)
        .await
        .unwrap_or(Next::Quiet)
}

/// With room for one connection, an idle one is closed after the idle timeout and the next
/// client is served then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_give_their_place_up() {
    use tokio::io::AsyncReadExt;
    let mut config = config();
    config.http.max_connections = 1;
    config.http.idle_timeout_ms = 300;
    let broker = start(config, None).await;
    let addr = http_addr(&broker);
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    let served = tokio::spawn(async move { http(addr, "GET", "/healthz", &[], b"").await });
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(WAIT, idle.read(&mut byte)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the idle connection is closed: {closed:?}"
    );
    let health = tokio::time::timeout(WAIT, served)
        .await
        .expect("served in time")
        .unwrap();
    assert_eq!(health.status, 200);
    broker.shutdown().await;
}

/// The cloud SDK endpoint's queues through the API: `ListAmqpQueues` shows the configured
/// queues and what waits in them, `DeleteAmqpQueue` removes one with what it held (`Success`
/// false for a queue that does not exist).
#[tokio::test]
async fn amqp_queues_are_listed_and_removed_through_the_api() {
    let instance = ("InstanceId", INSTANCE);

    let mut with = config();
    with.listeners.amqp = Some("127.0.0.1:0".parse().unwrap());
    with.amqp.queues = vec!["orders".into(), "STATUS/GID_a".into()];
    let broker = start(with, None).await;
    // A device's message waits in the queue (what the broker itself publishes is not for
    // cloud consumers, and takes no place there).
    let device = support_client(&broker, &format!("{GROUP}@@@dev")).await;
    device
        .publish("orders/o-1", rumqttc::QoS::AtLeastOnce, false, "waits")
        .await
        .unwrap();
    let list = || async {
        let response = api_get(&broker, AK, SECRET, "ListAmqpQueues", &[instance]).await;
        assert_eq!(response.status, 200, "{response:?}");
        response.json()["Queues"].clone()
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        // By name: "STATUS/GID_a" sorts before "orders".
        let queues = list().await;
        let orders = &queues[1];
        if orders["Name"] == "orders" && orders["Depth"] == 1 {
            assert_eq!(queues[0]["Name"], "STATUS/GID_a", "{queues}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{queues}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delete = |name: &'static str| {
        let broker = broker.clone();
        async move {
            let params = [instance, ("Name", name)];
            let response = api_post(&broker, AK, SECRET, "DeleteAmqpQueue", &params).await;
            assert_eq!(response.status, 200, "{response:?}");
            response.json()["Success"].clone()
        }
    };
    assert_eq!(delete("orders").await, true);
    let queues = list().await;
    assert_eq!(queues.as_array().map(Vec::len), Some(1), "{queues}");
    assert_eq!(queues[0]["Name"], "STATUS/GID_a");
    assert_eq!(delete("orders").await, false, "gone already");
    broker.shutdown().await;
}
