//! One JSON line per run, a human table, and the medians-and-ratios summary of many runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::protocol::MqttVersion;
use crate::BenchError;

/// What one run measured. Fields that do not apply to a scenario are `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Scenario and its parameters, e.g. `fan-in qos1 64B`.
    pub scenario: String,
    /// Broker label.
    pub broker: String,
    /// Protocol the generator spoke (`"3.1.1"` or `"5"`; results files from before it was
    /// recorded read as 3.1.1). MQTT 5 scenarios also end their name with ` mqtt5`.
    #[serde(default)]
    pub mqtt: MqttVersion,
    /// PUBLISHes written.
    pub sent: u64,
    /// PUBACKs received (QoS 1).
    pub acked: u64,
    /// MQTT 5 PUBACKs with an error reason code (0x80 or more): messages the broker refused.
    #[serde(default)]
    pub refused: u64,
    /// The Receive Maximum the broker announced in its MQTT 5 CONNACK (the lowest over the
    /// publishers) when it is below the generator's `--inflight`: the QoS 1 window it allowed.
    #[serde(default)]
    pub broker_receive_maximum: Option<u16>,
    /// Deliveries received, duplicates included.
    pub received: u64,
    /// Expected deliveries of sent messages that never arrived.
    pub lost: u64,
    /// Deliveries received more than once.
    pub duplicated: u64,
    /// Acknowledged messages that did not reach every receiver (must be 0).
    pub acked_lost: u64,
    /// Distinct deliveries per second, first publish to last delivery.
    pub deliveries_per_s: f64,
    /// Seconds from first publish to last delivery (or to the time bound).
    pub duration_s: f64,
    /// Whether the run hit its `--seconds` bound before everything arrived.
    pub timed_out: bool,
    /// Median delay, microseconds (latency scenario).
    pub p50_us: Option<f64>,
    /// 99th percentile delay, microseconds.
    pub p99_us: Option<f64>,
    /// 99.9th percentile delay, microseconds.
    pub p999_us: Option<f64>,
    /// Broker CPU seconds during the measured part.
    pub broker_cpu_s: Option<f64>,
    /// Broker CPU seconds per million distinct deliveries.
    pub broker_cpu_s_per_million: Option<f64>,
    /// Highest broker RSS sampled during the run, KiB.
    pub broker_rss_peak_kb: Option<u64>,
    /// Broker `VmHWM` at the end (peak since it started), KiB.
    pub broker_hwm_kb: Option<u64>,
    /// Broker RSS at the end, KiB.
    pub broker_rss_kb: Option<u64>,
    /// The generator's own CPU seconds during the run.
    pub generator_cpu_s: Option<f64>,
    /// Connections the scenario held open at once.
    pub connections: u64,
    /// Connections opened per second (connections scenario).
    pub connect_per_s: Option<f64>,
    /// Broker RSS growth per idle connection, bytes (connections scenario).
    pub broker_bytes_per_connection: Option<f64>,
}

impl RunReport {
    /// The number the comparison ranks brokers by, and whether higher is better.
    pub fn headline(&self) -> Vec<(&'static str, f64, bool)> {
        let mut out = Vec::new();
        if let Some(rate) = self.connect_per_s {
            out.push(("connect/s", rate, true));
            if let Some(p50) = self.p50_us {
                out.push(("connect p50 us", p50, false));
            }
            if let Some(p99) = self.p99_us {
                out.push(("connect p99 us", p99, false));
            }
            if let Some(bytes) = self.broker_bytes_per_connection {
                out.push(("bytes/conn", bytes, false));
            }
        } else if let Some(p99) = self.p99_us {
            if let Some(p50) = self.p50_us {
                out.push(("p50 us", p50, false));
            }
            out.push(("p99 us", p99, false));
        } else {
            out.push(("deliveries/s", self.deliveries_per_s, true));
        }
        out
    }

    /// One line of the human table.
    pub fn table_row(&self) -> String {
        let opt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
        format!(
            "{:<24} {:<10} sent {:>9} acked {:>9} recv {:>10} lost {:>8} dup {:>6} ackedlost {:>6} | {:>11.0}/s p50 {:>7} p99 {:>7} p99.9 {:>7} | broker cpu {:>6} s/M {:>6} peak {:>8} kB | gen cpu {:>5} | conn/s {:>8} B/conn {:>8}",
            self.scenario,
            self.broker,
            self.sent,
            self.acked,
            self.received,
            self.lost,
            self.duplicated,
            self.acked_lost,
            self.deliveries_per_s,
            opt(self.p50_us),
            opt(self.p99_us),
            opt(self.p999_us),
            opt(self.broker_cpu_s),
            opt(self.broker_cpu_s_per_million),
            self.broker_rss_peak_kb.map_or("-".into(), |v| v.to_string()),
            opt(self.generator_cpu_s),
            opt(self.connect_per_s),
            opt(self.broker_bytes_per_connection),
        )
    }
}

