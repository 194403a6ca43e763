//! Times on pages: milliseconds since the epoch shown in a port's local time.

use chrono::{DateTime, FixedOffset, NaiveDate, Offset, Utc};

/// The calendar day at the port (`offset_minutes` east of UTC) at `ms`: ages and validity at a
/// port are counted on its own date, not UTC's (eight hours apart at Hengqin).
pub fn local_day(ms: i64, offset_minutes: i32) -> NaiveDate {
    let offset = FixedOffset::east_opt(offset_minutes * 60).unwrap_or_else(|| Utc.fix());
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&offset)
        .date_naive()
}

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

    #[test]
    fn the_port_day_turns_at_the_port_midnight() {
        let day = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        let ms = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .expect("time")
                .timestamp_millis()
        };
        // Hengqin (UTC+8): midnight there is 16:00 UTC the day before.
        assert_eq!(
            super::local_day(ms("2026-12-05T15:59:59Z"), 480),
            day("2026-12-05")
        );
        assert_eq!(
            super::local_day(ms("2026-12-05T16:00:00Z"), 480),
            day("2026-12-06")
        );
        assert_eq!(
            super::local_day(ms("2026-12-05T16:00:00Z"), 0),
            day("2026-12-05")
        );
        assert_eq!(
            super::local_day(ms("2026-12-05T00:30:00Z"), -60),
            day("2026-12-04")
        );
    }
}
