//! Entry points of the fuzz targets (`fuzz/fuzz_targets/topic_*.rs`).
//!
//! Each function feeds arbitrary bytes to the parsers and panics only if an
//! invariant between them breaks; the parsers themselves never panic. The
//! crate's own tests run the same functions over random inputs.

use crate::{
    parse_p2p_subtopic, ClientId, Matches, P2pAddress, SubscriptionFilter, SubscriptionTrie,
    TopicFilter, TopicName,
};

/// Topic name parser: validation agrees with parsing, a valid name is a valid
/// filter matching itself, and a P2P parse round-trips.
pub fn topic_name(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = TopicName::parse(text);
    assert_eq!(parsed.is_ok(), TopicName::validate(text).is_ok());
    if let Ok(Some(addr)) = P2pAddress::parse(text) {
        assert_eq!(addr.to_topic(), text);
    }
    let Ok(name) = parsed else {
        return;
    };
    assert_eq!(name.as_str(), text);
    let filter = TopicFilter::parse(text).expect("a topic name is a filter");
    assert!(filter.matches(text));
}

/// Topic filter parser: levels rebuild the text, a filter contains itself,
/// and a trie holding only this filter agrees with [`TopicFilter::matches`]
/// and is empty again after removal.
pub fn topic_filter(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(sub) = SubscriptionFilter::parse(text) {
        assert_eq!(sub.to_string(), text);
    }
    let parsed = TopicFilter::parse(text);
    assert_eq!(parsed.is_ok(), TopicFilter::validate(text).is_ok());
    let Ok(filter) = parsed else {
        return;
    };
    let rebuilt: Vec<&str> = filter
        .levels()
        .map(|level| match level {
            crate::Level::Normal(t) | crate::Level::System(t) => t,
            crate::Level::SingleWildcard => "+",
            crate::Level::MultiWildcard => "#",
        })
        .collect();
    assert_eq!(rebuilt.len(), filter.level_count());
    assert_eq!(rebuilt.join("/"), text);
    assert!(filter.contains(&filter));

    let mut trie = SubscriptionTrie::new();
    if trie.insert(&filter, 0u8, 1u8).is_err() {
        return;
    }
    let mut out = Matches::new();
    // The filter's own text, with wildcards replaced, is a topic it matches.
    let topic = text.replace(['+', '#'], "x");
    trie.match_topic(&topic, &mut out);
    assert_eq!(out.len(), usize::from(filter.matches(&topic)));
    assert_eq!(trie.remove(&filter, &0), Some(1));
    assert_eq!(trie.node_count(), 0);
}

/// Client id parser: the parts rebuild the id, and the RocketMQ P2P subtopic
/// form accepts exactly the valid ids.
pub fn client_id(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = ClientId::parse(text);
    let subtopic = crate::p2p_subtopic(text);
    if let Ok(id) = &parsed {
        assert_eq!(id.as_str(), text);
        match id.group_id() {
            Some(group) => assert_eq!(format!("{group}@@@{}", id.device_id()), text),
            None => assert_eq!(id.device_id(), text),
        }
        assert_eq!(parse_p2p_subtopic(&subtopic), Ok(text));
    } else {
        assert!(parse_p2p_subtopic(&subtopic).is_err());
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    /// Bytes biased toward the characters the parsers care about.
    fn input() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![
                prop::sample::select(b"/+#$@GID_a-.:\0 ".to_vec()),
                any::<u8>(),
            ],
            0..40,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        #[test]
        fn fuzz_entry_points_hold(data in input()) {
            super::topic_name(&data);
            super::topic_filter(&data);
            super::client_id(&data);
        }
    }

    #[test]
    fn fuzz_entry_points_on_known_inputs() {
        for text in [
            "a/p2p/GID_x@@@y",
            "$share/g/a/#",
            "GID_a@@@b",
            "+/#",
            "/",
            "a//b",
            "#/x",
        ] {
            super::topic_name(text.as_bytes());
            super::topic_filter(text.as_bytes());
            super::client_id(text.as_bytes());
        }
    }
}
