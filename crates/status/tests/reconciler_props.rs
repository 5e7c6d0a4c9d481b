//! The reconciler against the truth of generated connection histories:
//! several clients, each flapping (a new channel connects before the old
//! one's tcpclean), delivered in every order, with duplicates and delays.

use std::collections::BTreeSet;

use mqgate_status::{ChannelId, EventType, Reconciler, ReconcilerConfig, StatusEvent};
use proptest::prelude::*;

/// One connection of a generated history.
#[derive(Clone, Debug)]
struct Connection {
    client: usize,
    channel: ChannelId,
    start: u64,
    disconnect: Option<u64>,
    /// `None`: still open at the end of the history.
    end: Option<u64>,
}

/// Per connection: gap after the previous connection's start, duration,
/// whether the client sent DISCONNECT, whether it is still open.
type ConnectionPlan = (u64, u64, bool, bool);

/// Turns plans into connections. Gaps are short and durations long, so a
/// client's next connection usually starts before its previous one ends: it
/// flaps.
fn build(plans: &[Vec<ConnectionPlan>]) -> Vec<Connection> {
    let mut connections = Vec::new();
    let mut next_channel = 0u8;
    for (client, client_plans) in plans.iter().enumerate() {
        let mut start = 1_000;
        for &(gap, duration, disconnect, open) in client_plans {
            start += gap;
            next_channel = next_channel.wrapping_add(1);
            connections.push(Connection {
                client,
                channel: ChannelId::from_bytes([next_channel; 16]),
                start,
                disconnect: disconnect.then_some(start + duration / 2),
                end: (!open).then_some(start + duration),
            });
        }
    }
    connections
}

fn client_id(client: usize) -> String {
    format!("GID_group{}@@@device{client}", client % 2)
}

/// The events the broker would emit, in the order they happened.
fn events_of(connections: &[Connection]) -> Vec<StatusEvent> {
    let mut events = Vec::new();
    for connection in connections {
        let times = [
            (EventType::Connect, Some(connection.start)),
            (EventType::Disconnect, connection.disconnect),
            (EventType::Tcpclean, connection.end),
        ];
        for (event_type, time) in times {
            if let Some(time) = time {
                events.push(StatusEvent {
                    client_id: client_id(connection.client),
                    time,
                    event_type,
                    channel_id: connection.channel,
                    client_ip: "10.1.2.3:4567".into(),
                    seq: 0,
                });
            }
        }
    }
    events.sort_by_key(StatusEvent::stamp);
    for (seq, event) in (0u64..).zip(events.iter_mut()) {
        event.seq = seq;
    }
    events
}

/// The true final state of one client: open channels and online-since.
fn truth(connections: &[Connection], client: usize) -> (BTreeSet<ChannelId>, Option<u64>) {
    let open: Vec<&Connection> = connections
        .iter()
        .filter(|c| c.client == client && c.end.is_none())
        .collect();
    (
        open.iter().map(|c| c.channel).collect(),
        open.iter().map(|c| c.start).min(),
    )
}

fn check(
    reconciler: &Reconciler,
    connections: &[Connection],
    clients: usize,
) -> Result<(), TestCaseError> {
    for client in 0..clients {
        let id = client_id(client);
        let (open, since) = truth(connections, client);
        let seen: BTreeSet<ChannelId> = reconciler.online_channels(&id).collect();
        prop_assert_eq!(&seen, &open, "channels of {}", id);
        prop_assert_eq!(reconciler.is_online(&id), !open.is_empty(), "online {}", id);
        prop_assert_eq!(reconciler.online_since(&id), since, "since {}", id);
    }
    let online = (0..clients)
        .filter(|&c| !truth(connections, c).0.is_empty())
        .count();
    prop_assert_eq!(reconciler.online_count(), online);
    prop_assert_eq!(
        reconciler.online_count_by_group().values().sum::<usize>(),
        online
    );
    Ok(())
}

fn plans(clients: usize, connections: usize) -> impl Strategy<Value = Vec<Vec<ConnectionPlan>>> {
    let plan = (0..30u64, 1..60u64, any::<bool>(), prop::bool::weighted(0.3));
    prop::collection::vec(prop::collection::vec(plan, 1..=connections), 1..=clients)
}

