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

/// `--json`, `--interval` and `--count` of the commands that follow kernel events and report as
/// they go (conns, drops, latency): one definition. Each command words the help for what it
/// counts with `#[command(mut_arg(...))]`.
#[derive(clap::Args, Debug, Clone)]
pub struct Report {
    /// JSON Lines: one object per record; the summary goes to stderr as `{"summary": ...}`.
    #[arg(long)]
    pub json: bool,
    /// Also print the tables every S seconds (0: only at exit).
    #[arg(long, default_value_t = 0.0, value_parser = seconds)]
    pub interval: f64,
    /// Exit after this many records.
    #[arg(short = 'c', long = "count")]
    pub count: Option<u64>,
}

impl Report {
    /// The time between periodic reports (at least 50 ms), or `None` for only at exit.
    pub fn period(&self) -> Option<std::time::Duration> {
        (self.interval > 0.0).then(|| std::time::Duration::from_secs_f64(self.interval.max(0.05)))
    }
}

/// `--ring-size` of an event ring (1 MiB unless a command says otherwise).
#[derive(clap::Args, Debug, Clone)]
pub struct Ring {
    /// Ring-buffer size: bytes or a size such as 1MiB, a power of two from 4 KiB to 1 GiB.
    #[arg(long = "ring-size", default_value_t = 1 << 20, value_parser = ring_size)]
    pub ring_size: u32,
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
