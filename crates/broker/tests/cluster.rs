//! The cluster's first slice against a real RocketMQ (`docs/cluster.md`): two or three
//! brokers in this process, each a node of one instance on ephemeral ports, rumqttc clients
//! on each, the Rust RocketMQ name server and broker as the only thing they share. See
//! `rocketmq/mod.rs` for where the servers run (a loopback-only network namespace; elsewhere
//! these tests say they skip).

mod auth_support;
mod rocketmq;
mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use mqgate_broker::{Broker, BrokerConfig, BrokerHandle, ClusterConfig, StorageKind};
use mqgate_status::EventType;
use rocketmq::{healthz, http_get, RocketMq, SERVERS};
use rumqttc::{Publish, QoS};
use support::{subscribe, Client};

/// The longest wait for a message to cross RocketMQ (a new consumer's first delivery takes
/// about 1.5 s).
const CROSSING: Duration = Duration::from_secs(30);
const INSTANCE: &str = "itest";

/// `[cluster]` for node `id`: fast heartbeats, so peers come and go within a test.
fn cluster(ns: &str, id: &str) -> ClusterConfig {
    let mut cluster = ClusterConfig::new(INSTANCE, ns, id);
    cluster.heartbeat_ms = Duration::from_millis(200);
    cluster.dead_after_ms = Duration::from_millis(2000);
    cluster
}

/// A node: MQTT on an ephemeral port, HTTP on another, memory storage unless `change`
/// says otherwise.
async fn node(ns: &str, id: &str, change: impl FnOnce(&mut BrokerConfig)) -> BrokerHandle {
    try_node(ns, id, change).await.expect("node starts")
}

async fn try_node(
    ns: &str,
    id: &str,
    change: impl FnOnce(&mut BrokerConfig),
) -> Result<BrokerHandle, mqgate_broker::BrokerError> {
    let mut config = BrokerConfig::ephemeral();
    config.listeners.amqp = None;
    config.listeners.amqps_addr = None;
    config.http.enabled = true;
    config.http.listen = "127.0.0.1:0".parse().expect("address");
    config.cluster = Some(cluster(ns, id));
    change(&mut config);
    Broker::builder().config(config).build().start().await
}

/// The next PUBLISH within [`CROSSING`].
async fn crossed(client: &mut Client, what: &str) -> Publish {
    match tokio::time::timeout(CROSSING, client.publishes.recv()).await {
        Ok(Some(publish)) => publish,
        Ok(None) => panic!("{what}: client stopped"),
        Err(_) => panic!("{what}: nothing crossed within {CROSSING:?}"),
    }
}

/// Waits until `broker` sees exactly the peers `expected` alive.
async fn until_peers(broker: &BrokerHandle, expected: &[&str], within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let health = broker.cluster().expect("cluster configured");
        let peers: Vec<&str> = health.peers().map(|n| n.node_id.as_str()).collect();
        if peers == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "peers of {}: {peers:?}, expected {expected:?}",
            health.node_id
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The payloads of the next `total` PUBLISHes, as text.
async fn receive(client: &mut Client, total: usize) -> Vec<String> {
    let mut got = Vec::new();
    while got.len() < total {
        let publish = crossed(client, "a message from another node").await;
        got.push(String::from_utf8(publish.payload.to_vec()).expect("text payload"));
    }
    got
}

/// The next message of a backend consumer within [`CROSSING`].
async fn next_message(
    backend: &mut mqgate_broker::Consumer,
) -> std::sync::Arc<mqgate_session::Message> {
    tokio::time::timeout(CROSSING, backend.recv())
        .await
        .expect("crossed in time")
        .expect("broker running")
}

/// Waits until `n` acknowledgements of `client`'s QoS 1 publishes arrived.
async fn acked_all(client: &mut Client, n: usize) {
    for i in 0..n {
        match tokio::time::timeout(CROSSING, client.acks.recv()).await {
            Ok(Some(_)) => {}
            _ => panic!("acknowledgement {i} of {n} did not come within {CROSSING:?}"),
        }
    }
}

/// Messages published on node A reach subscribers on node B, exact and wildcard, at QoS 0
/// and 1: each publisher's messages once and in order; A's own subscribers get each once
/// (A's route messages are not routed at A again); QoS 1 is acknowledged once RocketMQ
/// stored it; the embedding API's publishes cross too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_cross_nodes_once_and_in_order() {
    let _serial = SERVERS.lock().await;
    let Some(rocketmq) = RocketMq::start("messages_cross_nodes_once_and_in_order").await else {
        return;
    };
    let ns = rocketmq.name_server_addr();
    let a = node(&ns, "a", |_| {}).await;
    let b = node(&ns, "b", |_| {}).await;
    let mut exact = Client::connect(&b, "exact", true).await;
    subscribe(&mut exact, "room/1/temp", QoS::AtLeastOnce).await;
    let mut wild = Client::connect(&b, "wild", true).await;
    subscribe(&mut wild, "room/+/temp", QoS::AtLeastOnce).await;
    let mut local = Client::connect(&a, "local", true).await;
    subscribe(&mut local, "room/#", QoS::AtLeastOnce).await;

    // A burst: most of it waits while a send is under way, and goes in batches.
    const N: usize = 200;
    let mut p1 = Client::connect(&a, "p1", true).await;
    let mut p2 = Client::connect(&a, "p2", true).await;
    for i in 0..N {
        for (publisher, name) in [(&p1, "p1"), (&p2, "p2")] {
            let qos = if i % 4 == 3 {
                QoS::AtMostOnce
            } else {
                QoS::AtLeastOnce
            };
            let topic = if name == "p1" {
                "room/1/temp"
            } else {
                "room/2/temp"
            };
            publisher
                .client
                .publish(topic, qos, false, format!("{name}-{i:03}"))
                .await
                .unwrap();
        }
    }
    let qos1 = (0..N).filter(|i| i % 4 != 3).count();
    acked_all(&mut p1, qos1).await;
    acked_all(&mut p2, qos1).await;
    assert!(
        a.metrics().cluster_sent >= 2 * N as u64,
        "{:?}",
        a.metrics()
    );
    // The embedding API's publish crosses too.
    a.publish(
        "room/1/temp",
        "api-000",
        mqgate_codec::QoS::AtLeastOnce,
        false,
    )
    .await
    .unwrap();

    // B's exact subscriber: p1's messages and the API's; the wildcard one: both publishers'.
    let at_exact = receive(&mut exact, N + 1).await;
    let at_wild = receive(&mut wild, 2 * N + 1).await;
    let at_local = receive(&mut local, 2 * N + 1).await;
    for (name, got) in [
        ("exact", &at_exact),
        ("wild", &at_wild),
        ("local", &at_local),
    ] {
        let unique: BTreeSet<&String> = got.iter().collect();
        assert_eq!(unique.len(), got.len(), "{name} got a duplicate: {got:?}");
        // In order per publisher and QoS ("for the same Topic and QoS", MQTT 3.1.1 4.6): a
        // QoS 0 message may pass QoS 1 messages waiting for the receiver's in-flight window.
        let qos0 = |m: &str| {
            m.rsplit('-')
                .next()
                .and_then(|i| i.parse::<usize>().ok())
                .is_some_and(|i| i % 4 == 3)
        };
        for publisher in ["p1", "p2"] {
            for at_qos0 in [false, true] {
                let own: Vec<&String> = got
                    .iter()
                    .filter(|m| m.starts_with(publisher) && qos0(m) == at_qos0)
                    .collect();
                let mut sorted = own.clone();
                sorted.sort();
                assert_eq!(own, sorted, "{name}: {publisher}'s messages out of order");
            }
        }
    }
    assert!(
        at_exact.iter().all(|m| !m.starts_with("p2")),
        "{at_exact:?}"
    );
    assert!(at_exact.contains(&"api-000".to_owned()));
    // Nothing more comes: no second copy (RocketMQ may deliver again only after a failure).
    for client in [&mut exact, &mut wild, &mut local] {
        client.expect_nothing(Duration::from_secs(2)).await;
    }
    let received = b.metrics().cluster_received;
    assert_eq!(received, 2 * N as u64 + 1, "{:?}", b.metrics());
    assert_eq!(
        a.metrics().cluster_received,
        0,
        "A routed nothing back to itself"
    );

    for client in [exact, wild, local, p1, p2] {
        client.disconnect().await;
    }
    b.shutdown().await;
    a.shutdown().await;
}

