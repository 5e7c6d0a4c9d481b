use super::*;
use crate::naive::{naive_matches, strategy};
use proptest::prelude::*;

fn filter(text: &str) -> TopicFilter {
    TopicFilter::parse(text).unwrap()
}

#[test]
fn validation_table() {
    let cases: &[(&str, Result<(), TopicError>)] = &[
        ("#", Ok(())),
        ("+", Ok(())),
        ("+/+", Ok(())),
        ("/+", Ok(())),
        ("sport/#", Ok(())),
        ("sport/+/player1", Ok(())),
        ("+/tennis/#", Ok(())),
        ("a//b", Ok(())),
        ("/", Ok(())),
        ("$SYS/#", Ok(())),
        ("", Err(TopicError::Empty)),
        ("sport/tennis#", Err(TopicError::WildcardNotAlone)),
        ("sport+", Err(TopicError::WildcardNotAlone)),
        ("++", Err(TopicError::WildcardNotAlone)),
        ("sport/#/ranking", Err(TopicError::MultiWildcardNotLast)),
        ("#/", Err(TopicError::MultiWildcardNotLast)),
        ("a\0", Err(TopicError::NullChar)),
    ];
    for (text, expected) in cases {
        assert_eq!(TopicFilter::validate(text), *expected, "{text:?}");
        assert_eq!(TopicFilter::parse(text).map(|_| ()), *expected, "{text:?}");
    }
}

/// The examples of MQTT 3.1.1 section 4.7, plus empty-level and `$` edge cases.
#[test]
fn matching_table() {
    let cases: &[(&str, &str, bool)] = &[
        // 4.7.1.2: `#`
        ("sport/tennis/player1/#", "sport/tennis/player1", true),
        (
            "sport/tennis/player1/#",
            "sport/tennis/player1/ranking",
            true,
        ),
        (
            "sport/tennis/player1/#",
            "sport/tennis/player1/score/wimbledon",
            true,
        ),
        ("sport/#", "sport", true),
        ("#", "sport/tennis", true),
        ("#", "/", true),
        // 4.7.1.3: `+`
        ("sport/tennis/+", "sport/tennis/player1", true),
        ("sport/tennis/+", "sport/tennis/player2", true),
        ("sport/tennis/+", "sport/tennis/player1/ranking", false),
        ("sport/+", "sport", false),
        ("sport/+", "sport/", true),
        ("+/+", "/finance", true),
        ("/+", "/finance", true),
        ("+", "/finance", false),
        ("+/tennis/#", "sport/tennis/player1", true),
        ("+/tennis/#", "sport/tennis", true),
        // empty levels are levels
        ("a//b", "a//b", true),
        ("a/+/b", "a//b", true),
        ("a/b", "a//b", false),
        ("a/", "a", false),
        ("a/+", "a/", true),
        ("/a", "a", false),
        ("+/a", "/a", true),
        ("a/#", "a/", true),
        // 4.7.2: `$` topics
        ("#", "$SYS/uptime", false),
        ("+/monitor/Clients", "$SYS/monitor/Clients", false),
        ("$SYS/#", "$SYS/monitor/Clients", true),
        ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
        ("+", "$", false),
        ("a/#", "a/$b", true),
        ("a/+", "a/$b", true),
        // exact and case-sensitive
        ("ACCOUNTS", "Accounts", false),
        ("sport/tennis", "sport/tennis", true),
        ("sport/tennis", "sport/tennis/x", false),
    ];
    for &(f, topic, expected) in cases {
        assert_eq!(filter(f).matches(topic), expected, "{f} vs {topic}");
        assert_eq!(naive_matches(f, topic), expected, "naive {f} vs {topic}");
    }
}

#[test]
fn levels_are_typed() {
    let parsed = filter("$SYS/+/$x//#");
    let levels: Vec<_> = parsed.levels().collect();
    assert_eq!(
        levels,
        [
            Level::System("$SYS"),
            Level::SingleWildcard,
            Level::Normal("$x"),
            Level::Normal(""),
            Level::MultiWildcard,
        ]
    );
    assert_eq!(filter("$SYS/+/$x//#").level_count(), 5);
    assert!(filter("a/+").has_wildcard());
    assert!(!filter("a/b").has_wildcard());
}

#[test]
fn contains_table() {
    let cases: &[(&str, &str, bool)] = &[
        ("#", "a/b", true),
        ("#", "+/#", true),
        ("#", "$SYS/#", false),
        ("+/#", "$SYS/x", false),
        ("$SYS/#", "$SYS/x/+", true),
        ("a/#", "a", true),
        ("a/#", "a/#", true),
        ("a/+", "a/#", false),
        ("a/+", "a/+", true),
        ("a/+", "a/b", true),
        ("a/b", "a/+", false),
        ("a", "a/#", false),
        ("a/+/c", "a/b/c", true),
        ("+", "", false),
    ];
    for &(ours, theirs, expected) in cases {
        let Ok(theirs) = TopicFilter::parse(theirs) else {
            continue;
        };
        assert_eq!(
            filter(ours).contains(&theirs),
            expected,
            "{ours} ⊇ {theirs}"
        );
    }
}

/// Every topic over the strategy's alphabet with up to `depth` levels.
fn all_topics(depth: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut frontier: Vec<String> = vec!["a".into(), "b".into(), "".into(), "$s".into()];
    for _ in 0..depth {
        out.extend(frontier.iter().cloned());
        frontier = frontier
            .iter()
            .flat_map(|t| ["a", "b", ""].map(|l| format!("{t}/{l}")))
            .collect();
    }
    out
}

proptest! {
    #[test]
    fn matches_agrees_with_naive(f in strategy::filter(), topic in strategy::topic()) {
        prop_assert_eq!(filter(&f).matches(&topic), naive_matches(&f, &topic));
    }

    #[test]
    fn contains_agrees_with_brute_force(a in strategy::filter(), b in strategy::filter()) {
        let (fa, fb) = (filter(&a), filter(&b));
        // Filters have at most 4 levels, so 6 levels of topics tell every pair apart.
        let brute = all_topics(6)
            .iter()
            .all(|t| !fb.matches(t) || fa.matches(t));
        prop_assert_eq!(fa.contains(&fb), brute, "{} contains {}", a, b);
    }
}
