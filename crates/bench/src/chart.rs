//! SVG charts of benchmark results (what `benches/compare.sh` writes beside its summary):
//! throughput per scenario and broker, connection rates, and latency percentiles. A small
//! SVG writer of our own; no browser or plotting library is needed to draw or to view them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::RunReport;

/// Colours of the brokers, in order of first appearance (the Okabe-Ito palette: told apart
/// by readers with colour-blindness too).
const PALETTE: &[&str] = &[
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
];

const WIDTH: f64 = 860.0;
const LABEL_W: f64 = 230.0;
const BAR_W: f64 = 470.0;
const BAR_H: f64 = 14.0;
const GAP: f64 = 4.0;
const GROUP_GAP: f64 = 14.0;
const TOP: f64 = 62.0;

/// Text for SVG: `& < > "` escaped.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A document being written.
struct Svg {
    body: String,
}

impl Svg {
    fn new() -> Self {
        Svg {
            body: String::new(),
        }
    }

    fn text(&mut self, x: f64, y: f64, class: &str, anchor: &str, text: &str) {
        let _ = writeln!(
            self.body,
            r#"<text x="{x:.1}" y="{y:.1}" class="{class}" text-anchor="{anchor}">{}</text>"#,
            escape(text)
        );
    }

    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, title: &str) {
        let _ = writeln!(
            self.body,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{h:.1}" fill="{fill}"><title>{}</title></rect>"#,
            w.max(0.5),
            escape(title)
        );
    }

    fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, class: &str) {
        let _ = writeln!(
            self.body,
            r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" class="{class}"/>"#
        );
    }

    fn circle(&mut self, x: f64, y: f64, r: f64, fill: &str, stroke: &str, title: &str) {
        let _ = writeln!(
            self.body,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="{r}" fill="{fill}" stroke="{stroke}" stroke-width="1.5"><title>{}</title></circle>"#,
            escape(title)
        );
    }

    /// The finished document, `height` tall, with a white background (readable in dark
    /// viewers too) and a title for screen readers.
    fn finish(self, height: f64, title: &str) -> String {
        format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" role="img" aria-label="{t}" font-family="sans-serif" font-size="12">
<title>{t}</title>
<style>.h{{font-size:16px;font-weight:bold;fill:#111}} .s{{fill:#444}} .g{{font-weight:bold;fill:#111}} .l{{fill:#222}} .v{{fill:#222;font-size:11px}} .grid{{stroke:#ccc;stroke-width:1}} .axis{{stroke:#666;stroke-width:1}}</style>
<rect width="100%" height="100%" fill="#fff"/>
{}</svg>
"##,
            self.body,
            t = escape(title),
        )
    }
}

/// The median of `values` (not empty).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Scenario -> broker -> median of `pick` over that broker's runs of it, for the reports
/// `pick` gives a value; brokers in order of first appearance.
fn medians(
    reports: &[RunReport],
    pick: impl Fn(&RunReport) -> Option<f64>,
) -> BTreeMap<String, Vec<(String, f64, usize)>> {
    let mut values: BTreeMap<String, Vec<(String, Vec<f64>)>> = BTreeMap::new();
    for report in reports {
        let Some(value) = pick(report).filter(|v| v.is_finite()) else {
            continue;
        };
        let brokers = values.entry(report.scenario.clone()).or_default();
        match brokers.iter_mut().find(|(b, _)| *b == report.broker) {
            Some((_, list)) => list.push(value),
            None => brokers.push((report.broker.clone(), vec![value])),
        }
    }
    values
        .into_iter()
        .map(|(scenario, brokers)| {
            let brokers = brokers
                .into_iter()
                .map(|(broker, mut list)| {
                    let runs = list.len();
                    (broker, median(&mut list), runs)
                })
                .collect();
            (scenario, brokers)
        })
        .collect()
}