/// What crosses is the message record whole: the same id (the embedding API's answer on A is
/// the id B's receivers get), QoS, payload, publisher, expiry and MQTT 5 properties (user
/// properties in order, content type, response topic, correlation data).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_message_record_crosses_whole() {
    use rumqttc::v5::mqttbytes::v5::PublishProperties;
    use rumqttc::v5::mqttbytes::QoS as QoS5;
    use support::mqtt5::Client5;

    let _serial = SERVERS.lock().await;
    let Some(rocketmq) = RocketMq::start("the_message_record_crosses_whole").await else {
        return;
    };
    let ns = rocketmq.name_server_addr();
    let a = node(&ns, "a", |_| {}).await;
    let b = node(&ns, "b", |_| {}).await;
    let mut backend = b
        .subscribe("rec/#", mqgate_codec::QoS::ExactlyOnce)
        .unwrap();
    let mut sub5 = Client5::connect(&b, "sub5").await;
    sub5.subscribe("rec/#", QoS5::AtLeastOnce).await;

    let id = a
        .publish(
            "rec/api",
            "from the API",
            mqgate_codec::QoS::AtLeastOnce,
            false,
        )
        .await
        .unwrap();
    let api = next_message(&mut backend).await;
    assert_eq!((api.id, &api.payload[..]), (id, &b"from the API"[..]));
    assert!(
        api.origin.is_empty(),
        "the broker's own publish has no origin"
    );
    assert_eq!(sub5.next().await.payload, "from the API");

    let mut pub5 = Client5::connect(&a, "pub5").await;
    let user = vec![
        ("unit".to_owned(), "C".to_owned()),
        ("unit".to_owned(), "F".to_owned()),
    ];
    let properties = PublishProperties {
        user_properties: user.clone(),
        content_type: Some("text/plain".into()),
        response_topic: Some("rec/reply".into()),
        correlation_data: Some(bytes::Bytes::from_static(b"\x01\x02")),
        message_expiry_interval: Some(600),
        ..PublishProperties::default()
    };
    pub5.client
        .publish_with_properties("rec/v5", QoS5::AtLeastOnce, false, "21.5", properties)
        .await
        .unwrap();
    pub5.acked(1).await;
    let record = next_message(&mut backend).await;
    assert_eq!(record.topic.as_str(), "rec/v5");
    assert_eq!(&record.payload[..], b"21.5");
    assert_eq!(record.qos, mqgate_codec::QoS::AtLeastOnce);
    assert_eq!(record.origin.as_str(), "pub5");
    let expires = record.expires_at_ms.expect("an expiry");
    assert!(expires > record.published_at_ms + 590_000, "{record:?}");
    let got = tokio::time::timeout(CROSSING, sub5.publishes.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.payload, "21.5");
    let props = got.properties.expect("properties");
    assert_eq!(props.user_properties, user);
    assert_eq!(props.content_type.as_deref(), Some("text/plain"));
    assert_eq!(props.response_topic.as_deref(), Some("rec/reply"));
    assert_eq!(props.correlation_data.as_deref(), Some(&b"\x01\x02"[..]));
    let left = props.message_expiry_interval.expect("remaining expiry");
    assert!((590..=600).contains(&left), "{left}");

    pub5.disconnect().await;
    sub5.disconnect().await;
    drop(backend);
    b.shutdown().await;
    a.shutdown().await;
}

/// A retained message set on node A is what a SUBSCRIBE on node B gets, and a clear on A
/// clears it on B; the will of a client of A reaches B; a P2P message published on A reaches
/// its target connected to B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_and_p2p_cross_nodes() {
    let _serial = SERVERS.lock().await;
    let Some(rocketmq) = RocketMq::start("retained_and_p2p_cross_nodes").await else {
        return;
    };
    let ns = rocketmq.name_server_addr();
    let a = node(&ns, "a", |_| {}).await;
    let b = node(&ns, "b", |_| {}).await;
    // A watcher on B says when B has the retained change.
    let mut watcher = Client::connect(&b, "watcher", true).await;
    subscribe(&mut watcher, "news/#", QoS::AtLeastOnce).await;
    let mut target = Client::connect(&b, "device-7", true).await;

    let publisher = Client::connect(&a, "publisher", true).await;
    publisher
        .client
        .publish("news/today", QoS::AtLeastOnce, true, "sunny")
        .await
        .unwrap();
    let live = crossed(&mut watcher, "the retained message, live").await;
    assert_eq!(&live.payload[..], b"sunny");
    let mut late = Client::connect(&b, "late", true).await;
    subscribe(&mut late, "news/+", QoS::AtLeastOnce).await;
    let replayed = late.next().await;
    assert_eq!(
        (&replayed.payload[..], replayed.retain),
        (&b"sunny"[..], true)
    );

    publisher
        .client
        .publish("news/today", QoS::AtLeastOnce, true, "")
        .await
        .unwrap();
    let cleared = crossed(&mut watcher, "the clear").await;
    assert!(cleared.payload.is_empty());
    let mut later = Client::connect(&b, "later", true).await;
    subscribe(&mut later, "news/+", QoS::AtLeastOnce).await;
    later.expect_nothing(Duration::from_millis(500)).await;

    // A will of a client of A that drops reaches B's subscribers too.
    let addr = support::tcp_addr(&a);
    let mut options = rumqttc::MqttOptions::new("mortal", addr.ip().to_string(), addr.port());
    options.set_last_will(rumqttc::LastWill::new(
        "news/will",
        "mortal gone",
        QoS::AtLeastOnce,
        false,
    ));
    Client::with_options(options).await.kill();
    let will = crossed(&mut watcher, "the will").await;
    assert_eq!(
        (will.topic.as_str(), &will.payload[..]),
        ("news/will", &b"mortal gone"[..])
    );

    publisher
        .client
        .publish("cmd/p2p/device-7", QoS::AtLeastOnce, false, "open")
        .await
        .unwrap();
    let p2p = crossed(&mut target, "the P2P message").await;
    assert_eq!(
        (p2p.topic.as_str(), &p2p.payload[..]),
        ("cmd/p2p/device-7", &b"open"[..])
    );
    target.expect_nothing(Duration::from_secs(1)).await;
    watcher.expect_nothing(Duration::from_millis(200)).await;

    for client in [watcher, target, publisher, late, later] {
        client.disconnect().await;
    }
    b.shutdown().await;
    a.shutdown().await;
}

