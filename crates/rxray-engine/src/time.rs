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
    use super::*;

    #[test]
    fn dates_in_both_spellings() {
        assert_eq!(utc_text(0), "1970-01-01 00:00:00.000000000 UTC");
        assert_eq!(utc_text(1_700_000_000_123_456_789), "2023-11-14 22:13:20.123456789 UTC");
        // A leap day, and microseconds truncated as Suricata does.
        assert_eq!(eve_timestamp(1_709_210_096_789_012_345), "2024-02-29T12:34:56.789012+0000");
        assert_eq!(eve_timestamp(0), "1970-01-01T00:00:00.000000+0000");
    }
}
