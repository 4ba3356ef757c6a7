//! The classic threshold fall detector, the baseline Vigil's detector is measured
//! against: free fall (total acceleration below 0.6 g) followed within a second by an
//! impact above 2.5 g, a posture change above 45° between the second before the fall
//! and the second after it settled, and stillness (standard deviation of the total
//! acceleration below 0.15 g for two seconds). Host-side only, floating point, and run
//! over a whole recording.

/// Thresholds of the classic detector, as published.
#[derive(Debug, Clone, Copy)]
pub struct ClassicDetector {
    pub free_fall_g: f64,
    pub impact_g: f64,
    pub impact_within_s: f64,
    pub posture_change_deg: f64,
    pub still_std_g: f64,
    pub still_s: f64,
}

impl Default for ClassicDetector {
    fn default() -> Self {
        Self {
            free_fall_g: 0.6,
            impact_g: 2.5,
            impact_within_s: 1.0,
            posture_change_deg: 45.0,
            still_std_g: 0.15,
            still_s: 2.0,
        }
    }
}

fn magnitude(v: &[f64; 3]) -> f64 {
    (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt()
}

fn mean(samples: &[[f64; 3]]) -> Option<[f64; 3]> {
    if samples.is_empty() {
        return None;
    }
    let n = samples.len() as f64;
    let mut m = [0.0; 3];
    for s in samples {
        for axis in 0..3 {
            m[axis] += s[axis] / n;
        }
    }
    Some(m)
}

fn angle_deg(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    let dot = a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    let denominator = magnitude(a) * magnitude(b);
    if denominator == 0.0 {
        return 0.0;
    }
    (dot / denominator).clamp(-1.0, 1.0).acos().to_degrees()
}

impl ClassicDetector {
    /// Alarm times (ms from the start) over a trace in g at `rate_hz`; one alarm per
    /// ten seconds at most.
    pub fn run(&self, samples: &[[f64; 3]], rate_hz: u32) -> Vec<u64> {
        let rate = f64::from(rate_hz.max(1));
        let at = |seconds: f64| (seconds * rate).round() as usize;
        let mut alarms = Vec::new();
        let mut last_free_fall: Option<usize> = None;
        let mut i = 0;
        while i < samples.len() {
            let m = magnitude(&samples[i]);
            if m < self.free_fall_g {
                last_free_fall = Some(i);
            }
            let recent_free_fall =
                last_free_fall.is_some_and(|f| i - f <= at(self.impact_within_s));
            if m > self.impact_g && recent_free_fall && self.confirms(samples, i, rate) {
                alarms.push((i as u64) * 1000 / u64::from(rate_hz.max(1)));
                i += at(10.0);
                last_free_fall = None;
                continue;
            }
            i += 1;
        }
        alarms
    }

    fn confirms(&self, samples: &[[f64; 3]], impact: usize, rate: f64) -> bool {
        let at = |seconds: f64| (seconds * rate).round() as usize;
        let before = &samples[impact.saturating_sub(at(2.0))..impact.saturating_sub(at(1.0))];
        let after_start = (impact + at(1.0)).min(samples.len());
        let after_end = (impact + at(1.0 + self.still_s)).min(samples.len());
        let after = &samples[after_start..after_end];
        let (Some(before_mean), Some(after_mean)) = (mean(before), mean(after)) else {
            return false;
        };
        if angle_deg(&before_mean, &after_mean) <= self.posture_change_deg {
            return false;
        }
        let mags: Vec<f64> = after.iter().map(magnitude).collect();
        let n = mags.len() as f64;
        let mean_mag = mags.iter().sum::<f64>() / n;
        let std = (mags.iter().map(|m| (m - mean_mag).powi(2)).sum::<f64>() / n).sqrt();
        std < self.still_std_g
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(v: [f64; 3], n: usize) -> Vec<[f64; 3]> {
        vec![v; n]
    }

    #[test]
    fn classic_detector_alarms_on_free_fall_impact_posture_change_and_stillness() {
        let mut trace = hold([0.0, 1.0, 0.0], 150);
        trace.extend(hold([0.0, 0.3, 0.0], 10));
        trace.push([0.0, 0.0, 3.0]);
        trace.extend(hold([0.0, 0.0, 1.0], 250));
        assert_eq!(ClassicDetector::default().run(&trace, 50), vec![3200]);
    }

    #[test]
    fn classic_detector_needs_the_free_fall() {
        let mut trace = hold([0.0, 1.0, 0.0], 150);
        trace.push([0.0, 0.0, 3.0]);
        trace.extend(hold([0.0, 0.0, 1.0], 250));
        assert!(ClassicDetector::default().run(&trace, 50).is_empty());
    }
}
