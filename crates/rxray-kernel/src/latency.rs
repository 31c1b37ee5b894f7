//! Delivery latency: the XDP program's arrival stamps (RXRAY_FEAT_LATENCY) and the two tracing
//! stages of the same object (`tp_btf/sk_data_ready`, `tp_btf/skb_copy_datagram_iovec`) that turn
//! them into per-flow and per-process histograms. They live in the XDP object so they share its
//! stamp map and clock; this module attaches them to a loaded `Ingress` and reads what they count.
use crate::{abi, attach_tp, kernel_btf, Ingress, KernelError};
use rxray_engine::source::LatencySnapshot;
use aya::maps::{Array, MapData, PerCpuArray};

/// (program, tracepoint): the TCP read stage is required; without the queue stage only TCP's
/// arrival → read is measured, and without sock_recv_length no UDP read is.
const READ_STAGE: (&str, &str) = ("rxray_lat_read", "skb_copy_datagram_iovec");
const QUEUE_STAGE: (&str, &str) = ("rxray_lat_queued", "sk_data_ready");
const UDP_READ_STAGE: (&str, &str) = ("rxray_lat_udp_read", "sock_recv_length");

/// What is measured once latency is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LatencyStages {
    /// sk_data_ready is attached: arrival → queue is measured too.
    pub queue: bool,
    /// sock_recv_length is attached too: UDP reads are measured.
    pub udp: bool,
}

/// Counters summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LatencyTotals {
    /// Data packets XDP stamped.
    pub stamped: u64,
    /// Stamps found when their skb was queued.
    pub queued: u64,
    /// Stamps found when their skb was read: packets measured.
    pub read: u64,
    /// Measurements the flow / process tables had no room for.
    pub flow_insert_failed: u64,
    pub proc_insert_failed: u64,
}

pub use rxray_engine::source::LatencyEntry;

fn sum(per_cpu: impl Iterator<Item = abi::LatHist>) -> LatencyEntry {
    let mut e = LatencyEntry::default();
    for h in per_cpu {
        e.read.merge(h.reads, h.read_sum_ns, h.read_max_ns, &h.read);
        e.queue.merge(h.queued, h.queue_sum_ns, h.queue_max_ns, &h.queue);
        e.last_ns = e.last_ns.max(h.last_ns);
        if e.comm.is_empty() && h.comm[0] != 0 {
            let n = h.comm.iter().position(|&b| b == 0).unwrap_or(h.comm.len());
            e.comm = String::from_utf8_lossy(&h.comm[..n]).into_owned();
        }
    }
    e
}

impl Ingress {
    /// Attaches the tracing stages and turns the XDP arrival stamps on. The programs stay attached
    /// until the `Ingress` is dropped.
    pub fn enable_latency(&mut self) -> Result<LatencyStages, KernelError> {
        let btf = kernel_btf("latency")?;
        attach_tp(self.ebpf_mut(), &btf, READ_STAGE.0, READ_STAGE.1)?;
        let queue = attach_tp(self.ebpf_mut(), &btf, QUEUE_STAGE.0, QUEUE_STAGE.1).is_ok();
        // UDP reads are matched through the queue stage's per-socket order: both or neither.
        let udp = queue && attach_tp(self.ebpf_mut(), &btf, UDP_READ_STAGE.0, UDP_READ_STAGE.1).is_ok();
        self.set_feature(abi::FEAT_LATENCY, true)?;
        Ok(LatencyStages { queue, udp })
    }

    /// Per-flow histograms (keys with tag 0: remote → local as the packets arrived).
    pub fn latency_flows(&self) -> Result<Vec<(abi::LatKey, LatencyEntry)>, KernelError> {
        self.lat_map("rxray_lat_flow_ix", "rxray_lat_flows", |r: &abi::LatFlowRef| (r.state, r.k))
    }

    /// Per-process histograms (tgid, cgroup id).
    pub fn latency_procs(&self) -> Result<Vec<(abi::LatProcKey, LatencyEntry)>, KernelError> {
        self.lat_map("rxray_lat_proc_ix", "rxray_lat_procs", |r: &abi::LatProcRef| (r.state, r.k))
    }

    /// The latency histograms, decoded: per flow (remote → local) and per reading process.
    pub fn latency_snapshot(&self) -> Result<LatencySnapshot, KernelError> {
        Ok(LatencySnapshot {
            flows: self.latency_flows()?.into_iter().map(|(k, e)| crate::decode::decode_latency_flow(&k, e)).collect(),
            procs: self.latency_procs()?.into_iter().map(|(k, e)| crate::decode::decode_latency_proc(&k, e)).collect(),
        })
    }

