//! Payload inspection of one rule: its `content` and `pcre` items in rule order, with Suricata's
//! relative semantics and bounded backtracking. No allocation: matches go to a reused scratch list.
//!
//! - An absolute content must lie wholly inside `[offset, offset + depth)` (depth counts from
//!   offset, as Suricata stores it); a relative one inside
//!   `[prev + distance, prev + distance + within)`, where `prev` is the end of the previous
//!   matched item (0 before any). A negative distance may reach back before `prev`.
//! - A negated item matches when its pattern is NOT found in its window; it does not move `prev`.
//! - A relative `pcre` (`R`) searches from `prev`, with `^` anchoring there; a match moves `prev` to
//!   its end, as a content match does.
//! - When a later item fails, the earlier item is retried at its next occurrence (as Suricata's
//!   content inspection recursion does), but only while a later item depends on its position, and
//!   at most [`BACKTRACK_BUDGET`] times per rule and packet.
use super::rule::{Content, PayloadItem, Pcre};

/// Retries per rule and packet: bounds the cost of pathological rules on repetitive payloads.
pub const BACKTRACK_BUDGET: u32 = 1024;

/// The payload as the items see it: raw bytes, and an ASCII-lowercased copy for `nocase`.
pub struct Buffers<'a> {
    pub raw: &'a [u8],
    pub lower: &'a [u8],
}

/// Runs `items` over the payload. On success `hits` holds (start, end) of each non-negated
/// item's match, in rule order.
pub fn inspect(items: &[PayloadItem], buf: &Buffers<'_>, hits: &mut Vec<(u32, u32)>) -> bool {
    hits.clear();
    let mut budget = BACKTRACK_BUDGET;
    step(items, 0, buf, 0, hits, &mut budget)
}

fn step(items: &[PayloadItem], i: usize, buf: &Buffers<'_>, prev: usize, hits: &mut Vec<(u32, u32)>, budget: &mut u32) -> bool {
    let Some(item) = items.get(i) else {
        return true;
    };
    let len = buf.raw.len();
    if item.is_negated() {
        let found = match item {
            PayloadItem::Content(c) => window(c, prev, len).is_some_and(|(s, e)| find(c, buf, s, e).is_some()),
            PayloadItem::Pcre(p) => pcre_find(p, buf.raw, prev, 0).is_some(),
        };
        return !found && step(items, i + 1, buf, prev, hits, budget);
    }
    let retry = later_depends(items, i);
    match item {
        PayloadItem::Content(c) => {
            let Some((start, end)) = window(c, prev, len) else {
                return false;
            };
            let mut from = start;
            while let Some(pos) = find(c, buf, from, end) {
                let stop = pos + c.bytes.len();
                hits.push((pos as u32, stop as u32));
                if step(items, i + 1, buf, stop, hits, budget) {
                    return true;
                }
                hits.pop();
                if !retry || *budget == 0 {
                    return false;
                }
                *budget -= 1;
                from = pos + 1;
            }
            false
        }
        PayloadItem::Pcre(p) => {
            let mut from = 0;
            while let Some((s, e)) = pcre_find(p, buf.raw, prev, from) {
                hits.push((s as u32, e as u32));
                if step(items, i + 1, buf, e, hits, budget) {
                    return true;
                }
                hits.pop();
                if !retry || *budget == 0 {
                    return false;
                }
                *budget -= 1;
                from = s + 1 - if p.relative { prev.min(buf.raw.len()) } else { 0 };
            }
            false
        }
    }
}

/// Whether an item after `i` reads `prev` as item `i` sets it (so retrying `i` can help).
fn later_depends(items: &[PayloadItem], i: usize) -> bool {
    for it in &items[i + 1..] {
        if it.is_relative() {
            return true;
        }
        if !it.is_negated() {
            return false;
        }
    }
    false
}

/// The byte window `[start, end)` a content must lie in, or None when it cannot fit.
fn window(c: &Content, prev: usize, len: usize) -> Option<(usize, usize)> {
    let (start, end) = if c.is_relative() {
        let base = prev as i64 + c.distance.unwrap_or(0) as i64;
        let end = match c.within {
            Some(w) => (base + w as i64).min(len as i64),
            None => len as i64,
        };
        (base.max(0), end)
    } else {
        let start = c.offset.unwrap_or(0) as i64;
        let end = match c.depth {
            Some(d) => (start + d as i64).min(len as i64),
            None => len as i64,
        };
        (start, end)
    };
    if end < start || (end - start) < c.bytes.len() as i64 {
        return None;
    }
    Some((start as usize, end as usize))
}

/// First occurrence of `c` starting at or after `from` and ending at or before `end`.
fn find(c: &Content, buf: &Buffers<'_>, from: usize, end: usize) -> Option<usize> {
    let hay = if c.nocase { buf.lower } else { buf.raw };
    if from > end || end > hay.len() {
        return None;
    }
    if c.endswith {
        // Only one place can end where the buffer ends.
        let n = c.bytes.len();
        return (end == hay.len() && end >= from + n && c.finder.find(&hay[end - n..end]) == Some(0)).then(|| end - n);
    }
    c.finder.find(&hay[from..end]).map(|p| p + from)
}

/// The leftmost match of `p` in the payload (from `prev` when relative), searching from `from`
/// within that slice. Positions returned are payload offsets.
fn pcre_find(p: &Pcre, raw: &[u8], prev: usize, from: usize) -> Option<(usize, usize)> {
    let base = if p.relative { prev.min(raw.len()) } else { 0 };
    let hay = &raw[base..];
    if from > hay.len() {
        return None;
    }
    // A search the match limit stopped is no match (PCRE2 counts it on the pattern).
    p.regex.find_at(hay, from).ok().flatten().map(|(s, e)| (s + base, e + base))
}