/// Every node sees the others' heartbeats: in `BrokerHandle::cluster`, `/healthz` and the
/// API's `ListClusterNodes`; the API's `SendMessage` on one node reaches another's
/// subscribers; a node that stops is gone from its peers' view within `dead_after_ms`; two
/// nodes with one node id notice each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_show_the_nodes_and_a_stopped_node_leaves() {
    use auth_support::{api_config, api_get, api_post, AK, INSTANCE as API_INSTANCE, SECRET};
    let _serial = SERVERS.lock().await;
    let Some(rocketmq) =
        RocketMq::start("heartbeats_show_the_nodes_and_a_stopped_node_leaves").await
    else {
        return;
    };
    let ns = rocketmq.name_server_addr();
    let with_api = |config: &mut BrokerConfig| {
        let cluster = config.cluster.take();
        *config = api_config("storage = \"memory\"", "", "");
        config.cluster = cluster;
    };
    let a = node(&ns, "a", with_api).await;
    let b = node(&ns, "b", |_| {}).await;
    let c = node(&ns, "c", |_| {}).await;
    let dead_after = Duration::from_millis(2000);
    until_peers(&a, &["b", "c"], CROSSING).await;
    until_peers(&b, &["a", "c"], CROSSING).await;

    let (status, body) = healthz(&a).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("cluster node a of itest: rocketmq up; peers alive: b c"),
        "{body}"
    );
    let (status, text) = http_get(&a, "/metrics").await;
    assert_eq!(status, 200);
    for line in [
        "mqgate_cluster_node{instance=\"itest\",node=\"a\"} 1\n",
        "mqgate_cluster_peers_alive 2\n",
        "mqgate_cluster_rocketmq_up 1\n",
    ] {
        assert!(text.contains(line), "{line} not in {text}");
    }
    let answer = api_get(
        &a,
        AK,
        SECRET,
        "ListClusterNodes",
        &[("InstanceId", API_INSTANCE)],
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let json = answer.json();
    assert_eq!(json["Instance"], INSTANCE);
    assert_eq!(json["NodeId"], "a");
    let nodes: Vec<(String, bool)> = json["Nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["NodeId"].as_str().unwrap().to_owned(),
                n["Self"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        nodes,
        [("a".into(), true), ("b".into(), false), ("c".into(), false)]
    );
    let clients: Vec<u64> = json["Nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["OnlineClients"].as_u64().unwrap())
        .collect();
    assert_eq!(clients, [0, 0, 0], "nobody connected yet");
    // The API's SendMessage on A reaches a subscriber on B.
    let mut listener = Client::connect(&b, "listener", true).await;
    subscribe(&mut listener, "api/#", QoS::AtLeastOnce).await;
    // B's next heartbeat tells A of its client.
    let deadline = Instant::now() + CROSSING;
    loop {
        let health = a.cluster().unwrap();
        let b_clients = health.peers().find(|n| n.node_id == "b").map(|n| n.clients);
        if b_clients == Some(1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "A sees B with {b_clients:?} clients"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        b.cluster()
            .unwrap()
            .nodes
            .iter()
            .find(|n| n.this_node)
            .map(|n| n.clients),
        Some(1)
    );
    let sent = api_post(
        &a,
        AK,
        SECRET,
        "SendMessage",
        &[
            ("InstanceId", API_INSTANCE),
            ("MqttTopic", "api/notice"),
            ("Payload", "from SendMessage"),
        ],
    )
    .await;
    assert_eq!(sent.status, 200, "{sent:?}");
    let notice = crossed(&mut listener, "SendMessage's message").await;
    assert_eq!(&notice.payload[..], b"from SendMessage");
    listener.disconnect().await;

    let b_address = b.local_addr(mqgate_broker::ListenerKind::Tcp).unwrap();
    let b_seen = a
        .cluster()
        .unwrap()
        .nodes
        .into_iter()
        .find(|n| n.node_id == "b");
    assert_eq!(b_seen.unwrap().address, b_address.to_string());

    c.shutdown().await;
    let stopped = Instant::now();
    until_peers(&a, &["b"], dead_after).await;
    until_peers(&b, &["a"], dead_after.saturating_sub(stopped.elapsed())).await;
    let (_, body) = healthz(&a).await;
    assert!(body.contains("peers alive: b\n"), "{body}");

    // A second node under an id in use: they share its consumer groups, so RocketMQ gives
    // the queue of the id's heartbeats to one of them, which hears another run of its id
    // sending while it runs, and counts it (and logs an error).
    let twin = node(&ns, "b", |_| {}).await;
    let deadline = Instant::now() + CROSSING;
    while twin.metrics().cluster_failed + b.metrics().cluster_failed == 0 {
        assert!(
            Instant::now() < deadline,
            "the duplicate node id went unnoticed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(a.metrics().cluster_failed, 0, "{:?}", a.metrics());

    twin.shutdown().await;
    b.shutdown().await;
    a.shutdown().await;
}

/// A node SIGKILLed (the `mqgate` binary as a child process, no last word) is gone from its
/// peers' view once it has been silent for `dead_after_ms`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_is_gone_after_dead_after() {
    let _serial = SERVERS.lock().await;
    let Some(rocketmq) = RocketMq::start("a_killed_node_is_gone_after_dead_after").await else {
        return;
    };
    let ns = rocketmq.name_server_addr();
    let a = node(&ns, "a", |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "allow_anonymous = true\nstorage = \"memory\"\n\n[listeners]\ntcp = \"127.0.0.1:0\"\n\
         ws = \"127.0.0.1:0\"\n\n[http]\nenabled = false\n\n[cluster]\ninstance = \"{INSTANCE}\"\n\
         name_server = \"{ns}\"\nnode_id = \"doomed\"\nheartbeat_ms = 200\ndead_after_ms = 2000\n"
    );
    let doomed = support::process::BrokerProcess::start(dir.path(), &config, &["tcp"]);
    until_peers(&a, &["doomed"], CROSSING).await;
    // A node beats from the start of its cluster part, before its listeners are bound: its
    // first heartbeats carry no address, the next one (heartbeat_ms later) its listener's.
    let address = doomed.addr.to_string();
    let deadline = Instant::now() + CROSSING;
    loop {
        let seen = a.cluster().unwrap().nodes;
        if seen
            .iter()
            .any(|n| n.node_id == "doomed" && n.address == address)
        {
            break;
        }
        assert!(Instant::now() < deadline, "{seen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    doomed.kill();
    // Its last heartbeat came at most heartbeat_ms before the kill; the view is polled.
    until_peers(&a, &[], Duration::from_millis(2000 + 200 + 500)).await;
    let (status, body) = healthz(&a).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("peers alive: none"), "{body}");

    a.shutdown().await;
}

/// A node that starts for the first time does not replay what the instance routed before
/// it (its group is moved to the end; on a client that cannot move it, it reads the history
/// and skips it); a node restarted with its data directory catches up on what was routed
/// while it was down (its persistent session's queue gets it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_node_skips_history_and_a_restarted_node_catches_up() {
    let _serial = SERVERS.lock().await;
    let Some(rocketmq) =
        RocketMq::start("a_new_node_skips_history_and_a_restarted_node_catches_up").await
    else {
        return;
    };
    let ns = rocketmq.name_server_addr();
    let data = tempfile::tempdir().unwrap();
    let durable = |config: &mut BrokerConfig| {
        config.storage = StorageKind::Redb;
        config.data_dir = data.path().to_owned();
    };
    let a = node(&ns, "a", |_| {}).await;
    let b = node(&ns, "b", durable).await;
    let mut sub = Client::connect(&b, "sub", false).await;
    subscribe(&mut sub, "t/#", QoS::AtLeastOnce).await;
    let publisher = Client::connect(&a, "publisher", true).await;
    publisher
        .client
        .publish("t/x", QoS::AtLeastOnce, false, "before")
        .await
        .unwrap();
    assert_eq!(
        &crossed(&mut sub, "while B runs").await.payload[..],
        b"before"
    );
    sub.disconnect().await;
    b.shutdown().await;
    drop(b);

    let mut publisher = publisher;
    for i in 0..5 {
        publisher
            .client
            .publish("t/x", QoS::AtLeastOnce, false, format!("missed-{i}"))
            .await
            .unwrap();
    }
    acked_all(&mut publisher, 6).await;

    // The stopped node's store closes when its last task lets go of it, a moment after
    // `shutdown` returned: a bounded number of tries.
    let mut restarted = None;
    for _ in 0..50 {
        match try_node(&ns, "b", durable).await {
            Ok(node) => {
                restarted = Some(node);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let b = restarted.expect("node b restarts on its data directory");
    let mut sub = Client::connect(&b, "sub", false).await;
    assert!(sub.session_present);
    let mut missed = Vec::new();
    while missed.len() < 5 {
        let publish = crossed(&mut sub, "what B missed").await;
        missed.push(String::from_utf8(publish.payload.to_vec()).unwrap());
    }
    assert_eq!(
        missed,
        (0..5).map(|i| format!("missed-{i}")).collect::<Vec<_>>()
    );
    sub.expect_nothing(Duration::from_secs(1)).await;
    // What its earlier run sent (heartbeats, its leave) is no other node with its id.
    assert_eq!(b.metrics().cluster_failed, 0, "{:?}", b.metrics());

    // A new node: its route group is moved to the end of the topic before its consumer
    // starts (a new consumer group on a young topic would start at offset 0), so nothing of
    // the history reaches its subscribers, nor is even read.
    let c = node(&ns, "c", |_| {}).await;
    let mut fresh = Client::connect(&c, "fresh", true).await;
    subscribe(&mut fresh, "t/#", QoS::AtLeastOnce).await;
    publisher
        .client
        .publish("t/x", QoS::AtLeastOnce, false, "after")
        .await
        .unwrap();
    assert_eq!(
        &crossed(&mut fresh, "a message after C started")
            .await
            .payload[..],
        b"after"
    );
    assert_eq!(
        &crossed(&mut sub, "the same at B").await.payload[..],
        b"after"
    );
    fresh.expect_nothing(Duration::from_secs(1)).await;
    assert_eq!(c.metrics().cluster_skipped_old, 0, "{:?}", c.metrics());

    // A new node on a client that cannot move its group: it reads the history, and skips
    // every message of it (older than the node).
    let settings = mqgate_broker::ClientSettings {
        name_server: ns.clone(),
        producer_group: "mqgate_itest_producer_d".into(),
        consume_from: mqgate_broker::ConsumeFrom::Last,
        send_timeout: Duration::from_secs(3),
    };
    let client = mqgate_broker::RustRocketMqClient::start_with(&settings)
        .await
        .unwrap();
    let mut config = BrokerConfig::ephemeral();
    config.listeners.amqp = None;
    config.listeners.amqps_addr = None;
    config.cluster = Some(cluster(&ns, "d"));
    let d = Broker::builder()
        .config(config)
        .cluster_client(std::sync::Arc::new(NoSeek(client)))
        .build()
        .start()
        .await
        .unwrap();
    let mut newest = Client::connect(&d, "newest", true).await;
    subscribe(&mut newest, "t/#", QoS::AtLeastOnce).await;
    let deadline = Instant::now() + CROSSING;
    while d.metrics().cluster_skipped_old < 7 {
        assert!(Instant::now() < deadline, "{:?}", d.metrics());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    newest.expect_nothing(Duration::from_secs(1)).await;

    for client in [sub, fresh, publisher, newest] {
        client.disconnect().await;
    }
    d.shutdown().await;
    c.shutdown().await;
    b.shutdown().await;
    a.shutdown().await;
}

/// The built-in client without [`RocketMqClient::start_at_end`] (the trait's default: it
/// does not move a group).
struct NoSeek(mqgate_broker::RustRocketMqClient);

impl mqgate_broker::RocketMqClient for NoSeek {
    fn send<'a>(
        &'a self,
        message: &'a mqgate_rocketmq::RocketMessage,
        order_key: Option<&'a str>,
    ) -> mqgate_broker::BoxFuture<'a, Result<(), mqgate_broker::ClientFailure>> {
        self.0.send(message, order_key)
    }

    fn consume(
        &self,
        topic: String,
        group: String,
        sink: tokio::sync::mpsc::Sender<mqgate_broker::Consumed>,
    ) -> mqgate_broker::BoxFuture<'_, Result<(), mqgate_broker::ClientFailure>> {
        self.0.consume(topic, group, sink)
    }

    fn consume_ordered(
        &self,
        topic: String,
        group: String,
        sink: tokio::sync::mpsc::Sender<mqgate_broker::Consumed>,
    ) -> mqgate_broker::BoxFuture<'_, Result<(), mqgate_broker::ClientFailure>> {
        self.0.consume_ordered(topic, group, sink)
    }

    fn shutdown(&self) -> mqgate_broker::BoxFuture<'_, ()> {
        self.0.shutdown()
    }
}

/// A QoS 1 publish is acknowledged only once RocketMQ stored its route message: while the
/// RocketMQ broker is down the publisher waits (and `/healthz` says RocketMQ is down); once
/// it is back, the acknowledgement comes and the message reaches the other node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qos1_publish_is_acknowledged_once_rocketmq_stored_it() {
    let _serial = SERVERS.lock().await;
    let Some(mut rocketmq) =
        RocketMq::start("a_qos1_publish_is_acknowledged_once_rocketmq_stored_it").await
    else {
        return;
    };
    let ns = rocketmq.name_server_addr();
    let a = node(&ns, "a", |_| {}).await;
    let b = node(&ns, "b", |_| {}).await;
    let mut sub = Client::connect(&b, "sub", true).await;
    subscribe(&mut sub, "f/#", QoS::AtLeastOnce).await;
    let mut publisher = Client::connect(&a, "publisher", true).await;
    publisher
        .client
        .publish("f/1", QoS::AtLeastOnce, false, "warm")
        .await
        .unwrap();
    acked_all(&mut publisher, 1).await;
    assert_eq!(
        &crossed(&mut sub, "the first message").await.payload[..],
        b"warm"
    );

    rocketmq.stop_broker().await;
    publisher
        .client
        .publish("f/1", QoS::AtLeastOnce, false, "during")
        .await
        .unwrap();
    let early = tokio::time::timeout(Duration::from_secs(3), publisher.acks.recv()).await;
    assert!(early.is_err(), "acknowledged while RocketMQ was down");
    let deadline = Instant::now() + CROSSING;
    while a.cluster().unwrap().rocketmq_up {
        assert!(Instant::now() < deadline, "RocketMQ never reported down");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = healthz(&a).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("rocketmq down"), "{body}");

    rocketmq.start_broker().await;
    // The client may need its next route refresh (every 30 s) to use the restarted broker.
    let recovery = Duration::from_secs(90);
    match tokio::time::timeout(recovery, publisher.acks.recv()).await {
        Ok(Some(_)) => {}
        _ => panic!("not acknowledged within {recovery:?} of RocketMQ's return"),
    }
    let deadline = Instant::now() + recovery;
    loop {
        // RocketMQ delivers at least once: "warm" may come again after its restart.
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, sub.publishes.recv()).await {
            Ok(Some(publish)) if &publish.payload[..] == b"during" => break,
            Ok(Some(publish)) => assert_eq!(&publish.payload[..], b"warm"),
            _ => panic!("the message published during the outage never reached node B"),
        }
    }

    sub.disconnect().await;
    publisher.disconnect().await;
    b.shutdown().await;
    a.shutdown().await;
}

/// A node with the RocketMQ bridge too: a PUBLISH under an outflow rule goes both to
/// RocketMQ's topic and to the other node, and is acknowledged once both took it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_and_the_cluster_together() {
    let _serial = SERVERS.lock().await;
    let Some(rocketmq) = RocketMq::start("the_bridge_and_the_cluster_together").await else {
        return;
    };
    let ns = rocketmq.name_server_addr();
    let side = rocketmq::ClientSide::new();
    let producer = side.producer(&ns).await;
    rocketmq::send(&producer, "SensorReports", &[], b"warm-up").await;
    let mut consumer = side
        .consumer(&ns, "SensorReports", "GID_test_reports")
        .await;
    let a = node(&ns, "a", |config| {
        config.rocketmq = Some(mqgate_broker::RocketMqConfig {
            name_server: ns.clone(),
            producer_group: "GID_bridge_producer".into(),
            consumer_group: "GID_bridge".into(),
            outflow: vec![mqgate_rocketmq::OutflowRule {
                mqtt_parent_topic: "sensors".into(),
                rocketmq_topic: Some("SensorReports".into()),
            }],
            ..mqgate_broker::RocketMqConfig::default()
        });
    })
    .await;
    let b = node(&ns, "b", |_| {}).await;
    let mut sub = Client::connect(&b, "sub", true).await;
    subscribe(&mut sub, "sensors/#", QoS::AtLeastOnce).await;

    let mut device = Client::connect(&a, "device", true).await;
    device
        .client
        .publish("sensors/t1", QoS::AtLeastOnce, false, "both ways")
        .await
        .unwrap();
    acked_all(&mut device, 1).await;
    let crossed_to_b = crossed(&mut sub, "the message at node B").await;
    assert_eq!(&crossed_to_b.payload[..], b"both ways");
    let deadline = Instant::now() + CROSSING;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = consumer
            .next(left)
            .await
            .expect("the copy in RocketMQ in time");
        if message.body == b"both ways" {
            assert_eq!(message.property("mqttSecondTopic"), Some("/t1"));
            break;
        }
    }
    let metrics = a.metrics();
    assert!(
        metrics.rocketmq_produced >= 1 && metrics.cluster_sent >= 1,
        "{metrics:?}"
    );

    sub.disconnect().await;
    device.disconnect().await;
    b.shutdown().await;
    a.shutdown().await;
    consumer.stop().await;
}

