//! Times as rxray's outputs print them, from Unix-epoch nanoseconds: one civil-date algorithm
//! (humantime's RFC 3339 formatting) behind EVE timestamps and the text reports.
use std::time::{Duration, UNIX_EPOCH};

/// `2026-11-29T08:00:00.123456+0000` (UTC, microseconds, offset as Suricata writes it).
pub fn eve_timestamp(ts_ns: u64) -> String {
    let t = humantime::format_rfc3339_micros(UNIX_EPOCH + Duration::from_nanos(ts_ns)).to_string();
    format!("{}+0000", t.trim_end_matches('Z'))
}

/// `2023-11-14 22:13:20.123456789 UTC` (the text reports' first and last packet times).
pub fn utc_text(ts_ns: u64) -> String {
    let t = humantime::format_rfc3339_nanos(UNIX_EPOCH + Duration::from_nanos(ts_ns)).to_string();
    format!("{} UTC", t.trim_end_matches('Z').replacen('T', " ", 1))
}

#[cfg(test)]
mod tests {
    // eve_timestamp's cases are in alert.rs (where it was written), utc_text's epoch in analyze.rs.
    #[test]
    fn a_leap_day_and_a_far_date_in_the_text_spelling() {
        assert_eq!(super::utc_text(1_709_210_096_000_000_001), "2024-02-29 12:34:56.000000001 UTC");
        assert_eq!(super::utc_text(4_102_444_800_000_000_000), "2100-01-01 00:00:00.000000000 UTC");
    }
}