/// Every broker, in order of first appearance, with its colour.
fn colours(reports: &[RunReport]) -> Vec<(String, &'static str)> {
    let mut seen: Vec<(String, &'static str)> = Vec::new();
    for report in reports {
        if !seen.iter().any(|(b, _)| *b == report.broker) {
            let colour = PALETTE[seen.len() % PALETTE.len()];
            seen.push((report.broker.clone(), colour));
        }
    }
    seen
}

fn colour_of<'a>(colours: &'a [(String, &'static str)], broker: &str) -> &'a str {
    colours
        .iter()
        .find(|(b, _)| b == broker)
        .map_or("#888", |(_, c)| c)
}

/// A number for a label: `1.09M`, `58.4k`, `312`.
fn short(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.2}M", value / 1e6)
    } else if value >= 1e4 {
        format!("{:.1}k", value / 1e3)
    } else if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn legend(svg: &mut Svg, colours: &[(String, &'static str)], y: f64) {
    let mut x = LABEL_W;
    for (broker, colour) in colours {
        svg.rect(x, y - 10.0, 12.0, 12.0, colour, broker);
        svg.text(x + 16.0, y, "l", "start", broker);
        x += 30.0 + 7.0 * broker.len() as f64;
    }
}

/// Grouped horizontal bars: one group per scenario, one bar per broker, each scaled to the
/// best broker of its scenario (higher is better) and labelled with its value.
fn bars(
    title: &str,
    subtitle: &str,
    unit: &str,
    data: &BTreeMap<String, Vec<(String, f64, usize)>>,
    colours: &[(String, &'static str)],
) -> String {
    let mut svg = Svg::new();
    svg.text(10.0, 22.0, "h", "start", title);
    svg.text(10.0, 40.0, "s", "start", subtitle);
    legend(&mut svg, colours, 56.0);
    let mut y = TOP + 12.0;
    for (scenario, brokers) in data {
        svg.text(10.0, y + BAR_H - 3.0, "g", "start", scenario);
        let best = brokers.iter().map(|(_, v, _)| *v).fold(0.0, f64::max);
        for (broker, value, runs) in brokers {
            let w = if best > 0.0 {
                BAR_W * value / best
            } else {
                0.0
            };
            let tip = format!(
                "{scenario}, {broker}: {} {unit} (median of {runs})",
                short(*value)
            );
            svg.text(LABEL_W - 6.0, y + BAR_H - 3.0, "l", "end", broker);
            svg.rect(LABEL_W, y, w, BAR_H, colour_of(colours, broker), &tip);
            svg.text(
                LABEL_W + w + 4.0,
                y + BAR_H - 3.0,
                "v",
                "start",
                &format!("{} {unit}", short(*value)),
            );
            y += BAR_H + GAP;
        }
        y += GROUP_GAP;
    }
    svg.finish(y + 10.0, title)
}

/// Latency percentiles on a logarithmic axis: per scenario and broker, p50 (filled dot),
/// p99 (open dot) and p99.9 (bar end), lower is better.
fn latency(
    title: &str,
    subtitle: &str,
    reports: &[RunReport],
    colours: &[(String, &'static str)],
) -> Option<String> {
    let p50 = medians(reports, |r| r.p50_us);
    if p50.is_empty() {
        return None;
    }
    let p99 = medians(reports, |r| r.p99_us);
    let p999 = medians(reports, |r| r.p999_us);
    let all = p50.values().chain(p99.values()).chain(p999.values());
    let values: Vec<f64> = all
        .flatten()
        .map(|(_, v, _)| *v)
        .filter(|v| *v > 0.0)
        .collect();
    let lo = values.iter().copied().fold(f64::MAX, f64::min).max(1.0);
    let hi = values.iter().copied().fold(1.0, f64::max);
    let (lo_exp, hi_exp) = (
        lo.log10().floor(),
        hi.log10().ceil().max(lo.log10().floor() + 1.0),
    );
    // Narrower than the bar charts: the values are written out to the right.
    let plot_w = BAR_W - 140.0;
    let x_of = |v: f64| LABEL_W + plot_w * (v.max(1.0).log10() - lo_exp) / (hi_exp - lo_exp);
    let mut svg = Svg::new();
    svg.text(10.0, 22.0, "h", "start", title);
    svg.text(10.0, 40.0, "s", "start", subtitle);
    legend(&mut svg, colours, 56.0);
    let mut y = TOP + 30.0;
    let axis_top = y - 8.0;
    let find = |map: &BTreeMap<String, Vec<(String, f64, usize)>>, s: &str, b: &str| {
        map.get(s)
            .and_then(|list| list.iter().find(|(broker, ..)| broker == b))
            .map(|(_, v, _)| *v)
    };
    for (scenario, brokers) in &p50 {
        svg.text(10.0, y + BAR_H - 3.0, "g", "start", scenario);
        for (broker, median50, runs) in brokers {
            let colour = colour_of(colours, broker);
            let v99 = find(&p99, scenario, broker);
            let v999 = find(&p999, scenario, broker);
            let mid = y + BAR_H / 2.0;
            svg.text(LABEL_W - 6.0, y + BAR_H - 3.0, "l", "end", broker);
            let end = v999.or(v99).unwrap_or(*median50);
            svg.rect(
                x_of(*median50),
                mid - 2.0,
                x_of(end) - x_of(*median50),
                4.0,
                colour,
                "",
            );
            let tip = |name: &str, v: f64| {
                format!(
                    "{scenario}, {broker}: {name} {} µs (median of {runs} runs)",
                    short(v)
                )
            };
            svg.circle(
                x_of(*median50),
                mid,
                5.0,
                colour,
                colour,
                &tip("p50", *median50),
            );
            if let Some(v) = v99 {
                svg.circle(x_of(v), mid, 5.0, "#fff", colour, &tip("p99", v));
            }
            if let Some(v) = v999 {
                svg.rect(
                    x_of(v) - 1.5,
                    mid - 6.0,
                    3.0,
                    12.0,
                    colour,
                    &tip("p99.9", v),
                );
            }
            let label = format!(
                "p50 {} · p99 {} · p99.9 {} µs",
                short(*median50),
                v99.map_or("–".into(), short),
                v999.map_or("–".into(), short)
            );
            svg.text(
                LABEL_W + plot_w + 10.0,
                y + BAR_H - 3.0,
                "v",
                "start",
                &label,
            );
            y += BAR_H + GAP;
        }
        y += GROUP_GAP;
    }
    let mut exp = lo_exp;
    while exp <= hi_exp {
        let x = x_of(10f64.powf(exp));
        svg.line(x, axis_top, x, y - GROUP_GAP, "grid");
        svg.text(
            x,
            axis_top - 4.0,
            "v",
            "middle",
            &format!("{} µs", short(10f64.powf(exp))),
        );
        exp += 1.0;
    }
    Some(svg.finish(y + 10.0, title))
}

/// The charts of `reports`, as (file name, SVG text): `throughput.svg` (deliveries per
/// second of the traffic scenarios), `connections.svg` (connections per second, when the
/// results have connection runs) and `latency.svg` (percentiles, when they have latency
/// runs). `label` (a date, a run's name) heads every chart.
pub fn charts(reports: &[RunReport], label: &str) -> Vec<(&'static str, String)> {
    let colours = colours(reports);
    let mut out = Vec::new();
    let traffic = medians(reports, |r| {
        let rate_limited = r.p50_us.is_some() || r.scenario.starts_with("latency");
        let connections = r.connect_per_s.is_some() || r.scenario.starts_with("connections");
        (!rate_limited && !connections).then_some(r.deliveries_per_s)
    });
    if !traffic.is_empty() {
        out.push((
            "throughput.svg",
            bars(
                &format!("Throughput per scenario · {label}"),
                "Distinct deliveries per second, median of the runs; bars scaled to the best broker of each scenario (longer is better).",
                "msg/s",
                &traffic,
                &colours,
            ),
        ));
    }
    let connections = medians(reports, |r| r.connect_per_s);
    if !connections.is_empty() {
        out.push((
            "connections.svg",
            bars(
                &format!("Connection rate · {label}"),
                "CONNECT to CONNACK completed per second, median of the runs (longer is better).",
                "conn/s",
                &connections,
                &colours,
            ),
        ));
    }
    if let Some(svg) = latency(
        &format!("Latency percentiles · {label}"),
        "Publish-to-delivery delay at a fixed rate, median of the runs; logarithmic axis (left is better). Dot p50, ring p99, bar p99.9.",
        reports,
        &colours,
    ) {
        out.push(("latency.svg", svg));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_reports;

    fn report(scenario: &str, broker: &str, rate: f64, p50: Option<f64>) -> String {
        let p = |v: Option<f64>| v.map_or("null".to_owned(), |v| v.to_string());
        format!(
            r#"{{"scenario":"{scenario}","broker":"{broker}","sent":1,"acked":0,"received":1,"lost":0,"duplicated":0,"acked_lost":0,"deliveries_per_s":{rate},"duration_s":1.0,"timed_out":false,"p50_us":{},"p99_us":{},"p999_us":{},"broker_cpu_s":null,"broker_cpu_s_per_million":null,"broker_rss_peak_kb":null,"broker_hwm_kb":null,"broker_rss_kb":null,"generator_cpu_s":null,"connections":1,"connect_per_s":null,"broker_bytes_per_connection":null}}"#,
            p(p50),
            p(p50.map(|v| v * 3.0)),
            p(p50.map(|v| v * 9.0))
        )
    }

    #[test]
    fn bars_follow_the_medians_and_text_is_escaped() {
        let text = [
            report("fan-in <qos0>", "mqgate", 100.0, None),
            report("fan-in <qos0>", "mqgate", 300.0, None),
            report("fan-in <qos0>", "mqgate", 200.0, None),
            report("fan-in <qos0>", "other & co", 50.0, None),
            report("latency qos0 64B", "mqgate", 1000.0, Some(80.0)),
        ]
        .join("\n");
        let reports = parse_reports(&text).unwrap();
        let charts = charts(&reports, "test run");
        let names: Vec<&str> = charts.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["throughput.svg", "latency.svg"]);
        let throughput = &charts[0].1;
        // The median (200) is the best: a full bar; the other broker is a quarter of it.
        assert!(
            throughput.contains(&format!(r#"width="{BAR_W:.1}""#)),
            "{throughput}"
        );
        assert!(throughput.contains(&format!(r#"width="{:.1}""#, BAR_W / 4.0)));
        assert!(
            throughput.contains("fan-in &lt;qos0&gt;") && throughput.contains("other &amp; co")
        );
        assert!(
            !throughput.contains("latency qos0"),
            "rate-limited runs are not throughput"
        );
        let latency = &charts[1].1;
        assert!(
            latency.contains("p50 80.0 · p99 240 · p99.9 720 µs"),
            "{latency}"
        );
        assert!(latency.starts_with("<svg") && latency.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn nothing_to_draw_is_no_chart() {
        assert!(charts(&[], "empty").is_empty());
    }
}
