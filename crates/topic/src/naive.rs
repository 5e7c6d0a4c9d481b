//! A deliberately simple reference matcher for tests: recursive over level
//! slices, written independently of [`crate::TopicFilter::matches`].

/// Whether `filter` matches `topic` per MQTT 3.1.1 section 4.7.
pub(crate) fn naive_matches(filter: &str, topic: &str) -> bool {
    let f: Vec<&str> = filter.split('/').collect();
    let t: Vec<&str> = topic.split('/').collect();
    if topic.starts_with('$') && (f[0] == "+" || f[0] == "#") {
        return false;
    }
    fn go(f: &[&str], t: &[&str]) -> bool {
        match (f.split_first(), t.split_first()) {
            (None, None) => true,
            (Some((&"#", _)), _) => true,
            (Some((&"+", fr)), Some((_, tr))) => go(fr, tr),
            (Some((a, fr)), Some((b, tr))) => a == b && go(fr, tr),
            _ => false,
        }
    }
    go(&f, &t)
}

/// proptest strategies over a small alphabet, so that random filters and
/// topics actually collide.
pub(crate) mod strategy {
    use proptest::prelude::*;

    /// A topic name of 1..=5 levels over `a`, `b`, empty, and `$s` first.
    pub(crate) fn topic() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec!["a", "b", "", "$s"]),
            prop::collection::vec(prop::sample::select(vec!["a", "b", ""]), 0..5),
        )
            .prop_map(|(first, rest)| {
                std::iter::once(first)
                    .chain(rest)
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .prop_filter("a topic is not empty", |t| !t.is_empty())
    }

    /// A valid filter of 1..=4 levels, `#` only last.
    pub(crate) fn filter() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(prop::sample::select(vec!["a", "b", "", "+", "$s"]), 1..4),
            any::<bool>(),
        )
            .prop_map(|(mut levels, hash)| {
                // `$s` only where a topic can have it: the first level.
                for level in levels.iter_mut().skip(1) {
                    if *level == "$s" {
                        *level = "a";
                    }
                }
                if hash {
                    levels.push("#");
                }
                levels.join("/")
            })
            .prop_filter("a filter is not empty", |f| !f.is_empty())
    }
}
