//! A backend beside an embedded broker: two workers consume device reports in a shared group
//! (each report goes to one of them, "clustering" consumption), then the backend pushes a
//! retained system announcement to every app and a P2P command to one device.
//!
//! cargo run --example embed_backend

use std::time::Duration;

use mqgate::broker::{Broker, BrokerConfig, ListenerKind};
use mqgate::codec::QoS;
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

    // Two backend workers in the group "backend".
    let mut workers = [
        broker.subscribe("$share/backend/report/#", QoS::AtLeastOnce)?,
        broker.subscribe("$share/backend/report/#", QoS::AtLeastOnce)?,
    ];

    // A device that reports, listens to announcements, and gets P2P commands unsubscribed.
    let device_id = "GID_shop@@@tag-0042";
    let options = MqttOptions::new(device_id, addr.ip().to_string(), addr.port());
    let (device, mut eventloop) = AsyncClient::new(options, 16);
    device
        .subscribe("announce/#", rumqttc::QoS::AtLeastOnce)
        .await?;
    for i in 0..6 {
        device
            .publish(
                format!("report/{device_id}"),
                rumqttc::QoS::AtLeastOnce,
                false,
                format!("battery {}%", 90 - i),
            )
            .await?;
    }

    let mut commanded = false;
    let mut received = 0;
    while received < 2 {
        match tokio::time::timeout(Duration::from_secs(5), eventloop.poll()).await?? {
            Event::Incoming(Incoming::SubAck(_)) if !commanded => {
                broker
                    .publish(
                        "announce/all",
                        "maintenance at 02:00",
                        QoS::AtLeastOnce,
                        true,
                    )
                    .await?;
                broker
                    .publish(
                        &format!("cmd/p2p/{device_id}"),
                        "reboot",
                        QoS::AtLeastOnce,
                        false,
                    )
                    .await?;
                commanded = true;
            }
            Event::Incoming(Incoming::Publish(p)) => {
                println!(
                    "device got {}: {}",
                    p.topic,
                    String::from_utf8_lossy(&p.payload)
                );
                received += 1;
            }
            _ => {}
        }
    }
    for (n, worker) in workers.iter_mut().enumerate() {
        while let Some(report) = worker.try_recv() {
            println!(
                "worker {n} consumed {}: {}",
                report.topic,
                String::from_utf8_lossy(&report.payload)
            );
        }
    }
    broker.shutdown().await;
    Ok(())
}
