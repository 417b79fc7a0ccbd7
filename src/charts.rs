//! Usage charts, drawn on the server as inline SVG: no JavaScript and no chart library
//! reach the browser. This module does the arithmetic (which day goes where, how tall,
//! which labels) and hands `templates/charts.html` shapes that are ready to print, with
//! every number also given as text for a screen reader's table.

use chrono::{Duration, NaiveDate};

use crate::db::usage::Counts;

/// The drawing's coordinate space; the SVG scales to its box, so these are proportions.
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 340.0;
/// The strip under the dates where wrong-secret attempts are drawn apart, on their own
/// scale: anyone who knows a key can make them, so they never stack on the token's use.
const STRIP_TOP: f64 = 300.0;
const STRIP_HEIGHT: f64 = 30.0;
/// Room for the scale's numbers on the left, the last date's label on the right, the
/// axis title on top and the dates under the bars; phones draw the text twice as large.
const LEFT: f64 = 66.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 126.0;

/// One part of a day's stacked bar.
pub struct Segment {
    /// The series' CSS class: `ok`, `refused`, `forbidden`, `limited` or `failed`.
    pub class: &'static str,
    pub y: String,
    pub height: String,
}

/// One day's stacked bar of calls made with the secret (successes at the bottom, then
/// other refusals, 403s, 429s and the server's failures), and its wrong-secret attempts,
/// drawn apart.
pub struct DayBar {
    /// `2026-11-28`.
    pub date: String,
    /// `Nov 28`.
    pub label: String,
    pub succeeded: i64,
    pub refused: i64,
    pub forbidden: i64,
    pub rate_limited: i64,
    pub failed: i64,
    pub wrong_secret: i64,
    pub x: String,
    pub width: String,
    pub segments: Vec<Segment>,
    pub wrong_y: String,
    pub wrong_height: String,
}

/// A labelled line across the chart, or a label under it.
pub struct Tick {
    pub at: String,
    pub label: String,
}

/// A 30-day (or any length) bar chart of calls per day.
pub struct BarChart {
    /// Unique on the page: the SVG's `<title>` and `<desc>` ids are made from it.
    pub id: String,
    pub title: String,
    pub desc: String,
    pub view_box: String,
    pub plot_left: String,
    pub plot_right: String,
    pub plot_bottom: String,
    pub axis_label_x: String,
    pub axis_label_y: String,
    pub bars: Vec<DayBar>,
    pub y_ticks: Vec<Tick>,
    pub x_ticks: Vec<Tick>,
    pub total_succeeded: i64,
    pub total_refused: i64,
    pub total_forbidden: i64,
    pub total_rate_limited: i64,
    pub total_failed: i64,
    pub total_wrong_secret: i64,
    /// Where the wrong-secret strip's label sits.
    pub strip_label_y: String,
    pub strip_bottom: String,
}

/// A dozen-pixel picture of a token's last days, beside its row in a list.
pub struct Sparkline {
    pub label: String,
    pub view_box: String,
    pub bars: Vec<SparkBar>,
}

pub struct SparkBar {
    pub x: String,
    pub y: String,
    pub height: String,
}

/// Every day from `days - 1` days before `today` to `today`, with its counts (zero for a
/// day with none).
fn each_day(
    today: NaiveDate,
    days: u32,
    counts: &[(NaiveDate, Counts)],
) -> Vec<(NaiveDate, Counts)> {
    let first = today - Duration::days(i64::from(days) - 1);
    first
        .iter_days()
        .take(days as usize)
        .map(|day| {
            let mut total = Counts::default();
            for (_, c) in counts.iter().filter(|(d, _)| *d == day) {
                total.add(c);
            }
            (day, total)
        })
        .collect()
}

