//! Compiles a parsed filter (rxray-engine's lowered `Cond`) into the XDP program's filter: a linear,
//! forward-jumping program of field tests (`abi::FilterProg`, struct rxray_filter in rxray.h).
//! Also an interpreter of that program in Rust, to check the code generation without a kernel.
use crate::abi::{self, FilterInsn, FilterProg};
use rxray_engine::filter::{AddrField, Cmp, Cond, Field, Filter};

/// A filter needs more tests than the kernel program holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the filter {expr:?} needs {tests} kernel tests; the XDP filter holds at most {max} (simplify it, or filter a capture in user space with `rxray analyze FILE -- FILTER`)"
)]
pub struct FilterTooLarge {
    pub expr: String,
    pub tests: usize,
    pub max: usize,
}

#[derive(Clone, Copy, Debug)]
enum Target {
    Accept,
    Reject,
    /// An emitted instruction, by emission order (emitted last = executed first).
    Emitted(usize),
}

struct Gen {
    /// Instructions in emission order; targets refer to earlier emissions, so after reversal every
    /// jump goes forward.
    out: Vec<(FilterInsn, Target, Target)>,
}

fn field_id(f: Field) -> u8 {
    match f {
        Field::L3 => abi::FF_L3,
        Field::Ip => abi::FF_IP,
        Field::V6Ext => abi::FF_V6EXT,
        Field::FragOff => abi::FF_FRAG_OFF,
        Field::Sport => abi::FF_SPORT,
        Field::Dport => abi::FF_DPORT,
        Field::TcpFlags => abi::FF_TCP_FLAGS,
        Field::WireLen => abi::FF_WIRE_LEN,
        Field::VlanCount => abi::FF_VLAN_COUNT,
        Field::Vid0 => abi::FF_VID0,
        Field::Vid1 => abi::FF_VID1,
    }
}

impl Gen {
    fn emit(&mut self, insn: FilterInsn, t: Target, f: Target) -> Target {
        self.out.push((insn, t, f));
        Target::Emitted(self.out.len() - 1)
    }

    /// Code that goes to `t` when `c` holds and to `f` otherwise; returns its entry.
    fn gen(&mut self, c: &Cond, t: Target, f: Target) -> Target {
        match c {
            Cond::Const(true) => t,
            Cond::Const(false) => f,
            Cond::Not(x) => self.gen(x, f, t),
            Cond::And(a, b) => {
                let rhs = self.gen(b, t, f);
                self.gen(a, rhs, f)
            }
            Cond::Or(a, b) => {
                let rhs = self.gen(b, t, f);
                self.gen(a, t, rhs)
            }
            Cond::Scalar { field, mask, cmp, value } => {
                // The kernel knows ==, > and >=; the others swap the targets.
                let (op, swap) = match cmp {
                    Cmp::Eq => (abi::FC_EQ, false),
                    Cmp::Ne => (abi::FC_EQ, true),
                    Cmp::Gt => (abi::FC_GT, false),
                    Cmp::Ge => (abi::FC_GE, false),
                    Cmp::Lt => (abi::FC_GE, true),
                    Cmp::Le => (abi::FC_GT, true),
                };
                let insn = FilterInsn { field: field_id(*field), cmp: op, mask: *mask, value: *value, ..Default::default() };
                if swap {
                    self.emit(insn, f, t)
                } else {
                    self.emit(insn, t, f)
                }
            }
            Cond::Addr { field, addr, mask } => {
                let id = match field {
                    AddrField::Src => abi::FF_SADDR,
                    AddrField::Dst => abi::FF_DADDR,
                };
                let insn = FilterInsn { field: id, addr: *addr, amask: *mask, ..Default::default() };
                self.emit(insn, t, f)
            }
        }
    }
}

/// Compiles `filter` for the XDP program.
pub fn compile(filter: &Filter) -> Result<FilterProg, FilterTooLarge> {
    compile_cond(&filter.cond, &filter.text)
}

