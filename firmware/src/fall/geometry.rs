//! Integer vector geometry for the fall detector: magnitudes and angles between gravity
//! vectors, without floating point or `libm`, so the host and the board compute
//! bit-identical features.

/// A three-axis sum or mean of accelerations in milli-g, wide enough to sum many samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct VecSum {
    pub x: i64,
    pub y: i64,
    pub z: i64,
}

impl VecSum {
    pub(crate) fn add(&mut self, x: i32, y: i32, z: i32) {
        self.x += i64::from(x);
        self.y += i64::from(y);
        self.z += i64::from(z);
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.x == 0 && self.y == 0 && self.z == 0
    }
}

/// Euclidean norm of an acceleration vector in milli-g.
///
/// `i16` components square to at most 3 · 32768² < 2³², so the sum fits a `u32`.
pub(crate) fn magnitude_mg(x: i16, y: i16, z: i16) -> u32 {
    let sq = |v: i16| -> u32 {
        let a = u32::from(v.unsigned_abs());
        a * a
    };
    (sq(x) + sq(y) + sq(z)).isqrt()
}

/// cos(θ) for θ = 0°, 1°, …, 90° in Q14 (16384 = 1.0).
const COS_Q14: [u16; 91] = [
    16384, 16382, 16374, 16362, 16344, 16322, 16294, 16262, 16225, 16182, 16135, 16083, 16026,
    15964, 15897, 15826, 15749, 15668, 15582, 15491, 15396, 15296, 15191, 15082, 14968, 14849,
    14726, 14598, 14466, 14330, 14189, 14044, 13894, 13741, 13583, 13421, 13255, 13085, 12911,
    12733, 12551, 12365, 12176, 11982, 11786, 11585, 11381, 11174, 10963, 10749, 10531, 10311,
    10087, 9860, 9630, 9397, 9162, 8923, 8682, 8438, 8192, 7943, 7692, 7438, 7182, 6924, 6664,
    6402, 6138, 5872, 5604, 5334, 5063, 4790, 4516, 4240, 3964, 3686, 3406, 3126, 2845, 2563, 2280,
    1997, 1713, 1428, 1143, 857, 572, 286, 0,
];

/// The angle between two vectors in whole degrees (0..=180), or `None` when either is zero.
///
/// Only the directions matter: the vectors may be sums over different sample counts.
pub(crate) fn angle_deg(a: &VecSum, b: &VecSum) -> Option<u16> {
    if a.is_zero() || b.is_zero() {
        return None;
    }
    // Scale both to unit-ish length in Q14 first so the dot product cannot overflow,
    // whatever the number of samples summed.
    let (ax, ay, az) = unit_q14(a);
    let (bx, by, bz) = unit_q14(b);
    let dot = ax * bx + ay * by + az * bz; // Q28
    let cos_q14 = (dot >> 14).clamp(-16384, 16384);
    let abs = u16::try_from(cos_q14.unsigned_abs()).unwrap_or(16384);
    // First table angle whose cosine is at or below |cos|: the table falls monotonically.
    let acute = COS_Q14.partition_point(|&c| c > abs);
    let acute = u16::try_from(acute.min(90)).unwrap_or(90);
    Some(if cos_q14 < 0 { 180 - acute } else { acute })
}

/// Normalises a vector to length 16384 (Q14), components as `i64`.
fn unit_q14(v: &VecSum) -> (i64, i64, i64) {
    // Bring the components into a range whose squares sum safely in i64.
    let max =
        v.x.unsigned_abs()
            .max(v.y.unsigned_abs())
            .max(v.z.unsigned_abs());
    let shift = (64 - max.leading_zeros()).saturating_sub(20);
    let (x, y, z) = (v.x >> shift, v.y >> shift, v.z >> shift);
    let norm_sq = x * x + y * y + z * z;
    let norm = i64::try_from(norm_sq.unsigned_abs().isqrt())
        .unwrap_or(i64::MAX)
        .max(1);
    (x * 16384 / norm, y * 16384 / norm, z * 16384 / norm)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(x: i64, y: i64, z: i64) -> VecSum {
        VecSum { x, y, z }
    }

    #[test]
    fn magnitude_of_one_g_on_any_axis_is_one_thousand_mg() {
        assert_eq!(magnitude_mg(1000, 0, 0), 1000);
        assert_eq!(magnitude_mg(0, -1000, 0), 1000);
        assert_eq!(magnitude_mg(600, 800, 0), 1000);
    }

    #[test]
    fn magnitude_of_full_scale_on_all_axes_does_not_overflow() {
        assert_eq!(magnitude_mg(i16::MIN, i16::MIN, i16::MIN), 56755);
    }

    #[test]
    fn angles_between_axes_are_exact() {
        assert_eq!(angle_deg(&v(0, 0, 1000), &v(0, 0, 5000)), Some(0));
        assert_eq!(angle_deg(&v(0, 0, 1000), &v(1000, 0, 0)), Some(90));
        assert_eq!(angle_deg(&v(0, 0, 1000), &v(0, 0, -1000)), Some(180));
        assert_eq!(angle_deg(&v(0, 0, 1000), &v(1000, 0, 1000)), Some(45));
        assert_eq!(angle_deg(&v(0, 0, 1000), &v(1000, 0, -1000)), Some(135));
    }

    #[test]
    fn angle_is_within_a_degree_of_the_true_angle() {
        for deg in 0..=180u16 {
            let rad = f64::from(deg).to_radians();
            let b = v((rad.sin() * 1.0e6) as i64, 0, (rad.cos() * 1.0e6) as i64);
            let got = angle_deg(&v(0, 0, 1), &b).unwrap();
            assert!(got.abs_diff(deg) <= 1, "{deg}° came out as {got}°");
        }
    }

    #[test]
    fn angle_with_a_zero_vector_is_undefined() {
        assert_eq!(angle_deg(&v(0, 0, 0), &v(1, 0, 0)), None);
    }

    #[test]
    fn angle_of_huge_sums_does_not_overflow() {
        let big = i64::MAX / 4;
        assert_eq!(angle_deg(&v(big, 0, 0), &v(0, big, 0)), Some(90));
    }
}
