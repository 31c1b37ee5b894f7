//! Reading a spec file with a size limit. A stand-in for rxray-io's bounded text reader (branch
//! `badinput`): swap the body for `rxray_io::text::read_text` once it lands.
use crate::error::SpecError;
use std::io::Read;
use std::path::Path;

/// Reads at most `limit` bytes of UTF-8 text from a regular file.
pub fn read_spec_file(path: &Path, limit: u64) -> Result<String, SpecError> {
    let name = path.display().to_string();
    let fail = |m: String| SpecError { file: name.clone(), pointer: None, line: None, col: None, message: m };
    let f = std::fs::File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
    let meta = f.metadata().map_err(|e| fail(format!("cannot stat: {e}")))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into()));
    }
    let mut buf = Vec::new();
    f.take(limit.saturating_add(1)).read_to_end(&mut buf).map_err(|e| fail(format!("read error: {e}")))?;
    if buf.len() as u64 > limit {
        return Err(fail(format!("larger than the limit of {limit} bytes for a spec file")));
    }
    String::from_utf8(buf).map_err(|e| fail(format!("not UTF-8 text (first bad byte at byte offset {})", e.utf8_error().valid_up_to())))
}
