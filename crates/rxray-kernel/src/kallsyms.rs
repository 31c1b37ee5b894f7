//! Kernel addresses to `function+0xoff` from /proc/kallsyms: a sorted table and a binary search for
//! the nearest symbol at or below an address. Without readable addresses (kptr_restrict, no root)
//! the table is empty and addresses print as hex.
use std::path::Path;

pub const PROC_KALLSYMS: &str = "/proc/kallsyms";

#[derive(Clone, Debug, Default)]
pub struct Kallsyms {
    /// (address, name), sorted by address; text symbols only.
    syms: Vec<(u64, String)>,
}

impl Kallsyms {
    /// Parses kallsyms text (`ffffffff81000000 T _stext [module]`). Lines it cannot read are skipped;
    /// all-zero addresses (hidden by kptr_restrict) give an empty table.
    pub fn parse(text: &str) -> Kallsyms {
        let mut syms: Vec<(u64, String)> = text
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                let addr = u64::from_str_radix(it.next()?, 16).ok()?;
                let kind = it.next()?;
                let name = it.next()?;
                // Only code: a drop location is a return address inside a function.
                (addr != 0 && matches!(kind, "t" | "T" | "w" | "W")).then(|| (addr, name.to_string()))
            })
            .collect();
        syms.sort();
        syms.dedup_by_key(|s| s.0);
        Kallsyms { syms }
    }

    /// The running kernel's table, or an empty one when it cannot be read.
    pub fn load(path: &Path) -> Kallsyms {
        std::fs::read_to_string(path).map(|t| Kallsyms::parse(&t)).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.syms.is_empty()
    }

    /// The symbol at or below `addr` and the offset into it.
    pub fn lookup(&self, addr: u64) -> Option<(&str, u64)> {
        let i = self.syms.partition_point(|(a, _)| *a <= addr);
        let (a, name) = self.syms.get(i.checked_sub(1)?)?;
        Some((name.as_str(), addr - a))
    }

    /// `name+0xoff`, or `0x<addr>` when no symbol covers it.
    pub fn format(&self, addr: u64) -> String {
        match self.lookup(addr) {
            Some((name, off)) => format!("{name}+0x{off:x}"),
            None => format!("0x{addr:x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
ffffffff81000200 T second
ffffffff81000000 T _stext
ffffffff81000100 t first_local
ffffffff81000180 D some_data
0000000000000000 A fixed_percpu_data
ffffffffc0001000 t mod_fn\t[veth]
garbage line
";

    #[test]
    fn nearest_symbol_at_or_below() {
        let k = Kallsyms::parse(TEXT);
        assert_eq!(k.lookup(0xffffffff81000000), Some(("_stext", 0)));
        assert_eq!(k.lookup(0xffffffff810001ff), Some(("first_local", 0xff)), "data symbols are not functions");
        assert_eq!(k.lookup(0xffffffff81000234), Some(("second", 0x34)));
        assert_eq!(k.lookup(0xffffffffc0001010), Some(("mod_fn", 0x10)));
        assert_eq!(k.lookup(0xffffffff80000000), None);
        assert_eq!(k.format(0xffffffff81000234), "second+0x34");
        assert_eq!(k.format(0x10), "0x10");
    }

    #[test]
    fn hidden_addresses_give_an_empty_table() {
        let k = Kallsyms::parse("0000000000000000 T _stext\n0000000000000000 T kfree_skb\n");
        assert!(k.is_empty());
        assert_eq!(k.format(0xffffffff81000000), "0xffffffff81000000");
    }

    /// Against the running kernel: a function's own address resolves to it at offset 0.
    #[test]
    fn running_kernel_symbols_resolve() {
        let k = Kallsyms::load(Path::new(PROC_KALLSYMS));
        if k.is_empty() {
            rxray_lab::testing::skip_or_fail("/proc/kallsyms shows no addresses (not root, or kptr_restrict=2)");
            return;
        }
        let text = std::fs::read_to_string(PROC_KALLSYMS).unwrap();
        let addr = text
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() >= 3 && f[2] == "kfree_skb_list_reason").then(|| u64::from_str_radix(f[0], 16).unwrap())
            })
            .or_else(|| {
                text.lines().find_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    (f.len() >= 3 && f[2] == "sk_skb_reason_drop").then(|| u64::from_str_radix(f[0], 16).unwrap())
                })
            })
            .expect("a kfree_skb function in kallsyms");
        let (name, off) = k.lookup(addr + 4).unwrap();
        assert_eq!(off, 4);
        // The name found is the function's or an alias at the same address.
        let line = format!("{addr:016x} ");
        assert!(text.lines().any(|l| l.starts_with(&line) && l.split_whitespace().nth(2) == Some(name)), "{name}");
    }
}
