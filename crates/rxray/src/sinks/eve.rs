//! EVE: alerts as Suricata's eve.json has them, one `alert` record a line (the record is the
//! engine's `EveRecord`), flushed after each so a reader tailing the file sees every alert when
//! it is raised.
use super::{Keys, Record, Sink};
use anyhow::{Context, Result};
use rxray_engine::alert::{Alert, EveRecord};
use std::io::{self, Write};
use std::path::Path;

impl Record for EveRecord<'_> {
    const KEYS: Keys = Keys::Declared;
}

/// Writes alerts as EVE records.
pub struct Eve<W: Write> {
    out: W,
}

impl<W: Write> Eve<W> {
    pub fn new(out: W) -> Self {
        Eve { out }
    }
}

impl Eve<Box<dyn Write>> {
    /// EVE to `file` (appended, as Suricata appends to eve.json), or to standard output.
    pub fn open(file: Option<&Path>) -> Result<Self> {
        Ok(Eve::new(match file {
            None => Box::new(io::stdout()),
            Some(p) => Box::new(std::fs::OpenOptions::new().create(true).append(true).open(p).with_context(|| format!("opening {}", p.display()))?),
        }))
    }
}

impl<W: Write> Sink<Alert> for Eve<W> {
    fn write(&mut self, a: &Alert) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, &a.eve())?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }
}
