//! Tail diagnosis of the in-process RFQ path: the same timed requests as `benches/rfq_path.rs`
//! (one `deliver` of a desk QuoteRequest, the RFQ cancelled outside the timed region), but
//! every sample's latency is kept with its request number, and the slow ones (above p99) are
//! examined: are they periodic in the request number (store ring wrap, slab reuse, buffer
//! turnover), clustered in time (interrupts, preemption), or spread evenly (per-request cost)?
//! It is a diagnostic, not a benchmark or a test: it asserts nothing about speed and prints a
//! report. Usage: `rfq_path_tail [broadcast|whisper] [requests]`.

use rfq_router::pipeline::{Pipeline, DESK};
use rfq_router::select::{ProtocolKind, StaticTiers};
use std::hint::black_box;
use std::time::Instant;

#[path = "../benches/support/rfq_path_fixture.rs"]
mod rfq_path_fixture;
use rfq_path_fixture::{cancel, pipeline, request};

/// Minor and major page faults, voluntary and involuntary context switches of this process.
fn os_counters() -> [u64; 4] {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the ")" of the command name: state is field 3; minflt 10, majflt 12.
    let after = stat.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<&str> = after.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
    let (minflt, majflt) = (num(10 - 3), num(12 - 3));
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    [
        minflt,
        majflt,
        field("voluntary_ctxt_switches:"),
        field("nonvoluntary_ctxt_switches:"),
    ]
}

/// Interrupts by kind (LOC, RES, CAL, TLB) and CPU, and the steal jiffies of each CPU.
fn irq_counters() -> Vec<(String, Vec<u64>)> {
    let mut rows = Vec::new();
    let irq = std::fs::read_to_string("/proc/interrupts").unwrap_or_default();
    let cpus = irq
        .lines()
        .next()
        .map_or(0, |l| l.split_whitespace().count());
    for l in irq.lines().skip(1) {
        let mut f = l.split_whitespace();
        let name = f.next().unwrap_or("").trim_end_matches(':').to_string();
        if !["LOC", "RES", "CAL", "TLB", "IWI", "NMI"].contains(&name.as_str()) {
            continue;
        }
        let v = f.take(cpus).map(|x| x.parse().unwrap_or(0)).collect();
        rows.push((name, v));
    }
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let steal = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .map(|l| {
            l.split_whitespace()
                .nth(8)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        })
        .collect();
    rows.push(("steal_jiffies".to_string(), steal));
    rows
}

