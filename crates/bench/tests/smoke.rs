//! The generator against mqgate's broker, in process: a fan-in QoS 1 run must account for
//! every message, and the loopback guard must hold.

use mqgate_bench::{
    run, run_durable_drain, run_durable_fill, BenchError, MqttVersion, RunConfig, Scenario,
};
use mqgate_broker::{Broker, BrokerConfig, ListenerKind};

/// An in-process mqgate on an ephemeral port, and a QoS 1 fan-in of 2 000 messages to it.
async fn mqgate_and_fan_in() -> (mqgate_broker::BrokerHandle, RunConfig) {
    let broker = Broker::builder().config(BrokerConfig::ephemeral()).build();
    let handle = broker.start().await.expect("broker starts");
    let addr = handle
        .local_addr(ListenerKind::Tcp)
        .expect("a TCP listener");
    let mut config = RunConfig::new(addr, Scenario::FanIn);
    config.label = "mqgate".into();
    config.qos = 1;
    config.messages = 2000;
    config.seconds = 15.0;
    (handle, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_in_qos1_against_mqgate_loses_nothing() {
    let (handle, mut config) = mqgate_and_fan_in().await;
    config.broker_pid = Some(std::process::id());
    let report = run(&config, false).await.expect("the run completes");

    assert_eq!(report.sent, 2000, "{report:?}");
    assert_eq!(report.acked, report.sent, "{report:?}");
    assert_eq!(report.received, report.sent, "{report:?}");
    assert_eq!(
        (report.lost, report.duplicated, report.acked_lost),
        (0, 0, 0)
    );
    assert!(!report.timed_out);
    assert!(report.deliveries_per_s > 0.0);
    assert!(report.broker_rss_peak_kb.is_some_and(|kb| kb > 0));
    handle.shutdown().await;
}

/// The same runs over MQTT 5: QoS 1 fan-in within the broker's Receive Maximum, and QoS 0
/// fan-out, every message accounted for and the reports filed under their own names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_in_and_fan_out_over_mqtt5_against_mqgate_lose_nothing() {
    let (handle, mut config) = mqgate_and_fan_in().await;
    let addr = config.target;
    config.mqtt = MqttVersion::V5;
    // More than any broker's default Receive Maximum: the broker's value must win.
    config.inflight = 60_000;
    let report = run(&config, false).await.expect("the fan-in run completes");
    assert_eq!(report.scenario, "fan-in qos1 64B mqtt5");
    assert_eq!(report.mqtt, MqttVersion::V5);
    assert_eq!(
        (report.sent, report.acked, report.received, report.refused),
        (2000, 2000, 2000, 0),
        "{report:?}"
    );
    assert_eq!(
        (report.lost, report.duplicated, report.acked_lost),
        (0, 0, 0)
    );
    assert!(
        report
            .broker_receive_maximum
            .is_some_and(|n| usize::from(n) < config.inflight),
        "{report:?}"
    );

    let mut config = RunConfig::new(addr, Scenario::FanOut);
    config.mqtt = MqttVersion::V5;
    config.clients = 10;
    config.messages = 500;
    config.seconds = 15.0;
    let report = run(&config, false)
        .await
        .expect("the fan-out run completes");
    assert_eq!(report.scenario, "fan-out qos0 64B mqtt5");
    assert_eq!(report.received, 5000, "{report:?}");
    assert_eq!((report.lost, report.duplicated), (0, 0), "{report:?}");
    assert!(!report.timed_out && report.deliveries_per_s > 0.0);
    assert_eq!(report.broker_receive_maximum, None, "QoS 0 has no window");
    handle.shutdown().await;
}

/// Both phases of the durable scenario, around a restart on the same store (in memory here:
/// the crash itself is the broker's crash test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_fill_then_drain_after_a_restart_loses_nothing() {
    let store: std::sync::Arc<dyn mqgate_store::Store> =
        std::sync::Arc::new(mqgate_store::MemoryStore::new());
    let start = || {
        Broker::builder()
            .config(BrokerConfig::ephemeral())
            .store(store.clone())
            .build()
            .start()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let acked_file = dir.path().join("acked.txt");

    let handle = start().await.expect("broker starts");
    let mut config = RunConfig::new(
        handle.local_addr(ListenerKind::Tcp).expect("tcp"),
        Scenario::Durable,
    );
    config.qos = 1;
    config.clients = 50;
    config.messages = 3000;
    config.seconds = 20.0;
    let fill = run_durable_fill(&config, &acked_file)
        .await
        .expect("fill completes");
    assert_eq!(
        (fill.sent, fill.acked, fill.received),
        (3000, 3000, 0),
        "{fill:?}"
    );
    let written = std::fs::read_to_string(&acked_file).expect("acked file");
    assert_eq!(written.lines().count(), 3000);
    handle.shutdown().await;

    let handle = start().await.expect("broker starts again");
    config.target = handle.local_addr(ListenerKind::Tcp).expect("tcp");
    let drain = run_durable_drain(&config, &acked_file)
        .await
        .expect("drain completes");
    assert_eq!(drain.acked, 3000, "{drain:?}");
    assert_eq!(
        (drain.received, drain.acked_lost, drain.duplicated),
        (3000, 0, 0),
        "{drain:?}"
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn refuses_a_non_loopback_target() {
    let config = RunConfig::new("192.0.2.1:1883".parse().unwrap(), Scenario::FanIn);
    assert!(matches!(
        run(&config, false).await,
        Err(BenchError::NotLoopback(_))
    ));
}
