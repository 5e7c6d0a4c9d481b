//! Listen to client status events (connect / disconnect / tcpclean, as JSON) while clients
//! come and go, and ask the broker who is online.
//!
//! cargo run --example status_listener

use std::time::Duration;

use mqgate::broker::{Broker, BrokerConfig, ListenerKind};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let broker = Broker::builder()
        .config(BrokerConfig::ephemeral())
        .build()
        .start()
        .await?;
    let addr = broker
        .local_addr(ListenerKind::Tcp)
        .ok_or("no TCP listener")?;
    let mut events = broker.status_events();

    let id = "GID_shop@@@tag-0042";
    let (client, mut eventloop) =
        AsyncClient::new(MqttOptions::new(id, addr.ip().to_string(), addr.port()), 16);
    // Connect, then disconnect politely: connect, disconnect and tcpclean follow.
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), eventloop.poll()).await?;
        if let Ok(Event::Incoming(Incoming::ConnAck(_))) = event {
            println!(
                "{id} online: {:?}",
                broker.are_online([id, "GID_shop@@@tag-0043"])
            );
            client.disconnect().await?;
        }
        if event.is_err() {
            break;
        }
    }
    for _ in 0..3 {
        let event = tokio::time::timeout(Duration::from_secs(5), events.recv()).await??;
        println!("{}", event.to_json());
    }
    println!("{id} online: {}", broker.is_online(id));
    broker.shutdown().await;
    Ok(())
}