/// The control: a chain of dependent ALU operations touching no memory, `rounds` long. Its
/// time varies only with what the machine does to this CPU (interruptions, a busy sibling,
/// frequency), not with caches: timed between requests, it tells how much of the RFQ path's
/// tail the machine alone would give an operation of the same length.
#[inline(never)]
fn control(rounds: u32, mut x: u64) -> u64 {
    for _ in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

fn quantile(sorted: &[u32], q: f64) -> u32 {
    sorted[((sorted.len() as f64 - 1.0) * q) as usize]
}

fn main() {
    let kind = match std::env::args().nth(1).as_deref() {
        Some("whisper") => ProtocolKind::Whisper,
        _ => ProtocolKind::Broadcast,
    };
    let requests: usize = std::env::args()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut p: Pipeline<StaticTiers> = pipeline(kind);
    for n in 0..10_000u64 {
        request(&mut p, n);
        black_box(p.deliver(DESK));
        cancel(&mut p, n);
    }
    // Control length: as long as the median request (calibrated on 1,000 requests).
    let mut warm: Vec<u32> = (0..1_000u64)
        .map(|k| {
            let n = 10_000_000 + k;
            request(&mut p, n);
            let t = Instant::now();
            black_box(p.deliver(DESK));
            let d = t.elapsed().as_nanos() as u32;
            cancel(&mut p, n);
            d
        })
        .collect();
    warm.sort_unstable();
    let t = Instant::now();
    black_box(control(1_000_000, 88_172_645_463_325_252));
    let control_ns_per_round = t.elapsed().as_nanos() as f64 / 1_000_000.0;
    let control_rounds = (f64::from(warm[500]) / control_ns_per_round).max(1.0) as u32;
    let mut lat_ns = vec![0u32; requests];
    let mut at_ns = vec![0u64; requests];
    let mut control_ns = vec![0u32; requests];
    // Touch the sample buffers now, so their first-write page faults are not in the run.
    lat_ns.fill(1);
    at_ns.fill(1);
    control_ns.fill(1);
    let irq_before = irq_counters();
    let os_before = os_counters();
    let origin = Instant::now();
    for (i, ((lat, at), ctl)) in lat_ns
        .iter_mut()
        .zip(at_ns.iter_mut())
        .zip(control_ns.iter_mut())
        .enumerate()
    {
        let n = 10_000 + i as u64;
        request(&mut p, n);
        let t = Instant::now();
        black_box(p.deliver(DESK));
        let d = t.elapsed();
        *lat = d.as_nanos().min(u32::MAX as u128) as u32;
        *at = (t - origin).as_nanos() as u64;
        cancel(&mut p, n);
        let t = Instant::now();
        black_box(control(control_rounds, n));
        *ctl = t.elapsed().as_nanos().min(u32::MAX as u128) as u32;
    }
    let os_after = os_counters();
    let irq_after = irq_counters();
    for ((name, a), (_, b)) in irq_after.iter().zip(&irq_before) {
        let d: Vec<u64> = a.iter().zip(b).map(|(a, b)| a - b).collect();
        println!("during run, per CPU: {name} {d:?}");
    }
    let mut sorted = lat_ns.clone();
    sorted.sort_unstable();
    let p99 = quantile(&sorted, 0.99);
    control_ns.sort_unstable();
    println!(
        "control (ALU only, {control_rounds} rounds, timed after each request): p50 {} p90 {} p99 {} p99.9 {} ns; p99/p50 {:.2} (the RFQ path: {:.2})",
        quantile(&control_ns, 0.5),
        quantile(&control_ns, 0.9),
        quantile(&control_ns, 0.99),
        quantile(&control_ns, 0.999),
        f64::from(quantile(&control_ns, 0.99)) / f64::from(quantile(&control_ns, 0.5).max(1)),
        f64::from(p99) / f64::from(quantile(&sorted, 0.5).max(1))
    );
    println!(
        "{kind:?} {requests} requests: p50 {} p90 {} p99 {} p99.9 {} max {} ns",
        quantile(&sorted, 0.5),
        quantile(&sorted, 0.9),
        p99,
        quantile(&sorted, 0.999),
        sorted[sorted.len() - 1]
    );
    println!(
        "os during run: minor faults {}, major faults {}, voluntary cs {}, involuntary cs {}",
        os_after[0] - os_before[0],
        os_after[1] - os_before[1],
        os_after[2] - os_before[2],
        os_after[3] - os_before[3]
    );
    // Slow: strictly above p99 (about 1% of samples).
    let slow: Vec<usize> = (0..requests).filter(|&i| lat_ns[i] > p99).collect();
    println!(
        "slow samples (> p99 = {p99} ns): {} ({:.2}%)",
        slow.len(),
        100.0 * slow.len() as f64 / requests as f64
    );
    // Periodicity in the request number: share of slow samples in the busiest 1% of residues.
    println!("period  top-1%-residues share  (uniform ~1%; busiest residues)");
    for period in [
        2usize, 3, 4, 8, 16, 32, 64, 100, 128, 200, 256, 512, 1000, 1024, 2048, 4096, 8192,
    ] {
        let mut count = vec![0usize; period];
        for &i in &slow {
            count[(10_000 + i) % period] += 1;
        }
        let mut by = (0..period).collect::<Vec<_>>();
        by.sort_unstable_by_key(|&r| std::cmp::Reverse(count[r]));
        let k = period.div_ceil(100);
        let top: usize = by[..k].iter().map(|&r| count[r]).sum();
        let uniform = k as f64 / period as f64;
        println!(
            "{period:>6}  {:>6.2}% (uniform {:>6.2}%)  {:?}",
            100.0 * top as f64 / slow.len().max(1) as f64,
            100.0 * uniform,
            by[..k.min(4)]
                .iter()
                .map(|&r| (r, count[r]))
                .collect::<Vec<_>>()
        );
    }
    // Clustering: how often the next sample is slow too, and gaps between slow samples.
    let next_slow = slow.windows(2).filter(|w| w[1] == w[0] + 1).count();
    println!(
        "slow followed by slow: {:.2}% (independent ~1%)",
        100.0 * next_slow as f64 / slow.len().max(1) as f64
    );
    let mut gap_log2 = [0usize; 24];
    for w in slow.windows(2) {
        let g = (w[1] - w[0]) as u64;
        gap_log2[(63 - g.leading_zeros() as usize).min(23)] += 1;
    }
    println!("gaps between slow samples (requests, log2 buckets): {gap_log2:?}");
    // Clustering in wall time: slow samples per 1 ms window, distribution of counts.
    let windows_ms = (at_ns[requests - 1] / 1_000_000 + 1) as usize;
    let mut per_ms = vec![0u32; windows_ms];
    for &i in &slow {
        per_ms[(at_ns[i] / 1_000_000) as usize] += 1;
    }
    let mut per_ms_hist = [0usize; 8];
    for c in per_ms {
        per_ms_hist[(c as usize).min(7)] += 1;
    }
    println!("1 ms windows by slow-sample count 0..7+: {per_ms_hist:?}");
    // Runs of consecutive slow samples: lengths, and whether the loop iteration before a run
    // (outside the timed region: cancel + next request) took longer than usual, which would
    // mean something (interrupt, preemption) happened there and the run is the refill.
    let mut periods: Vec<u64> = at_ns.windows(2).map(|w| w[1] - w[0]).collect();
    periods.sort_unstable();
    let period_p50 = periods[periods.len() / 2];
    let mut run_len_log2 = [0usize; 16];
    let mut runs = 0usize;
    let mut runs_after_long_gap = 0usize;
    let mut run_first_ns = Vec::new();
    let mut run_rest_ns = Vec::new();
    let mut k = 0;
    while k < slow.len() {
        let start = slow[k];
        let mut end = k;
        while end + 1 < slow.len() && slow[end + 1] == slow[end] + 1 {
            end += 1;
        }
        let len = end - k + 1;
        runs += 1;
        run_len_log2[(63 - (len as u64).leading_zeros() as usize).min(15)] += 1;
        if start > 0 {
            let before = at_ns[start] - at_ns[start - 1] - u64::from(lat_ns[start - 1]);
            if before > 2 * (period_p50 - u64::from(quantile(&sorted, 0.5))) + 2_000 {
                runs_after_long_gap += 1;
            }
        }
        run_first_ns.push(lat_ns[start]);
        for &i in &slow[k + 1..=end] {
            run_rest_ns.push(lat_ns[i]);
        }
        k = end + 1;
    }
    run_first_ns.sort_unstable();
    run_rest_ns.sort_unstable();
    println!(
        "loop period p50 {period_p50} ns; runs of slow samples: {runs}, lengths log2 {run_len_log2:?}; \
         runs preceded by a long untimed gap: {runs_after_long_gap}"
    );
    if !run_first_ns.is_empty() && !run_rest_ns.is_empty() {
        println!(
            "run first sample p50 {} ns; later samples in runs p50 {} ns",
            quantile(&run_first_ns, 0.5),
            quantile(&run_rest_ns, 0.5)
        );
    }
    // Where the dense windows (>= 7 slow samples in 1 ms) are: gaps between them in ms.
    let dense: Vec<usize> = {
        let mut per = vec![0u32; windows_ms];
        for &i in &slow {
            per[(at_ns[i] / 1_000_000) as usize] += 1;
        }
        (0..windows_ms).filter(|&w| per[w] >= 7).collect()
    };
    let dense_gaps: Vec<usize> = dense.windows(2).map(|w| w[1] - w[0]).collect();
    println!(
        "dense 1 ms windows: {}, first gaps between them (ms): {:?}",
        dense.len(),
        &dense_gaps[..dense_gaps.len().min(60)]
    );
    // Phase of isolated slow samples (runs of one) within the 4 ms scheduler tick (HZ=250):
    // a timer tick would pile them into one phase bin.
    let mut phase = [0usize; 16];
    for (j, &i) in slow.iter().enumerate() {
        let alone =
            (j == 0 || slow[j - 1] + 1 != i) && (j + 1 == slow.len() || slow[j + 1] != i + 1);
        if alone {
            phase[((at_ns[i] % 4_000_000) / 250_000) as usize] += 1;
        }
    }
    println!("isolated slow samples by phase in 4 ms (16 bins): {phase:?}");
    // Slow episodes, defined without the p99: 1 ms windows whose median latency is more than
    // twice the run's median (the whole machine ran slower then). How much of the run they
    // cover, and the quantiles of the samples outside them (what the code costs when the VM
    // is not in such an episode).
    let p50 = quantile(&sorted, 0.5);
    let mut by_window: Vec<Vec<u32>> = vec![Vec::new(); windows_ms];
    for i in 0..requests {
        by_window[(at_ns[i] / 1_000_000) as usize].push(lat_ns[i]);
    }
    let mut episode = vec![false; windows_ms];
    for (w, v) in by_window.iter_mut().enumerate() {
        if !v.is_empty() {
            v.sort_unstable();
            episode[w] = v[v.len() / 2] > 2 * p50;
        }
    }
    let mut outside: Vec<u32> = (0..requests)
        .filter(|&i| !episode[(at_ns[i] / 1_000_000) as usize])
        .map(|i| lat_ns[i])
        .collect();
    outside.sort_unstable();
    let episode_ms = episode.iter().filter(|&&e| e).count();
    if !outside.is_empty() {
        println!(
            "slow episodes (1 ms windows with median > 2 x p50): {episode_ms} of {windows_ms} ms ({:.1}%), \
             holding {:.1}% of samples; outside them: p50 {} p90 {} p99 {} p99.9 {} ns",
            100.0 * episode_ms as f64 / windows_ms as f64,
            100.0 * (requests - outside.len()) as f64 / requests as f64,
            quantile(&outside, 0.5),
            quantile(&outside, 0.9),
            quantile(&outside, 0.99),
            quantile(&outside, 0.999)
        );
    }
    // Latency buckets of the slow samples.
    let mut buckets = [0usize; 8];
    for &i in &slow {
        let l = lat_ns[i];
        let b = match l {
            0..=3_999 => 0,
            4_000..=5_999 => 1,
            6_000..=9_999 => 2,
            10_000..=19_999 => 3,
            20_000..=49_999 => 4,
            50_000..=99_999 => 5,
            100_000..=999_999 => 6,
            _ => 7,
        };
        buckets[b] += 1;
    }
    println!("slow samples by latency <4us,4-6,6-10,10-20,20-50,50-100,100-1000,>1ms: {buckets:?}");
    // The first slow indices, for eyeballing.
    println!(
        "first slow request numbers: {:?}",
        slow.iter()
            .take(40)
            .map(|&i| 10_000 + i)
            .collect::<Vec<_>>()
    );
}