    /// The histograms of every key in the index table `ix`: slot i of the per-CPU array `hists`
    /// belongs to the key in slot i of `ix` once that slot is ready. A key found in two slots (two
    /// CPUs inserted it at once) is one entry, the sum of both.
    fn lat_map<K: Copy + Eq + std::hash::Hash, R: aya::Pod>(
        &self,
        ix: &'static str,
        hists: &'static str,
        key: impl Fn(&R) -> (u64, K),
    ) -> Result<Vec<(K, LatencyEntry)>, KernelError> {
        let map_of = |name: &'static str| self.ebpf().map(name).ok_or(KernelError::Map { map: name, detail: "missing".into() });
        let ix_err = |e: aya::maps::MapError| KernelError::Map { map: ix, detail: e.to_string() };
        let h_err = |e: aya::maps::MapError| KernelError::Map { map: hists, detail: e.to_string() };
        let refs: Array<&MapData, R> = Array::try_from(map_of(ix)?).map_err(ix_err)?;
        let h: PerCpuArray<&MapData, abi::LatHist> = PerCpuArray::try_from(map_of(hists)?).map_err(h_err)?;
        let mut slots: Vec<(K, Vec<u32>)> = Vec::new();
        let mut seen: std::collections::HashMap<K, usize> = std::collections::HashMap::new();
        for i in 0..refs.len() {
            let (state, k) = key(&refs.get(&i, 0).map_err(ix_err)?);
            if state != abi::LAT_REF_READY {
                continue;
            }
            match seen.get(&k) {
                Some(&j) => slots[j].1.push(i),
                None => {
                    seen.insert(k, slots.len());
                    slots.push((k, vec![i]));
                }
            }
        }
        let mut out = Vec::with_capacity(slots.len());
        for (k, idx) in slots {
            let mut per_cpu = Vec::new();
            for i in idx {
                per_cpu.extend(h.get(&i, 0).map_err(h_err)?.iter().copied());
            }
            out.push((k, sum(per_cpu.into_iter())));
        }
        Ok(out)
    }

    pub fn latency_totals(&self) -> Result<LatencyTotals, KernelError> {
        let err = |e: aya::maps::MapError| KernelError::Map { map: "rxray_lat_stats", detail: e.to_string() };
        let map = self
            .ebpf()
            .map("rxray_lat_stats")
            .ok_or(KernelError::Map { map: "rxray_lat_stats", detail: "missing".into() })?;
        let arr: PerCpuArray<&MapData, abi::LatStats> = PerCpuArray::try_from(map).map_err(err)?;
        let mut c = [0u64; abi::LC_COUNT];
        for s in arr.get(&0, 0).map_err(err)?.iter() {
            for (acc, v) in c.iter_mut().zip(s.c.iter()) {
                *acc += v;
            }
        }
        Ok(LatencyTotals {
            stamped: c[abi::LC_STAMPED],
            queued: c[abi::LC_QUEUED],
            read: c[abi::LC_READ],
            flow_insert_failed: c[abi::LC_FLOW_FAIL],
            proc_insert_failed: c[abi::LC_PROC_FAIL],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_reads_as_many_buckets_as_the_kernel_fills() {
        assert_eq!(abi::LAT_BUCKETS, rxray_engine::latency::BUCKETS);
        assert_eq!(1usize << abi::LAT_SUB_BITS, 4, "the engine's bucket_of uses 4 sub-buckets");
    }

    #[test]
    fn per_cpu_histograms_sum_and_keep_the_comm() {
        let mut a = abi::LatHist { reads: 2, read_sum_ns: 30, read_max_ns: 20, ..Default::default() };
        a.read[rxray_engine::latency::bucket_of(10)] += 1;
        a.read[rxray_engine::latency::bucket_of(20)] += 1;
        let mut b = abi::LatHist { reads: 1, read_sum_ns: 40, read_max_ns: 40, queued: 1, queue_max_ns: 5, ..Default::default() };
        b.read[rxray_engine::latency::bucket_of(40)] += 1;
        b.queue[rxray_engine::latency::bucket_of(5)] += 1;
        b.comm[..4].copy_from_slice(b"ngin");
        let e = sum([a, b].into_iter());
        assert_eq!((e.read.count, e.read.sum_ns, e.read.max_ns), (3, 70, 40));
        assert_eq!((e.queue.count, e.queue.max_ns), (1, 5));
        assert_eq!(e.comm, "ngin");
    }
}
