//! Inline SVG charts for the console pages.
//!
//! Each chart is a `<figure>` holding a visible caption, an `<svg role="img">` sized only
//! by its viewBox (so it scales with its container), and a visually hidden table of the
//! same numbers: screen readers and tests read the table, people read the picture.
//! Colours and fonts come from console.css classes only, because the Content-Security-Policy
//! forbids inline styles. Every empty SVG element is written as `<x></x>`, never `<x>`:
//! inside HTML an unclosed SVG element would swallow its siblings.

use maud::{Markup, html};

/// One slice of a donut or one segment of a stacked bar. `class` picks the colour
/// (`s-ok`, `s-needed`, `s-failed`, `s-unknown`, `s-none`).
#[derive(Clone, Copy, Debug)]
pub struct Part<'a> {
    pub label: &'a str,
    pub value: u64,
    pub class: &'a str,
}

const NO_DATA: &str = "No data yet";

/// Share of a whole as a donut, with the total in the middle and a legend.
pub fn donut(id: &str, title: &str, parts: &[Part<'_>]) -> Markup {
    let total: u128 = parts.iter().map(|p| u128::from(p.value)).sum();
    let desc = if total == 0 {
        NO_DATA.to_string()
    } else {
        let shares: Vec<String> =
            parts.iter().map(|p| format!("{} {} ({})", p.label, p.value, percent(p.value, total))).collect();
        format!("Total {total}: {}", shares.join(", "))
    };
    let body = html! {
        circle class="track" cx="60" cy="60" r="46" {}
        @for (p, start, len) in segments(parts, 100.0) {
            // pathLength=100 makes dash lengths percentages; the leading "0 start" gap
            // places the slice without a negative dash offset.
            circle class={ "seg " (p.class) } cx="60" cy="60" r="46" pathLength="100"
                transform="rotate(-90 60 60)"
                stroke-dasharray={ "0 " (num(start)) " " (num(len)) " 100" } {
                title { (p.label) ": " (p.value) " (" (percent(p.value, total)) ")" }
            }
        }
        @if total == 0 {
            text class="label center" x="60" y="64" text-anchor="middle" { (NO_DATA) }
        } @else {
            text class="total" x="60" y="62" text-anchor="middle" { (total) }
            text class="label" x="60" y="76" text-anchor="middle" { "total" }
        }
    };
    let table = html! {
        table class="sr-only" {
            caption { (title) }
            thead { tr { th scope="col" { "Status" } th scope="col" { "Count" } th scope="col" { "Share" } } }
            tbody {
                @for p in parts {
                    tr { th scope="row" { (p.label) } td { (p.value) } td { (percent(p.value, total)) } }
                }
            }
        }
    };
    let legend = html! {
        ul class="legend" aria-hidden="true" {
            @for p in parts {
                li { span class={ "swatch " (p.class) } {} (p.label) " " span class="n" { (p.value) } }
            }
        }
    };
    figure(id, title, &desc, "0 0 120 120", "chart donut", body, legend, table)
}

/// One 100% stacked horizontal bar per row (e.g. compliance per group), the row's total
/// at its right end, and a legend of every part label seen.
pub fn stacked_bars(id: &str, title: &str, rows: &[(String, Vec<Part<'_>>)]) -> Markup {
    const ROW: f64 = 22.0;
    const GAP: f64 = 10.0;
    const BAR_X: f64 = 150.0;
    const BAR_W: f64 = 390.0;
    let keys = legend_keys(rows);
    let height = if rows.is_empty() { 60.0 } else { rows.len() as f64 * (ROW + GAP) - GAP + 8.0 };
    let desc = if rows.is_empty() {
        NO_DATA.to_string()
    } else {
        let lines: Vec<String> = rows
            .iter()
            .map(|(label, parts)| {
                let total = row_total(parts);
                let shares: Vec<String> =
                    parts.iter().map(|p| format!("{} {}", p.label, percent(p.value, total))).collect();
                format!("{label}: {}", shares.join(", "))
            })
            .collect();
        lines.join("; ")
    };
    let body = html! {
        @if rows.is_empty() {
            text class="label" x="300" y="34" text-anchor="middle" { (NO_DATA) }
        }
        @for (i, (label, parts)) in rows.iter().enumerate() {
            @let y = 4.0 + i as f64 * (ROW + GAP);
            @let total = row_total(parts);
            g class="row" {
                title { (label) ": " (total) }
                text class="label" x="144" y=(num(y + 15.0)) text-anchor="end" { (shorten(label, 22)) }
                rect class="track" x=(num(BAR_X)) y=(num(y)) width=(num(BAR_W)) height=(num(ROW)) {}
                @for (p, x, w) in segments(parts, BAR_W) {
                    rect class={ "bar " (p.class) } x=(num(BAR_X + x)) y=(num(y)) width=(num(w)) height=(num(ROW)) {
                        title { (label) ", " (p.label) ": " (p.value) " (" (percent(p.value, total)) ")" }
                    }
                }
                text class="label" x=(num(BAR_X + BAR_W + 8.0)) y=(num(y + 15.0)) { (total) }
            }
        }
    };
    let table = html! {
        table class="sr-only" {
            caption { (title) }
            thead {
                tr {
                    th scope="col" { "Name" }
                    @for (label, _) in &keys { th scope="col" { (label) } }
                    th scope="col" { "Total" }
                }
            }
            tbody {
                @for (label, parts) in rows {
                    tr {
                        th scope="row" { (label) }
                        @for (key, _) in &keys {
                            td { (parts.iter().filter(|p| p.label == *key).map(|p| u128::from(p.value)).sum::<u128>()) }
                        }
                        td { (row_total(parts)) }
                    }
                }
            }
        }
    };
    let legend = html! {
        ul class="legend" aria-hidden="true" {
            @for (label, class) in &keys { li { span class={ "swatch " (class) } {} (label) } }
        }
    };
    figure(id, title, &desc, &format!("0 0 600 {}", num(height)), "chart stacked", body, legend, table)
}

/// Vertical columns over labelled points (e.g. clients contacting per hour).
pub fn columns(id: &str, title: &str, points: &[(String, f64)], unit: &str) -> Markup {
    plot(id, title, points, unit, Mark::Columns)
}

/// A line through labelled points (e.g. sync duration over time).
pub fn line(id: &str, title: &str, points: &[(String, f64)], unit: &str) -> Markup {
    plot(id, title, points, unit, Mark::Line)
}

#[derive(Clone, Copy, PartialEq)]
enum Mark {
    Columns,
    Line,
}

/// Plot area of the column and line charts, in viewBox units.
const LEFT: f64 = 56.0;
const TOP: f64 = 20.0;
const PLOT_W: f64 = 536.0;
const PLOT_H: f64 = 180.0;
const TICKS: u32 = 4;

fn plot(id: &str, title: &str, points: &[(String, f64)], unit: &str, mark: Mark) -> Markup {
    let values: Vec<f64> = points.iter().map(|(_, v)| drawable(*v)).collect();
    let step = tick_step(values.iter().copied().fold(0.0, f64::max));
    let top = step * f64::from(TICKS);
    let slot = PLOT_W / points.len().max(1) as f64;
    let x_of = |i: usize| LEFT + (i as f64 + 0.5) * slot;
    let y_of = |v: f64| TOP + PLOT_H - v / top * PLOT_H;
    let every = label_every(points, slot);
    let unit_suffix = if unit.is_empty() { String::new() } else { format!(" {unit}") };
    let desc = if points.is_empty() {
        NO_DATA.to_string()
    } else {
        let (lo, hi) = values.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        format!(
            "{} points from {} to {}; lowest {}{unit_suffix}, highest {}{unit_suffix}",
            points.len(),
            points[0].0,
            points[points.len() - 1].0,
            num(lo),
            num(hi)
        )
    };
    let line_points: Vec<String> =
        values.iter().enumerate().map(|(i, v)| format!("{},{}", num(x_of(i)), num(y_of(*v)))).collect();
    let body = html! {
        @if !unit.is_empty() { text class="axis unit" x="4" y="12" { (unit) } }
        @for t in 0..=TICKS {
            @let v = step * f64::from(t);
            @let y = y_of(v);
            line class="grid" x1=(num(LEFT)) x2=(num(LEFT + PLOT_W)) y1=(num(y)) y2=(num(y)) {}
            @if !points.is_empty() {
                text class="axis" x=(num(LEFT - 6.0)) y=(num(y + 4.0)) text-anchor="end" { (tick(v, step)) }
            }
        }
        @if points.is_empty() {
            text class="label" x=(num(LEFT + PLOT_W / 2.0)) y=(num(TOP + PLOT_H / 2.0)) text-anchor="middle" { (NO_DATA) }
        }
        @if mark == Mark::Line && !points.is_empty() {
            polyline class="line" points=(line_points.join(" ")) {}
        }
        @for (i, ((label, raw), v)) in points.iter().zip(&values).enumerate() {
            @let tip = html! { title { (label) ": " (value(*raw)) (unit_suffix) } };
            @match mark {
                Mark::Columns => {
                    rect class="col" x=(num(x_of(i) - slot * 0.4)) y=(num(y_of(*v))) width=(num(slot * 0.8))
                        height=(num(v / top * PLOT_H)) { (tip) }
                }
                Mark::Line => {
                    circle class="dot" cx=(num(x_of(i))) cy=(num(y_of(*v))) r="3" { (tip) }
                }
            }
            @if i % every == 0 {
                text class="axis" x=(num(x_of(i))) y=(num(TOP + PLOT_H + 16.0)) text-anchor="middle" { (shorten(label, 16)) }
            }
        }
        line class="axis-line" x1=(num(LEFT)) x2=(num(LEFT + PLOT_W)) y1=(num(TOP + PLOT_H)) y2=(num(TOP + PLOT_H)) {}
    };
    let table = html! {
        table class="sr-only" {
            caption { (title) }
            thead { tr { th scope="col" { "Point" } th scope="col" { "Value" (unit_suffix) } } }
            tbody {
                @for (label, raw) in points { tr { th scope="row" { (label) } td { (value(*raw)) } } }
            }
        }
    };
    let class = if mark == Mark::Columns { "chart columns" } else { "chart line-chart" };
    figure(id, title, &desc, "0 0 600 240", class, body, html! {}, table)
}

#[allow(clippy::too_many_arguments)]
fn figure(
    id: &str,
    title: &str,
    desc: &str,
    view_box: &str,
    class: &str,
    body: Markup,
    legend: Markup,
    table: Markup,
) -> Markup {
    let title_id = format!("{id}-title");
    let desc_id = format!("{id}-desc");
    html! {
        figure class=(class) id=(id) {
            figcaption { (title) }
            svg xmlns="http://www.w3.org/2000/svg" viewBox=(view_box) role="img"
                aria-labelledby={ (title_id) " " (desc_id) } {
                title id=(title_id) { (title) }
                desc id=(desc_id) { (desc) }
                (body)
            }
            (legend)
            (table)
        }
    }
}

/// Part labels in order of first appearance across rows, each with its colour class.
fn legend_keys<'a>(rows: &'a [(String, Vec<Part<'a>>)]) -> Vec<(&'a str, &'a str)> {
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for p in rows.iter().flat_map(|(_, parts)| parts) {
        if !keys.iter().any(|(label, _)| *label == p.label) {
            keys.push((p.label, p.class));
        }
    }
    keys
}

/// The non-zero parts laid end to end along `length`: each with its start and its extent.
fn segments<'p, 'a>(parts: &'p [Part<'a>], length: f64) -> Vec<(&'p Part<'a>, f64, f64)> {
    let total = row_total(parts);
    let mut start = 0.0;
    let mut out = Vec::new();
    for p in parts.iter().filter(|p| p.value > 0) {
        let extent = share(p.value, total) * length;
        out.push((p, start, extent));
        start += extent;
    }
    out
}

fn row_total(parts: &[Part<'_>]) -> u128 {
    parts.iter().map(|p| u128::from(p.value)).sum()
}

/// Fraction of `total`; 0 when there is no total, so nothing divides by zero.
fn share(value: u64, total: u128) -> f64 {
    if total == 0 { 0.0 } else { value as f64 / total as f64 }
}

/// A whole-number percentage; tiny non-zero shares say "<1%" rather than a misleading "0%".
fn percent(value: u64, total: u128) -> String {
    let p = share(value, total) * 100.0;
    if p > 0.0 && p < 1.0 { "<1%".to_string() } else { format!("{}%", p.round()) }
}

/// Negative and non-finite values are drawn as zero.
fn drawable(v: f64) -> f64 {
    if v.is_finite() && v > 0.0 { v } else { 0.0 }
}

/// A coordinate or plain number: at most two decimals, '.' as separator, never NaN or "-0".
fn num(v: f64) -> String {
    if !v.is_finite() {
        return "0".to_string();
    }
    let s = format!("{:.2}", v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".to_string() } else { s.to_string() }
}

/// A data value as shown in tooltips and the table.
fn value(v: f64) -> String {
    if v.is_finite() { num(v) } else { "n/a".to_string() }
}

/// Gridline spacing: 1, 2, 2.5 or 5 times a power of ten, so that `TICKS` steps cover `max`.
fn tick_step(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0 / f64::from(TICKS);
    }
    let raw = max / f64::from(TICKS);
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(raw);
    if step.is_finite() && step > 0.0 { step } else { raw }
}

/// An axis label: large values with k/M/G, small ones with as many decimals as the step needs.
fn tick(v: f64, step: f64) -> String {
    for (scale, suffix) in [(1e9, "G"), (1e6, "M"), (1e3, "k")] {
        if step >= scale / 10.0 && v.abs() >= scale {
            return format!("{}{suffix}", num(v / scale));
        }
    }
    if step >= 0.01 {
        return num(v);
    }
    let decimals = (-step.log10().floor()) as usize + 1;
    let s = format!("{:.*}", decimals.min(9), v);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Show every n-th x label so that labels, at roughly 6.5 units per character, do not overlap.
fn label_every(points: &[(String, f64)], slot: f64) -> usize {
    let widest = points.iter().map(|(l, _)| l.chars().count().min(16)).max().unwrap_or(0);
    let need = widest as f64 * 6.5 + 8.0;
    ((need / slot).ceil() as usize).max(1)
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_string() } else { format!("{}…", s.chars().take(max - 1).collect::<String>()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that markup is well-formed XML: balanced, properly nested tags, quoted
    /// attributes and only known entities. Returns the sequence of opened element names.
    fn well_formed(s: &str) -> Vec<String> {
        let mut open: Vec<String> = Vec::new();
        let mut seen = Vec::new();
        let mut rest = s;
        while let Some(i) = rest.find(['<', '&']) {
            assert!(!rest[..i].contains('>'), "stray '>' in text: {}", &rest[..i]);
            rest = &rest[i..];
            if rest.starts_with('&') {
                let end = rest.find(';').expect("unterminated entity");
                assert!(["&amp;", "&lt;", "&gt;", "&quot;"].contains(&&rest[..=end]), "entity {}", &rest[..=end]);
                rest = &rest[end + 1..];
                continue;
            }
            let end = tag_end(rest);
            let tag = &rest[1..end];
            rest = &rest[end + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(open.pop().as_deref(), Some(name), "mismatched </{name}>");
                continue;
            }
            let name: String = tag.chars().take_while(|c| !c.is_whitespace() && *c != '/').collect();
            assert!(!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "name {name}");
            assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes in <{tag}>");
            seen.push(name.clone());
            if !tag.ends_with('/') {
                open.push(name);
            }
        }
        assert!(open.is_empty(), "unclosed: {open:?}");
        seen
    }

    /// The index of the '>' closing a tag, skipping any inside quoted attribute values.
    fn tag_end(s: &str) -> usize {
        let mut quoted = false;
        for (i, c) in s.char_indices() {
            match c {
                '"' => quoted = !quoted,
                '<' if i > 0 && !quoted => panic!("'<' inside a tag: {s}"),
                '>' if !quoted => return i,
                _ => {}
            }
        }
        panic!("unterminated tag: {s}")
    }

    /// The values of every `name="..."` attribute, in document order.
    fn attrs(s: &str, name: &str) -> Vec<String> {
        let pat = format!(" {name}=\"");
        s.match_indices(&pat)
            .map(|(i, _)| {
                let v = &s[i + pat.len()..];
                v[..v.find('"').unwrap()].to_string()
            })
            .collect()
    }

    /// Widths of `<rect class="<class>...">` elements.
    fn rect_widths(s: &str, class: &str) -> Vec<f64> {
        s.split("<rect ")
            .skip(1)
            .filter(|r| r.starts_with(&format!("class=\"{class}")))
            .map(|r| attrs(&format!(" {}", &r[..r.find('>').unwrap()]), "width")[0].parse().unwrap())
            .collect()
    }

    fn assert_finite(s: &str) {
        assert!(!s.contains("NaN") && !s.contains("inf"), "non-finite number in {s}");
    }

    fn compliance() -> Vec<Part<'static>> {
        vec![
            Part { label: "Up to date", value: 30, class: "s-ok" },
            Part { label: "Needing updates", value: 10, class: "s-needed" },
            Part { label: "With errors", value: 0, class: "s-failed" },
            Part { label: "Not reported", value: 20, class: "s-unknown" },
        ]
    }

    fn series(n: usize) -> Vec<(String, f64)> {
        (0..n).map(|i| (format!("{i:02}:00"), i as f64)).collect()
    }

    #[test]
    fn every_chart_is_well_formed_and_accessible() {
        let charts = [
            donut("c1", "Compliance", &compliance()),
            donut("c2", "Empty", &[]),
            stacked_bars("c3", "Groups", &[("All".into(), compliance()), ("None".into(), vec![])]),
            stacked_bars("c4", "Empty", &[]),
            columns("c5", "Clients", &series(48), "clients"),
            columns("c6", "Empty", &[], ""),
            line("c7", "Duration", &series(5), "s"),
            line("c8", "One", &[("only".into(), 3.0)], "s"),
        ];
        for chart in charts {
            let s = chart.into_string();
            let names = well_formed(&s);
            for needed in ["figure", "svg", "title", "desc", "table", "caption"] {
                assert!(names.iter().any(|n| n == needed), "no <{needed}> in {s}");
            }
            assert!(s.contains(r#"role="img""#) && s.contains(r#"class="sr-only""#));
            assert!(s.contains("viewBox=\"0 0 ") && !s.contains(" width=\"100%") && !s.contains("style="));
            assert_finite(&s);
        }
    }

    #[test]
    fn checker_rejects_broken_markup() {
        for bad in ["<svg><circle></svg>", "<a>", "<a b=\"1>x</a>", "a & b", "<p>1 > 0</p>"] {
            assert!(std::panic::catch_unwind(|| well_formed(bad)).is_err(), "accepted {bad}");
        }
    }

    #[test]
    fn donut_slices_are_proportional() {
        let s = donut("c", "Compliance", &compliance()).into_string();
        // 30/60, 10/60 and 20/60 of the ring, each starting where the previous ended; the
        // zero part draws nothing.
        assert_eq!(attrs(&s, "stroke-dasharray"), ["0 0 50 100", "0 50 16.67 100", "0 66.67 33.33 100"]);
        assert!(s.contains(">60</text>"));
        assert!(s.contains("<td>50%</td>") && s.contains("<td>0%</td>"));
    }

    #[test]
    fn tiny_shares_are_not_rounded_to_nothing() {
        let parts = [Part { label: "a", value: 1, class: "s-ok" }, Part { label: "b", value: 999, class: "s-none" }];
        let s = donut("c", "t", &parts).into_string();
        assert!(s.contains("<td>&lt;1%</td>"), "{s}");
    }

    #[test]
    fn empty_and_zero_inputs_say_no_data_without_nan() {
        let zeros = [Part { label: "a", value: 0, class: "s-ok" }];
        for s in [
            donut("c", "t", &[]),
            donut("c", "t", &zeros),
            stacked_bars("c", "t", &[]),
            columns("c", "t", &[], "MiB"),
            line("c", "t", &[], "s"),
        ] {
            let s = s.into_string();
            assert!(s.contains("No data yet"), "{s}");
            assert_finite(&s);
        }
        let zero_row = stacked_bars("c", "t", &[("g".into(), zeros.to_vec())]).into_string();
        assert!(rect_widths(&zero_row, "bar").is_empty());
        assert_finite(&zero_row);
        for s in [
            columns("c", "t", &[("a".into(), 0.0), ("b".into(), f64::NAN), ("c".into(), f64::INFINITY)], "x"),
            line("c", "t", &[("a".into(), -5.0), ("b".into(), 0.0)], "x"),
        ] {
            let s = s.into_string();
            well_formed(&s);
            assert_finite(&s);
        }
    }

    #[test]
    fn stacked_bars_are_proportional_within_each_row() {
        let rows = vec![
            (
                "A".to_string(),
                vec![
                    Part { label: "ok", value: 3, class: "s-ok" },
                    Part { label: "needed", value: 1, class: "s-needed" },
                ],
            ),
            ("B".to_string(), vec![Part { label: "needed", value: 2, class: "s-needed" }]),
        ];
        let s = stacked_bars("g", "Groups", &rows).into_string();
        assert_eq!(rect_widths(&s, "bar"), [292.5, 97.5, 390.0]);
        assert_eq!(s.matches("<li>").count(), 2, "legend lists each label once");
        // Row B has no "ok" part: its table cell says 0.
        assert!(s.contains("<th scope=\"row\">B</th><td>0</td><td>2</td><td>2</td>"), "{s}");
    }

    #[test]
    fn columns_are_proportional_to_values() {
        let points = vec![("a".into(), 10.0), ("b".into(), 20.0), ("c".into(), 40.0)];
        let s = columns("c", "t", &points, "").into_string();
        let heights = attrs(&s, "height").iter().map(|h| h.parse::<f64>().unwrap()).collect::<Vec<_>>();
        assert_eq!(heights.len(), 3);
        assert!((heights[1] - 2.0 * heights[0]).abs() < 0.02 && (heights[2] - 4.0 * heights[0]).abs() < 0.02);
        // 40 fits under the top gridline of 0, 10, 20, 30, 40.
        assert!(heights[2] <= PLOT_H && s.contains(">40</text>"));
    }

    #[test]
    fn many_columns_thin_out_their_labels() {
        let s = columns("c", "t", &series(48), "").into_string();
        let labels = s.matches("text-anchor=\"middle\">").count();
        assert!(labels > 4 && labels < 48, "{labels} x labels");
        assert_eq!(s.matches("<rect ").count(), 48);
    }

    #[test]
    fn line_passes_through_every_point() {
        let s = line("d", "Duration", &[("a".into(), 0.0), ("b".into(), 50.0), ("c".into(), 100.0)], "s").into_string();
        let points = attrs(&s, "points");
        let ys: Vec<f64> = points[0].split(' ').map(|p| p.split(',').nth(1).unwrap().parse().unwrap()).collect();
        assert_eq!(ys, [TOP + PLOT_H, TOP + PLOT_H / 2.0, TOP]);
        assert_eq!(s.matches("<circle ").count(), 3);
        assert!(s.contains("b: 50 s"));
    }

    #[test]
    fn labels_are_escaped() {
        let evil = "<b>&\"x\"";
        let parts = [Part { label: evil, value: 1, class: "s-ok" }];
        let points = [(evil.to_string(), 1.0)];
        for s in [
            donut("c", evil, &parts),
            stacked_bars("c", evil, &[(evil.to_string(), parts.to_vec())]),
            columns("c", evil, &points, evil),
            line("c", evil, &points, evil),
        ] {
            let s = s.into_string();
            well_formed(&s);
            assert!(!s.contains("<b>") && s.contains("&lt;b&gt;&amp;&quot;x&quot;"), "{s}");
        }
    }

    #[test]
    fn numbers_are_plain() {
        assert_eq!(num(1234567.0), "1234567");
        assert_eq!(num(0.5), "0.5");
        assert_eq!(num(-0.001), "0");
        assert_eq!(num(f64::NAN), "0");
        assert_eq!(tick(2_500_000.0, 500_000.0), "2.5M");
        assert_eq!(tick(0.0025, 0.0005), "0.0025");
        assert_eq!(tick(750.0, 250.0), "750");
        assert_eq!(tick_step(0.0), 0.25);
        assert_eq!(tick_step(37.0), 10.0);
        assert_eq!(tick_step(9.0), 2.5);
    }
}
