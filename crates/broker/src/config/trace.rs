//! [`TraceSettings`]: the `[trace]` section (or `trace = false`).

use std::path::PathBuf;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// Message trace: what the broker records of connects, closes, publishes and deliveries, for
/// the OpenAPI's `QueryMqttTrace*` actions. On by default; `trace = false` (or
/// `[trace] enabled = false`) turns it off, and then nothing is recorded at all.
///
/// ```
/// use mqgate_broker::BrokerConfig;
/// let off = BrokerConfig::from_toml_str("trace = false")?;
/// assert!(!off.trace.enabled);
/// let on = BrokerConfig::from_toml_str("[trace]\nretention_ms = 3600000")?;
/// assert!(on.trace.enabled);
/// assert_eq!(on.trace.retention_ms, 3_600_000);
/// assert_eq!(on.trace.max_bytes, 256 * 1024 * 1024);
/// # Ok::<(), mqgate_broker::BrokerError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceSettings {
    /// Whether anything is recorded; default `true`.
    pub enabled: bool,
    /// How long records are kept, in ms; default 3 days (259 200 000), as the managed service
    /// keeps them. Old records go a whole segment at a time, on a timer that runs every
    /// quarter of this (between 100 ms and a minute).
    pub retention_ms: u64,
    /// The most bytes of records kept; the oldest segments go first. Default 256 MiB.
    pub max_bytes: u64,
    /// A segment is closed and a new one started at this many bytes: the unit in which old
    /// records are removed. Default 4 MiB.
    pub segment_bytes: u64,
    /// Where the segments are kept, relative to `data_dir` unless absolute; default `trace`.
    /// With `storage = "memory"` the records are kept in memory instead (bounded the same).
    pub dir: PathBuf,
    /// Most records waiting for the trace writer; a connection never waits for it: past this,
    /// records are dropped and counted (`trace_dropped` on `/metrics`). Default 65 536.
    pub buffer: usize,
}

impl Default for TraceSettings {
    fn default() -> Self {
        let log = mqgate_trace::TraceConfig::default();
        TraceSettings {
            enabled: true,
            retention_ms: log.retention_ms,
            max_bytes: log.max_bytes,
            segment_bytes: log.segment_bytes,
            dir: PathBuf::from("trace"),
            buffer: 65_536,
        }
    }
}

impl TraceSettings {
    /// Tracing turned off.
    pub fn disabled() -> Self {
        TraceSettings {
            enabled: false,
            ..TraceSettings::default()
        }
    }

    /// The trace log's bounds.
    pub fn log_config(&self) -> mqgate_trace::TraceConfig {
        mqgate_trace::TraceConfig {
            retention_ms: self.retention_ms,
            max_bytes: self.max_bytes,
            segment_bytes: self.segment_bytes.max(1),
        }
    }
}

/// The keys of the `[trace]` table.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Table {
    enabled: bool,
    retention_ms: u64,
    max_bytes: u64,
    segment_bytes: u64,
    dir: PathBuf,
    buffer: usize,
}

impl Default for Table {
    fn default() -> Self {
        let d = TraceSettings::default();
        Table {
            enabled: d.enabled,
            retention_ms: d.retention_ms,
            max_bytes: d.max_bytes,
            segment_bytes: d.segment_bytes,
            dir: d.dir,
            buffer: d.buffer,
        }
    }
}

/// `trace = true | false`, or a `[trace]` table (whose unknown keys are an error).
impl<'de> Deserialize<'de> for TraceSettings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Either;
        impl<'de> Visitor<'de> for Either {
            type Value = TraceSettings;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("true, false or a [trace] table")
            }

            fn visit_bool<E: de::Error>(self, enabled: bool) -> Result<TraceSettings, E> {
                Ok(TraceSettings {
                    enabled,
                    ..TraceSettings::default()
                })
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TraceSettings, A::Error> {
                let t = Table::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(TraceSettings {
                    enabled: t.enabled,
                    retention_ms: t.retention_ms,
                    max_bytes: t.max_bytes,
                    segment_bytes: t.segment_bytes,
                    dir: t.dir,
                    buffer: t.buffer,
                })
            }
        }
        deserializer.deserialize_any(Either)
    }
}

#[cfg(test)]
mod tests {
    use crate::BrokerConfig;

    #[test]
    fn on_by_default_off_by_flag_or_table_and_typos_fail() {
        assert!(BrokerConfig::from_toml_str("").unwrap().trace.enabled);
        assert!(
            !BrokerConfig::from_toml_str("trace = false")
                .unwrap()
                .trace
                .enabled
        );
        assert!(
            BrokerConfig::from_toml_str("trace = true")
                .unwrap()
                .trace
                .enabled
        );
        let off = BrokerConfig::from_toml_str("[trace]\nenabled = false").unwrap();
        assert!(!off.trace.enabled);
        let set = BrokerConfig::from_toml_str(
            "[trace]\nmax_bytes = 1000\nsegment_bytes = 100\ndir = \"/tmp/t\"\nbuffer = 8",
        )
        .unwrap()
        .trace;
        assert_eq!(
            (set.max_bytes, set.segment_bytes, set.buffer),
            (1000, 100, 8)
        );
        assert_eq!(set.dir, std::path::PathBuf::from("/tmp/t"));
        for bad in ["trace = 1", "[trace]\nretention = 5", "trace = \"off\""] {
            assert!(BrokerConfig::from_toml_str(bad).is_err(), "{bad}");
        }
    }
}
