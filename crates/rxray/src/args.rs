//! Argument rules every command shares: one `--ring-size` rule (a value parser, so a bad size
//! fails while parsing, before anything is attached) and the size limit on the text files rxray reads.
use anyhow::Result;
use std::path::Path;

/// Parses `--ring-size`: bytes ("1048576") or a size ("8MiB"), then rxray-kernel's one rule for
/// every ring (a power of two from 4 KiB to 1 GiB).
pub fn ring_size(s: &str) -> Result<u32, String> {
    let n = rxray_engine::firewall::rules::parse_bytes(s)?;
    rxray_kernel::check_ring_size(n)
}

/// Parses a size ("64MiB", "1GB", "1048576").
pub fn byte_size(s: &str) -> Result<u64, String> {
    rxray_engine::firewall::rules::parse_bytes(s)
}

/// The longest interval or duration a command takes: one year, in seconds.
pub const MAX_SECONDS: f64 = 365.0 * 86_400.0;

/// Parses a number of seconds (`--interval`, `-d`, `--recorder-seconds`): finite, from 0 to a
/// year. An infinite or huge value would otherwise panic in the clock arithmetic after attaching.
pub fn seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(0.0..=MAX_SECONDS).contains(&v) {
        return Err(format!("{s} seconds is outside 0 to {MAX_SECONDS} (one year)"));
    }
    Ok(v)
}

/// The limit on each rules, list, config or signatures file a command reads.
#[derive(clap::Args, Debug, Clone)]
pub struct FileLimit {
    /// The largest rules, blocklist, config, threat-list or signatures file to read (bytes, or a
    /// size such as 256MiB); a larger file, or one that is not a regular file, is an error.
    #[arg(long = "max-file-size", value_name = "SIZE", default_value = "64MiB", value_parser = byte_size)]
    pub max_file_size: u64,
}

impl Default for FileLimit {
    fn default() -> Self {
        FileLimit { max_file_size: rxray_io::text::DEFAULT_MAX_FILE_BYTES }
    }
}

impl FileLimit {
    /// Reads a text file through rxray-io's bounded reader; the error names the file and the cause.
    pub fn read(&self, path: &Path) -> Result<String> {
        Ok(rxray_io::text::read_text(path, self.max_file_size)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_size_has_one_rule() {
        assert_eq!(ring_size("4096"), Ok(4096));
        assert_eq!(ring_size("8MiB"), Ok(8 << 20));
        for bad in ["0", "3", "5000", "2048", "2GiB", "x"] {
            assert!(ring_size(bad).is_err(), "{bad}");
        }
        assert!(ring_size("5000").unwrap_err().contains("power of two"));
    }

    #[test]
    fn seconds_are_finite_and_bounded() {
        assert_eq!(seconds("0.5"), Ok(0.5));
        for bad in ["inf", "NaN", "-1", "1e300", "x"] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
    }
}
