//! The generator against mqgate's broker, in process: a fan-in QoS 1 run must account for
//! every message, and the loopback guard must hold.

use mqgate_bench::{run, BenchError, RunConfig, Scenario};
use mqgate_broker::{Broker, BrokerConfig, ListenerKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_in_qos1_against_mqgate_loses_nothing() {
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

#[tokio::test]
async fn refuses_a_non_loopback_target() {
    let config = RunConfig::new("192.0.2.1:1883".parse().unwrap(), Scenario::FanIn);
    assert!(matches!(
        run(&config, false).await,
        Err(BenchError::NotLoopback(_))
    ));
}