/// Visits every permutation of `items` (Heap's algorithm, iterative).
fn for_each_permutation<T: Clone>(
    items: &[T],
    mut visit: impl FnMut(&[T]) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    let mut items = items.to_vec();
    let mut counters = vec![0usize; items.len()];
    visit(&items)?;
    let mut i = 1;
    while i < items.len() {
        if counters[i] < i {
            let swap_with = if i % 2 == 0 { 0 } else { counters[i] };
            items.swap(swap_with, i);
            visit(&items)?;
            counters[i] += 1;
            i = 1;
        } else {
            counters[i] = 0;
            i += 1;
        }
    }
    Ok(())
}

#[test]
fn heaps_algorithm_visits_every_permutation_once() {
    let mut seen = BTreeSet::new();
    let result = for_each_permutation(&[1, 2, 3, 4, 5], |p| {
        assert!(seen.insert(p.to_vec()), "{p:?} visited twice");
        Ok(())
    });
    assert!(result.is_ok());
    assert_eq!(seen.len(), 120);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, max_global_rejects: 100_000, ..ProptestConfig::default() })]

    /// Short histories: every single arrival order.
    #[test]
    fn every_permutation_of_a_short_history_gives_the_truth(plans in plans(2, 2)) {
        let connections = build(&plans);
        let events = events_of(&connections);
        prop_assume!(events.len() <= 7);
        for_each_permutation(&events, |order| {
            let mut reconciler = Reconciler::default();
            for event in order {
                let _ = reconciler.apply(event);
            }
            check(&reconciler, &connections, plans.len())
        })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Longer histories: many random orders, each with random duplicates.
    #[test]
    fn random_orders_with_duplicates_give_the_truth(
        plans in plans(4, 4),
        orders in prop::collection::vec((any::<prop::sample::Index>(), prop::collection::vec(any::<prop::sample::Index>(), 0..8), any::<u64>()), 16),
    ) {
        let connections = build(&plans);
        let events = events_of(&connections);
        for (_, duplicates, shuffle_seed) in &orders {
            let mut delivered = events.clone();
            delivered.extend(duplicates.iter().map(|index| index.get(&events).clone()));
            shuffle(&mut delivered, *shuffle_seed);
            let mut reconciler = Reconciler::default();
            for event in &delivered {
                let _ = reconciler.apply(event);
            }
            check(&reconciler, &connections, plans.len())?;
        }
    }

    /// Forgetting is invisible while the horizon exceeds the largest delay:
    /// events delivered late by up to `max_delay`, the reconciler told to
    /// forget at every delivery, still give the truth.
    #[test]
    fn forgetting_within_the_horizon_keeps_the_truth(
        plans in plans(3, 4),
        delays in prop::collection::vec(0..200u64, 40),
        duplicate_every in 2..6usize,
    ) {
        let connections = build(&plans);
        let events = events_of(&connections);
        let mut deliveries: Vec<(u64, &StatusEvent)> = Vec::new();
        for (index, event) in events.iter().enumerate() {
            let delay = delays.get(index % delays.len()).copied().unwrap_or(0);
            deliveries.push((event.time + delay, event));
            if index % duplicate_every == 0 {
                deliveries.push((event.time + delay / 2, event));
            }
        }
        deliveries.sort_by_key(|(arrival, _)| *arrival);
        let mut reconciler = Reconciler::new(ReconcilerConfig { horizon_ms: 200 });
        for (arrival, event) in deliveries {
            reconciler.forget_before(arrival);
            prop_assert_ne!(reconciler.apply(event), mqgate_status::Applied::TooLate);
        }
        check(&reconciler, &connections, plans.len())?;
        reconciler.forget_before(u64::MAX);
        let open: usize = (0..plans.len()).map(|c| truth(&connections, c).0.len()).sum();
        prop_assert_eq!(reconciler.remembered_channels(), open);
    }
}

/// Fisher-Yates driven by a splitmix64 stream: reproducible from the seed
/// proptest shrinks, with no extra dependency.
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        let j = usize::try_from(next() % (i as u64 + 1)).unwrap_or(0);
        items.swap(i, j);
    }
}
