use super::*;
use crate::naive::{naive_matches, strategy};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};

fn f(text: &str) -> TopicFilter {
    TopicFilter::parse(text).unwrap()
}

fn plain_sorted<K: Ord + Clone + Hash, V: Ord + Clone>(out: &Matches<K, V>) -> Vec<(K, V)> {
    let mut got: Vec<_> = out.plain().map(|(k, v)| (k.clone(), v.clone())).collect();
    got.sort();
    got
}

/// Nodes counted by walking the trie, to check the incremental counter.
fn recount<K, V>(node: &Node<K, V>) -> usize {
    let children: usize = node.children.iter().map(|(_, c)| 1 + recount(c)).sum();
    let plus = node.plus.as_deref().map_or(0, |p| 1 + recount(p));
    children + plus + usize::from(node.hash.is_some())
}

#[test]
fn standard_examples() {
    let filters = [
        "sport/tennis/player1/#",
        "sport/#",
        "#",
        "sport/tennis/+",
        "sport/+",
        "+/+",
        "/+",
        "+",
        "+/monitor/Clients",
        "$SYS/#",
        "$SYS/monitor/+",
        "a//b",
        "a/+/b",
        "a/",
    ];
    let mut trie = SubscriptionTrie::new();
    for (i, filter) in filters.iter().enumerate() {
        trie.insert(&f(filter), i, 1u8).unwrap();
    }
    let cases: &[(&str, &[usize])] = &[
        ("sport/tennis/player1", &[0, 1, 2, 3]),
        ("sport/tennis/player1/ranking", &[0, 1, 2]),
        ("sport", &[1, 2, 7]),
        ("sport/", &[1, 2, 4, 5]),
        ("/finance", &[2, 5, 6]),
        ("$SYS/monitor/Clients", &[9, 10]),
        ("$SYS", &[9]),
        ("a//b", &[2, 12, 11]),
        ("a/", &[2, 5, 13]),
        ("a", &[2, 7]),
        ("x/monitor/Clients", &[2, 8]),
    ];
    let mut out = Matches::new();
    for (topic, expected) in cases {
        trie.match_topic(topic, &mut out);
        let mut want: Vec<_> = expected.iter().map(|&i| (i, 1u8)).collect();
        want.sort();
        assert_eq!(plain_sorted(&out), want, "{topic}");
        for &i in *expected {
            assert!(
                naive_matches(filters[i], topic),
                "table error: {} {topic}",
                filters[i]
            );
        }
    }
}

#[test]
fn overlapping_filters_report_once_at_the_highest_value() {
    let mut trie = SubscriptionTrie::new();
    trie.insert(&f("a/b"), "c1", 0).unwrap();
    trie.insert(&f("a/+"), "c1", 2).unwrap();
    trie.insert(&f("#"), "c1", 1).unwrap();
    trie.insert(&f("a/#"), "c2", 1).unwrap();
    assert_eq!(trie.insert(&f("a/#"), "c2", 0).unwrap(), Some(1));
    assert_eq!(trie.len(), 4);
    let mut out = Matches::new();
    trie.match_topic("a/b", &mut out);
    assert_eq!(plain_sorted(&out), [("c1", 2), ("c2", 0)]);
    assert_eq!(out.len(), 2);
    trie.match_topic("a", &mut out);
    assert_eq!(plain_sorted(&out), [("c1", 1), ("c2", 0)]);
    trie.match_topic("b", &mut out);
    assert_eq!(plain_sorted(&out), [("c1", 1)]);
}

#[test]
fn shared_groups_deliver_to_one_member_each() {
    let mut trie = SubscriptionTrie::new();
    let orders = f("orders/+");
    for member in ["b1", "b2", "b3"] {
        trie.insert_shared("billing", &orders, member, 1).unwrap();
    }
    trie.insert_shared("audit", &f("orders/#"), "a1", 0)
        .unwrap();
    trie.insert(&orders, "b1", 0).unwrap();
    assert_eq!(trie.len(), 5);
    let mut out = Matches::new();
    let mut billing = Vec::new();
    for _ in 0..6 {
        trie.match_topic("orders/7", &mut out);
        assert_eq!(plain_sorted(&out), [("b1", 0)]);
        let mut shared = out.shared().to_vec();
        shared.sort();
        assert_eq!(shared.len(), 2);
        assert!(shared.contains(&("a1", 0)));
        billing.extend(shared.iter().filter(|(k, _)| *k != "a1").map(|(k, _)| *k));
    }
    assert_eq!(billing, ["b1", "b2", "b3", "b1", "b2", "b3"]);

    trie.match_topic_with("orders/7", None, |k| *k != "b2" && *k != "a1", &mut out);
    let mut shared = out.shared().to_vec();
    shared.sort();
    // Billing skips b2; audit has no member available, so its only member still gets it.
    assert_eq!(shared.len(), 2);
    assert!(shared.contains(&("a1", 0)));
    assert!(!shared.iter().any(|(k, _)| *k == "b2"));

    assert_eq!(trie.remove_shared("billing", &orders, &"b2"), Some(1));
    assert_eq!(trie.remove_shared("billing", &orders, &"b2"), None);
    assert_eq!(trie.remove_shared("nobody", &orders, &"b1"), None);
    assert!(trie.insert_shared("bad/group", &orders, "x", 0).is_err());
    for (group, filter, key) in [
        ("billing", "orders/+", "b1"),
        ("billing", "orders/+", "b3"),
        ("audit", "orders/#", "a1"),
    ] {
        assert!(trie.remove_shared(group, &f(filter), &key).is_some());
    }
    assert_eq!(trie.remove(&orders, &"b1"), Some(0));
    assert!(trie.is_empty());
    assert_eq!(trie.node_count(), 0);
}

