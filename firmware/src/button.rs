//! The call button: a debounced input whose gestures are a press and a long press.

use crate::debounce::{Debouncer, Edge};
use crate::hal::Millis;

/// What the wearer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gesture {
    /// Pressed and released before the long-press time: a call.
    Press,
    /// Held for the long-press time; reported the moment the time is reached, so the wearer
    /// gets feedback without having to guess when to let go.
    LongPress,
}

/// Button timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ButtonConfig {
    pub debounce_ms: u32,
    pub long_press_ms: u32,
}

impl Default for ButtonConfig {
    fn default() -> Self {
        Self {
            debounce_ms: 30,
            long_press_ms: 3_000,
        }
    }
}

/// Turns button samples into gestures.
#[derive(Debug, Clone)]
pub struct Button {
    config: ButtonConfig,
    input: Debouncer,
    /// When the debounced press began, while it is held and not yet a long press.
    held_since: Option<Millis>,
    /// The current hold already produced a long press; its release is not a press.
    long_reported: bool,
}

impl Button {
    pub fn new(config: ButtonConfig) -> Self {
        Self {
            config,
            input: Debouncer::new(config.debounce_ms),
            held_since: None,
            long_reported: false,
        }
    }

    /// Feeds one sample of the button (`true` = pressed).
    pub fn handle_sample(&mut self, pressed: bool, now: Millis) -> Option<Gesture> {
        match self.input.handle_sample(pressed, now) {
            Some(Edge::Rising) => {
                // The press started when the contact closed, not when the bounce settled.
                let started = now.saturating_sub(u64::from(self.config.debounce_ms));
                self.held_since = Some(started);
                self.long_reported = false;
                None
            }
            Some(Edge::Falling) => {
                let was_long = self.long_reported;
                self.held_since = None;
                self.long_reported = false;
                if was_long {
                    None
                } else {
                    Some(Gesture::Press)
                }
            }
            None => self.handle_timeout(now),
        }
    }

    /// Reports a long press once the button has been held long enough.
    pub fn handle_timeout(&mut self, now: Millis) -> Option<Gesture> {
        match self.held_since {
            Some(since)
                if !self.long_reported
                    && now.saturating_sub(since) >= u64::from(self.config.long_press_ms) =>
            {
                self.long_reported = true;
                Some(Gesture::LongPress)
            }
            Some(_) | None => None,
        }
    }

    pub fn next_deadline(&self) -> Option<Millis> {
        let long = match self.held_since {
            Some(since) if !self.long_reported => {
                Some(since + u64::from(self.config.long_press_ms))
            }
            Some(_) | None => None,
        };
        match (long, self.input.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(b: &mut Button, pressed: bool, from: Millis, to: Millis) -> Option<(Millis, Gesture)> {
        let mut out = None;
        let mut t = from;
        while t <= to {
            if let Some(g) = b.handle_sample(pressed, t) {
                assert!(out.is_none(), "two gestures in one hold");
                out = Some((t, g));
            }
            t += 10;
        }
        out
    }

    #[test]
    fn a_short_press_is_reported_on_release() {
        let mut b = Button::new(ButtonConfig::default());
        assert_eq!(hold(&mut b, true, 0, 500), None);
        assert_eq!(hold(&mut b, false, 510, 700), Some((540, Gesture::Press)));
    }

    #[test]
    fn a_long_press_is_reported_at_three_seconds_and_its_release_is_silent() {
        let mut b = Button::new(ButtonConfig::default());
        assert_eq!(
            hold(&mut b, true, 0, 5_000),
            Some((3_000, Gesture::LongPress))
        );
        assert_eq!(hold(&mut b, false, 5_010, 6_000), None);
    }

    #[test]
    fn a_press_released_just_before_the_long_press_time_is_a_press() {
        let mut b = Button::new(ButtonConfig::default());
        assert_eq!(hold(&mut b, true, 0, 2_950), None);
        assert_eq!(
            hold(&mut b, false, 2_960, 3_100),
            Some((2_990, Gesture::Press))
        );
    }

    #[test]
    fn contact_bounce_does_not_make_a_press() {
        let mut b = Button::new(ButtonConfig::default());
        for t in 0..10u64 {
            assert_eq!(b.handle_sample(t % 2 == 0, t * 5), None);
        }
        assert_eq!(hold(&mut b, false, 50, 500), None);
    }

    #[test]
    fn the_long_press_deadline_is_announced_while_held() {
        let mut b = Button::new(ButtonConfig::default());
        b.handle_sample(true, 1_000);
        b.handle_sample(true, 1_030);
        assert_eq!(b.next_deadline(), Some(4_000));
        assert_eq!(b.handle_timeout(3_999), None);
        assert_eq!(b.handle_timeout(4_000), Some(Gesture::LongPress));
        assert_eq!(b.next_deadline(), None);
    }
}