/// A node whose name server answers but whose RocketMQ broker is gone does not start: its
/// first heartbeat is not taken within `start_timeout_ms`, and the error says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_a_rocketmq_broker_fails_the_start_in_time() {
    let _serial = SERVERS.lock().await;
    let Some(mut rocketmq) =
        RocketMq::start("a_node_without_a_rocketmq_broker_fails_the_start_in_time").await
    else {
        return;
    };
    let ns = rocketmq.name_server_addr();
    rocketmq.stop_broker().await;
    let started = Instant::now();
    let error = try_node(&ns, "orphan", |config| {
        if let Some(cluster) = &mut config.cluster {
            cluster.start_timeout_ms = Duration::from_secs(3);
            cluster.send_timeout_ms = Duration::from_secs(1);
        }
    })
    .await
    .expect_err("no RocketMQ broker, no node");
    let text = error.to_string();
    assert!(
        text.contains("did not take this node's first heartbeat within 3000 ms"),
        "{text}"
    );
    // Bounded by the timeout and one more send attempt.
    assert!(started.elapsed() < CROSSING, "{:?}", started.elapsed());
}

/// A node whose name server does not answer does not start, and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_name_server_fails_the_start_clearly() {
    // Port 1 on loopback: nothing listens there, here or in the test namespace.
    let mut config = BrokerConfig::ephemeral();
    config.cluster = Some(cluster("127.0.0.1:1", "lonely"));
    let error = Broker::builder()
        .config(config)
        .build()
        .start()
        .await
        .expect_err("no name server, no node");
    let text = error.to_string();
    assert!(
        text.contains("cluster error: no RocketMQ name server reachable (127.0.0.1:1:"),
        "{text}"
    );
}

/// A raw MQTT client connected (clean session) to any broker's TCP address, with the
/// CONNACK code it got; `None` when the broker refused the TCP connection.
async fn raw_connect_at(
    addr: std::net::SocketAddr,
    id: &str,
) -> (support::Raw, mqgate_codec::ConnectReturnCode) {
    raw_connect_with_will(addr, id, None).await
}

/// [`raw_connect_at`] with a will.
async fn raw_connect_with_will(
    addr: std::net::SocketAddr,
    id: &str,
    will: Option<mqgate_codec::LastWill>,
) -> (support::Raw, mqgate_codec::ConnectReturnCode) {
    use mqgate_codec::{Connect, Packet};
    let mut raw = support::Raw::open_at(addr).await.expect("TCP connect");
    raw.send(Packet::Connect(Box::new(Connect {
        client_id: id.try_into().expect("id"),
        keep_alive: 60,
        clean_session: true,
        will,
        ..Connect::default()
    })))
    .await;
    match raw.recv().await {
        Some(Packet::ConnAck(ack)) => (raw, ack.code),
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

/// A raw client connected and accepted.
async fn raw_online(addr: std::net::SocketAddr, id: &str) -> support::Raw {
    let (raw, code) = raw_connect_at(addr, id).await;
    assert_eq!(code, mqgate_codec::ConnectReturnCode::Accepted, "{id}");
    raw
}

/// Whether a raw client's connection is still served: a PINGREQ is answered.
async fn still_served(raw: &mut support::Raw) -> bool {
    raw.send(mqgate_codec::Packet::PingReq).await;
    matches!(
        raw.recv_within(Duration::from_secs(5)).await,
        Ok(Some(mqgate_codec::Packet::PingResp))
    )
}

/// Waits (bounded) until the broker closes a raw client's connection.
async fn closed_within(raw: &mut support::Raw, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match raw.recv_within(left).await {
            Ok(None) => return,
            Ok(Some(_)) => continue,
            Err(()) => panic!("{what}: still open after {within:?}"),
        }
    }
}

/// The status events of `client` a listener gets until `until` says it has them all
/// (within [`CROSSING`]), then for one more second (to see a second copy).
async fn events_of(
    listener: &mut tokio::sync::broadcast::Receiver<mqgate_status::StatusEvent>,
    client: &str,
    until: impl Fn(&[mqgate_status::StatusEvent]) -> bool,
) -> Vec<mqgate_status::StatusEvent> {
    let mut got = Vec::new();
    let mut deadline = Instant::now() + CROSSING;
    let mut settled = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, listener.recv()).await {
            Ok(Ok(event)) if event.client_id == client => got.push(event),
            Ok(Ok(_)) => {}
            Ok(Err(error)) => panic!("status listener: {error}"),
            Err(_) if settled => return got,
            Err(_) => panic!("{client}: only {got:?} within {CROSSING:?}"),
        }
        if !settled && until(&got) {
            settled = true;
            deadline = Instant::now() + Duration::from_secs(1);
        }
    }
}

