//! Reference sensor traces, embedded as constants: the QEMU self-test replays them through
//! the real board logic, host tests use them, and simulators can feed them to a simulated
//! accelerometer or meter. They cost no flash unless a binary uses them.
//!
//! The fall is built at compile time from the phases of a forward fall of a person wearing the
//! pendant on the chest (y axis up when standing, z axis out of the chest), sampled at 50 Hz
//! like the pendant's LIS3DH, with deterministic sensor noise of about ±15 mg:
//!
//! | samples | time | phase | acceleration |
//! |---|---|---|---|
//! | 0..50 | 1.0 s | standing, slight sway | ≈ 1 g on +y |
//! | 50..60 | 0.2 s | stumble | 1.1–1.3 g, tilting forward |
//! | 60..78 | 0.36 s | falling | total drops to ≈ 0.2 g (free fall, bent knees) |
//! | 78..82 | 0.08 s | impact on the floor | peaks near 3.9 g |
//! | 82..100 | 0.36 s | rebound | decaying oscillation towards the lying posture |
//! | 100..600 | 10 s | lying face down, still | ≈ 1 g on −z (90° from standing) |
//!
//! The button and pulse traces are lists of level changes as a sampled input sees them,
//! including the contact bounce of a real switch.

use crate::fall::AccelMg;

/// Samples per second of [`FALL`].
pub const FALL_RATE_HZ: u64 = 50;

/// A forward fall onto the floor, then lying still.
pub const FALL: [AccelMg; 600] = build_fall();

/// Standing still with the pendant upright.
pub const STANDING: AccelMg = AccelMg {
    x: 10,
    y: 995,
    z: -20,
};

const fn noise(i: usize) -> i16 {
    // A fixed linear congruential sequence: repeatable "noise" of -15..=15 mg.
    let x = (i as u32).wrapping_mul(1_103_515_245).wrapping_add(12_345);
    ((x >> 16) % 31) as i16 - 15
}

const fn lerp(a: i16, b: i16, num: i32, den: i32) -> i16 {
    (a as i32 + (b as i32 - a as i32) * num / den) as i16
}

const fn build_fall() -> [AccelMg; 600] {
    let mut out = [AccelMg { x: 0, y: 0, z: 0 }; 600];
    let mut i = 0;
    while i < 600 {
        let (x, y, z) = if i < 50 {
            (10, 995, -20)
        } else if i < 60 {
            // Stumbling forward: the body pitches and the legs push.
            let k = (i - 50) as i32;
            (40, lerp(1_100, 1_250, k, 10), lerp(-20, -450, k, 10))
        } else if i < 78 {
            // Falling: total acceleration collapses towards 0.2 g within 80 ms.
            let k = (i - 60) as i32;
            if k < 4 {
                (30, lerp(1_000, 180, k, 4), lerp(-400, -80, k, 4))
            } else {
                (25, 150, -90)
            }
        } else if i < 82 {
            // Impact: knees and hands, then the chest.
            match i {
                78 => (900, 1_700, -2_100),
                79 => (1_400, 1_900, -3_100),
                80 => (600, 1_100, -2_300),
                _ => (-300, 400, -1_600),
            }
        } else if i < 100 {
            // Rebound, decaying towards lying face down.
            let k = (i - 82) as i32;
            let sign: i32 = if k % 2 == 0 { 1 } else { -1 };
            let amp = 500 * (18 - k) / 18;
            (
                (sign * amp / 3) as i16,
                (sign * amp / 2 + 40) as i16,
                (-1_000 + sign * amp) as i16,
            )
        } else {
            (5, 30, -1_000)
        };
        out[i] = AccelMg {
            x: x + noise(3 * i),
            y: y + noise(3 * i + 1),
            z: z + noise(3 * i + 2),
        };
        i += 1;
    }
    out
}

/// A press of the call button as the pin sees it: `(ms from the start, pressed)` changes,
/// with 6 ms of contact bounce on the press and 4 ms on the release.
pub const SHORT_PRESS: [(u64, bool); 8] = [
    (0, true),
    (2, false),
    (3, true),
    (5, false),
    (6, true),
    (260, false),
    (262, true),
    (264, false),
];

/// A long press (3.6 s), bouncing on the press.
pub const LONG_PRESS: [(u64, bool); 4] = [(0, true), (3, false), (4, true), (3_600, false)];

/// Water use over a quarter hour from a 1 pulse/litre reed meter: `(start s, pulses,
/// seconds between pulses)`; a toilet flush, a hand wash, a five-minute shower.
pub const WATER_USE: [(u64, u32, u64); 3] = [(120, 6, 2), (300, 1, 1), (420, 40, 7)];

/// Litres in [`WATER_USE`].
pub const WATER_USE_LITRES: u32 = 47;

#[cfg(test)]
mod tests {
    use super::*;

    fn magnitude_mg(s: AccelMg) -> f32 {
        let (x, y, z) = (f32::from(s.x), f32::from(s.y), f32::from(s.z));
        (x * x + y * y + z * z).sqrt()
    }

    #[test]
    fn the_reference_fall_has_the_phases_its_documentation_states() {
        let mags: [f32; 600] = core::array::from_fn(|i| magnitude_mg(FALL[i]));
        let standing = &mags[..50];
        assert!(standing.iter().all(|m| (m - 1000.0).abs() < 60.0));
        let free_fall = &mags[64..78];
        assert!(free_fall.iter().all(|m| *m < 300.0));
        let peak = mags[78..82].iter().cloned().fold(0.0, f32::max);
        assert!((3_700.0..4_100.0).contains(&peak), "peak {peak}");
        let lying = &FALL[100..];
        assert!(lying.iter().all(|s| s.z < -960 && s.y.abs() < 60));
    }

    #[test]
    fn the_water_use_trace_adds_up_to_its_stated_litres() {
        let pulses: u32 = WATER_USE.iter().map(|(_, n, _)| n).sum();
        assert_eq!(pulses, WATER_USE_LITRES);
        let last_s = WATER_USE
            .iter()
            .map(|(start, n, every)| start + u64::from(n - 1) * every)
            .max()
            .unwrap_or(0);
        assert!(last_s < 900, "all use falls in the first quarter hour");
    }
}
