//! Sinks: where a command's records go, one trait for every output format. A command is
//! source → engine → sinks: it builds typed records (`crate::records`) and hands each to a sink
//! chosen by its flags (`Lines`: JSON Lines with `--json`, text otherwise; `eve::Eve` for alerts;
//! `pcapng::Pcapng` for captured packets and `pcapng::Recordings` for the flight recorder).
use serde::Serialize;
use std::io::{self, Write};

pub mod eve;
pub mod pcapng;

/// Takes records of type `R`, one at a time.
pub trait Sink<R: ?Sized> {
    fn write(&mut self, rec: &R) -> io::Result<()>;
}

/// The order of a JSON record's keys. `Sorted` at every depth is what the `json!` trees the
/// outputs began as printed (serde_json's map); records that were always serialized straight
/// from their struct keep the order their fields are declared in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keys {
    Sorted,
    Declared,
}

/// A typed JSON record (`crate::records`): its keys' order is part of its shape.
pub trait Record: Serialize {
    const KEYS: Keys;
}

/// JSON Lines: one record a line. A sorted record is written with one `write_all` (so stderr,
/// unbuffered, gets whole lines); a declared-order one is streamed into the writer (the
/// per-packet and per-drop lines go through a `BufWriter`, with no buffer of their own).
pub struct JsonLines<W: Write> {
    out: W,
}

impl<W: Write> JsonLines<W> {
    pub fn new(out: W) -> Self {
        JsonLines { out }
    }
}

/// One record as a JSON line (no newline), its keys in its order.
pub fn json_line<R: Record + ?Sized>(rec: &R) -> String {
    match R::KEYS {
        Keys::Sorted => crate::records::line(rec),
        Keys::Declared => serde_json::to_string(rec).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")),
    }
}

/// One record as a JSON line on stdout (the commands that print one record, or a few, at once).
pub fn print<R: Record + ?Sized>(rec: &R) -> io::Result<()> {
    JsonLines::new(io::stdout().lock()).write(rec)
}

impl<W: Write, R: Record + ?Sized> Sink<R> for JsonLines<W> {
    fn write(&mut self, rec: &R) -> io::Result<()> {
        match R::KEYS {
            Keys::Sorted => {
                let mut line = serde_json::to_value(rec)?.to_string();
                line.push('\n');
                self.out.write_all(line.as_bytes())
            }
            Keys::Declared => {
                serde_json::to_writer(&mut self.out, rec)?;
                self.out.write_all(b"\n")
            }
        }
    }
}

/// A record's text form (a line, or a table), as the command prints it without `--json`.
pub trait AsText {
    fn text(&self) -> String;
}

/// Text: each record's `AsText`, written as it is (the record's text says where lines end).
pub struct Text<W: Write> {
    out: W,
}

impl<W: Write> Text<W> {
    pub fn new(out: W) -> Self {
        Text { out }
    }
}

impl<W: Write, R: AsText + ?Sized> Sink<R> for Text<W> {
    fn write(&mut self, rec: &R) -> io::Result<()> {
        self.out.write_all(rec.text().as_bytes())
    }
}

/// The sink a `--json` flag chooses: JSON Lines or text.
pub enum Lines<W: Write> {
    Json(JsonLines<W>),
    Text(Text<W>),
}

impl<W: Write> Lines<W> {
    pub fn new(out: W, json: bool) -> Self {
        if json {
            Lines::Json(JsonLines::new(out))
        } else {
            Lines::Text(Text::new(out))
        }
    }
}

impl<W: Write, R: Record + AsText + ?Sized> Sink<R> for Lines<W> {
    fn write(&mut self, rec: &R) -> io::Result<()> {
        match self {
            Lines::Json(j) => j.write(rec),
            Lines::Text(t) => t.write(rec),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Rec {
        b: u8,
        a: u8,
    }

    impl Record for Rec {
        const KEYS: Keys = Keys::Sorted;
    }

    #[derive(Serialize)]
    struct Ordered {
        b: u8,
        a: u8,
    }

    impl Record for Ordered {
        const KEYS: Keys = Keys::Declared;
    }

    impl AsText for Rec {
        fn text(&self) -> String {
            format!("{} {}\n", self.a, self.b)
        }
    }

    #[test]
    fn json_lines_keep_each_record_s_key_order_and_text_the_record_s_own() {
        let mut out = Vec::new();
        {
            let mut s = Lines::new(&mut out, true);
            s.write(&Rec { b: 2, a: 1 }).unwrap();
            let Lines::Json(j) = &mut s else { panic!("--json chose text") };
            j.write(&Ordered { b: 2, a: 1 }).unwrap();
        }
        assert_eq!(String::from_utf8(out).unwrap(), "{\"a\":1,\"b\":2}\n{\"b\":2,\"a\":1}\n");
        let mut out = Vec::new();
        Lines::new(&mut out, false).write(&Rec { b: 2, a: 1 }).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "1 2\n");
    }
}
