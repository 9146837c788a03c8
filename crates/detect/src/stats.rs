//! The statistics detection rests on, each small enough to check by hand: the Wilson score
//! interval for a blocked share, the median, and the Poisson lower tail used to tell a real drop
//! in measurement volume from a quiet hour.

/// The z value of a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// The Wilson score interval for `successes` out of `trials` at normal quantile `z`
/// (E. B. Wilson, "Probable inference, the law of succession, and statistical inference",
/// JASA 22, 1927). Unlike the normal ("Wald") interval it stays inside [0, 1] and is honest
/// with a handful of trials, which is what a sparse series gives. With no trials it is `(0, 1)`.
pub fn wilson(successes: u64, trials: u64, z: f64) -> (f64, f64) {
    if trials == 0 {
        return (0.0, 1.0);
    }
    let n = trials as f64;
    let p = successes.min(trials) as f64 / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The median of `values` (the mean of the two middle ones for an even count), reordering them;
/// `None` when empty. NaNs sort last.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable_by(f64::total_cmp);
    Some(sorted_median(values))
}

/// The median of already sorted, non-empty `values`.
pub(crate) fn sorted_median(values: &[f64]) -> f64 {
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// P(X ≤ k) for X ~ Poisson(`lambda`), summed in log space so that large means do not underflow.
pub fn poisson_cdf(k: u64, lambda: f64) -> f64 {
    if lambda <= 0.0 {
        return 1.0;
    }
    let ln_lambda = lambda.ln();
    let mut ln_term = -lambda; // ln P(X = 0)
    let mut ln_sum = ln_term;
    for i in 1..=k {
        ln_term += ln_lambda - (i as f64).ln();
        // ln(e^a + e^b) with a = ln_sum, b = ln_term.
        let (hi, lo) = if ln_sum > ln_term {
            (ln_sum, ln_term)
        } else {
            (ln_term, ln_sum)
        };
        ln_sum = hi + (lo - hi).exp().ln_1p();
        if ln_term < ln_sum - 40.0 && (i as f64) > lambda {
            break; // the remaining terms no longer change the sum
        }
    }
    ln_sum.exp().min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_cdf_matches_direct_sums() {
        // P(X <= 2 | 3) = e^-3 (1 + 3 + 4.5)
        let direct = (-3.0f64).exp() * 8.5;
        assert!((poisson_cdf(2, 3.0) - direct).abs() < 1e-12);
        assert!((poisson_cdf(0, 16.0) - (-16.0f64).exp()).abs() < 1e-15);
        assert!(poisson_cdf(1000, 10.0) > 0.999_999);
        assert!(poisson_cdf(400, 1000.0) < 1e-50);
        assert_eq!(poisson_cdf(0, 0.0), 1.0);
    }

    #[test]
    fn median_odd_even_empty() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }
}
