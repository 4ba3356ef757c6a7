//! Water fixtures of a home and how one use of each looks to a meter.
//!
//! Every constant here was measured on the single-occupant WEUSEDTO recordings
//! (`shared/data/water/weusedto/`, 125 local days of Feb–Oct 2019 on which the shower,
//! washbasin, kitchen-faucet and bidet feeds have no gap longer than 15 min; events are runs
//! of flow with pauses ≤ 60 s and at least 0.1 L, 2 L for the shower). `vigil sim calibrate`
//! re-measures them and prints them beside the model's output; nothing reads the data at
//! simulation time.

use rand::Rng;
use rand_distr::{Distribution, LogNormal};

/// A water-using fixture or appliance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fixture {
    Toilet,
    Washbasin,
    Bidet,
    Shower,
    KitchenFaucet,
    Dishwasher,
    WashingMachine,
}

impl Fixture {
    pub const ALL: [Fixture; 7] = [
        Self::Toilet,
        Self::Washbasin,
        Self::Bidet,
        Self::Shower,
        Self::KitchenFaucet,
        Self::Dishwasher,
        Self::WashingMachine,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Toilet => "toilet",
            Self::Washbasin => "washbasin",
            Self::Bidet => "bidet",
            Self::Shower => "shower",
            Self::KitchenFaucet => "kitchen_faucet",
            Self::Dishwasher => "dishwasher",
            Self::WashingMachine => "washing_machine",
        }
    }

    /// The shape of one use (for appliances: one fill).
    pub fn use_shape(self) -> UseShape {
        match self {
            // feed.Toilet.csv: a constant 12 (read as litres) per flush; CIWS toilets: 13 L.
            // A cistern refills in about a minute.
            Self::Toilet => UseShape::new(12.0, 0.08, 0.6, 12.0),
            // Washbasin: median 0.53 L, p90 2.52 L, median 44 s → ≈ 0.7 L/min.
            Self::Washbasin => UseShape::new(0.53, 1.22, 0.1, 0.75),
            // Bidet: median 1.13 L, p90 2.23 L, median 31 s → ≈ 2.2 L/min.
            Self::Bidet => UseShape::new(1.13, 0.53, 0.1, 2.2),
            // Shower: median 17.8 L, p90 34.7 L, median 233 s → ≈ 4.6 L/min.
            Self::Shower => UseShape::new(17.8, 0.52, 2.0, 4.6),
            // Kitchen faucet: median 0.53 L, p90 2.71 L, median 23 s → ≈ 1.4 L/min.
            Self::KitchenFaucet => UseShape::new(0.53, 1.27, 0.1, 1.4),
            // feed_Dishwasher30: 10.2 per cycle, logged as 30-minute events; modelled as fills
            // of a third of that (3 fills per cycle, see the routine).
            Self::Dishwasher => UseShape::new(3.4, 0.1, 1.0, 3.0),
            // Washing machine fills: median ≈ 9 L (p10 3.8, p90 12.7), 2–6 fills a cycle.
            Self::WashingMachine => UseShape::new(9.0, 0.3, 3.0, 8.0),
        }
    }
}

/// Log-normal volume of one use, its floor, and the fixture's flow rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UseShape {
    /// Median volume in litres.
    pub median_l: f64,
    /// Log-normal shape (σ of ln volume).
    pub sigma: f64,
    /// Smallest volume a real use of this fixture has, in litres.
    pub min_l: f64,
    /// Typical flow while in use, in litres per minute.
    pub flow_l_per_min: f64,
}

impl UseShape {
    const fn new(median_l: f64, sigma: f64, min_l: f64, flow_l_per_min: f64) -> Self {
        Self {
            median_l,
            sigma,
            min_l,
            flow_l_per_min,
        }
    }

    /// Draws one use: (volume in millilitres, duration in seconds).
    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> (u32, u32) {
        let volume_l = LogNormal::new(self.median_l.ln(), self.sigma)
            .map(|d| d.sample(rng))
            .unwrap_or(self.median_l)
            .clamp(self.min_l, self.median_l * 8.0);
        // Flow varies ±30 % between uses (how far the tap is opened).
        let flow = self.flow_l_per_min * rng.random_range(0.7..1.3);
        let duration_s = (volume_l / flow * 60.0).round().max(1.0);
        ((volume_l * 1000.0).round() as u32, duration_s as u32)
    }
}

/// One use of a fixture: the ground truth behind the meter's readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixtureUse {
    pub fixture: Fixture,
    /// Seconds since local midnight of the first simulated day.
    pub start_s: u32,
    pub duration_s: u32,
    pub volume_ml: u32,
}

impl FixtureUse {
    pub fn end_s(&self) -> u32 {
        self.start_s + self.duration_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn drawn_volumes_have_the_stated_median_and_floor() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for fixture in Fixture::ALL {
            let shape = fixture.use_shape();
            let mut v: Vec<u32> = (0..4001).map(|_| shape.draw(&mut rng).0).collect();
            v.sort_unstable();
            let median_l = f64::from(v[2000]) / 1000.0;
            assert!(
                (median_l / shape.median_l - 1.0).abs() < 0.1,
                "{}: median {median_l} L vs {} L",
                fixture.name(),
                shape.median_l
            );
            assert!(f64::from(v[0]) / 1000.0 >= shape.min_l - 1e-9);
        }
    }
}
