//! Outflow throughput, MQTT -> RocketMQ: how many messages per second published by MQTT
//! clients reach RocketMQ (accepted with SEND_OK) through the bridge, next to what the
//! RocketMQ client alone does from one task and from many.
//!
//! Needs a running RocketMQ name server and broker; `benches/rocketmq_outflow.sh` starts them
//! in a loopback-only network namespace and runs this there:
//!
//! ```sh
//! cargo run --release -p mqgate-broker --example rocketmq_outflow -- --name-server 127.0.0.1:9876
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use mqgate_broker::{
    AckAfter, Broker, BrokerConfig, ClientFailure, ListenerKind, RocketMqClient, RocketMqConfig,
    RustRocketMqClient,
};
use mqgate_rocketmq::{OutflowRule, RocketMessage};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};

struct Args {
    name_server: String,
    messages: usize,
    publishers: usize,
    payload: usize,
    in_flight: Vec<usize>,
}

fn args() -> Args {
    let mut args = Args {
        name_server: "127.0.0.1:9876".into(),
        messages: 5_000,
        publishers: 4,
        payload: 64,
        in_flight: vec![1, 16, 64, 256],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--name-server" => args.name_server = value,
            "--messages" => args.messages = value.parse().unwrap_or(args.messages),
            "--publishers" => args.publishers = value.parse().unwrap_or(args.publishers),
            "--payload" => args.payload = value.parse().unwrap_or(args.payload),
            "--in-flight" => {
                args.in_flight = value.split(',').filter_map(|v| v.parse().ok()).collect()
            }
            other => eprintln!("unknown flag {other}"),
        }
    }
    args
}

fn rocketmq_config(args: &Args, max_in_flight: usize, ack_after: AckAfter) -> RocketMqConfig {
    RocketMqConfig {
        name_server: args.name_server.clone(),
        producer_group: format!("GID_bench_{max_in_flight}"),
        consumer_group: "GID_bench".into(),
        ack_after,
        max_in_flight,
        buffer: 100_000,
        outflow: vec![OutflowRule {
            mqtt_parent_topic: "bench".into(),
            rocketmq_topic: Some("BenchOutflow".into()),
        }],
        ..RocketMqConfig::default()
    }
}

/// The RocketMQ client alone: `tasks` tasks sending `messages` in all.
async fn direct(args: &Args, tasks: usize) -> Result<f64, ClientFailure> {
    let client =
        Arc::new(RustRocketMqClient::start(&rocketmq_config(args, tasks, AckAfter::Broker)).await?);
    let message = RocketMessage {
        topic: "BenchOutflow".into(),
        body: vec![b'x'; args.payload].into(),
        ..RocketMessage::default()
    };
    client.send(&message, None).await?; // route lookup, topic creation
    let per_task = args.messages / tasks;
    let started = Instant::now();
    let mut joins = Vec::new();
    for _ in 0..tasks {
        let (client, message) = (client.clone(), message.clone());
        joins.push(tokio::spawn(async move {
            for _ in 0..per_task {
                while client.send(&message, None).await.is_err() {}
            }
        }));
    }
    for join in joins {
        let _ = join.await;
    }
    let rate = (per_task * tasks) as f64 / started.elapsed().as_secs_f64();
    client.shutdown().await;
    Ok(rate)
}

/// Through mqgate: `publishers` rumqttc clients publish QoS 1 to `bench/...`; the rate is
/// messages accepted by RocketMQ per second, timed from the first publish until the last
/// SEND_OK (and, with ack_after = "rocketmq", the last PUBACK).
async fn bridged(args: &Args, max_in_flight: usize, ack_after: AckAfter) -> f64 {
    let mut config = BrokerConfig::ephemeral();
    config.rocketmq = Some(rocketmq_config(args, max_in_flight, ack_after));
    let broker = Broker::builder()
        .config(config)
        .build()
        .start()
        .await
        .expect("broker starts");
    let addr = broker.local_addr(ListenerKind::Tcp).expect("tcp");
    let per_publisher = args.messages / args.publishers;
    let payload = vec![b'x'; args.payload];
    let started = Instant::now();
    let mut joins = Vec::new();
    for p in 0..args.publishers {
        let mut options = MqttOptions::new(
            format!("GID_bench@@@p{p}"),
            addr.ip().to_string(),
            addr.port(),
        );
        options.set_keep_alive(Duration::from_secs(60));
        options.set_inflight(100);
        let (client, mut eventloop) = AsyncClient::new(options, 1000);
        let payload = payload.clone();
        joins.push(tokio::spawn(async move {
            let sender = tokio::spawn(async move {
                for n in 0..per_publisher {
                    let topic = format!("bench/p{p}/{}", n % 16);
                    if client
                        .publish(topic, QoS::AtLeastOnce, false, payload.clone())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
            let mut acked = 0;
            while acked < per_publisher {
                match tokio::time::timeout(Duration::from_secs(60), eventloop.poll()).await {
                    Ok(Ok(Event::Incoming(Incoming::PubAck(_)))) => acked += 1,
                    Ok(Ok(_)) => {}
                    _ => break,
                }
            }
            sender.abort();
        }));
    }
    for join in joins {
        let _ = join.await;
    }
    let total = (per_publisher * args.publishers) as u64;
    let deadline = Instant::now() + Duration::from_secs(300);
    while broker.metrics().rocketmq_produced < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = broker.metrics().rocketmq_produced as f64 / started.elapsed().as_secs_f64();
    broker.shutdown().await;
    rate
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), ClientFailure> {
    let args = args();
    println!(
        "{} messages of {} B, {} MQTT publishers (QoS 1), name server {}",
        args.messages, args.payload, args.publishers, args.name_server
    );
    println!("| sends in flight | client alone (msg/s) | mqgate, ack_after = rocketmq | mqgate, ack_after = broker |");
    println!("|---:|---:|---:|---:|");
    for &in_flight in &args.in_flight {
        let alone = direct(&args, in_flight).await?;
        let waiting = bridged(&args, in_flight, AckAfter::Rocketmq).await;
        let buffered = bridged(&args, in_flight, AckAfter::Broker).await;
        println!("| {in_flight} | {alone:.0} | {waiting:.0} | {buffered:.0} |");
    }
    Ok(())
}
