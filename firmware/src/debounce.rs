//! A debounced digital input: a level change counts once it has held for the debounce time.

use crate::hal::Millis;

/// A stable edge of a debounced input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// The input became active (pressed, pulse started, magnet present).
    Rising,
    /// The input became inactive.
    Falling,
}

/// Debounces one input sampled at any rate; contact bounce shorter than `debounce_ms` is
/// ignored. Samples are `true` when the input is active (the board handles pin polarity).
#[derive(Debug, Clone)]
pub struct Debouncer {
    debounce_ms: u32,
    stable: bool,
    candidate: Option<(bool, Millis)>,
}

impl Debouncer {
    /// Starts with a stable inactive input.
    pub fn new(debounce_ms: u32) -> Self {
        Self {
            debounce_ms,
            stable: false,
            candidate: None,
        }
    }

    /// The debounced level.
    pub fn is_active(&self) -> bool {
        self.stable
    }

    /// Feeds one sample; returns the edge when the new level has held for the debounce time.
    pub fn handle_sample(&mut self, active: bool, now: Millis) -> Option<Edge> {
        if active == self.stable {
            self.candidate = None;
            return None;
        }
        let since = match self.candidate {
            Some((level, since)) if level == active => since,
            Some(_) | None => {
                self.candidate = Some((active, now));
                now
            }
        };
        if now.saturating_sub(since) >= u64::from(self.debounce_ms) {
            self.stable = active;
            self.candidate = None;
            Some(if active { Edge::Rising } else { Edge::Falling })
        } else {
            None
        }
    }

    /// When a pending change becomes stable if the input keeps its level; sample then.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.candidate
            .map(|(_, since)| since + u64::from(self.debounce_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounce_shorter_than_the_debounce_time_is_ignored() {
        let mut d = Debouncer::new(20);
        assert_eq!(d.handle_sample(true, 0), None);
        assert_eq!(d.handle_sample(false, 5), None);
        assert_eq!(d.handle_sample(true, 10), None);
        assert_eq!(d.handle_sample(false, 15), None);
        assert_eq!(d.handle_sample(false, 100), None);
        assert!(!d.is_active());
    }

    #[test]
    fn a_level_held_for_exactly_the_debounce_time_makes_one_edge() {
        let mut d = Debouncer::new(20);
        assert_eq!(d.handle_sample(true, 100), None);
        assert_eq!(d.next_deadline(), Some(120));
        assert_eq!(d.handle_sample(true, 119), None);
        assert_eq!(d.handle_sample(true, 120), Some(Edge::Rising));
        assert_eq!(d.handle_sample(true, 130), None);
        assert_eq!(d.handle_sample(false, 200), None);
        assert_eq!(d.handle_sample(false, 220), Some(Edge::Falling));
        assert_eq!(d.next_deadline(), None);
    }

    #[test]
    fn a_bounce_restarts_the_debounce_time() {
        let mut d = Debouncer::new(20);
        d.handle_sample(true, 0);
        d.handle_sample(false, 15);
        d.handle_sample(true, 18);
        assert_eq!(d.handle_sample(true, 30), None);
        assert_eq!(d.handle_sample(true, 38), Some(Edge::Rising));
    }
}
