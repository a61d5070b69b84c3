//! The simulator's random numbers: a seeded SplitMix64 generator and the few distributions the
//! market model draws from (uniform, Gaussian, log-normal, exponential, Bernoulli).
//!
//! Owns reproducibility: the same seed gives the same stream on every platform (integer
//! arithmetic, then one conversion to `f64`), and `Rng::derive` gives independent streams
//! keyed by small integers, so one RFQ's dealer behaviour is the same draw whichever selection
//! policy is being simulated (common random numbers). Must not read the clock or any OS
//! entropy.

/// SplitMix64 (Steele, Lea & Flood, "Fast splittable pseudorandom number generators", 2014):
/// a 64-bit state advanced by the golden-ratio increment and mixed by two multiply-xorshift
/// rounds. Fast, passes BigCrush as used here, and trivially seeded.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: mix(seed) }
    }

    /// An independent stream for `(seed, a, b, c)`: the same keys give the same stream.
    pub fn derive(seed: u64, a: u64, b: u64, c: u64) -> Rng {
        let k = mix(seed
            ^ mix(a.wrapping_add(GOLDEN))
            ^ mix(b.wrapping_mul(3).wrapping_add(7))
            ^ mix(c.wrapping_mul(5).wrapping_add(11)).rotate_left(17));
        Rng::new(k)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `0..n` (`n > 0`; 0 for `n == 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Lemire's multiply-shift; the bias for the small n used here is below 2^-40.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    pub fn bernoulli(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Standard Gaussian (Box-Muller; one of the pair is dropped so every call costs the same
    /// number of draws, which keeps streams aligned).
    pub fn gaussian(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    pub fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        mean + sd * self.gaussian()
    }

    /// Log-normal with the given median and log-scale sigma.
    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.gaussian()).exp()
    }

    /// Exponential with the given mean.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.uniform()).ln()
    }
}

/// The standard normal CDF (Abramowitz & Stegun 7.1.26 through erf; error below 1.5e-7).
pub fn normal_cdf(x: f64) -> f64 {
    let z = x / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    let erf = if z >= 0.0 { erf } else { -erf };
    0.5 * (1.0 + erf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_derived_streams_differ() {
        let a: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(42);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(42);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        let mut x = Rng::derive(42, 1, 2, 3);
        let mut y = Rng::derive(42, 1, 2, 4);
        let mut z = Rng::derive(42, 1, 2, 3);
        let (x0, y0, z0) = (x.next_u64(), y.next_u64(), z.next_u64());
        assert_ne!(x0, y0);
        assert_eq!(x0, z0);
    }

    #[test]
    fn distributions_have_their_configured_moments() {
        let mut r = Rng::new(7);
        let n = 200_000;
        let (mut s, mut s2) = (0.0, 0.0);
        for _ in 0..n {
            let g = r.normal(3.0, 2.0);
            s += g;
            s2 += g * g;
        }
        let mean = s / n as f64;
        let var = s2 / n as f64 - mean * mean;
        assert!((mean - 3.0).abs() < 0.03, "mean {mean}");
        assert!((var.sqrt() - 2.0).abs() < 0.03, "sd {}", var.sqrt());
        let mut e = 0.0;
        for _ in 0..n {
            e += r.exponential(5.0);
        }
        assert!((e / n as f64 - 5.0).abs() < 0.1);
        let mut ln: Vec<f64> = (0..n).map(|_| r.lognormal(8.0, 0.6)).collect();
        ln.sort_by(f64::total_cmp);
        let median = ln[n / 2];
        assert!((median - 8.0).abs() < 0.15, "median {median}");
        let hits = (0..n).filter(|_| r.bernoulli(0.3)).count() as f64 / n as f64;
        assert!((hits - 0.3).abs() < 0.005);
        let below: Vec<u64> = (0..1000).map(|_| r.below(6)).collect();
        assert!(below.iter().all(|&v| v < 6));
        assert!((0..6).all(|v| below.contains(&v)));
    }

    #[test]
    fn normal_cdf_matches_known_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.96) - 0.975).abs() < 1e-4);
        assert!((normal_cdf(-1.0) - 0.158_655).abs() < 1e-5);
    }
}
