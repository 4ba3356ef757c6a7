//! Reads the WEUSEDTO single-occupant recordings into usage days.
//!
//! Per-fixture feeds are `epoch_seconds millilitres_per_second` at 1 s resolution, with a
//! zero sample about every 301 s as a heartbeat; a longer silence is missing data, not "no
//! use". A local day (Europe/Rome) is kept only when none of the shower, washbasin,
//! kitchen-faucet and bidet feeds has a gap over 15 minutes touching it. The toilet feed is
//! an event list `start flow end` whose constant is read as litres per flush.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::stats::{merge_runs, UsageDay, UsageEvent};
use crate::behaviour::Fixture;
use crate::civil::{civil_from_days, days_from_civil};

/// A gap between heartbeats longer than this is missing data.
const MAX_FEED_GAP_S: i64 = 900;

#[derive(Debug, thiserror::Error)]
pub enum RealDataError {
    #[error("recording {path} not found (set VIGIL_DATA_DIR to the shared data folder)")]
    Missing { path: PathBuf },
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: expected `{expected}`, found {found:?}")]
    Parse {
        path: PathBuf,
        line: usize,
        expected: &'static str,
        found: String,
    },
}

/// `$VIGIL_DATA_DIR`, or the `shared/data` folder beside the repository.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("VIGIL_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data")))
}

const FEEDS: [(Fixture, &str); 4] = [
    (Fixture::Shower, "feed_Shower.MYD.csv"),
    (Fixture::Washbasin, "feed_Washbasin.MYD.csv"),
    (Fixture::KitchenFaucet, "feed_Kitchenfaucet.MYD.csv"),
    (Fixture::Bidet, "feed_Bidet.MYD.csv"),
];

/// Loads the covered days of the WEUSEDTO recordings under `data_dir`.
pub fn load_weusedto(data_dir: &Path) -> Result<Vec<UsageDay>, RealDataError> {
    let dir = data_dir.join("water").join("weusedto");
    let mut covered: Option<BTreeSet<i64>> = None;
    let mut runs = Vec::new();
    for (fixture, file) in FEEDS {
        let samples = read_columns(&dir.join(file), 2, "epoch_seconds ml_per_second")?;
        let days = covered_days(&samples);
        covered = Some(match covered {
            None => days,
            Some(c) => c.intersection(&days).copied().collect(),
        });
        runs.extend(
            samples
                .iter()
                .filter(|s| s.1 > 0.0)
                .map(|s| (fixture, local(s.0), local(s.0) + 1, s.1.round() as u32)),
        );
    }
    let toilet = read_columns(&dir.join("feed.Toilet.csv"), 3, "start flow end")?;
    let toilet_runs: Vec<_> = toilet
        .iter()
        .map(|t| {
            (
                Fixture::Toilet,
                local(t.0),
                local(t.0) + 60,
                (t.1 * 1000.0).round() as u32,
            )
        })
        .collect();
    runs.extend(toilet_runs.iter().copied());
    let covered = covered.unwrap_or_default();
    let mut days: BTreeMap<i64, UsageDay> = covered
        .iter()
        .map(|&d| {
            (
                d,
                UsageDay {
                    events: Vec::new(),
                    minutes_ml: vec![0; 1440],
                },
            )
        })
        .collect();
    for &(_, start, _, ml) in &runs {
        if let Some(day) = days.get_mut(&start.div_euclid(86_400)) {
            let minute = (start.rem_euclid(86_400) / 60) as usize;
            day.minutes_ml[minute] = day.minutes_ml[minute].saturating_add(ml);
        }
    }
    for (fixture, start, end, volume_ml) in merge_runs(runs) {
        if let Some(day) = days.get_mut(&start.div_euclid(86_400)) {
            day.events.push(UsageEvent {
                fixture,
                start_s: start.rem_euclid(86_400) as u32,
                duration_s: (end - start).max(1) as u32,
                volume_ml,
            });
        }
    }
    Ok(days.into_values().collect())
}

/// The recordings as the household meter would have seen them, for replaying a real life
/// through the detectors: millilitres per local (Europe/Rome) minute over the span all four
/// fixture feeds share, `None` where any feed was silent for more than 15 minutes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedSeries {
    /// The first minute, in minutes since 1970-01-01 00:00 on the local wall clock.
    pub first_local_minute: i64,
    pub minutes_ml: Vec<Option<u32>>,
}

impl RecordedSeries {
    /// Minutes with data.
    pub fn known_minutes(&self) -> usize {
        self.minutes_ml.iter().filter(|m| m.is_some()).count()
    }
}

/// Loads the WEUSEDTO fixture feeds and toilet flushes as one per-minute series.
pub fn load_weusedto_series(data_dir: &Path) -> Result<RecordedSeries, RealDataError> {
    let dir = data_dir.join("water").join("weusedto");
    let mut feeds = Vec::new();
    for (_, file) in FEEDS {
        feeds.push(read_columns(
            &dir.join(file),
            2,
            "epoch_seconds ml_per_second",
        )?);
    }
    let toilet = read_columns(&dir.join("feed.Toilet.csv"), 3, "start flow end")?;
    let first = feeds.iter().filter_map(|f| f.first()).map(|s| s.0).max();
    let last = feeds.iter().filter_map(|f| f.last()).map(|s| s.0).min();
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(RecordedSeries {
            first_local_minute: 0,
            minutes_ml: Vec::new(),
        });
    };
    let first_minute = local(first).div_euclid(60);
    let len = (local(last).div_euclid(60) - first_minute + 1).max(0) as usize;
    let mut minutes = vec![Some(0u32); len];
    let index = |epoch_s: i64| usize::try_from(local(epoch_s).div_euclid(60) - first_minute).ok();
    for feed in &feeds {
        for w in feed.windows(2) {
            if w[1].0 - w[0].0 > MAX_FEED_GAP_S {
                let (a, b) = (index(w[0].0), index(w[1].0));
                for m in minutes
                    .iter_mut()
                    .take(b.unwrap_or(0) + 1)
                    .skip(a.unwrap_or(0))
                {
                    *m = None;
                }
            }
        }
        for &(t, ml) in feed.iter().filter(|s| s.1 > 0.0) {
            if let Some(Some(m)) = index(t).and_then(|i| minutes.get_mut(i)) {
                *m = m.saturating_add(ml.round() as u32);
            }
        }
    }
    for &(t, litres) in &toilet {
        if let Some(Some(m)) = index(t).and_then(|i| minutes.get_mut(i)) {
            *m = m.saturating_add((litres * 1000.0).round() as u32);
        }
    }
    Ok(RecordedSeries {
        first_local_minute: first_minute,
        minutes_ml: minutes,
    })
}

