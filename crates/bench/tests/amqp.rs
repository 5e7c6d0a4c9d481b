//! The AMQP scenarios against mqgate's cloud SDK endpoint, in process: the generator's own
//! client logs in as the SDK does, every publish is confirmed, every device message fed
//! through MQTT reaches the consumers of the parent topic's queue, and a wrong secret fails
//! the run instead of measuring nothing.

use mqgate_bench::{run_amqp, AmqpFeed, AmqpLogin, AmqpRunConfig, AmqpScenario};
use mqgate_broker::{Broker, BrokerConfig, BrokerHandle, ListenerKind, StorageKind};

// What benches/peers/mqgate-amqp.toml configures, which these tests run.
const INSTANCE: &str = "post-cn-bench";
const AK: &str = "LTAI_bench";
const SECRET: &str = "bench-secret";

/// The broker of `benches/compare.sh --amqp`, in memory and on free ports.
async fn start() -> BrokerHandle {
    let text = include_str!("../../../benches/peers/mqgate-amqp.toml");
    let mut config = BrokerConfig::from_toml_str(text).expect("the peer config parses");
    let any = "127.0.0.1:0".parse().ok();
    config.listeners.tcp = any;
    config.listeners.amqp = any;
    config.listeners.ws = None;
    config.storage = StorageKind::Memory;
    config.http.enabled = false;
    Broker::builder()
        .config(config)
        .build()
        .start()
        .await
        .expect("broker starts")
}

fn config(handle: &BrokerHandle, scenario: AmqpScenario, secret: &str) -> AmqpRunConfig {
    AmqpRunConfig {
        target: handle
            .local_addr(ListenerKind::Amqp)
            .expect("amqp listener"),
        label: "mqgate".into(),
        broker_pid: Some(std::process::id()),
        scenario,
        login: AmqpLogin::sdk(INSTANCE, AK, secret, "1700000000000"),
        declare: false,
        feed: AmqpFeed::Mqtt,
        mqtt_target: handle.local_addr(ListenerKind::Tcp),
        publishers: 3,
        consumers: 2,
        window: 8,
        prefetch: 16,
        payload: 300,
        messages: 1000,
        seconds: 20.0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_publish_is_confirmed_at_window_1_and_8() {
    let handle = start().await;
    for window in [1, 8] {
        let mut c = config(&handle, AmqpScenario::Publish, SECRET);
        c.window = window;
        c.messages = if window == 1 { 200 } else { 1000 };
        let report = run_amqp(&c, false).await.expect("the run completes");
        assert_eq!(
            (report.sent, report.acked, report.lost),
            (c.messages, c.messages, 0),
            "{report:?}"
        );
        assert!(!report.timed_out, "{report:?}");
        assert_eq!(report.scenario, format!("amqp-publish p3 w{window} 300B"));
        assert!(report.deliveries_per_s > 0.0);
    }
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_messages_reach_the_queue_consumers_each_once() {
    let handle = start().await;
    let c = config(&handle, AmqpScenario::Consume, SECRET);
    let report = run_amqp(&c, false).await.expect("the run completes");
    assert_eq!(
        (report.sent, report.acked, report.received, report.lost),
        (1000, 1000, 1000, 0),
        "{report:?}"
    );
    assert!(!report.timed_out, "{report:?}");
    assert_eq!(report.connections, 5);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_fails_the_run() {
    let handle = start().await;
    let c = config(&handle, AmqpScenario::Publish, "not-the-secret");
    let err = run_amqp(&c, false).await.expect_err("login refused");
    assert!(err.to_string().contains("403"), "{err}");
    // An MQTT feed without its address is refused before anything connects.
    let mut c = config(&handle, AmqpScenario::Consume, SECRET);
    c.mqtt_target = None;
    assert!(run_amqp(&c, false).await.is_err());
    handle.shutdown().await;
}