/// The kinds of `events`, in order.
fn kinds(events: &[mqgate_status::StatusEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

/// Polls the API's `QuerySessionByClientId` on `broker` until it answers `online`.
async fn until_online(broker: &BrokerHandle, client: &str, online: bool) {
    use auth_support::{api_get, AK, INSTANCE as API_INSTANCE, SECRET};
    let deadline = Instant::now() + CROSSING;
    loop {
        let answer = api_get(
            broker,
            AK,
            SECRET,
            "QuerySessionByClientId",
            &[("InstanceId", API_INSTANCE), ("ClientId", client)],
        )
        .await;
        assert_eq!(answer.status, 200, "{answer:?}");
        if answer.json()["OnlineStatus"] == online {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{client} not online={online} within {CROSSING:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Node A with the HTTP API (no MQTT clients of its own), for the cluster-wide answers.
fn with_api(config: &mut BrokerConfig) {
    let cluster = config.cluster.take();
    *config = auth_support::api_config("storage = \"memory\"", "", "");
    config.cluster = cluster;
}

/// Presence: a client connected to node B is online in the API of node A
/// (QuerySessionByClientId, BatchQuerySessionByClientIds), and offline there once it left;
/// each of its status events reaches a status listener on each node once, with the channel
/// id it had at B; the API's CloseConnection on A closes a client connected to B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_cluster_wide_and_each_event_reaches_each_listener_once() {
    use auth_support::{api_get, api_post, AK, INSTANCE as API_INSTANCE, SECRET};
    let _serial = SERVERS.lock().await;
    let Some(rocketmq) =
        RocketMq::start("presence_is_cluster_wide_and_each_event_reaches_each_listener_once").await
    else {
        return;
    };
    let ns = rocketmq.name_server_addr();
    let a = node(&ns, "a", with_api).await;
    let b = node(&ns, "b", |_| {}).await;
    let mut at_a = a.status_events();
    let mut at_b = b.status_events();

    let visitor = Client::connect(&b, "visitor", true).await;
    until_online(&a, "visitor", true).await;
    // ListClusterNodeClients on A lists B's clients, sorted, a page at a time.
    let another = Client::connect(&b, "another", true).await;
    until_online(&a, "another", true).await;
    let first = api_ok(
        &a,
        "ListClusterNodeClients",
        &[("NodeId", "b"), ("MaxResults", "1")],
    )
    .await;
    assert_eq!(
        first["ClientIds"],
        serde_json::json!(["another"]),
        "{first}"
    );
    assert_eq!(first["NextToken"], "another", "{first}");
    let rest = api_ok(
        &a,
        "ListClusterNodeClients",
        &[("NodeId", "b"), ("NextToken", "another")],
    )
    .await;
    assert_eq!(rest["ClientIds"], serde_json::json!(["visitor"]), "{rest}");
    assert!(rest.get("NextToken").is_none(), "{rest}");
    let at_node_a = api_ok(&a, "ListClusterNodeClients", &[("NodeId", "a")]).await;
    assert_eq!(at_node_a["ClientIds"], serde_json::json!([]), "{at_node_a}");
    another.disconnect().await;
    until_online(&a, "another", false).await;
    let batch = api_get(
        &a,
        AK,
        SECRET,
        "BatchQuerySessionByClientIds",
        &[
            ("InstanceId", API_INSTANCE),
            ("ClientIdList.1", "visitor"),
            ("ClientIdList.2", "nobody"),
        ],
    )
    .await;
    assert_eq!(batch.status, 200, "{batch:?}");
    let list: Vec<(String, bool)> = batch.json()["OnlineStatusList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["ClientId"].as_str().unwrap().to_owned(),
                e["OnlineStatus"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        list,
        [("visitor".to_owned(), true), ("nobody".to_owned(), false)]
    );
    visitor.disconnect().await;
    until_online(&a, "visitor", false).await;

    let complete = |events: &[mqgate_status::StatusEvent]| {
        events
            .iter()
            .any(|e| e.event_type == mqgate_status::EventType::Tcpclean)
    };
    let seen_at_a = events_of(&mut at_a, "visitor", complete).await;
    let seen_at_b = events_of(&mut at_b, "visitor", complete).await;
    assert_eq!(kinds(&seen_at_b), ["connect", "disconnect", "tcpclean"]);
    assert_eq!(seen_at_a, seen_at_b, "the same events, once each");
    let channels: BTreeSet<_> = seen_at_a.iter().map(|e| e.channel_id).collect();
    assert_eq!(channels.len(), 1, "one connection: {seen_at_a:?}");

    // CloseConnection on A closes the client where it is, on B.
    let mut held = raw_online(support::tcp_addr(&b), "held").await;
    until_online(&a, "held", true).await;
    let closed = api_post(
        &a,
        AK,
        SECRET,
        "CloseConnection",
        &[("InstanceId", API_INSTANCE), ("ClientId", "held")],
    )
    .await;
    assert_eq!(closed.status, 200, "{closed:?}");
    let json = closed.json();
    assert_eq!(json["Success"], true, "{json}");
    assert_eq!(json["Message"], "connection closed by node b", "{json}");
    closed_within(
        &mut held,
        CROSSING,
        "the client closed by another node's API",
    )
    .await;
    until_online(&a, "held", false).await;
    let gone = api_post(
        &a,
        AK,
        SECRET,
        "CloseConnection",
        &[("InstanceId", API_INSTANCE), ("ClientId", "held")],
    )
    .await;
    assert_eq!(gone.json()["Success"], false, "{gone:?}");
    assert_eq!(a.metrics().cluster_failed, 0, "{:?}", a.metrics());
    assert_eq!(b.metrics().cluster_failed, 0, "{:?}", b.metrics());

    b.shutdown().await;
    a.shutdown().await;
}

/// A node joining learns who is online on the others (their answers to its hello), so its
/// API answers for clients that connected before it started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_node_learns_who_is_online() {
    let _serial = SERVERS.lock().await;
    let Some(rocketmq) = RocketMq::start("a_joining_node_learns_who_is_online").await else {
        return;
    };
    let ns = rocketmq.name_server_addr();
    let b = node(&ns, "b", |_| {}).await;
    let early = Client::connect(&b, "early", true).await;
    let a = node(&ns, "a", with_api).await;
    until_online(&a, "early", true).await;
    early.disconnect().await;
    until_online(&a, "early", false).await;
    a.shutdown().await;
    b.shutdown().await;
}

/// A node SIGKILLed with clients connected: once it has been silent for `dead_after_ms`,
/// the lowest live node sends one tcpclean for each client (with the client's channel id),
/// which a status listener on each live node gets once, within the bound docs/cluster.md
/// states (dead_after_ms + heartbeat_ms + 2 s + a RocketMQ round trip), and publishes the
/// will of the client that left one (carried in its connect), which a subscriber on another
/// node gets once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_clients_get_one_tcpclean_within_the_bound() {
    let _serial = SERVERS.lock().await;
    let Some(rocketmq) =
        RocketMq::start("a_killed_nodes_clients_get_one_tcpclean_within_the_bound").await
    else {
        return;
    };
    let ns = rocketmq.name_server_addr();
    let a = node(&ns, "a", with_api).await;
    let b = node(&ns, "b", |_| {}).await;
    let mut at_a = a.status_events();
    let mut at_b = b.status_events();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "allow_anonymous = true\nstorage = \"memory\"\n\n[listeners]\ntcp = \"127.0.0.1:0\"\n\
         ws = \"127.0.0.1:0\"\n\n[http]\nenabled = false\n\n[cluster]\ninstance = \"{INSTANCE}\"\n\
         name_server = \"{ns}\"\nnode_id = \"doomed\"\nheartbeat_ms = 200\ndead_after_ms = 2000\n"
    );
    let doomed = support::process::BrokerProcess::start(dir.path(), &config, &["tcp"]);
    until_peers(&a, &["b", "doomed"], CROSSING).await;
    let _orphan = raw_online(doomed.addr, "orphan").await;
    let will = |payload: &'static [u8]| mqgate_codec::LastWill {
        topic: "gone/heir".try_into().expect("topic"),
        payload: bytes::Bytes::from_static(payload),
        qos: mqgate_codec::QoS::AtLeastOnce,
        retain: false,
    };
    let (_heir, code) =
        raw_connect_with_will(doomed.addr, "heir", Some(will(b"heir's will"))).await;
    assert_eq!(code, mqgate_codec::ConnectReturnCode::Accepted);
    let mut watcher = Client::connect(&b, "watcher", true).await;
    subscribe(&mut watcher, "gone/#", QoS::AtLeastOnce).await;
    until_online(&a, "orphan", true).await;
    until_online(&a, "heir", true).await;

    doomed.kill();
    let killed = Instant::now();
    let tcpclean = |events: &[mqgate_status::StatusEvent]| {
        events
            .iter()
            .any(|e| e.event_type == mqgate_status::EventType::Tcpclean)
    };
    let seen_at_a = events_of(&mut at_a, "orphan", tcpclean).await;
    let cleaned_after = killed.elapsed();
    let seen_at_b = events_of(&mut at_b, "orphan", tcpclean).await;
    assert_eq!(kinds(&seen_at_a), ["connect", "tcpclean"], "{seen_at_a:?}");
    assert_eq!(seen_at_a, seen_at_b);
    assert_eq!(
        seen_at_a[0].channel_id, seen_at_a[1].channel_id,
        "the tcpclean closes the connection the connect opened"
    );
    // The bound (dead_after_ms + heartbeat_ms + 2 s), with room for a slow RocketMQ
    // delivery and the second `events_of` waits for a copy.
    let bound = Duration::from_millis(2000 + 200 + 2000) + Duration::from_secs(8);
    assert!(cleaned_after < bound, "{cleaned_after:?}");
    until_online(&a, "orphan", false).await;
    until_online(&a, "heir", false).await;
    let will = crossed(&mut watcher, "the will of a dead node's client").await;
    assert_eq!(
        (will.topic.as_str(), &will.payload[..]),
        ("gone/heir", &b"heir's will"[..])
    );
    watcher.expect_nothing(Duration::from_secs(2)).await;
    assert_eq!(a.metrics().wills_published, 1, "{:?}", a.metrics());
    assert_eq!(b.metrics().wills_published, 0, "{:?}", b.metrics());
    watcher.disconnect().await;

    b.shutdown().await;
    a.shutdown().await;
}

/// Waits (bounded) until `listener` gave an event of `kind` for each of `clients`.
async fn until_each(
    listener: &mut tokio::sync::broadcast::Receiver<mqgate_status::StatusEvent>,
    clients: &[&str],
    kind: EventType,
) {
    let mut left: BTreeSet<&str> = clients.iter().copied().collect();
    let deadline = Instant::now() + CROSSING;
    while !left.is_empty() {
        let wait = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(wait, listener.recv()).await {
            Ok(Ok(event)) if event.event_type == kind => {
                left.remove(event.client_id.as_str());
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => panic!("status listener: {error}"),
            Err(_) => panic!("no {kind} of {left:?} within {CROSSING:?}"),
        }
    }
}

/// MQTT 5 options for `id` at `addr`: Clean Start 0, a Session Expiry Interval of 60 s,
/// and a will on `gone/{id}` that waits `delay_s` once the connection is lost.
fn delayed_will(addr: std::net::SocketAddr, id: &str, delay_s: u32) -> rumqttc::v5::MqttOptions {
    use rumqttc::v5::mqttbytes::v5::{LastWill, LastWillProperties};
    let mut options = rumqttc::v5::MqttOptions::new(id, addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_start(false);
    options.set_session_expiry_interval(Some(60));
    let properties = LastWillProperties {
        delay_interval: Some(delay_s),
        payload_format_indicator: None,
        message_expiry_interval: None,
        content_type: None,
        response_topic: None,
        correlation_data: None,
        user_properties: Vec::new(),
    };
    let qos = rumqttc::v5::mqttbytes::QoS::AtLeastOnce;
    let will = LastWill::new(
        format!("gone/{id}"),
        id.to_owned(),
        qos,
        false,
        Some(properties),
    );
    options.set_last_will(will);
    options
}

/// MQTT 5 will delays across nodes. A dead node's client's will waits for its Will Delay
/// Interval at the node that cleans up after it, and is not published if the client connects
/// again (on any node) before it passed; a client whose connection to one node was lost and
/// that connects to another node within the delay has its will dropped by the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_delays_hold_across_nodes() {
    use support::mqtt5::Client5;
    let _serial = SERVERS.lock().await;
    let Some(rocketmq) = RocketMq::start("will_delays_hold_across_nodes").await else {
        return;
    };
    let ns = rocketmq.name_server_addr();
    let a = node(&ns, "a", |_| {}).await;
    let b = node(&ns, "b", |_| {}).await;
    let (a_addr, b_addr) = (support::tcp_addr(&a), support::tcp_addr(&b));
    let mut at_a = a.status_events();
    let mut at_b = b.status_events();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "allow_anonymous = true\nstorage = \"memory\"\n\n[listeners]\ntcp = \"127.0.0.1:0\"\n\
         ws = \"127.0.0.1:0\"\n\n[http]\nenabled = false\n\n[cluster]\ninstance = \"{INSTANCE}\"\n\
         name_server = \"{ns}\"\nnode_id = \"doomed\"\nheartbeat_ms = 200\ndead_after_ms = 2000\n"
    );
    let doomed = support::process::BrokerProcess::start(dir.path(), &config, &["tcp"]);
    until_peers(&a, &["b", "doomed"], CROSSING).await;
    let mut watcher = Client::connect(&a, "watcher", true).await;
    subscribe(&mut watcher, "gone/#", QoS::AtLeastOnce).await;
    let late = Client5::with_options(delayed_will(doomed.addr, "late", 3)).await;
    let back = Client5::with_options(delayed_will(doomed.addr, "back", 8)).await;
    let roamer = Client5::with_options(delayed_will(b_addr, "roamer", 3)).await;
    let (connect, tcpclean) = (EventType::Connect, EventType::Tcpclean);
    until_each(&mut at_a, &["late", "back", "roamer"], connect).await;

    // The roamer's connection to B is lost (no DISCONNECT); it connects to A within its will's
    // delay, and B, told so, drops the will.
    drop(roamer);
    until_each(&mut at_b, &["roamer"], tcpclean).await;
    let roamer = Client5::with_options(delayed_will(a_addr, "roamer", 3)).await;

    doomed.kill();
    until_each(&mut at_a, &["late", "back"], tcpclean).await;
    // The dead node's clients are cleaned up; one comes back within its delay.
    let back_again = Client5::with_options(delayed_will(b_addr, "back", 8)).await;
    watcher.expect_nothing(Duration::from_millis(1500)).await;
    let will = crossed(&mut watcher, "the delayed will of a dead node's client").await;
    assert_eq!(
        (will.topic.as_str(), &will.payload[..]),
        ("gone/late", &b"late"[..])
    );
    // Past the roamer's and the returning client's delays: neither will comes.
    watcher.expect_nothing(Duration::from_secs(7)).await;
    assert_eq!(a.metrics().wills_published, 1, "{:?}", a.metrics());
    assert_eq!(b.metrics().wills_published, 0, "{:?}", b.metrics());
    back_again.disconnect().await;
    roamer.disconnect().await;
    drop(late);
    drop(back);
    watcher.disconnect().await;
    b.shutdown().await;
    a.shutdown().await;
}

/// Takeover across nodes (the default, kick-old): a client connected to node A that connects
/// again to node B loses its connection at A; the new one at B stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_connecting_to_another_node_closes_its_old_connection() {
    let _serial = SERVERS.lock().await;
    let Some(rocketmq) =
        RocketMq::start("a_client_connecting_to_another_node_closes_its_old_connection").await
    else {
        return;
    };
    let ns = rocketmq.name_server_addr();
    let a = node(&ns, "a", |_| {}).await;
    let b = node(&ns, "b", |_| {}).await;
    let mut at_b = b.status_events();
    let mut old = raw_online(support::tcp_addr(&a), "mover").await;
    // B knows it is at A (its connect crossed).
    events_of(&mut at_b, "mover", |events| !events.is_empty()).await;
    let mut new = raw_online(support::tcp_addr(&b), "mover").await;
    closed_within(&mut old, CROSSING, "the old connection at A").await;
    assert!(still_served(&mut new).await, "the new connection at B");
    assert_eq!(a.metrics().takeovers, 1, "{:?}", a.metrics());
    assert_eq!(b.metrics().takeovers, 0, "{:?}", b.metrics());
    b.shutdown().await;
    a.shutdown().await;
}

/// With `takeover = "refuse_new"`, a client online on node A is refused at node B
/// (CONNACK: identifier rejected) and keeps its connection at A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuse_new_refuses_a_client_online_on_another_node() {
    let _serial = SERVERS.lock().await;
    let Some(rocketmq) =
        RocketMq::start("refuse_new_refuses_a_client_online_on_another_node").await
    else {
        return;
    };
    let ns = rocketmq.name_server_addr();
    let refuse =
        |config: &mut BrokerConfig| config.takeover = mqgate_broker::TakeoverPolicy::RefuseNew;
    let a = node(&ns, "a", refuse).await;
    let b = node(&ns, "b", refuse).await;
    let mut at_b = b.status_events();
    let mut first = raw_online(support::tcp_addr(&a), "stayer").await;
    events_of(&mut at_b, "stayer", |events| !events.is_empty()).await;
    let (_refused, code) = raw_connect_at(support::tcp_addr(&b), "stayer").await;
    assert_eq!(code, mqgate_codec::ConnectReturnCode::IdentifierRejected);
    assert!(still_served(&mut first).await, "the first connection at A");
    // Once it left A, B takes it.
    drop(first);
    let deadline = Instant::now() + CROSSING;
    loop {
        let (mut raw, code) = raw_connect_at(support::tcp_addr(&b), "stayer").await;
        if code == mqgate_codec::ConnectReturnCode::Accepted {
            assert!(still_served(&mut raw).await);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B still refuses after A's tcpclean"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.shutdown().await;
    a.shutdown().await;
}

/// Two nodes with the same RocketMQ status rule: each status event of a client reaches the
/// rule's RocketMQ topic once (from the node the client is on), not once per node, while a
/// status listener on the other node still gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_rule_on_every_node_sends_each_event_to_rocketmq_once() {
    let _serial = SERVERS.lock().await;
    let Some(rocketmq) =
        RocketMq::start("a_status_rule_on_every_node_sends_each_event_to_rocketmq_once").await
    else {
        return;
    };
    let ns = rocketmq.name_server_addr();
    let side = rocketmq::ClientSide::new();
    let producer = side.producer(&ns).await;
    rocketmq::send(&producer, "ClusterStatus", &[], b"warm-up").await;
    let mut consumer = side
        .consumer(&ns, "ClusterStatus", "GID_test_cluster_status")
        .await;
    let with_rule = |id: &'static str| {
        let ns = ns.clone();
        move |config: &mut BrokerConfig| {
            config.rocketmq = Some(mqgate_broker::RocketMqConfig {
                name_server: ns,
                producer_group: format!("GID_status_producer_{id}"),
                consumer_group: format!("GID_status_{id}"),
                status: vec![mqgate_rocketmq::StatusRule {
                    group_id: "GID_dev".into(),
                    rocketmq_topic: "ClusterStatus".into(),
                }],
                ..mqgate_broker::RocketMqConfig::default()
            });
        }
    };
    let a = node(&ns, "a", with_rule("a")).await;
    let b = node(&ns, "b", with_rule("b")).await;
    let mut at_a = a.status_events();
    let device = Client::connect(&b, "GID_dev@@@d1", true).await;
    device.disconnect().await;
    let tcpclean = |events: &[mqgate_status::StatusEvent]| {
        events
            .iter()
            .any(|e| e.event_type == mqgate_status::EventType::Tcpclean)
    };
    let seen_at_a = events_of(&mut at_a, "GID_dev@@@d1", tcpclean).await;
    assert_eq!(kinds(&seen_at_a), ["connect", "disconnect", "tcpclean"]);

    let mut in_rocketmq = Vec::new();
    let deadline = Instant::now() + CROSSING;
    while in_rocketmq.len() < 3 && Instant::now() < deadline {
        if let Some(message) = consumer.next(Duration::from_secs(1)).await {
            if message.body != b"warm-up" {
                in_rocketmq.push(message.tags.unwrap_or_default());
            }
        }
    }
    // A second node forwarding them would send three more.
    while let Some(message) = consumer.next(Duration::from_secs(3)).await {
        if message.body != b"warm-up" {
            in_rocketmq.push(message.tags.unwrap_or_default());
        }
    }
    // Their order is the consumer's (this one is not orderly).
    in_rocketmq.sort();
    assert_eq!(in_rocketmq, ["connect", "disconnect", "tcpclean"]);

    b.shutdown().await;
    a.shutdown().await;
    consumer.stop().await;
}