/// Rows of `columns` whitespace-separated numbers; a first line that is not numeric is a
/// header. Returns (epoch seconds, second column).
fn read_columns(
    path: &Path,
    columns: usize,
    expected: &'static str,
) -> Result<Vec<(i64, f64)>, RealDataError> {
    let text = std::fs::read_to_string(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => RealDataError::Missing {
            path: path.to_owned(),
        },
        _ => RealDataError::Io {
            path: path.to_owned(),
            source,
        },
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() || (i == 0 && fields[0].parse::<f64>().is_err()) {
            continue;
        }
        let parsed = (fields.len() == columns)
            .then(|| {
                Some((
                    fields[0].parse::<i64>().ok()?,
                    fields[1].parse::<f64>().ok()?,
                ))
            })
            .flatten();
        match parsed {
            Some(row) => out.push(row),
            None => {
                return Err(RealDataError::Parse {
                    path: path.to_owned(),
                    line: i + 1,
                    expected,
                    found: line.chars().take(80).collect(),
                })
            }
        }
    }
    out.sort_by_key(|r| r.0);
    Ok(out)
}

/// Local days (days since 1970-01-01 in Europe/Rome) strictly inside the feed with no gap
/// longer than [`MAX_FEED_GAP_S`] touching them.
fn covered_days(samples: &[(i64, f64)]) -> BTreeSet<i64> {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return BTreeSet::new();
    };
    let mut bad = BTreeSet::new();
    for w in samples.windows(2) {
        if w[1].0 - w[0].0 > MAX_FEED_GAP_S {
            for d in local(w[0].0).div_euclid(86_400)..=local(w[1].0).div_euclid(86_400) {
                bad.insert(d);
            }
        }
    }
    (local(first.0).div_euclid(86_400) + 1..local(last.0).div_euclid(86_400))
        .filter(|d| !bad.contains(d))
        .collect()
}

/// Epoch seconds → seconds on the Europe/Rome wall clock since 1970-01-01 00:00 local.
///
/// The EU rule (in force since 1996, covering the recordings): CEST from the last Sunday
/// of March 01:00 UTC to the last Sunday of October 01:00 UTC, CET otherwise.
fn local(epoch_s: i64) -> i64 {
    let year = civil_from_days(epoch_s.div_euclid(86_400)).0;
    let last_sunday = |month: u32| {
        let d = days_from_civil(year, month, 31);
        d - (d + 3 + 1).rem_euclid(7)
    };
    let summer = last_sunday(3) * 86_400 + 3600..last_sunday(10) * 86_400 + 3600;
    epoch_s
        + if summer.contains(&epoch_s) {
            7200
        } else {
            3600
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rome_switches_to_summer_time_on_the_last_sunday_of_march() {
        // 2019-03-31 00:59:59 UTC is CET, 01:00:00 UTC is CEST.
        let switch = days_from_civil(2019, 3, 31) * 86_400 + 3600;
        assert_eq!(local(switch - 1) - (switch - 1), 3600);
        assert_eq!(local(switch) - switch, 7200);
        // 2019-10-27 01:00 UTC back to CET.
        let back = days_from_civil(2019, 10, 27) * 86_400 + 3600;
        assert_eq!(local(back - 1) - (back - 1), 7200);
        assert_eq!(local(back) - back, 3600);
        assert_eq!(civil_from_days(days_from_civil(2020, 2, 29)), (2020, 2, 29));
    }

    #[test]
    fn a_day_touched_by_a_long_gap_is_not_covered() {
        let d = days_from_civil(2019, 6, 10) * 86_400 - 7200; // local midnight, CEST
        let mut samples: Vec<(i64, f64)> = (0..4 * 288).map(|i| (d + i * 300, 0.0)).collect();
        samples.retain(|s| !(s.0 > d + 86_400 + 3600 && s.0 < d + 86_400 + 7200));
        let days = covered_days(&samples);
        let day0 = local(d).div_euclid(86_400);
        assert_eq!(days.into_iter().collect::<Vec<_>>(), vec![day0 + 2]);
    }

    #[test]
    fn a_malformed_line_names_the_file_and_line() {
        let dir = std::env::temp_dir().join(format!("vigil-sim-real-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("feed.csv");
        std::fs::write(&path, "1550000000 0.0\n1550000001 abc\n").unwrap();
        let err = read_columns(&path, 2, "epoch_seconds ml_per_second").unwrap_err();
        assert!(err.to_string().contains("feed.csv:2"), "{err}");
        let missing = read_columns(&dir.join("none.csv"), 2, "x").unwrap_err();
        assert!(matches!(missing, RealDataError::Missing { .. }));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