/// The first "round" number (1, 2 or 5 times a power of ten) at least `raw`.
fn nice_step(raw: f64) -> i64 {
    let mut magnitude = 1i64;
    loop {
        for factor in [1, 2, 5] {
            let step = factor * magnitude;
            if step as f64 >= raw {
                return step;
            }
        }
        magnitude = magnitude.saturating_mul(10);
    }
}

fn px(v: f64) -> String {
    format!("{v:.1}")
}

/// Thousands separated, for labels: 12,345.
pub fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Calls per day for the `days` days up to `today` (UTC): the token's own calls stacked
/// by answer, and wrong-secret attempts in a strip of their own.
pub fn daily_bars(
    id: &str,
    title: &str,
    today: NaiveDate,
    days: u32,
    counts: &[(NaiveDate, Counts)],
) -> BarChart {
    let series = each_day(today, days, counts);
    let highest = series
        .iter()
        .map(|(_, c)| c.with_secret())
        .max()
        .unwrap_or(0);
    // Four gridlines at most, on round numbers; an idle chart still has a scale.
    let step = nice_step((highest as f64 / 4.0).max(1.0));
    let top = (highest.max(1) + step - 1) / step * step;
    let wrong_highest = series
        .iter()
        .map(|(_, c)| c.wrong_secret)
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let bottom = TOP + plot_height;
    let slot = plot_width / f64::from(days);
    let y_of = |n: i64| bottom - plot_height * n as f64 / top as f64;
    let strip_bottom = STRIP_TOP + STRIP_HEIGHT;

    let bars = series
        .iter()
        .enumerate()
        .map(|(i, (day, c))| {
            let x = LEFT + slot * i as f64 + slot * 0.15;
            // Stacked from the axis up, in the legend's order.
            let mut below = 0;
            let segments = [
                ("ok", c.succeeded),
                ("refused", c.refused),
                ("forbidden", c.forbidden),
                ("limited", c.rate_limited),
                ("failed", c.failed),
            ]
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(class, n)| {
                let (from, to) = (y_of(below), y_of(below + n));
                below += n;
                Segment {
                    class,
                    y: px(to),
                    height: px(from - to),
                }
            })
            .collect();
            let wrong = STRIP_HEIGHT * c.wrong_secret as f64 / wrong_highest as f64;
            DayBar {
                date: day.format("%Y-%m-%d").to_string(),
                label: day.format("%b %-d").to_string(),
                succeeded: c.succeeded,
                refused: c.refused,
                forbidden: c.forbidden,
                rate_limited: c.rate_limited,
                failed: c.failed,
                wrong_secret: c.wrong_secret,
                x: px(x),
                width: px(slot * 0.7),
                segments,
                wrong_y: px(strip_bottom - wrong),
                wrong_height: px(wrong),
            }
        })
        .collect::<Vec<_>>();

    let y_ticks = (0..=top / step)
        .map(|k| Tick {
            at: px(y_of(k * step)),
            label: grouped(k * step),
        })
        .collect();
    // A date under every seventh bar, counted back from today, so today is labelled.
    let x_ticks = (0..days as usize)
        .rev()
        .step_by(7)
        .map(|i| Tick {
            at: px(LEFT + slot * (i as f64 + 0.5)),
            label: bars[i].label.clone(),
        })
        .collect();

    let sum = |f: fn(&Counts) -> i64| series.iter().map(|(_, c)| f(c)).sum::<i64>();
    let total_succeeded = sum(|c| c.succeeded);
    let total_refused = sum(|c| c.refused);
    let total_forbidden = sum(|c| c.forbidden);
    let total_rate_limited = sum(|c| c.rate_limited);
    let total_failed = sum(|c| c.failed);
    let total_wrong_secret = sum(|c| c.wrong_secret);
    let first = series.first().map(|(d, _)| *d).unwrap_or(today);
    let busiest = series
        .iter()
        .max_by_key(|(d, c)| (c.with_secret(), std::cmp::Reverse(*d)))
        .filter(|(_, c)| c.with_secret() > 0);
    let span = format!("{} to {}", first.format("%b %-d"), today.format("%b %-d"));
    let wrong = match total_wrong_secret {
        0 => String::new(),
        n => format!(
            " {} with a wrong secret, drawn apart: they need only the key.",
            plural(n, "attempt", "attempts")
        ),
    };
    // Rare, and the server's doing rather than the token's: named only when there were some.
    let failed = match total_failed {
        0 => String::new(),
        n => format!(", and {} the server failed to answer", grouped(n)),
    };
    let desc = match busiest {
        None => format!("No calls with the secret from {span} (UTC).{wrong}"),
        Some((day, c)) => format!(
            "From {span} (UTC): {} successful calls, {} refused, {} forbidden and {} rate-limited{failed}. The busiest day was {}, with {} calls.{wrong}",
            grouped(total_succeeded),
            grouped(total_refused),
            grouped(total_forbidden),
            grouped(total_rate_limited),
            day.format("%b %-d"),
            grouped(c.with_secret())
        ),
    };
    BarChart {
        id: id.to_string(),
        title: title.to_string(),
        desc,
        view_box: format!("0 0 {WIDTH} {HEIGHT}"),
        plot_left: px(LEFT),
        plot_right: px(WIDTH - RIGHT),
        plot_bottom: px(bottom),
        axis_label_x: px(LEFT + plot_width / 2.0),
        axis_label_y: px(TOP / 2.0),
        bars,
        y_ticks,
        x_ticks,
        total_succeeded,
        total_refused,
        total_forbidden,
        total_rate_limited,
        total_failed,
        total_wrong_secret,
        strip_label_y: px(STRIP_TOP - 6.0),
        strip_bottom: px(strip_bottom),
    }
}

