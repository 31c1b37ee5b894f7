//! Text files rxray reads (firewall rules and their blocklists, detector configs, threat lists,
//! signatures): one bounded reader, so no file can make rxray read without end or without a limit.
//!
//! A file must be a regular file (not `/dev/zero`, a FIFO, a socket or a directory), at most
//! `limit` bytes (checked while reading, so a file growing under rxray cannot pass either), and
//! UTF-8. Each error names the file and says what to do.
use std::fmt;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The default limit on one file rxray reads: 64 MiB. FireHOL's largest lists are a few MB and a
/// full-table blocklist of a million prefixes is about 20 MB; raise it with `--max-file-size`.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 << 20;

/// Why a file could not be read.
#[derive(Debug)]
pub enum TextErrorKind {
    Open(std::io::Error),
    /// Not a regular file: what it is instead ("a character device", "a FIFO", ...).
    NotRegular(&'static str),
    /// Larger than the limit (the size is what `stat` said, or `limit + 1` for a file that grew).
    TooLarge { size: u64, limit: u64 },
    Read(std::io::Error),
    /// Not UTF-8: the byte offset of the first bad byte.
    NotUtf8 { offset: usize },
}

/// A file rxray could not read, with its path.
#[derive(Debug)]
pub struct TextError {
    pub path: PathBuf,
    pub kind: TextErrorKind,
}

/// Bytes in the largest unit that divides them evenly (64 MiB, 1536 KiB, 100 bytes).
pub fn human_bytes(n: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n >= 1 << shift && n % (1 << shift) == 0 {
            return format!("{} {unit}", n >> shift);
        }
    }
    format!("{n} bytes")
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        match &self.kind {
            TextErrorKind::Open(e) => write!(f, "{p}: cannot open: {e}"),
            TextErrorKind::NotRegular(what) => {
                write!(f, "{p}: is {what}, not a regular file (rxray reads rules, lists and configs only from regular files)")
            }
            TextErrorKind::TooLarge { size, limit } => write!(
                f,
                "{p}: {} is over the limit of {} for a file rxray reads (raise it with --max-file-size)",
                human_bytes(*size),
                human_bytes(*limit)
            ),
            TextErrorKind::Read(e) => write!(f, "{p}: read error: {e}"),
            TextErrorKind::NotUtf8 { offset } => write!(f, "{p}: not UTF-8 text (first bad byte at byte offset {offset})"),
        }
    }
}

impl std::error::Error for TextError {}

fn kind_name(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Reads a text file of at most `limit` bytes. The file is opened non-blocking (a FIFO with no
/// writer would otherwise block the open itself), checked to be a regular file, and read through
/// `take(limit + 1)`, so at most `limit + 1` bytes are ever held.
pub fn read_text(path: &Path, limit: u64) -> Result<String, TextError> {
    let fail = |kind| TextError { path: path.to_path_buf(), kind };
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| fail(TextErrorKind::Open(e)))?;
    let meta = f.metadata().map_err(|e| fail(TextErrorKind::Open(e)))?;
    if !meta.file_type().is_file() {
        return Err(fail(TextErrorKind::NotRegular(kind_name(meta.file_type()))));
    }
    if meta.len() > limit {
        return Err(fail(TextErrorKind::TooLarge { size: meta.len(), limit }));
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    (&mut f).take(limit.saturating_add(1)).read_to_end(&mut buf).map_err(|e| fail(TextErrorKind::Read(e)))?;
    if buf.len() as u64 > limit {
        return Err(fail(TextErrorKind::TooLarge { size: buf.len() as u64, limit }));
    }
    String::from_utf8(buf).map_err(|e| fail(TextErrorKind::NotUtf8 { offset: e.utf8_error().valid_up_to() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str, body: &[u8]) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rxray-text-{}-{name}", std::process::id()));
        std::fs::write(&d, body).unwrap();
        d
    }

    #[test]
    fn reads_a_small_file() {
        let p = tmp("ok", b"1.2.3.0/24\n");
        assert_eq!(read_text(&p, 100).unwrap(), "1.2.3.0/24\n");
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn refuses_over_the_limit_and_names_the_file() {
        let p = tmp("big", &[b'a'; 101]);
        let e = read_text(&p, 100).unwrap_err();
        assert!(matches!(e.kind, TextErrorKind::TooLarge { size: 101, limit: 100 }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.starts_with(&p.display().to_string()) && msg.contains("--max-file-size"), "{msg}");
        assert_eq!(read_text(&p, 101).unwrap().len(), 101);
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn refuses_devices_and_directories() {
        let e = read_text(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert_eq!(e.to_string().split(':').next(), Some("/dev/zero"));
        assert!(matches!(e.kind, TextErrorKind::NotRegular("a character device")), "{e}");
        let e = read_text(Path::new("/"), 1 << 20).unwrap_err();
        assert!(matches!(e.kind, TextErrorKind::NotRegular("a directory")), "{e}");
    }

    #[test]
    fn names_the_first_bad_byte() {
        let p = tmp("latin1", b"abc\xe9def");
        let e = read_text(&p, 100).unwrap_err();
        assert!(matches!(e.kind, TextErrorKind::NotUtf8 { offset: 3 }), "{e:?}");
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(64 << 20), "64 MiB");
        assert_eq!(human_bytes(1536 << 10), "1536 KiB");
        assert_eq!(human_bytes(100), "100 bytes");
    }
}
