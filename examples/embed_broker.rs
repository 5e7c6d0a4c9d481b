//! Embed a broker in a program: start it on an ephemeral port, connect an MQTT client,
//! publish from the program itself, and shut down.
//!
//! cargo run --example embed_broker

use std::time::Duration;

use mqgate::broker::{Broker, BrokerConfig, ListenerKind};
use mqgate::codec::QoS;
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // TCP on 127.0.0.1 with a port the OS picks, anonymous access (an embedded, trusted setup).
    let broker = Broker::builder()
        .config(BrokerConfig::ephemeral())
        .build()
        .start()
        .await?;
    let addr = broker
        .local_addr(ListenerKind::Tcp)
        .ok_or("no TCP listener")?;
    println!("broker listening on {addr}");

    let mut options = MqttOptions::new("GID_demo@@@device-1", addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    client
        .subscribe("greetings/#", rumqttc::QoS::AtLeastOnce)
        .await?;

    let mut published = false;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), eventloop.poll()).await?? {
            Event::Incoming(Incoming::SubAck(_)) if !published => {
                // The program publishes directly, without being an MQTT client.
                let id = broker
                    .publish(
                        "greetings/all",
                        "hello from the host program",
                        QoS::AtLeastOnce,
                        false,
                    )
                    .await?;
                println!("published message {:032x}", id.0);
                published = true;
            }
            Event::Incoming(Incoming::Publish(p)) => {
                println!(
                    "device received on {}: {}",
                    p.topic,
                    String::from_utf8_lossy(&p.payload)
                );
                break;
            }
            _ => {}
        }
    }
    println!("device online: {}", broker.is_online("GID_demo@@@device-1"));
    broker.shutdown().await;
    Ok(())
}