#[test]
fn subscription_filter_dispatches() {
    let mut trie = SubscriptionTrie::new();
    let shared = SubscriptionFilter::parse("$share/g/x/+").unwrap();
    let plain = SubscriptionFilter::parse("x/+").unwrap();
    trie.subscribe(&shared, 1u32, 1u8).unwrap();
    trie.subscribe(&plain, 2, 1).unwrap();
    let mut out = Matches::new();
    trie.match_topic("x/y", &mut out);
    assert_eq!(plain_sorted(&out), [(2, 1)]);
    assert_eq!(out.shared(), [(1, 1)]);
    assert_eq!(trie.unsubscribe(&shared, &1), Some(1));
    assert_eq!(trie.unsubscribe(&plain, &2), Some(1));
    assert_eq!(trie.node_count(), 0);
}

#[test]
fn depth_is_limited() {
    let mut trie = SubscriptionTrie::with_config(TrieConfig {
        max_levels: 3,
        ..TrieConfig::default()
    });
    assert!(trie.insert(&f("a/b/c"), 1, 0u8).is_ok());
    assert_eq!(
        trie.insert(&f("a/b/c/#"), 1, 0),
        Err(TopicError::TooManyLevels { levels: 4, max: 3 })
    );
    // A deep topic against a shallow trie only walks what exists.
    let deep = "a/".repeat(20_000) + "a";
    let mut out = Matches::new();
    trie.match_topic(&deep, &mut out);
    assert!(out.is_empty());
}

#[test]
fn trie_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<SubscriptionTrie<std::sync::Arc<str>, u8>>();
    check::<Matches<std::sync::Arc<str>, u8>>();
}

#[derive(Debug, Clone)]
enum Op {
    Insert(String, u8, u8),
    Remove(String, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (strategy::filter(), 0..6u8, 0..3u8).prop_map(|(f, k, v)| Op::Insert(f, k, v)),
        (strategy::filter(), 0..6u8).prop_map(|(f, k)| Op::Remove(f, k)),
    ]
}

proptest! {
    #[test]
    fn agrees_with_naive_and_leaves_no_residue(
        ops in prop::collection::vec(op(), 1..60),
        topics in prop::collection::vec(strategy::topic(), 1..20),
    ) {
        let mut trie = SubscriptionTrie::new();
        let mut model: HashMap<(String, u8), u8> = HashMap::new();
        for op in &ops {
            match op {
                Op::Insert(filter, k, v) => {
                    let old = trie.insert(&f(filter), *k, *v).unwrap();
                    prop_assert_eq!(old, model.insert((filter.clone(), *k), *v));
                }
                Op::Remove(filter, k) => {
                    let old = trie.remove(&f(filter), k);
                    prop_assert_eq!(old, model.remove(&(filter.clone(), *k)));
                }
            }
            prop_assert_eq!(trie.len(), model.len());
            prop_assert_eq!(trie.node_count(), recount(&trie.root));
        }
        let mut out = Matches::new();
        for topic in &topics {
            let mut want: BTreeMap<u8, u8> = BTreeMap::new();
            for ((filter, k), v) in &model {
                if naive_matches(filter, topic) {
                    let best = want.entry(*k).or_insert(*v);
                    *best = (*best).max(*v);
                }
            }
            trie.match_topic(topic, &mut out);
            let got: BTreeMap<u8, u8> = out.plain().map(|(k, v)| (*k, *v)).collect();
            prop_assert_eq!(got, want, "topic {}", topic);
        }
        for (filter, k) in model.keys() {
            prop_assert!(trie.remove(&f(filter), k).is_some());
        }
        prop_assert!(trie.is_empty());
        prop_assert_eq!(trie.node_count(), 0);
        prop_assert_eq!(recount(&trie.root), 0);
        prop_assert!(trie.root.is_empty());
    }
}
