//! Test support: a broker on ephemeral ports, rumqttc clients whose incoming PUBLISHes
//! arrive on a channel, and a raw MQTT client built on our codec.
#![allow(dead_code)]

pub mod mqtt5;
pub mod process;
pub mod tls;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use mqgate_broker::{Broker, BrokerConfig, BrokerHandle, ListenerKind};
use mqgate_codec::{Connect, Decoder, Packet};
use rumqttc::{AsyncClient, Event, EventLoop, Incoming, MqttOptions, Publish};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::timeout;

/// How long any single expectation may take.
pub const WAIT: Duration = Duration::from_secs(5);

pub async fn start() -> BrokerHandle {
    start_with(BrokerConfig::ephemeral()).await
}

/// A broker on [`BrokerConfig::ephemeral`] as `change` adjusts it.
pub async fn start_configured(change: impl FnOnce(&mut BrokerConfig)) -> BrokerHandle {
    let mut config = BrokerConfig::ephemeral();
    change(&mut config);
    start_with(config).await
}

/// The next item on `rx` within [`WAIT`]; `what` names it when it does not come.
pub async fn recv_in_time<T>(rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    match timeout(WAIT, rx.recv()).await {
        Ok(Some(item)) => item,
        Ok(None) => panic!("{what}: the client stopped"),
        Err(_) => panic!("{what}: not in time"),
    }
}

pub async fn start_with(config: BrokerConfig) -> BrokerHandle {
    Broker::builder()
        .config(config)
        .build()
        .start()
        .await
        .expect("broker starts")
}

/// Starts a broker with a redb store in `dir` (`storage = "redb"`), otherwise as
/// [`BrokerConfig::ephemeral`]. The previous broker's store closes when its last task lets
/// go of it, which may be a moment after `shutdown` returned: a bounded number of retries.
pub async fn start_on_disk(dir: &std::path::Path) -> BrokerHandle {
    let config = || BrokerConfig {
        storage: mqgate_broker::StorageKind::Redb,
        data_dir: dir.to_path_buf(),
        ..BrokerConfig::ephemeral()
    };
    let mut last = None;
    for _ in 0..50 {
        match Broker::builder().config(config()).build().start().await {
            Ok(handle) => return handle,
            Err(error) => last = Some(error),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("broker did not start on {}: {last:?}", dir.display());
}

/// A broker on `store` instead of the one `config` names, so a test can look into it.
pub async fn start_with_store(
    config: BrokerConfig,
    store: std::sync::Arc<dyn mqgate_store::Store>,
) -> BrokerHandle {
    Broker::builder()
        .config(config)
        .store(store)
        .build()
        .start()
        .await
        .expect("broker starts")
}

pub fn tcp_addr(broker: &BrokerHandle) -> SocketAddr {
    broker.local_addr(ListenerKind::Tcp).expect("tcp listener")
}

/// A rumqttc client driven by a background task.
pub struct Client {
    pub client: AsyncClient,
    pub publishes: mpsc::UnboundedReceiver<Publish>,
    /// Session-present flags of every CONNACK, in order.
    pub connacks: mpsc::UnboundedReceiver<bool>,
    /// Return codes of every SUBACK, in order.
    pub subacks: mpsc::UnboundedReceiver<Vec<rumqttc::SubscribeReasonCode>>,
    /// Packet ids of every PUBACK and PUBCOMP (an outgoing QoS 1 or 2 PUBLISH done), in order.
    pub acks: mpsc::UnboundedReceiver<u16>,
    /// Session-present flag of the first CONNACK (taken from `connacks`).
    pub session_present: bool,
    task: tokio::task::JoinHandle<()>,
}

impl Client {
    pub async fn connect(broker: &BrokerHandle, id: &str, clean: bool) -> Client {
        let addr = tcp_addr(broker);
        let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        options.set_clean_session(clean);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_max_packet_size(2 * 1024 * 1024, 2 * 1024 * 1024);
        Client::with_options(options).await
    }

    pub async fn with_options(options: MqttOptions) -> Client {
        let (client, eventloop) = AsyncClient::new(options, 1024);
        let mut c = Client::drive(client, eventloop);
        let present = timeout(WAIT, c.connacks.recv())
            .await
            .expect("CONNACK in time");
        c.session_present = present.expect("connected");
        c
    }

    fn drive(client: AsyncClient, mut eventloop: EventLoop) -> Client {
        let (ptx, publishes) = mpsc::unbounded_channel();
        let (ctx, connacks) = mpsc::unbounded_channel();
        let (stx, subacks) = mpsc::unbounded_channel();
        let (atx, acks) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Incoming::Publish(p))) => {
                        let _ = ptx.send(p);
                    }
                    Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                        let _ = ctx.send(ack.session_present);
                    }
                    Ok(Event::Incoming(Incoming::SubAck(ack))) => {
                        let _ = stx.send(ack.return_codes);
                    }
                    Ok(Event::Incoming(Incoming::PubAck(ack))) => {
                        let _ = atx.send(ack.pkid);
                    }
                    Ok(Event::Incoming(Incoming::PubComp(ack))) => {
                        let _ = atx.send(ack.pkid);
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
        Client {
            client,
            publishes,
            connacks,
            subacks,
            acks,
            session_present: false,
            task,
        }
    }

    /// The next incoming PUBLISH, within [`WAIT`].
    pub async fn next(&mut self) -> Publish {
        recv_in_time(&mut self.publishes, "a PUBLISH").await
    }

    /// Waits until `n` more QoS 1 or 2 PUBLISHes of this client were acknowledged (PUBACK or
    /// PUBCOMP received), each within [`WAIT`].
    pub async fn acked(&mut self, n: usize) {
        for _ in 0..n {
            recv_in_time(&mut self.acks, "an acknowledgement").await;
        }
    }

    /// Asserts nothing arrives within `quiet`.
    pub async fn expect_nothing(&mut self, quiet: Duration) {
        if let Ok(Some(p)) = timeout(quiet, self.publishes.recv()).await {
            panic!("unexpected PUBLISH on {}: {:?}", p.topic, p.payload);
        }
    }

    /// Kills the connection without DISCONNECT (an abnormal close).
    pub fn kill(self) {
        self.task.abort();
    }

    pub async fn disconnect(self) {
        let _ = self.client.disconnect().await;
        let _ = timeout(WAIT, self.task).await;
    }
}

