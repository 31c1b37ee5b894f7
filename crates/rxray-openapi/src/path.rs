//! Path templates and servers' base paths, and matching a request path to them.
//!
//! A request path matches under a server's base path (the path part of its URL, absolute or
//! relative; a `{variable}` segment matches any one segment). Among templates that match, the one
//! with a literal segment where another has a parameter wins, leftmost first, as the specification
//! says concrete paths match before templated ones; equal ones go by document order.
use crate::spec::Spec;
use std::borrow::Cow;

/// One segment of a template: literal text and `{name}` parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    Lit(String),
    Var(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub parts: Vec<Part>,
}

impl Segment {
    fn parse(s: &str) -> Result<Segment, String> {
        let mut parts = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            match rest.find('{') {
                Some(0) => {
                    let end = rest.find('}').ok_or_else(|| format!("unclosed `{{` in segment {s:?}"))?;
                    let name = &rest[1..end];
                    if name.is_empty() || name.contains('{') {
                        return Err(format!("bad parameter name in segment {s:?}"));
                    }
                    if matches!(parts.last(), Some(Part::Var(_))) {
                        return Err(format!("two parameters with nothing between them in segment {s:?}"));
                    }
                    parts.push(Part::Var(name.to_owned()));
                    rest = &rest[end + 1..];
                }
                Some(i) => {
                    parts.push(Part::Lit(rest[..i].to_owned()));
                    rest = &rest[i..];
                }
                None => {
                    if rest.contains('}') {
                        return Err(format!("`}}` without `{{` in segment {s:?}"));
                    }
                    parts.push(Part::Lit(rest.to_owned()));
                    rest = "";
                }
            }
        }
        if parts.is_empty() {
            parts.push(Part::Lit(String::new()));
        }
        Ok(Segment { parts })
    }

    /// 2 for a literal segment, 1 for literal text with parameters, 0 for a bare parameter.
    fn rank(&self) -> u8 {
        match &self.parts[..] {
            [Part::Lit(_)] => 2,
            [Part::Var(_)] => 0,
            _ => 1,
        }
    }

    /// Matches one (decoded) request segment, pushing the parameters' values.
    fn matches<'r>(&self, seg: &'r str, out: &mut Vec<(usize, &'r str)>, base: usize) -> bool {
        match &self.parts[..] {
            [Part::Lit(l)] => l == seg,
            [Part::Var(_)] => {
                if seg.is_empty() {
                    return false;
                }
                out.push((base, seg));
                true
            }
            parts => {
                let before = out.len();
                let ok = match_parts(parts, seg, out, base);
                if !ok {
                    out.truncate(before);
                }
                ok
            }
        }
    }

    fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            Part::Lit(_) => None,
        })
    }
}

/// Literal text with parameters in one segment: each parameter takes the shortest non-empty run
/// that lets the rest match (no two parameters are adjacent, so this is exact).
fn match_parts<'r>(parts: &[Part], seg: &'r str, out: &mut Vec<(usize, &'r str)>, idx: usize) -> bool {
    match parts.split_first() {
        None => seg.is_empty(),
        Some((Part::Lit(l), rest)) => seg.strip_prefix(l.as_str()).is_some_and(|s| match_parts(rest, s, out, idx)),
        Some((Part::Var(_), rest)) => {
            let Some(Part::Lit(next)) = rest.first() else {
                if seg.is_empty() {
                    return false;
                }
                out.push((idx, seg));
                return true;
            };
            let mut from = 1;
            while let Some(off) = seg.get(from..).and_then(|s| s.find(next.as_str())) {
                let at = from + off;
                out.push((idx, &seg[..at]));
                if match_parts(rest, &seg[at..], out, idx + 1) {
                    return true;
                }
                out.pop();
                from = at + 1;
                while !seg.is_char_boundary(from) {
                    from += 1;
                }
            }
            false
        }
    }
}

/// A path template from the spec (`/pets/{petId}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathTemplate {
    pub text: String,
    pub segments: Vec<Segment>,
    /// Parameter names in the order they appear.
    pub vars: Vec<String>,
    rank: Vec<u8>,
}

impl PathTemplate {
    pub fn parse(t: &str) -> Result<PathTemplate, String> {
        let Some(rest) = t.strip_prefix('/') else {
            return Err(format!("path template {t:?} does not start with `/`"));
        };
        let segments = rest.split('/').map(Segment::parse).collect::<Result<Vec<_>, _>>()?;
        let vars = segments.iter().flat_map(|s| s.vars().map(str::to_owned)).collect();
        let rank = segments.iter().map(Segment::rank).collect();
        Ok(PathTemplate { text: t.to_owned(), segments, vars, rank })
    }
}

/// A server's base path, as segments (variables match any one segment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    pub url: String,
    pub base: Vec<Segment>,
}

