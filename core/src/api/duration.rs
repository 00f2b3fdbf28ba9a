//! Durations as the API writes them ("15s", "1m30s", "250ms", "1.5h"): Go's `time.ParseDuration`
//! syntax limited to the units the CRD's pattern allows, parsed with checked arithmetic so that no
//! text (however long its numbers) can panic or overflow, and bounded per field.

use std::time::Duration;

/// The bounds of one duration field, in the CRD (CEL) and in the parser alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurationBounds {
    pub min: Duration,
    pub max: Duration,
}

/// `spec.interval`: at least a second (faster would hammer Prometheus and the API server), at most
/// an hour (slower is no longer autoscaling).
pub const INTERVAL_BOUNDS: DurationBounds = DurationBounds { min: Duration::from_secs(1), max: Duration::from_secs(3600) };

/// `spec.placement.fallbackAfter` and `returnAfter`: a second to a day.
pub const SPOT_WAIT_BOUNDS: DurationBounds = DurationBounds { min: Duration::from_secs(1), max: Duration::from_secs(86_400) };

/// `spec.forecast.horizon`, `trendWindow` and `lookback`: a minute (the step of the range queries
/// they are read with) to a day.
pub const FORECAST_WINDOW_BOUNDS: DurationBounds =
    DurationBounds { min: Duration::from_secs(60), max: Duration::from_secs(86_400) };

/// `spec.forecast.stepUpAhead` and `singleStepDownWindow`: 0s (off) to two hours (the default
/// lookback: further ahead or back than what the law learns from says nothing).
pub const FORECAST_STEP_BOUNDS: DurationBounds = DurationBounds { min: Duration::ZERO, max: Duration::from_secs(7200) };

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DurationError {
    #[error("{0:?} is not a duration: write it like \"15s\", \"90s\", \"1m30s\" or \"10m\" (units ms, s, m, h)")]
    Syntax(String),
    #[error("{text:?} is shorter than {min}: use at least {min}")]
    TooShort { text: String, min: String },
    #[error("{text:?} is longer than {max}: use at most {max}")]
    TooLong { text: String, max: String },
}

/// Parses `text` and checks it against `bounds`.
pub fn parse_duration(text: &str, bounds: DurationBounds) -> Result<Duration, DurationError> {
    let millis = parse_millis(text).ok_or_else(|| DurationError::Syntax(text.to_owned()))?;
    // Anything past u64 milliseconds is certainly over any bound.
    let duration = u64::try_from(millis).map(Duration::from_millis).unwrap_or(Duration::MAX);
    if duration < bounds.min {
        return Err(DurationError::TooShort { text: text.to_owned(), min: format_duration(bounds.min) });
    }
    if duration > bounds.max {
        return Err(DurationError::TooLong { text: text.to_owned(), max: format_duration(bounds.max) });
    }
    Ok(duration)
}

/// Whole milliseconds (fractions below a millisecond are dropped), saturating at u128::MAX; None
/// when the text does not match the CRD's pattern, `^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`.
fn parse_millis(text: &str) -> Option<u128> {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let (whole, next) = digits(bytes, i)?;
        i = next;
        let mut fraction: &[u8] = &[];
        if bytes.get(i) == Some(&b'.') {
            let (_, next) = digits(bytes, i + 1)?;
            fraction = &bytes[i + 1..next];
            i = next;
        }
        let unit_millis: u128 = match (bytes.get(i), bytes.get(i + 1)) {
            (Some(b'm'), Some(b's')) => {
                i += 2;
                1
            }
            (Some(b's'), _) => {
                i += 1;
                1_000
            }
            (Some(b'm'), _) => {
                i += 1;
                60_000
            }
            (Some(b'h'), _) => {
                i += 1;
                3_600_000
            }
            _ => return None,
        };
        let mut part = whole.saturating_mul(unit_millis);
        // The fraction's first digits are enough: a unit is at most 3.6e6 ms.
        let mut scale = unit_millis;
        for &digit in fraction.iter().take(8) {
            scale /= 10;
            part = part.saturating_add(u128::from(digit - b'0') * scale);
        }
        total = total.saturating_add(part);
    }
    Some(total)
}

/// The value of the run of ASCII digits at `start` (saturating) and where it ends; None when there is none.
fn digits(bytes: &[u8], start: usize) -> Option<(u128, usize)> {
    let mut end = start;
    let mut value: u128 = 0;
    while let Some(&b) = bytes.get(end).filter(|b| b.is_ascii_digit()) {
        value = value.saturating_mul(10).saturating_add(u128::from(b - b'0'));
        end += 1;
    }
    (end > start).then_some((value, end))
}

/// "1s", "90s", "1h", "24h": how bounds are written in messages and CEL rules.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs > 0 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs > 0 && secs.is_multiple_of(60) && secs < 3600 {
        format!("{}m", secs / 60)
    } else if d.subsec_millis() == 0 {
        format!("{secs}s")
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The CEL rule that bounds a duration field in the CRD, so the API server rejects what the parser would.
pub fn cel_rule(bounds: DurationBounds) -> String {
    format!(
        "duration(self) >= duration('{}') && duration(self) <= duration('{}')",
        format_duration(bounds.min),
        format_duration(bounds.max)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(text: &str) -> Result<Duration, DurationError> {
        parse_duration(text, INTERVAL_BOUNDS)
    }

    #[test]
    fn durations_are_read_as_go_writes_them() {
        assert_eq!(interval("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(interval("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(interval("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(interval("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(interval("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0.25h", SPOT_WAIT_BOUNDS), Ok(Duration::from_secs(900)));
    }

    #[test]
    fn a_duration_whose_number_overflows_is_too_long_not_a_panic() {
        assert!(matches!(interval("99999999999999999999h"), Err(DurationError::TooLong { .. })));
        let huge = "9".repeat(200) + "h";
        assert!(matches!(interval(&huge), Err(DurationError::TooLong { .. })));
        assert_eq!(interval(&format!("1.{}s", "9".repeat(200))), Ok(Duration::from_millis(1999)));
    }

    #[test]
    fn an_interval_under_a_second_or_over_an_hour_names_the_bound() {
        assert_eq!(interval("1ms").unwrap_err().to_string(), "\"1ms\" is shorter than 1s: use at least 1s");
        assert_eq!(interval("61m").unwrap_err().to_string(), "\"61m\" is longer than 1h: use at most 1h");
        assert!(interval("0s").is_err());
    }

    #[test]
    fn text_that_is_not_a_duration_is_a_syntax_error() {
        for text in ["", "15", "s", "1d", "-5s", "1.s", ".5s", "5 s", "15sec", "1e3s"] {
            assert!(matches!(interval(text), Err(DurationError::Syntax(_))), "{text:?}");
        }
    }

    #[test]
    fn the_cel_rule_states_the_same_bounds() {
        assert_eq!(cel_rule(INTERVAL_BOUNDS), "duration(self) >= duration('1s') && duration(self) <= duration('1h')");
        assert_eq!(cel_rule(SPOT_WAIT_BOUNDS), "duration(self) >= duration('1s') && duration(self) <= duration('24h')");
        // spec.forecast.horizon, trendWindow and lookback carry this rule in the CRD.
        assert_eq!(cel_rule(FORECAST_WINDOW_BOUNDS), "duration(self) >= duration('1m') && duration(self) <= duration('24h')");
        // spec.forecast.stepUpAhead and singleStepDownWindow.
        assert_eq!(cel_rule(FORECAST_STEP_BOUNDS), "duration(self) >= duration('0s') && duration(self) <= duration('2h')");
    }
}
