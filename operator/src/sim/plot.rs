//! `report.svg` and `report.png`: four panels over the window (offered load; replicas per pool,
//! with the baselines' totals and the spot interruptions; the latency objective against its target,
//! on a log scale; cumulative cost), the policy in blue and the baselines overlaid.
//!
//! Text is laid out with an embedded font (DejaVu Sans, subset; see assets/), so the report looks
//! the same on every machine and needs no system font.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::report::plotted_latency;
use super::run::MinuteRecord;
use super::signals::Signal;
use super::{Outcome, Simulation};

const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans-subset.ttf");
const FAMILY: &str = "sans-serif";
const WIDTH: u32 = 1600;
const HEIGHT: u32 = 1500;
/// At most this many points per line: a month of minutes is summarised per bucket.
const MAX_POINTS: usize = 1600;

const POLICY: RGBColor = RGBColor(31, 119, 180);
const SPOT: RGBColor = RGBColor(120, 180, 230);
const ON_DEMAND: RGBColor = RGBColor(25, 80, 140);
const HPA: RGBColor = RGBColor(230, 120, 20);
const STATIC: RGBColor = RGBColor(110, 110, 110);
const ORACLE: RGBColor = RGBColor(40, 160, 70);
const TARGET: RGBColor = RGBColor(200, 30, 30);
const INTERRUPTION: RGBColor = RGBColor(150, 60, 170);

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("the embedded font cannot be loaded")]
    Font,
    #[error("cannot draw {path}: {message}")]
    Draw { path: String, message: String },
}

/// What the report says under its title.
#[derive(Debug, Clone)]
pub struct Labels {
    pub title: String,
    pub subtitle: String,
}

fn register_font() -> Result<(), PlotError> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        result = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).map_err(|_| PlotError::Font);
    });
    result
}

/// Writes the report as SVG and PNG.
pub fn write(svg: &Path, png: &Path, simulation: &Simulation, outcome: &Outcome, labels: &Labels) -> Result<(), PlotError> {
    register_font()?;
    let data = PlotData::new(simulation, outcome);
    let failed = |path: &Path| {
        let path = path.display().to_string();
        move |message: String| PlotError::Draw { path: path.clone(), message }
    };
    {
        let root = SVGBackend::new(svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, &data, labels).map_err(failed(svg))?;
        root.present().map_err(|e| failed(svg)(e.to_string()))?;
    }
    {
        let root = BitMapBackend::new(png, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, &data, labels).map_err(failed(png))?;
        root.present().map_err(|e| failed(png)(e.to_string()))?;
    }
    Ok(())
}

/// One line of the plot: a run's values per bucket.
struct Line {
    name: &'static str,
    color: RGBColor,
    replicas: Vec<f64>,
    spot: Vec<f64>,
    latency: Vec<f64>,
    cost: Vec<f64>,
}

struct PlotData {
    /// Each bucket's start, in the x unit.
    x: Vec<f64>,
    x_end: f64,
    x_label: &'static str,
    load: Vec<f64>,
    lines: Vec<Line>,
    latency_name: String,
    latency_target: Option<f64>,
    interruptions: Vec<f64>,
}

impl PlotData {
    fn new(simulation: &Simulation, outcome: &Outcome) -> PlotData {
        let n = simulation.load_rps.len();
        let bucket = n.div_ceil(MAX_POINTS).max(1);
        let (unit, x_label) =
            if n <= 3 * 1440 { (60.0, "hours from the window's start") } else { (1440.0, "days from the window's start") };
        let starts: Vec<usize> = (0..n).step_by(bucket).collect();
        let x: Vec<f64> = starts.iter().map(|s| *s as f64 / unit).collect();
        let max_of = |values: &dyn Fn(usize) -> f64| -> Vec<f64> {
            starts
                .iter()
                .map(|s| (*s..(*s + bucket).min(n)).map(values).filter(|v| v.is_finite()).fold(f64::NAN, f64::max))
                .collect()
        };
        let load = max_of(&|i| simulation.load_rps[i]);
        let (latency_signal, latency_target, latency_name) = plotted_latency(&simulation.feeds);
        let lines = outcome
            .runs
            .iter()
            .map(|named| {
                let minutes: &[MinuteRecord] = &named.run.minutes;
                let at = |i: usize| minutes.get(i);
                let total = |i: usize| at(i).map_or(f64::NAN, |m| f64::from(m.spot + m.on_demand));
                // The replicas of the busiest minute of each bucket, and that minute's spot share.
                let busiest: Vec<usize> = starts
                    .iter()
                    .map(|s| (*s..(*s + bucket).min(n)).max_by(|a, b| total(*a).total_cmp(&total(*b))).unwrap_or(*s))
                    .collect();
                Line {
                    name: named.name,
                    color: match named.name {
                        "hpa" => HPA,
                        "static" => STATIC,
                        "oracle" => ORACLE,
                        _ => POLICY,
                    },
                    replicas: busiest.iter().map(|i| total(*i)).collect(),
                    spot: busiest.iter().map(|i| at(*i).map_or(f64::NAN, |m| f64::from(m.spot))).collect(),
                    latency: max_of(&|i| at(i).map_or(f64::NAN, |m| m.signal(latency_signal))),
                    cost: starts.iter().map(|s| at((*s + bucket).min(n) - 1).map_or(f64::NAN, |m| m.cumulative_cost)).collect(),
                }
            })
            .collect();
        PlotData {
            x,
            x_end: n as f64 / unit,
            x_label,
            load,
            lines,
            latency_name: format!("{latency_name} ({})", signal_label(latency_signal)),
            latency_target,
            interruptions: outcome.interruptions.iter().map(|t| t / 60.0 / unit).collect(),
        }
    }
}