fn plural(n: i64, one: &str, many: &str) -> String {
    format!("{} {}", grouped(n), if n == 1 { one } else { many })
}

const SPARK_WIDTH: f64 = 84.0;
const SPARK_HEIGHT: f64 = 20.0;

/// All calls per day for the `days` days up to `today`, as a tiny bar chart.
pub fn sparkline(today: NaiveDate, days: u32, counts: &[(NaiveDate, Counts)]) -> Sparkline {
    let series = each_day(today, days, counts);
    let highest = series
        .iter()
        .map(|(_, c)| c.total())
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = SPARK_WIDTH / f64::from(days);
    let total: i64 = series.iter().map(|(_, c)| c.total()).sum();
    Sparkline {
        label: format!("{} calls in the last {days} days", grouped(total)),
        view_box: format!("0 0 {SPARK_WIDTH} {SPARK_HEIGHT}"),
        bars: series
            .iter()
            .enumerate()
            .map(|(i, (_, c))| {
                // A day with any call shows at least a sliver, so one call isn't lost.
                let h = if c.total() == 0 {
                    0.0
                } else {
                    (SPARK_HEIGHT * c.total() as f64 / highest as f64).max(1.5)
                };
                SparkBar {
                    x: px(slot * i as f64 + slot * 0.1),
                    y: px(SPARK_HEIGHT - h),
                    height: px(h),
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: &str) -> NaiveDate {
        d.parse().unwrap()
    }

    fn calls(succeeded: i64, refused: i64) -> Counts {
        Counts {
            succeeded,
            forbidden: refused,
            ..Counts::default()
        }
    }

    #[test]
    fn thirty_days_end_today_with_missing_days_as_zero() {
        let today = day("2026-11-28");
        let chart = daily_bars(
            "c",
            "Calls",
            today,
            30,
            &[(day("2026-10-30"), calls(4, 0)), (today, calls(7, 3))],
        );
        assert_eq!(chart.bars.len(), 30);
        assert_eq!(chart.bars[0].date, "2026-10-30");
        assert_eq!(chart.bars[0].succeeded, 4);
        assert_eq!(chart.bars[29].date, "2026-11-28");
        assert_eq!((chart.bars[29].succeeded, chart.bars[29].forbidden), (7, 3));
        assert!(
            chart.bars[1..29]
                .iter()
                .all(|b| b.succeeded + b.forbidden == 0 && b.segments.is_empty())
        );
        assert_eq!((chart.total_succeeded, chart.total_forbidden), (11, 3));
        assert!(
            chart
                .desc
                .contains("11 successful calls, 0 refused, 3 forbidden and 0 rate-limited")
        );
        assert!(chart.desc.contains("busiest day was Nov 28, with 10 calls"));
        // Today is labelled under its bar.
        assert_eq!(chart.x_ticks[0].label, "Nov 28");
    }

    #[test]
    fn the_tallest_bar_fits_under_a_round_top_gridline() {
        let today = day("2026-11-28");
        let chart = daily_bars("c", "Calls", today, 30, &[(today, calls(900, 37))]);
        let labels: Vec<&str> = chart.y_ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["0", "500", "1,000"]);
        let bar = &chart.bars[29];
        let top_of_bar: f64 = bar.segments[1].y.parse().unwrap();
        let top_line: f64 = chart.y_ticks.last().unwrap().at.parse().unwrap();
        assert!(top_of_bar >= top_line, "{top_of_bar} is above {top_line}");
        // The stack's two parts meet: refusals sit on the successes.
        let forbidden_bottom: f64 = bar.segments[1].y.parse::<f64>().unwrap()
            + bar.segments[1].height.parse::<f64>().unwrap();
        assert!((forbidden_bottom - bar.segments[0].y.parse::<f64>().unwrap()).abs() < 0.11);
    }

    #[test]
    fn five_answers_stack_in_order_and_wrong_secrets_stay_apart() {
        let today = day("2026-11-28");
        let counts = Counts {
            succeeded: 10,
            refused: 2,
            forbidden: 3,
            rate_limited: 4,
            failed: 1,
            wrong_secret: 500,
        };
        let chart = daily_bars("c", "Calls", today, 30, &[(today, counts)]);
        let bar = &chart.bars[29];
        let classes: Vec<&str> = bar.segments.iter().map(|s| s.class).collect();
        assert_eq!(classes, ["ok", "refused", "forbidden", "limited", "failed"]);
        // A flood of wrong secrets does not change the scale of the token's own calls.
        let labels: Vec<&str> = chart.y_ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["0", "5", "10", "15", "20"]);
        assert!(
            chart
                .desc
                .contains("4 rate-limited, and 1 the server failed to answer."),
            "{}",
            chart.desc
        );
        assert_eq!(bar.wrong_height, "30.0");
        assert!(
            chart
                .desc
                .contains("500 attempts with a wrong secret, drawn apart")
        );
        assert_eq!(chart.total_wrong_secret, 500);
    }

    #[test]
    fn an_idle_chart_says_so_and_still_has_a_scale() {
        let chart = daily_bars("c", "Calls", day("2026-11-28"), 30, &[]);
        assert!(
            chart
                .desc
                .starts_with("No calls with the secret from Oct 30 to Nov 28")
        );
        assert_eq!(chart.y_ticks.len(), 2);
    }

    #[test]
    fn a_sparkline_shows_every_day_with_calls() {
        let today = day("2026-11-28");
        let line = sparkline(
            today,
            14,
            &[(today, calls(1000, 0)), (day("2026-11-20"), calls(1, 0))],
        );
        assert_eq!(line.bars.len(), 14);
        assert_eq!(line.label, "1,001 calls in the last 14 days");
        let heights: Vec<f64> = line
            .bars
            .iter()
            .map(|b| b.height.parse().unwrap())
            .collect();
        assert_eq!(heights.iter().filter(|h| **h > 0.0).count(), 2);
        assert!(heights[5] >= 1.5, "one call still shows");
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1234567), "1,234,567");
    }
}