impl Server {
    pub fn parse(url: &str) -> Server {
        let path = match url.find("://") {
            Some(i) => url[i + 3..].find('/').map_or("", |j| &url[i + 3 + j..]),
            None => url,
        };
        let path = path.split(['?', '#']).next().unwrap_or("");
        let base = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| Segment::parse(s).unwrap_or(Segment { parts: vec![Part::Lit(s.to_owned())] }))
            .collect();
        Server { url: url.to_owned(), base }
    }
}

/// The path part of a request target: an absolute-form target loses its scheme and authority, and
/// the query and fragment are cut off.
pub fn split_target(target: &str) -> (&str, &str) {
    let t = match target.find("://") {
        Some(i) if !target[..i].contains('/') => target[i + 3..].find('/').map_or("/", |j| &target[i + 3 + j..]),
        _ => target,
    };
    let t = t.split('#').next().unwrap_or("");
    match t.split_once('?') {
        Some((p, q)) => (p, q),
        None => (t, ""),
    }
}

pub(crate) fn decode(s: &str) -> Cow<'_, str> {
    if s.contains('%') {
        percent_encoding::percent_decode_str(s).decode_utf8_lossy()
    } else {
        Cow::Borrowed(s)
    }
}

/// A request path matched to a template.
#[derive(Debug)]
pub struct PathMatch<'s> {
    /// Index of the path item in the spec.
    pub(crate) item: usize,
    pub template: &'s str,
    /// The template's path parameters with their (percent-decoded) values.
    pub params: Vec<(&'s str, String)>,
}

impl Spec {
    /// The endpoint template for a request-target (query and absolute form allowed), for the HTTP
    /// metrics: the spec's template when one matches, else `None` (fold ids then).
    pub fn template_of(&self, target: &str) -> Option<&str> {
        self.match_path(split_target(target).0).map(|m| m.template)
    }

    /// The template a request path (no query) matches under one of the servers, if any.
    pub fn match_path(&self, path: &str) -> Option<PathMatch<'_>> {
        let segs: Vec<Cow<'_, str>> = path.strip_prefix('/').unwrap_or(path).split('/').map(decode).collect();
        let empty = [Cow::Borrowed("")];
        let mut caps = Vec::new();
        for server in &self.servers {
            if segs.len() < server.base.len() {
                continue;
            }
            let mut scratch = Vec::new();
            if !server.base.iter().zip(&segs).all(|(b, s)| b.matches(s, &mut scratch, 0)) {
                continue;
            }
            let rest: &[Cow<'_, str>] = &segs[server.base.len()..];
            let rest = if rest.is_empty() { &empty[..] } else { rest };
            let Some(cands) = self.by_len.get(&rest.len()) else { continue };
            let mut best: Option<(usize, Vec<(usize, String)>)> = None;
            for &i in cands {
                let t = &self.paths[i].template;
                if let Some((b, _)) = &best {
                    if self.paths[*b].template.rank >= t.rank {
                        continue;
                    }
                }
                caps.clear();
                let mut var = 0;
                let ok = t.segments.iter().zip(rest).all(|(ts, rs)| {
                    let ok = ts.matches(rs, &mut caps, var);
                    var += ts.vars().count();
                    ok
                });
                if ok {
                    best = Some((i, caps.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()));
                }
            }
            if let Some((i, vals)) = best {
                let t = &self.paths[i].template;
                let params = vals.into_iter().filter_map(|(k, v)| t.vars.get(k).map(|n| (n.as_str(), v))).collect();
                return Some(PathMatch { item: i, template: &t.text, params });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_into_path_and_query() {
        assert_eq!(split_target("/a/b?x=1#f"), ("/a/b", "x=1"));
        assert_eq!(split_target("http://h:80/a?q"), ("/a", "q"));
        assert_eq!(split_target("http://h"), ("/", ""));
        assert_eq!(split_target("/r?next=http://x/"), ("/r", "next=http://x/"));
    }

    #[test]
    fn servers_give_base_paths() {
        assert_eq!(Server::parse("https://api.example.com/v1/").base.len(), 1);
        assert_eq!(Server::parse("/").base.len(), 0);
        assert_eq!(Server::parse("{scheme}://{host}/api/{version}").base.len(), 2);
        assert_eq!(Server::parse("http://localhost:8080").base.len(), 0);
    }

    #[test]
    fn mixed_segments_capture() {
        let s = Segment::parse("{name}.{ext}").unwrap();
        let mut out = Vec::new();
        assert!(s.matches("report.tar.gz", &mut out, 0));
        assert_eq!(out, vec![(0, "report"), (1, "tar.gz")]);
        out.clear();
        assert!(!s.matches("noext", &mut out, 0));
        assert!(out.is_empty());
        assert!(Segment::parse("{a}{b}").is_err());
        assert!(Segment::parse("{a").is_err());
    }
}