fn signal_label(signal: Signal) -> &'static str {
    match signal {
        Signal::LatencyP50 => "median latency",
        Signal::LatencyP95 => "95th percentile latency",
        _ => "99th percentile latency",
    }
}

fn finite_max(values: impl Iterator<Item = f64>) -> f64 {
    values.filter(|v| v.is_finite()).fold(0.0, f64::max)
}

fn points<'a>(x: &'a [f64], y: &'a [f64]) -> impl Iterator<Item = (f64, f64)> + Clone + 'a {
    x.iter().copied().zip(y.iter().copied()).filter(|(_, y)| y.is_finite())
}

/// A step line: each value holds until the next bucket.
fn steps(x: &[f64], y: &[f64], x_end: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(2 * x.len());
    for (i, (x0, y0)) in x.iter().zip(y).enumerate() {
        if !y0.is_finite() {
            continue;
        }
        let x1 = x.get(i + 1).copied().unwrap_or(x_end);
        out.push((*x0, *y0));
        out.push((x1, *y0));
    }
    out
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, data: &PlotData, labels: &Labels) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let (header, body) = root.split_vertically(80);
    header.draw(&Text::new(labels.title.clone(), (30, 14), (FAMILY, 26).into_font().color(&BLACK))).map_err(err)?;
    header
        .draw(&Text::new(labels.subtitle.clone(), (30, 50), (FAMILY, 17).into_font().color(&RGBColor(60, 60, 60))))
        .map_err(err)?;
    let panels = body.split_evenly((4, 1));
    let x_range = 0.0..data.x_end.max(1e-9);
    let axis_font = (FAMILY, 15).into_font();
    let caption_font = (FAMILY, 20).into_font();

    // 1. Load.
    {
        let top = finite_max(data.load.iter().copied()) * 1.1 + 1e-9;
        let mut chart = ChartBuilder::on(&panels[0])
            .caption("Offered load (requests per second)", caption_font.clone())
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(x_range.clone(), 0.0..top)
            .map_err(err)?;
        chart.configure_mesh().label_style(axis_font.clone()).light_line_style(RGBColor(235, 235, 235)).draw().map_err(err)?;
        let mut area: Vec<(f64, f64)> = steps(&data.x, &data.load, data.x_end);
        if let (Some(first), Some(last)) = (area.first().copied(), area.last().copied()) {
            area.push((last.0, 0.0));
            area.push((first.0, 0.0));
        }
        chart.draw_series(std::iter::once(Polygon::new(area, RGBColor(200, 200, 200).filled()))).map_err(err)?;
        chart
            .draw_series(LineSeries::new(steps(&data.x, &data.load, data.x_end), BLACK.stroke_width(1)))
            .map_err(err)?
            .label("load (busiest minute of each point)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
        legend(&mut chart, &axis_font).map_err(err)?;
    }

    // 2. Replicas per pool.
    {
        let top = finite_max(data.lines.iter().flat_map(|l| l.replicas.iter().copied())) * 1.15 + 1.0;
        let mut chart = ChartBuilder::on(&panels[1])
            .caption("Replicas: the policy per pool, the baselines' totals", caption_font.clone())
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(x_range.clone(), 0.0..top)
            .map_err(err)?;
        chart.configure_mesh().label_style(axis_font.clone()).light_line_style(RGBColor(235, 235, 235)).draw().map_err(err)?;
        if let Some(policy) = data.lines.first() {
            let total = steps(&data.x, &policy.replicas, data.x_end);
            let spot = steps(&data.x, &policy.spot, data.x_end);
            let mut on_demand_area = total.clone();
            on_demand_area.extend(spot.iter().rev().copied());
            chart
                .draw_series(std::iter::once(Polygon::new(on_demand_area, ON_DEMAND.mix(0.55).filled())))
                .map_err(err)?
                .label("policy on-demand")
                .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 20, y + 6)], ON_DEMAND.mix(0.55).filled()));
            let mut spot_area = spot.clone();
            if let (Some(first), Some(last)) = (spot.first().copied(), spot.last().copied()) {
                spot_area.push((last.0, 0.0));
                spot_area.push((first.0, 0.0));
            }
            chart
                .draw_series(std::iter::once(Polygon::new(spot_area, SPOT.mix(0.8).filled())))
                .map_err(err)?
                .label("policy spot")
                .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 20, y + 6)], SPOT.mix(0.8).filled()));
        }
        for line in data.lines.iter().skip(1) {
            let color = line.color;
            chart
                .draw_series(LineSeries::new(steps(&data.x, &line.replicas, data.x_end), color.stroke_width(2)))
                .map_err(err)?
                .label(format!("{} total", line.name))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        if !data.interruptions.is_empty() {
            for (i, at) in data.interruptions.iter().enumerate() {
                let marker = chart
                    .draw_series(std::iter::once(PathElement::new(vec![(*at, 0.0), (*at, top)], INTERRUPTION.stroke_width(2))))
                    .map_err(err)?;
                if i == 0 {
                    marker
                        .label("spot interruption")
                        .legend(|(x, y)| PathElement::new(vec![(x + 10, y - 7), (x + 10, y + 7)], INTERRUPTION.stroke_width(2)));
                }
            }
        }
        legend(&mut chart, &axis_font).map_err(err)?;
    }

    // 3. Latency against its target, log scale.
    {
        let highest = finite_max(data.lines.iter().flat_map(|l| l.latency.iter().copied()));
        let lowest = data
            .lines
            .iter()
            .flat_map(|l| l.latency.iter().copied())
            .filter(|v| v.is_finite() && *v > 0.0)
            .fold(f64::INFINITY, f64::min);
        let target = data.latency_target.unwrap_or(highest);
        let low = (lowest.min(target) * 0.7).max(1e-4);
        let high = (highest.max(target) * 1.5).max(low * 10.0);
        let caption = match data.latency_target {
            Some(target) => format!("{} against its target, {} s (log scale)", data.latency_name, trim(target)),
            None => format!("{} (log scale; no latency objective)", data.latency_name),
        };
        let mut chart = ChartBuilder::on(&panels[2])
            .caption(caption, caption_font.clone())
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(x_range.clone(), (low..high).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .label_style(axis_font.clone())
            .light_line_style(RGBColor(235, 235, 235))
            .y_label_formatter(&|v| if is_round_log_label(*v) { format!("{} s", trim(*v)) } else { String::new() })
            .draw()
            .map_err(err)?;
        for line in data.lines.iter().rev() {
            let color = line.color;
            chart
                .draw_series(LineSeries::new(
                    points(&data.x, &line.latency),
                    color.stroke_width(if line.name == "policy" { 2 } else { 1 }),
                ))
                .map_err(err)?
                .label(line.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        if let Some(target) = data.latency_target {
            chart
                .draw_series(DashedLineSeries::new(vec![(0.0, target), (data.x_end, target)], 10, 6, TARGET.stroke_width(2)))
                .map_err(err)?
                .label("target")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], TARGET.stroke_width(2)));
        }
        legend(&mut chart, &axis_font).map_err(err)?;
    }

    // 4. Cumulative cost.
    {
        let top = finite_max(data.lines.iter().flat_map(|l| l.cost.iter().copied())) * 1.1 + 1e-9;
        let mut chart = ChartBuilder::on(&panels[3])
            .caption("Cumulative cost (the pools' currency)", caption_font.clone())
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(x_range, 0.0..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .label_style(axis_font.clone())
            .light_line_style(RGBColor(235, 235, 235))
            .x_desc(data.x_label)
            .axis_desc_style(axis_font.clone())
            .draw()
            .map_err(err)?;
        for line in data.lines.iter().rev() {
            let color = line.color;
            let last = line.cost.iter().rev().find(|c| c.is_finite()).copied().unwrap_or(0.0);
            chart
                .draw_series(LineSeries::new(points(&data.x, &line.cost), color.stroke_width(2)))
                .map_err(err)?
                .label(format!("{} ({})", line.name, trim_money(last)))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        legend(&mut chart, &axis_font).map_err(err)?;
    }
    Ok(())
}

fn legend<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    font: &FontDesc<'_>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(font.clone())
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .draw()
}

/// Whether a log-scale label is 1, 2 or 5 times a power of ten (the others are left blank, so the
/// labels do not crowd each other).
fn is_round_log_label(value: f64) -> bool {
    if value <= 0.0 {
        return false;
    }
    let mantissa = value / 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().any(|m| (mantissa - m).abs() < 1e-6 * m)
}

fn trim(value: f64) -> String {
    let text = if value >= 1.0 { format!("{value:.2}") } else { format!("{value:.3}") };
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_owned() } else { text }
}

fn trim_money(value: f64) -> String {
    format!("{value:.2}")
}
