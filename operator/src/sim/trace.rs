//! Load traces: per-minute request counts, as CSV. The last column of each row is the count (so
//! `minute,requests`, `minute_index,requests` and `timestamp,requests` all work); a first row whose
//! last column is not a number is a header. Shared by `trimtab simulate` and appsim, so both read a
//! trace, and scale it, the same way: `rps = count × scale / 60`.

/// A per-minute request-count trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// Requests in each minute, as recorded.
    pub requests_per_minute: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TraceError {
    #[error("{source_name}: line {line}: the last column, {value:?}, is not a request count (a number, 0 or more)")]
    NotACount { source_name: String, line: usize, value: String },
    #[error("{source_name}: the trace has no rows")]
    Empty { source_name: String },
    #[error(
        "{source_name}: the window starts at minute {start}, but the trace has {len} minutes (minutes 0 to {last})",
        last = len.saturating_sub(1)
    )]
    StartPastEnd { source_name: String, start: usize, len: usize },
    #[error("{source_name}: minutes {start} to {end} are asked for, but the trace ends at minute {last} ({len} minutes)", end = start + minutes - 1, last = len.saturating_sub(1))]
    WindowPastEnd { source_name: String, start: usize, minutes: usize, len: usize },
    #[error("the window must be at least one minute long")]
    EmptyWindow,
    #[error("--scale {scale} must be a number more than zero")]
    BadScale { scale: f64 },
}

impl Trace {
    /// Parses a trace; `source_name` names the file in errors.
    pub fn parse(source_name: &str, text: &str) -> Result<Trace, TraceError> {
        let mut requests_per_minute = Vec::new();
        let mut first_row = true;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let header_allowed = std::mem::replace(&mut first_row, false);
            let last = line.rsplit(',').next().unwrap_or(line).trim();
            match last.parse::<f64>() {
                Ok(count) if count.is_finite() && count >= 0.0 => requests_per_minute.push(count),
                Err(_) if header_allowed => continue,
                _ => {
                    return Err(TraceError::NotACount {
                        source_name: source_name.to_owned(),
                        line: i + 1,
                        value: last.to_owned(),
                    });
                }
            }
        }
        if requests_per_minute.is_empty() {
            return Err(TraceError::Empty { source_name: source_name.to_owned() });
        }
        Ok(Trace { requests_per_minute })
    }

    pub fn len(&self) -> usize {
        self.requests_per_minute.len()
    }

    pub fn is_empty(&self) -> bool {
        self.requests_per_minute.is_empty()
    }

    /// The offered load, in requests per second, of minutes `start..start + minutes` (to the end when
    /// `minutes` is none), each count multiplied by `scale`.
    pub fn window_rps(
        &self,
        source_name: &str,
        start: usize,
        minutes: Option<usize>,
        scale: f64,
    ) -> Result<Vec<f64>, TraceError> {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(TraceError::BadScale { scale });
        }
        let len = self.len();
        if start >= len {
            return Err(TraceError::StartPastEnd { source_name: source_name.to_owned(), start, len });
        }
        let minutes = minutes.unwrap_or(len - start);
        if minutes == 0 {
            return Err(TraceError::EmptyWindow);
        }
        if start + minutes > len {
            return Err(TraceError::WindowPastEnd { source_name: source_name.to_owned(), start, minutes, len });
        }
        Ok(self.requests_per_minute[start..start + minutes].iter().map(|count| rps(*count, scale)).collect())
    }
}

/// Requests per second of a minute that recorded `count` requests, scaled by `scale`.
pub fn rps(count: f64, scale: f64) -> f64 {
    count * scale / 60.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_column_is_the_count_and_a_header_is_skipped() {
        let trace = Trace::parse("t.csv", "minute,requests\n1998-04-30 21:30:00,2\n1998-04-30 21:31:00,11\n").unwrap();
        assert_eq!(trace.requests_per_minute, vec![2.0, 11.0]);
        let trace = Trace::parse("t.csv", "0,42\n1,62\n").unwrap();
        assert_eq!(trace.requests_per_minute, vec![42.0, 62.0]);
    }

    #[test]
    fn a_bad_count_names_its_line() {
        let error = Trace::parse("t.csv", "minute,requests\n0,42\n1,lots\n").unwrap_err();
        assert_eq!(error.to_string(), "t.csv: line 3: the last column, \"lots\", is not a request count (a number, 0 or more)");
    }

    #[test]
    fn a_window_past_the_end_says_how_long_the_trace_is() {
        let trace = Trace::parse("t.csv", "0,60\n1,120\n2,180\n").unwrap();
        assert_eq!(trace.window_rps("t.csv", 1, Some(2), 0.5).unwrap(), vec![1.0, 1.5]);
        let error = trace.window_rps("t.csv", 2, Some(2), 1.0).unwrap_err();
        assert!(error.to_string().contains("the trace ends at minute 2 (3 minutes)"), "{error}");
    }
}
