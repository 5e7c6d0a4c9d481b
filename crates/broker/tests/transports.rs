//! WebSocket, TLS and WebSocket-over-TLS round trips with rumqttc, against a test CA made
//! at test time with rcgen.
// Test and benchmark code: an unwrap that fails is a failure to report (clippy.toml allows
// it inside #[test] functions only, not in their helpers).
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use mqgate_broker::{BrokerConfig, BrokerHandle, ListenerKind};
use rumqttc::{MqttOptions, QoS, Transport};
use support::tls::{client_tls, test_pki, TestPki};
use support::{start_with, subscribe, Client};

async fn all_listeners() -> (BrokerHandle, TestPki) {
    let pki = test_pki();
    let any = Some("127.0.0.1:0".parse().unwrap());
    let mut config = BrokerConfig::ephemeral();
    config.listeners.ws = any;
    config.listeners.tls_addr = any;
    config.listeners.wss_addr = any;
    config.listeners.tls = Some(pki.files.clone());
    (start_with(config).await, pki)
}

/// Subscribes over TCP, publishes from `options`, and expects the message back on both.
async fn round_trip(broker: &BrokerHandle, mut options: MqttOptions, topic: &str) {
    options.set_keep_alive(Duration::from_secs(30));
    let mut tcp = Client::connect(broker, &format!("{topic}-tcp"), true).await;
    subscribe(&mut tcp, topic, QoS::AtLeastOnce).await;
    let mut other = Client::with_options(options).await;
    subscribe(&mut other, topic, QoS::AtLeastOnce).await;
    other
        .client
        .publish(topic, QoS::AtLeastOnce, false, "over the wire")
        .await
        .unwrap();
    assert_eq!(&tcp.next().await.payload[..], b"over the wire");
    assert_eq!(&other.next().await.payload[..], b"over the wire");
}

#[tokio::test]
async fn websocket_tls_and_wss_round_trips() {
    let (broker, pki) = all_listeners().await;
    let ws = broker.local_addr(ListenerKind::Ws).unwrap();
    let mut options = MqttOptions::new("ws-client", format!("ws://{ws}/mqtt"), ws.port());
    options.set_transport(Transport::Ws);
    round_trip(&broker, options, "ws").await;

    let tls = broker.local_addr(ListenerKind::Tls).unwrap();
    let mut options = MqttOptions::new("tls-client", "127.0.0.1", tls.port());
    options.set_transport(Transport::Tls(client_tls(&pki)));
    round_trip(&broker, options, "tls").await;

    let wss = broker.local_addr(ListenerKind::Wss).unwrap();
    let mut options = MqttOptions::new(
        "wss-client",
        format!("wss://127.0.0.1:{}/mqtt", wss.port()),
        wss.port(),
    );
    options.set_transport(Transport::Wss(client_tls(&pki)));
    round_trip(&broker, options, "wss").await;
    let metrics = broker.metrics();
    assert_eq!(metrics.sessions_started, 6, "{metrics:?}");
    broker.shutdown().await;
}

#[tokio::test]
async fn websocket_on_the_wrong_path_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (broker, _pki) = all_listeners().await;
    let ws = broker.local_addr(ListenerKind::Ws).unwrap();
    let mut stream = tokio::net::TcpStream::connect(ws).await.unwrap();
    let request = format!(
        "GET /elsewhere HTTP/1.1\r\nHost: {ws}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: mqtt\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = vec![0; 64];
    let n = tokio::time::timeout(support::WAIT, stream.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let status = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");
    broker.shutdown().await;
}

#[tokio::test]
async fn tls_listener_refuses_plain_mqtt() {
    let (broker, _pki) = all_listeners().await;
    let tls = broker.local_addr(ListenerKind::Tls).unwrap();
    let mut stream = tokio::net::TcpStream::connect(tls).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A CONNECT in clear text is not a TLS ClientHello: the broker closes (maybe with an alert).
    stream
        .write_all(&[
            0x10, 0x0C, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x1E, 0x00, 0x00,
        ])
        .await
        .unwrap();
    let mut buf = vec![0; 64];
    let mut total = 0;
    loop {
        match tokio::time::timeout(support::WAIT, stream.read(&mut buf))
            .await
            .unwrap()
        {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
        assert!(total < 1024, "no MQTT answer over a TLS listener");
    }
    assert!(!buf.starts_with(&[0x20]), "no CONNACK");
    assert_eq!(broker.metrics().sessions_started, 0);
    broker.shutdown().await;
}