/// Subscribes and waits for the SUBACK (a round trip through the broker).
pub async fn subscribe(
    c: &mut Client,
    filter: &str,
    qos: rumqttc::QoS,
) -> Vec<rumqttc::SubscribeReasonCode> {
    subscribe_many(c, &[filter], qos).await
}

/// Subscribes to every filter at `qos` in one SUBSCRIBE and waits for the SUBACK's codes.
pub async fn subscribe_many(
    c: &mut Client,
    filters: &[&str],
    qos: rumqttc::QoS,
) -> Vec<rumqttc::SubscribeReasonCode> {
    let filters = filters
        .iter()
        .map(|f| rumqttc::SubscribeFilter::new(f.to_string(), qos));
    c.client
        .subscribe_many(filters)
        .await
        .expect("subscribe queued");
    timeout(WAIT, c.subacks.recv())
        .await
        .expect("SUBACK in time")
        .expect("client running")
}

/// A subscriber that sleeps `delay` after each message it receives, so that its socket and
/// its inbox in the broker fill up. Returns once its SUBACK arrived; payloads arrive on the
/// channel; abort the task to stop it.
pub async fn slow_subscriber(
    broker: &BrokerHandle,
    id: &str,
    filter: &str,
    qos: rumqttc::QoS,
    delay: Duration,
) -> (
    mpsc::UnboundedReceiver<bytes::Bytes>,
    tokio::task::JoinHandle<()>,
) {
    let addr = tcp_addr(broker);
    let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(30));
    let (sub, mut sub_loop) = AsyncClient::new(options, 64);
    sub.subscribe(filter, qos).await.expect("subscribe queued");
    let (got_tx, got_rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let mut ready_tx = Some(ready_tx);
    let task = tokio::spawn(async move {
        // Keeps the client (and so the connection) alive as long as the task runs.
        let _sub = sub;
        while let Ok(event) = sub_loop.poll().await {
            match event {
                Event::Incoming(Incoming::SubAck(_)) => {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Event::Incoming(Incoming::Publish(p)) => {
                    let _ = got_tx.send(p.payload);
                    tokio::time::sleep(delay).await;
                }
                _ => {}
            }
        }
    });
    timeout(WAIT, ready_rx)
        .await
        .expect("SUBACK in time")
        .expect("subscriber running");
    (got_rx, task)
}

/// A raw MQTT client over TCP, speaking through our codec.
pub struct Raw {
    pub stream: TcpStream,
    rx: BytesMut,
    decoder: Decoder,
}

impl Raw {
    pub async fn open(broker: &BrokerHandle) -> Raw {
        Raw::open_at(tcp_addr(broker)).await.expect("connect")
    }

    /// Opens a connection to any broker (a child process, say); `None` if it refuses.
    pub async fn open_at(addr: SocketAddr) -> Option<Raw> {
        let stream = TcpStream::connect(addr).await.ok()?;
        Some(Raw {
            stream,
            rx: BytesMut::new(),
            decoder: Decoder::new(4 * 1024 * 1024),
        })
    }

    /// Opens and sends CONNECT (cleanSession=1); expects CONNACK 0.
    pub async fn connect(broker: &BrokerHandle, id: &str, keep_alive: u16) -> Raw {
        Raw::connect_session(broker, id, keep_alive, true).await
    }

    /// Opens and sends CONNECT with the given cleanSession flag; expects CONNACK 0.
    pub async fn connect_session(
        broker: &BrokerHandle,
        id: &str,
        keep_alive: u16,
        clean_session: bool,
    ) -> Raw {
        let mut raw = Raw::open(broker).await;
        raw.send(Packet::Connect(Box::new(Connect {
            client_id: id.try_into().expect("id"),
            keep_alive,
            clean_session,
            ..Connect::default()
        })))
        .await;
        match raw.recv().await {
            Some(Packet::ConnAck(ack)) => {
                assert_eq!(ack.code, mqgate_codec::ConnectReturnCode::Accepted)
            }
            other => panic!("expected CONNACK, got {other:?}"),
        }
        raw
    }

    pub async fn send(&mut self, packet: Packet) {
        let mut buf = BytesMut::new();
        packet.encode(&mut buf).expect("encodes");
        self.send_bytes(&buf).await;
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        // The broker may already have closed: a failed write shows up as `recv() == None`.
        let _ = self.stream.write_all(bytes).await;
    }

    /// The next packet, or `None` when the broker closed the connection (within [`WAIT`]).
    pub async fn recv(&mut self) -> Option<Packet> {
        self.recv_within(WAIT)
            .await
            .expect("broker answered or closed in time")
    }

    /// `Err(())` on timeout.
    pub async fn recv_within(&mut self, limit: Duration) -> Result<Option<Packet>, ()> {
        self.recv_with(limit, |decoder, rx| decoder.decode(rx).ok().flatten())
            .await
    }

    /// Reads until `decode` takes a packet out of what was read: `Ok(None)` when the peer
    /// closed first, `Err(())` when `limit` passed.
    pub async fn recv_with<P>(
        &mut self,
        limit: Duration,
        mut decode: impl FnMut(&mut Decoder, &mut BytesMut) -> Option<P>,
    ) -> Result<Option<P>, ()> {
        let read = async {
            loop {
                if let Some(p) = decode(&mut self.decoder, &mut self.rx) {
                    return Some(p);
                }
                match self.stream.read_buf(&mut self.rx).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        };
        timeout(limit, read).await.map_err(|_| ())
    }

    /// Waits until the broker closes the connection, skipping packets.
    pub async fn expect_closed(&mut self) {
        for _ in 0..100 {
            if self.recv().await.is_none() {
                return;
            }
        }
        panic!("connection not closed");
    }
}
