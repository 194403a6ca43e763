//! Times on pages: milliseconds since the epoch shown in a port's local time.

use chrono::{DateTime, FixedOffset, Offset, Utc};

/// `2026-05-30 14:03:12 UTC+08:00` for `ms` at `offset_minutes` east of UTC.
pub fn local(ms: i64, offset_minutes: i32) -> String {
    let offset = FixedOffset::east_opt(offset_minutes * 60).unwrap_or_else(|| Utc.fix());
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(t) => {
            let (sign, m) = if offset_minutes < 0 {
                ('-', -offset_minutes)
            } else {
                ('+', offset_minutes)
            };
            format!(
                "{} UTC{sign}{:02}:{:02}",
                t.with_timezone(&offset).format("%Y-%m-%d %H:%M:%S"),
                m / 60,
                m % 60
            )
        }
        None => format!("{ms} ms"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn local_times_carry_their_offset() {
        assert_eq!(super::local(0, 480), "1970-01-01 08:00:00 UTC+08:00");
        assert_eq!(super::local(0, -90), "1969-12-31 22:30:00 UTC-01:30");
        assert_eq!(super::local(i64::MAX, 0), format!("{} ms", i64::MAX));
    }
}
