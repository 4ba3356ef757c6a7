//! Readers for the public water recordings in `shared/data/water/` (see its README), turned into
//! the per-minute series the detector and `vigil water-check` consume. Minutes without data are
//! left out, so gaps stay gaps.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{NaiveDateTime, TimeZone};

/// One household's per-minute series: `(minute start, epoch seconds; litres)`, in order, only
/// minutes with data.
#[derive(Debug, Clone, PartialEq)]
pub struct MinuteSeries {
    pub household: String,
    pub timezone: chrono_tz::Tz,
    pub minutes: Vec<(i64, f64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: expected {expected}, found {found:?}")]
    Parse {
        path: PathBuf,
        line: usize,
        expected: &'static str,
        found: String,
    },
}

/// A per-fixture sensor reports an idle heartbeat every 300 s; three missed ones make a gap.
const FIXTURE_GAP_SECONDS: i64 = 900;
const LITRES_PER_US_GALLON: f64 = 3.785_411_784;

/// The data folder: env `VIGIL_DATA_DIR`, else `<workspace>/../shared/data`.
pub fn data_dir() -> PathBuf {
    match std::env::var_os("VIGIL_DATA_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data")),
    }
}

fn read(path: &Path) -> Result<String, RecordingError> {
    std::fs::read_to_string(path).map_err(|source| RecordingError::Io {
        path: path.to_owned(),
        source,
    })
}

fn parse_err(path: &Path, line: usize, expected: &'static str, found: &str) -> RecordingError {
    RecordingError::Parse {
        path: path.to_owned(),
        line: line + 1,
        expected,
        found: found.chars().take(80).collect(),
    }
}

/// `epoch_seconds value` lines.
fn read_feed(path: &Path) -> Result<Vec<(i64, f64)>, RecordingError> {
    let text = read(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut parts = line.split_whitespace();
        let (Some(t), Some(v), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(parse_err(path, i, "`epoch_seconds flow`", line));
        };
        let t = t
            .parse::<i64>()
            .map_err(|_| parse_err(path, i, "integer epoch seconds", line))?;
        let v = v
            .parse::<f64>()
            .map_err(|_| parse_err(path, i, "a flow value", line))?;
        out.push((t, v));
    }
    Ok(out)
}

/// `start_epoch value end_epoch` lines after a header.
fn read_events(path: &Path) -> Result<Vec<(i64, f64, i64)>, RecordingError> {
    let text = read(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let parsed = match parts.as_slice() {
            [s, v, e] => s
                .parse::<i64>()
                .ok()
                .zip(v.parse::<f64>().ok())
                .zip(e.parse::<i64>().ok()),
            _ => None,
        };
        let ((s, v), e) = parsed.ok_or_else(|| parse_err(path, i, "`start value end`", line))?;
        out.push((s, v, e));
    }
    Ok(out)
}

fn spread(volumes: &mut BTreeMap<i64, f64>, start_s: i64, end_s: i64, litres: f64) {
    let first = start_s.div_euclid(60);
    let last = (end_s.div_euclid(60)).max(first + 1);
    let n = (last - first) as f64;
    for m in first..last {
        *volumes.entry(m).or_default() += litres / n;
    }
}

/// The WEUSEDTO occupant: the sum of the fixture feeds per minute. A minute has data when all
/// four fixtures that report heartbeats (shower, washbasin, kitchen faucet, bidet) were reporting;
/// the washing machine, toilet and dishwasher add their volumes where recorded.
pub fn weusedto(dir: &Path) -> Result<MinuteSeries, RecordingError> {
    let dir = dir.join("water/weusedto");
    let mut volumes: BTreeMap<i64, f64> = BTreeMap::new();
    let mut known: Option<Vec<(i64, i64)>> = None;
    for fixture in [
        "Shower",
        "Washbasin",
        "Kitchenfaucet",
        "Bidet",
        "Washingmachine",
    ] {
        let feed = read_feed(&dir.join(format!("feed_{fixture}.MYD.csv")))?;
        for &(t, ml_per_s) in &feed {
            if ml_per_s > 0.0 && ml_per_s < 1.0e6 {
                *volumes.entry(t.div_euclid(60)).or_default() += ml_per_s / 1000.0;
            }
        }
        if fixture == "Washingmachine" {
            continue;
        }
        // Minute spans covered by this feed: consecutive samples no further apart than the gap.
        let mut spans: Vec<(i64, i64)> = Vec::new();
        for pair in feed.windows(2) {
            let (a, b) = (pair[0].0, pair[1].0);
            if b - a <= FIXTURE_GAP_SECONDS && b > a {
                let (from, to) = (a.div_euclid(60), b.div_euclid(60) + 1);
                match spans.last_mut() {
                    Some((_, end)) if *end >= from => *end = (*end).max(to),
                    _ => spans.push((from, to)),
                }
            }
        }
        known = Some(match known {
            None => spans,
            Some(previous) => intersect(&previous, &spans),
        });
    }
    for (s, litres, e) in read_events(&dir.join("feed.Toilet.csv"))? {
        spread(&mut volumes, s, e, litres);
    }
    for (s, litres, e) in read_events(&dir.join("feed_Dishwasher30.MYD.csv"))? {
        spread(&mut volumes, s, e, litres);
    }
    let mut minutes = Vec::new();
    for (from, to) in known.unwrap_or_default() {
        for m in from..to {
            minutes.push((m * 60, volumes.get(&m).copied().unwrap_or(0.0)));
        }
    }
    Ok(MinuteSeries {
        household: "weusedto".into(),
        timezone: chrono_tz::Europe::Rome,
        minutes,
    })
}

fn intersect(a: &[(i64, i64)], b: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        let from = a[i].0.max(b[j].0);
        let to = a[i].1.min(b[j].1);
        if from < to {
            out.push((from, to));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// The CIWS house (Utah): labelled events in local time, gallons; the logger ran throughout, so
/// every minute from the first event to the last is data.
pub fn ciws(dir: &Path) -> Result<MinuteSeries, RecordingError> {
    let path = dir.join("water/ciws/Classified_Events.csv");
    let text = read(&path)?;
    let tz = chrono_tz::America::Denver;
    let mut volumes: BTreeMap<i64, f64> = BTreeMap::new();
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    for (i, line) in text.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let parse_time = |s: &str| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
                .ok()
                .and_then(|t| tz.from_local_datetime(&t).earliest())
                .map(|t| t.timestamp())
        };
        let (Some(start), Some(end), Some(gallons)) = (
            fields.first().and_then(|s| parse_time(s)),
            fields.get(1).and_then(|s| parse_time(s)),
            fields.get(3).and_then(|s| s.parse::<f64>().ok()),
        ) else {
            return Err(parse_err(
                &path,
                i,
                "`start,end,duration,gallons,...`",
                line,
            ));
        };
        spread(&mut volumes, start, end, gallons * LITRES_PER_US_GALLON);
        first = first.min(start.div_euclid(60));
        last = last.max(end.div_euclid(60).max(start.div_euclid(60) + 1));
    }
    let minutes = (first..last)
        .map(|m| (m * 60, volumes.get(&m).copied().unwrap_or(0.0)))
        .collect();
    Ok(MinuteSeries {
        household: "ciws".into(),
        timezone: tz,
        minutes,
    })
}