/// Parses JSON lines of [`RunReport`]s (blank lines skipped).
pub fn parse_reports(text: &str) -> Result<Vec<RunReport>, BenchError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| BenchError::BadReport {
                line: i + 1,
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Median of a non-empty list (mean of the middle two for an even count).
/// The label suffix of a broker run with settings changed from its shipped defaults.
pub const TUNED: &str = "-tuned";

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// A markdown table: per scenario and metric, each broker's median over its runs, total
/// lost and acknowledged-lost, and the ratio of `ours` to the best other broker (above 1.0
/// means `ours` is better, whichever direction the metric runs). Brokers labelled
/// `...-tuned` ran with settings changed from their shipped defaults: they stand in the
/// table beside the others, but are never the peer `ours` is compared with.
///
/// When the results hold MQTT 5 runs (scenarios ending in ` mqtt5`) and 3.1.1 runs of the
/// same scenarios, a second table puts the two ratios side by side.
pub fn summarize(reports: &[RunReport], ours: &str) -> String {
    // (scenario, metric) -> broker -> (values, higher_is_better, lost, acked_lost, runs)
    type Cell = (Vec<f64>, bool, u64, u64);
    let mut table: BTreeMap<(String, &'static str), BTreeMap<String, Cell>> = BTreeMap::new();
    for r in reports {
        for (metric, value, higher) in r.headline() {
            let cell = table
                .entry((r.scenario.clone(), metric))
                .or_default()
                .entry(r.broker.clone())
                .or_insert((Vec::new(), higher, 0, 0));
            cell.0.push(value);
            cell.2 += r.lost;
            cell.3 += r.acked_lost;
        }
    }
    let mut out = String::from(
        "| scenario | metric | broker | median | runs | lost (sum) | acked lost (sum) | ours / best peer |\n|---|---|---|---:|---:|---:|---:|---:|\n",
    );
    let mut ratios: BTreeMap<(String, &'static str), f64> = BTreeMap::new();
    for ((scenario, metric), brokers) in &mut table {
        let medians: Vec<(String, f64, bool)> = brokers
            .iter_mut()
            .map(|(b, c)| (b.clone(), median(&mut c.0), c.1))
            .collect();
        let best_peer = medians
            .iter()
            .filter(|(b, ..)| b != ours && !b.ends_with(TUNED))
            .map(|&(_, m, higher)| (m, higher))
            .reduce(|a, b| if (b.0 > a.0) == a.1 { b } else { a });
        for (broker, m, higher) in &medians {
            let cell = &brokers[broker];
            let ratio = match (broker == ours, best_peer) {
                (true, Some((peer, _))) if peer > 0.0 && *m > 0.0 => {
                    let r = if *higher { m / peer } else { peer / m };
                    ratios.insert((scenario.clone(), metric), r);
                    format!("{r:.2}x")
                }
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "| {scenario} | {metric} | {broker} | {m:.1} | {} | {} | {} | {ratio} |",
                cell.0.len(),
                cell.2,
                cell.3
            );
        }
    }
    out.push_str(&protocol_table(&ratios));
    out
}

/// The MQTT 5 ratios beside the 3.1.1 ratios of the same scenarios and metrics (empty when
/// there is no such pair).
fn protocol_table(ratios: &BTreeMap<(String, &'static str), f64>) -> String {
    let suffix = MqttVersion::V5.scenario_suffix();
    let mut out = String::new();
    for ((scenario, metric), v5) in ratios {
        let Some(base) = scenario.strip_suffix(suffix) else {
            continue;
        };
        let Some(v311) = ratios.get(&(base.to_owned(), *metric)) else {
            continue;
        };
        if out.is_empty() {
            out.push_str(
                "\n| scenario | metric | ours / best peer, 3.1.1 | ours / best peer, MQTT 5 | MQTT 5 ratio at least the 3.1.1 one |\n|---|---|---:|---:|---|\n",
            );
        }
        let verdict = if v5 >= v311 { "yes" } else { "no" };
        let _ = writeln!(
            out,
            "| {base} | {metric} | {v311:.2}x | {v5:.2}x | {verdict} |"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(broker: &str, rate: f64, lost: u64) -> RunReport {
        RunReport {
            scenario: "fan-in qos0 64B".into(),
            broker: broker.into(),
            deliveries_per_s: rate,
            lost,
            ..RunReport::default()
        }
    }

    #[test]
    fn medians_and_ratio_to_the_best_peer() {
        let reports = vec![
            run("mqgate", 300.0, 0),
            run("mqgate", 500.0, 0),
            run("mqgate", 400.0, 0),
            run("mosquitto", 100.0, 5),
            run("rumqttd", 200.0, 0),
            run("rumqttd", 100.0, 1),
        ];
        let text = summarize(&reports, "mqgate");
        assert!(
            text.contains(
                "| fan-in qos0 64B | deliveries/s | mqgate | 400.0 | 3 | 0 | 0 | 2.67x |"
            ),
            "{text}"
        );
        assert!(text.contains("| mosquitto | 100.0 | 1 | 5 |"), "{text}");
        assert!(text.contains("| rumqttd | 150.0 | 2 | 1 |"), "{text}");
    }

    #[test]
    fn lower_is_better_for_latency() {
        let mut ours = run("mqgate", 0.0, 0);
        ours.p99_us = Some(200.0);
        let mut peer = run("mosquitto", 0.0, 0);
        peer.p99_us = Some(400.0);
        let text = summarize(&[ours, peer], "mqgate");
        assert!(
            text.contains("| p99 us | mqgate | 200.0 | 1 | 0 | 0 | 2.00x |"),
            "{text}"
        );
    }

    #[test]
    fn a_tuned_run_stands_beside_but_is_never_the_peer() {
        let reports = vec![
            run("mqgate", 300.0, 0),
            run("mosquitto", 100.0, 0),
            run("mosquitto-tuned", 600.0, 0),
            run("mqgate-tuned", 900.0, 0),
        ];
        let text = summarize(&reports, "mqgate");
        assert!(
            text.contains("| deliveries/s | mqgate | 300.0 | 1 | 0 | 0 | 3.00x |"),
            "{text}"
        );
        assert!(
            text.contains("| mosquitto-tuned | 600.0 | 1 | 0 | 0 |  |"),
            "{text}"
        );
    }

    #[test]
    fn mqtt5_ratios_stand_beside_the_311_ones() {
        let v5 = |broker: &str, rate: f64| RunReport {
            scenario: "fan-in qos0 64B mqtt5".into(),
            mqtt: MqttVersion::V5,
            ..run(broker, rate, 0)
        };
        let reports = vec![
            run("mqgate", 300.0, 0),
            run("mosquitto", 100.0, 0),
            v5("mqgate", 200.0),
            v5("mosquitto", 100.0),
        ];
        let text = summarize(&reports, "mqgate");
        assert!(
            text.contains(
                "| fan-in qos0 64B mqtt5 | deliveries/s | mqgate | 200.0 | 1 | 0 | 0 | 2.00x |"
            ),
            "{text}"
        );
        assert!(
            text.contains("| fan-in qos0 64B | deliveries/s | 3.00x | 2.00x | no |"),
            "{text}"
        );
        // Without MQTT 5 runs there is no second table.
        assert!(!summarize(&reports[..2], "mqgate").contains("MQTT 5"));
    }

    #[test]
    fn reports_without_a_protocol_read_as_311() {
        let line = r#"{"scenario":"fan-in qos0 64B","broker":"m","sent":1,"acked":0,"received":1,"lost":0,"duplicated":0,"acked_lost":0,"deliveries_per_s":1.0,"duration_s":1.0,"timed_out":false,"connections":2}"#;
        let parsed = parse_reports(line).unwrap();
        assert_eq!(parsed[0].mqtt, MqttVersion::V311);
        let v5 = RunReport {
            mqtt: MqttVersion::V5,
            ..parsed[0].clone()
        };
        let text = serde_json::to_string(&v5).unwrap();
        assert!(text.contains(r#""mqtt":"5""#), "{text}");
        assert_eq!(parse_reports(&text).unwrap(), vec![v5]);
    }

    #[test]
    fn connections_report_the_handshake_distribution() {
        let mut r = run("mqgate", 0.0, 0);
        r.connect_per_s = Some(20_000.0);
        r.p50_us = Some(900.0);
        r.p99_us = Some(4_000.0);
        let metrics: Vec<_> = r.headline().into_iter().map(|(m, ..)| m).collect();
        assert_eq!(metrics, ["connect/s", "connect p50 us", "connect p99 us"]);
    }

    #[test]
    fn reports_round_trip_through_json_lines() {
        let mut r = run("mqgate", 1.5, 2);
        r.p99_us = Some(3.0);
        let text = format!(
            "{}\n\n{}\n",
            serde_json::to_string(&r).unwrap(),
            serde_json::to_string(&r).unwrap()
        );
        assert_eq!(parse_reports(&text).unwrap(), vec![r.clone(), r]);
        assert!(matches!(
            parse_reports("{}\nnot json"),
            Err(BenchError::BadReport { line: 1, .. })
        ));
    }
}