/// A node that stops cleanly closes its clients and sends their tcpcleans before it says it
/// leaves: a status listener on another node gets each client's tcpclean once (the lowest
/// node, seeing the node gone, does not send a second one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_nodes_clients_get_their_tcpclean_once() {
    let _serial = SERVERS.lock().await;
    let Some(rocketmq) = RocketMq::start("a_stopping_nodes_clients_get_their_tcpclean_once").await
    else {
        return;
    };
    let ns = rocketmq.name_server_addr();
    let a = node(&ns, "a", |_| {}).await;
    let b = node(&ns, "b", |_| {}).await;
    let mut at_a = a.status_events();
    let _leaver = raw_online(support::tcp_addr(&b), "leaver").await;
    events_of(&mut at_a, "leaver", |events| !events.is_empty()).await;
    b.shutdown().await;
    let tcpclean = |events: &[mqgate_status::StatusEvent]| {
        events
            .iter()
            .any(|e| e.event_type == mqgate_status::EventType::Tcpclean)
    };
    let seen = events_of(&mut at_a, "leaver", tcpclean).await;
    assert_eq!(kinds(&seen), ["tcpclean"]);
    // Past the time A would have sent one itself (dead_after_ms, then 2 s), nothing more.
    let quiet = Instant::now() + Duration::from_millis(2000 + 2000 + 1000);
    loop {
        let left = quiet.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, at_a.recv()).await {
            Ok(Ok(event)) => assert_ne!(event.client_id, "leaver", "a second event: {event:?}"),
            Ok(Err(error)) => panic!("status listener: {error}"),
            Err(_) => break,
        }
    }
    a.shutdown().await;
}

