//! Level signals recorded as change points, turned into the per-bin readings the outage
//! detector compares.
//!
//! A BGP visibility count is a level that holds until it changes, so a recorder keeps only the
//! readings where it changed (and the last one, which says how far the data reaches). Fed as
//! they are, those few readings would leave most bins without a value and a baseline without
//! history; [`bin_means`] instead gives every bin the reading spans the time-weighted mean of the
//! level over the part of the bin the readings cover.

/// Time-weighted means per bin of a step function: `points` are (time, value) readings, each
/// holding from its time until the next one's; the last one ends the known span (a level is not
/// known past the last reading). Returns (bin start, mean) for every bin the span touches, in
/// time order; points need not be sorted, and of several at the same time the last given wins.
/// A single reading (or several at one time) gives its own bin that value.
pub fn bin_means(points: &[(i64, f64)], bin: i64) -> Vec<(i64, f64)> {
    let bin = bin.max(1);
    let mut sorted: Vec<(i64, f64)> = points.to_vec();
    // Stable: of equal times the last given stays last, and wins below.
    sorted.sort_by_key(|&(t, _)| t);
    sorted.dedup_by(|later, earlier| {
        if later.0 == earlier.0 {
            earlier.1 = later.1;
            true
        } else {
            false
        }
    });
    let (Some(&(first, _)), Some(&(last, last_value))) = (sorted.first(), sorted.last()) else {
        return Vec::new();
    };
    if first == last {
        return vec![(first.div_euclid(bin) * bin, last_value)];
    }
    // (bin start, weighted sum, covered seconds)
    let mut out: Vec<(i64, f64, i64)> = Vec::new();
    for pair in sorted.windows(2) {
        let ((from, value), (to, _)) = (pair[0], pair[1]);
        let mut t = from;
        while t < to {
            let start = t.div_euclid(bin) * bin;
            let end = (start + bin).min(to);
            let seconds = end - t;
            match out.last_mut() {
                Some(o) if o.0 == start => {
                    o.1 += value * seconds as f64;
                    o.2 += seconds;
                }
                _ => out.push((start, value * seconds as f64, seconds)),
            }
            t = end;
        }
    }
    let mut means: Vec<(i64, f64)> = out.into_iter().map(|(s, sum, n)| (s, sum / n as f64)).collect();
    // The last reading's own bin, when the span ends exactly where that bin starts.
    let last_bin = last.div_euclid(bin) * bin;
    if means.last().is_none_or(|m| m.0 < last_bin) {
        means.push((last_bin, last_value));
    }
    means
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_become_time_weighted_bin_means() {
        // 16 from 0:00, 0 from 2:15, 16 again from 4:00; known until 5:30.
        let h = 3600;
        let points = [(0, 16.0), (2 * h + 900, 0.0), (4 * h, 16.0), (5 * h + 1800, 16.0)];
        let got = bin_means(&points, h);
        assert_eq!(
            got,
            vec![
                (0, 16.0),
                (h, 16.0),
                (2 * h, 4.0),
                (3 * h, 0.0),
                (4 * h, 16.0),
                (5 * h, 16.0)
            ]
        );
        // Unsorted input and a repeated time (the last given wins) change nothing else.
        let mut shuffled = vec![(4 * h, 16.0), (5 * h + 1800, 16.0), (2 * h + 900, 7.0), (0, 16.0)];
        shuffled.push((2 * h + 900, 0.0));
        assert_eq!(bin_means(&shuffled, h), got);
    }

    #[test]
    fn edges() {
        assert!(bin_means(&[], 3600).is_empty());
        assert_eq!(bin_means(&[(7200 + 5, 3.0)], 3600), vec![(7200, 3.0)]);
        // A span ending exactly on a bin boundary still gives the last reading its bin.
        assert_eq!(bin_means(&[(0, 1.0), (3600, 2.0)], 3600), vec![(0, 1.0), (3600, 2.0)]);
        // Negative times floor to their bin.
        assert_eq!(bin_means(&[(-10, 1.0), (10, 3.0)], 3600), vec![(-3600, 1.0), (0, 1.0)]);
    }
}