pub fn compile_cond(cond: &Cond, text: &str) -> Result<FilterProg, FilterTooLarge> {
    let tests = cond.tests();
    if tests > abi::FILTER_MAX {
        return Err(FilterTooLarge { expr: text.to_string(), tests, max: abi::FILTER_MAX });
    }
    let mut g = Gen { out: Vec::with_capacity(tests) };
    let entry = g.gen(cond, Target::Accept, Target::Reject);
    let n = g.out.len();
    let at = |t: Target| match t {
        Target::Accept => abi::FILTER_ACCEPT,
        Target::Reject => abi::FILTER_REJECT,
        Target::Emitted(e) => (n - 1 - e) as u8,
    };
    let mut prog = FilterProg { len: n as u32, entry: at(entry), ..Default::default() };
    for (e, (insn, t, f)) in g.out.iter().enumerate() {
        let i = n - 1 - e;
        prog.insn[i] = FilterInsn { jt: at(*t), jf: at(*f), ..*insn };
    }
    Ok(prog)
}

/// What the kernel interpreter (bpf/include/rxray_filter.h) does, over the same field values:
/// `scalars` indexed by `abi::FF_*`, `addrs` = [saddr, daddr].
pub fn run(prog: &FilterProg, scalars: &[u32; 16], addrs: &[[u8; 16]; 2]) -> bool {
    let mut pc = prog.entry as usize;
    for _ in 0..=abi::FILTER_MAX {
        if pc >= abi::FILTER_MAX {
            return pc != abi::FILTER_REJECT as usize;
        }
        let i = &prog.insn[pc];
        let ok = if i.field >= abi::FF_SADDR {
            let a = &addrs[((i.field - abi::FF_SADDR) & 1) as usize];
            (0..16).all(|k| a[k] & i.amask[k] == i.addr[k])
        } else {
            let v = scalars[(i.field & 15) as usize] & i.mask;
            match i.cmp {
                abi::FC_GT => v > i.value,
                abi::FC_GE => v >= i.value,
                _ => v == i.value,
            }
        };
        let next = if ok { i.jt } else { i.jf } as usize;
        if next <= pc {
            return true;
        }
        pc = next;
    }
    true
}

/// The interpreter's field values for a packet (what the kernel loads from its event).
pub fn fields_of(p: &rxray_engine::event::Packet) -> ([u32; 16], [[u8; 16]; 2]) {
    let mut s = [0u32; 16];
    for f in rxray_engine::filter::ALL_FIELDS {
        s[field_id(f) as usize] = rxray_engine::filter::field(p, f);
    }
    let a = [rxray_engine::filter::addr_field(p, AddrField::Src), rxray_engine::filter::addr_field(p, AddrField::Dst)];
    (s, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_go_forward_and_sizes_are_one_instruction_per_test() {
        for text in ["tcp", "udp and dst port 53", "not (host 198.18.0.1 or net 2001:2::/48) and len > 100", "vlan 5 and tcp[tcpflags] & tcp-syn != 0", "greater 0 or less 0"] {
            let f = Filter::parse(text).unwrap();
            let p = compile(&f).unwrap();
            assert_eq!(p.len as usize, f.cond.tests(), "{text}");
            for (i, insn) in p.insn[..p.len as usize].iter().enumerate() {
                assert!(insn.jt as usize > i && insn.jf as usize > i, "{text}: insn {i} jumps back");
                assert!((insn.jt as usize) < p.len as usize || insn.jt >= abi::FILTER_ACCEPT);
            }
        }
    }

    #[test]
    fn too_large_is_a_clear_error() {
        let text = (0..40).map(|i| format!("host 10.0.0.{i}")).collect::<Vec<_>>().join(" or ");
        let e = compile(&Filter::parse(&text).unwrap()).unwrap_err();
        assert!(e.tests > 64 && e.to_string().contains("at most 64"), "{e}");
    }

    #[test]
    fn constant_filters_need_no_instruction() {
        let p = compile(&Filter::parse("vlan and vlan and vlan 7").unwrap()).unwrap();
        assert_eq!((p.len, p.entry), (0, abi::FILTER_REJECT));
    }
}