/// A node with `[auth]` (key `AK`, instance `mqtt-test`), the HTTP API, memory storage and
/// `disconnect_on_token_invalid`, for the registry tests.
fn with_registry(config: &mut BrokerConfig) {
    let cluster = config.cluster.take();
    *config = auth_support::api_config(
        "storage = \"memory\"",
        "",
        "disconnect_on_token_invalid = true\ntoken_check_interval_ms = 200",
    );
    config.cluster = cluster;
}

/// A signed call of the API on `broker` that must succeed; its answer.
async fn api_ok(broker: &BrokerHandle, action: &str, params: &[(&str, &str)]) -> serde_json::Value {
    use auth_support::{api_get, ok, AK, INSTANCE as API_INSTANCE, SECRET};
    let mut all = vec![("InstanceId", API_INSTANCE)];
    all.extend_from_slice(params);
    ok(&api_get(broker, AK, SECRET, action, &all).await)
}

/// Connects with `options()` again and again (bounded by [`CROSSING`]) until the CONNACK is
/// `code`; how long that took.
async fn until_connack(
    options: impl Fn() -> rumqttc::MqttOptions,
    code: rumqttc::ConnectReturnCode,
    what: &str,
) -> Duration {
    let started = Instant::now();
    loop {
        let got = auth_support::connack_code(options()).await;
        if got == code {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < CROSSING,
            "{what}: CONNACK {got:?}, not {code:?}, after {CROSSING:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Token credentials for `client` on `broker`.
fn token_login(broker: &BrokerHandle, client: &str, token: &str) -> rumqttc::MqttOptions {
    use auth_support::{AK, INSTANCE as API_INSTANCE};
    let mut options = auth_support::options(broker, client);
    options.set_credentials(format!("Token|{AK}|{API_INSTANCE}"), format!("RW|{token}"));
    options
}

/// Device-credential login for `client` on `broker`, with the credential the API returned.
fn device_login(
    broker: &BrokerHandle,
    client: &str,
    credential: &serde_json::Value,
) -> rumqttc::MqttOptions {
    let key = credential["DeviceAccessKeyId"].as_str().expect("key id");
    let secret = credential["DeviceAccessKeySecret"]
        .as_str()
        .expect("secret");
    let mut options = auth_support::options(broker, client);
    options.set_credentials(
        format!("DeviceCredential|{key}|{}", auth_support::INSTANCE),
        mqgate_auth::sign_client_id(secret, client),
    );
    options
}

/// The registries are cluster-wide: a group and a token created on A let a client log in on
/// B; a device credential registered on A works on B; the token revoked on B is refused on
/// A within one RocketMQ delivery, and A closes the live connection that logged in with it
/// (`disconnect_on_token_invalid`); a device credential removed on B is refused on A; a
/// client id blacklisted on B is refused on A and its connection there closed; a custom
/// identity added on A logs in on B. A third node started after all this gets every change:
/// the group, the credential, the identity and the blacklist work there, the revoked token
/// and the removed credential do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registries_are_cluster_wide_and_a_later_node_gets_them() {
    use rumqttc::ConnectReturnCode as Code;
    let _serial = SERVERS.lock().await;
    let Some(rocketmq) = RocketMq::start("registries_are_cluster_wide").await else {
        return;
    };
    let ns = rocketmq.name_server_addr();
    let a = node(&ns, "a", with_registry).await;
    let b = node(&ns, "b", with_registry).await;
    until_peers(&a, &["b"], CROSSING).await;
    until_peers(&b, &["a"], CROSSING).await;

    // A group and a token made on A log a client in on B.
    api_ok(&a, "CreateGroupId", &[("GroupId", "GID_reg")]).await;
    let expire = (auth_support::now_ms() + 3_600_000).to_string();
    let token = api_ok(
        &a,
        "ApplyToken",
        &[
            ("Resources", "reg/#"),
            ("Actions", "R,W"),
            ("ExpireTime", &expire),
        ],
    )
    .await["Token"]
        .as_str()
        .expect("a token")
        .to_owned();
    let took = until_connack(
        || token_login(&b, "GID_reg@@@t1", &token),
        Code::Success,
        "the token made on A, at B",
    )
    .await;
    eprintln!("a token made on A logged in on B after {took:?}");

    // A device credential registered on A works on B.
    let credential = api_ok(
        &a,
        "RegisterDeviceCredential",
        &[("ClientId", "GID_reg@@@dev")],
    )
    .await["DeviceCredential"]
        .clone();
    until_connack(
        || device_login(&b, "GID_reg@@@dev", &credential),
        Code::Success,
        "the device credential made on A, at B",
    )
    .await;
    // Another, removed on B once A has it: refused on A.
    let removed = api_ok(
        &a,
        "RegisterDeviceCredential",
        &[("ClientId", "GID_reg@@@dev2")],
    )
    .await["DeviceCredential"]
        .clone();
    until_connack(
        || device_login(&b, "GID_reg@@@dev2", &removed),
        Code::Success,
        "the second device credential, at B",
    )
    .await;
    api_ok(
        &b,
        "UnRegisterDeviceCredential",
        &[("ClientId", "GID_reg@@@dev2")],
    )
    .await;
    until_connack(
        || device_login(&a, "GID_reg@@@dev2", &removed),
        Code::BadUserNamePassword,
        "the device credential removed on B, at A",
    )
    .await;

    // A custom identity added on A logs in on B.
    api_ok(
        &a,
        "AddCustomAuthIdentity",
        &[
            ("IdentityType", "USER"),
            ("Username", "reg-user"),
            ("Secret", "reg-secret"),
            ("SignMode", "ORIGIN"),
        ],
    )
    .await;
    let custom = |broker: &BrokerHandle| {
        let mut options = auth_support::options(broker, "GID_reg@@@custom");
        options.set_credentials("reg-user", "reg-secret");
        options
    };
    until_connack(|| custom(&b), Code::Success, "the identity made on A, at B").await;

    // A live connection on A with the token, and one of a client id to be blacklisted.
    let mut live = Client::with_options(token_login(&a, "GID_reg@@@live", &token)).await;
    let mut doomed = Client::with_options(token_login(&a, "GID_reg@@@bad", &token)).await;
    assert!(a.is_online("GID_reg@@@live") && a.is_online("GID_reg@@@bad"));

    // Revoked on B: refused on A within one RocketMQ delivery, the live connection closed.
    api_ok(&b, "RevokeToken", &[("Token", &token)]).await;
    let took = until_connack(
        || token_login(&a, "GID_reg@@@t2", &token),
        Code::NotAuthorized,
        "the token revoked on B, at A",
    )
    .await;
    eprintln!("a token revoked on B was refused on A after {took:?}");
    let closed = tokio::time::timeout(CROSSING, async {
        while live.publishes.recv().await.is_some() {}
    })
    .await;
    assert!(closed.is_ok(), "the live token connection on A stays open");
    assert!(!a.is_online("GID_reg@@@live"));

    // Blacklisted on B: refused on A; the connection there is closed (its token was
    // revoked too, so it may be closed for either reason).
    api_ok(
        &b,
        "AddCustomAuthConnectBlack",
        &[("ClientId", "GID_reg@@@blocked")],
    )
    .await;
    let blocked = |broker: &BrokerHandle| {
        auth_support::signed(
            broker,
            "GID_reg@@@blocked",
            auth_support::AK,
            auth_support::SECRET,
        )
    };
    until_connack(
        || blocked(&a),
        Code::NotAuthorized,
        "blacklisted on B, at A",
    )
    .await;
    let closed = tokio::time::timeout(CROSSING, async {
        while doomed.publishes.recv().await.is_some() {}
    })
    .await;
    assert!(closed.is_ok(), "the other token connection on A stays open");

    // A third node, started after every change, has them all.
    let c = node(&ns, "c", with_registry).await;
    until_connack(
        || device_login(&c, "GID_reg@@@dev", &credential),
        Code::Success,
        "the device credential (and group) made on A, at the later node C",
    )
    .await;
    until_connack(|| custom(&c), Code::Success, "the identity, at C").await;
    until_connack(|| blocked(&c), Code::NotAuthorized, "the blacklist, at C").await;
    assert_eq!(
        auth_support::connack_code(token_login(&c, "GID_reg@@@t3", &token)).await,
        Code::NotAuthorized,
        "the revoked token at C"
    );
    assert_eq!(
        auth_support::connack_code(device_login(&c, "GID_reg@@@dev2", &removed)).await,
        Code::BadUserNamePassword,
        "the removed device credential at C"
    );
    let groups = api_ok(&c, "ListGroupId", &[]).await;
    assert_eq!(groups["Data"][0]["GroupId"], "GID_reg", "{groups}");
    // The token is there, revoked (not unknown): its QueryToken says invalid either way,
    // but a signed login of the group works, so the group is there.
    assert_eq!(
        auth_support::connack_code(auth_support::signed(
            &c,
            "GID_reg@@@sig",
            auth_support::AK,
            auth_support::SECRET
        ))
        .await,
        Code::Success
    );

    c.shutdown().await;
    b.shutdown().await;
    a.shutdown().await;
}

/// A retained message set on A (and another set on B) before node C started reaches a
/// subscriber on C: C gets them from the live nodes when it joins; a retained message
/// cleared before C started does not come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_node_gets_the_retained_messages_set_before_it() {
    let _serial = SERVERS.lock().await;
    let Some(rocketmq) = RocketMq::start("a_later_node_gets_retained").await else {
        return;
    };
    let ns = rocketmq.name_server_addr();
    let a = node(&ns, "a", |_| {}).await;
    let b = node(&ns, "b", |_| {}).await;
    until_peers(&a, &["b"], CROSSING).await;
    let mut watcher = Client::connect(&b, "watcher", true).await;
    subscribe(&mut watcher, "kept/#", QoS::AtLeastOnce).await;
    let mut publisher = Client::connect(&a, "publisher", true).await;
    for (topic, payload) in [
        ("kept/a", "from A"),
        ("kept/gone", "soon cleared"),
        ("kept/gone", ""),
    ] {
        publisher
            .client
            .publish(topic, QoS::AtLeastOnce, true, payload)
            .await
            .unwrap();
    }
    acked_all(&mut publisher, 3).await;
    b.publish("kept/b", "from B", mqgate_codec::QoS::AtLeastOnce, true)
        .await
        .expect("published on B");
    // B has A's retained changes (so a snapshot of B would hold them too), and its own.
    let mut seen = receive(&mut watcher, 4).await;
    let own = seen.iter().position(|p| p == "from B").expect("B's own");
    seen.remove(own);
    assert_eq!(seen, ["from A", "soon cleared", ""]);

    let c = node(&ns, "c", |_| {}).await;
    until_peers(&c, &["a", "b"], CROSSING).await;
    let deadline = Instant::now() + CROSSING;
    let got = loop {
        let mut late = Client::connect(&c, "late", true).await;
        subscribe(&mut late, "kept/#", QoS::AtLeastOnce).await;
        let mut got = BTreeSet::new();
        while let Ok(Some(publish)) =
            tokio::time::timeout(Duration::from_millis(500), late.publishes.recv()).await
        {
            assert!(publish.retain, "{publish:?}");
            got.insert((
                publish.topic.clone(),
                String::from_utf8(publish.payload.to_vec()).unwrap(),
            ));
        }
        late.disconnect().await;
        if got.len() >= 2 || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let expected: BTreeSet<(String, String)> = [("kept/a", "from A"), ("kept/b", "from B")]
        .into_iter()
        .map(|(t, p)| (t.to_owned(), p.to_owned()))
        .collect();
    assert_eq!(got, expected, "retained messages at the later node C");

    for client in [watcher, publisher] {
        client.disconnect().await;
    }
    c.shutdown().await;
    b.shutdown().await;
    a.shutdown().await;
}

/// A node restarted with its data catches up on the registry changes made while it was
/// down, removals included (a snapshot holds no removed record): a group created before it
/// stopped and deleted meanwhile is gone there, a device credential registered meanwhile
/// works there. Then it is stamped like any other: a credential it removes is refused on A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_catches_up_on_registry_changes() {
    use rumqttc::ConnectReturnCode as Code;
    let _serial = SERVERS.lock().await;
    let Some(rocketmq) = RocketMq::start("a_restarted_node_catches_up_on_registries").await else {
        return;
    };
    let ns = rocketmq.name_server_addr();
    let data = tempfile::tempdir().unwrap();
    let durable = |config: &mut BrokerConfig| {
        with_registry(config);
        config.storage = StorageKind::Redb;
        config.data_dir = data.path().to_owned();
    };
    let a = node(&ns, "a", with_registry).await;
    let b = node(&ns, "b", durable).await;
    until_peers(&a, &["b"], CROSSING).await;
    api_ok(&a, "CreateGroupId", &[("GroupId", "GID_old")]).await;
    api_ok(&a, "CreateGroupId", &[("GroupId", "GID_new")]).await;
    let signed = |broker: &BrokerHandle, client: &str| {
        auth_support::signed(broker, client, auth_support::AK, auth_support::SECRET)
    };
    until_connack(|| signed(&b, "GID_old@@@1"), Code::Success, "GID_old at B").await;
    until_connack(|| signed(&b, "GID_new@@@1"), Code::Success, "GID_new at B").await;
    b.shutdown().await;
    drop(b);

    api_ok(&a, "DeleteGroupId", &[("GroupId", "GID_old")]).await;
    let credential = api_ok(
        &a,
        "RegisterDeviceCredential",
        &[("ClientId", "GID_new@@@dev")],
    )
    .await["DeviceCredential"]
        .clone();

    // The stopped node's store closes a moment after `shutdown` returned: bounded tries.
    let mut restarted = None;
    for _ in 0..50 {
        match try_node(&ns, "b", durable).await {
            Ok(node) => {
                restarted = Some(node);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let b = restarted.expect("B restarts on its data");
    until_connack(
        || device_login(&b, "GID_new@@@dev", &credential),
        Code::Success,
        "the credential registered while B was down, at B",
    )
    .await;
    until_connack(
        || signed(&b, "GID_old@@@2"),
        Code::NotAuthorized,
        "the group deleted while B was down, at B",
    )
    .await;
    api_ok(
        &b,
        "UnRegisterDeviceCredential",
        &[("ClientId", "GID_new@@@dev")],
    )
    .await;
    until_connack(
        || device_login(&a, "GID_new@@@dev", &credential),
        Code::BadUserNamePassword,
        "the credential removed on the restarted B, at A",
    )
    .await;

    b.shutdown().await;
    a.shutdown().await;
}
