//! Board services that `embedded-hal` 1.0 has no trait for.
//!
//! Pins, I2C and delays use `embedded-hal` directly; these three traits cover the rest, so
//! the board logic stays free of board-specific code.

/// Milliseconds since this boot: the time every state machine in this crate takes as `now`.
pub type Millis = u64;

/// Reads the battery voltage.
pub trait BatteryMonitor {
    type Error: core::fmt::Debug;
    /// The battery voltage, in millivolts.
    fn read_battery_mv(&mut self) -> Result<u16, Self::Error>;
}

/// A monotonic millisecond clock that never goes backwards while the board runs.
///
/// Only board main loops read it; they pass the value as `now` into the state machines.
pub trait MonotonicClock {
    fn now_ms(&mut self) -> Millis;
}

/// Non-volatile storage of the `boot_id` (flash page, EEPROM, backup register).
pub trait BootIdStore {
    type Error: core::fmt::Debug;
    /// The `boot_id` stored at the previous boot, or `None` on a board never booted before.
    fn load_boot_id(&mut self) -> Result<Option<u32>, Self::Error>;
    fn store_boot_id(&mut self, boot_id: u32) -> Result<(), Self::Error>;
}

/// Advances the persistent `boot_id` once at start-up and returns the one for this boot.
///
/// A board must call this before it sends any frame: `(device_id, boot_id, seq)` is unique only
/// when every boot has a new `boot_id`. The new value is stored before it is used, so a reset
/// right after cannot reuse it.
pub fn next_boot_id<S: BootIdStore>(store: &mut S) -> Result<u32, S::Error> {
    let next = match store.load_boot_id()? {
        Some(prev) => prev.wrapping_add(1).max(1),
        None => 1,
    };
    store.store_boot_id(next)?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct RamStore(Option<u32>);
    impl BootIdStore for RamStore {
        type Error = core::convert::Infallible;
        fn load_boot_id(&mut self) -> Result<Option<u32>, Self::Error> {
            Ok(self.0)
        }
        fn store_boot_id(&mut self, boot_id: u32) -> Result<(), Self::Error> {
            self.0 = Some(boot_id);
            Ok(())
        }
    }

    #[test]
    fn first_boot_is_one_and_each_boot_increments_and_is_stored() {
        let mut store = RamStore(None);
        assert_eq!(next_boot_id(&mut store), Ok(1));
        assert_eq!(next_boot_id(&mut store), Ok(2));
        assert_eq!(store.0, Some(2));
    }

    #[test]
    fn boot_id_wraps_past_zero_to_one() {
        let mut store = RamStore(Some(u32::MAX));
        assert_eq!(next_boot_id(&mut store), Ok(1));
    }
}
