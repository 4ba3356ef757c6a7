//! The pendant board's implementations of the firmware's hardware traits on nRF52840
//! peripherals: RTC as the millisecond clock, SAADC on VDD as the battery monitor, the last
//! flash page as the `boot_id` store, and UARTE0 to the radio modem as the byte stream.

use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
use nrf52840_hal::nvmc::Nvmc;
use nrf52840_hal::pac::{NVMC, RTC0, UARTE0};
use nrf52840_hal::rtc::{Rtc, RtcCompareReg, RtcInterrupt};
use nrf52840_hal::saadc::{InternalVdd, Saadc};
use nrf52840_hal::uarte::{self, UarteRx, UarteTx};
use vigil_firmware::hal::{BatteryMonitor, BootIdStore, Millis, MonotonicClock};

/// RTC0 counting the 32.768 kHz low-frequency clock; its 24-bit counter wraps every 512 s,
/// which the main loop (running every few milliseconds, under a watchdog) always observes.
pub struct RtcClock {
    rtc: Rtc<RTC0>,
    last: u32,
    wraps: u64,
}

impl RtcClock {
    /// Starts the counter. The compare event is enabled as an interrupt source in the RTC but
    /// not in the NVIC: with `SEVONPEND` set it only wakes the core from `WFE`.
    pub fn new(mut rtc: Rtc<RTC0>) -> Self {
        rtc.enable_counter();
        rtc.enable_interrupt(RtcInterrupt::Compare0, None);
        Self {
            rtc,
            last: 0,
            wraps: 0,
        }
    }

    /// Sleeps the core (WFE) for about `ms` milliseconds, until RTC compare 0 fires.
    /// Requires `SCB.SEVONPEND`.
    pub fn sleep_ms(&mut self, ms: u32) {
        // The RTC needs CC at least two ticks ahead of COUNTER to raise the event.
        let ticks = (u64::from(ms) * 32_768 / 1000).max(2) as u32;
        let target = (self.rtc.get_counter() + ticks) & 0x00FF_FFFF;
        self.rtc.reset_event(RtcInterrupt::Compare0);
        if self
            .rtc
            .set_compare(RtcCompareReg::Compare0, target)
            .is_err()
        {
            return;
        }
        while !self.rtc.is_event_triggered(RtcInterrupt::Compare0) {
            cortex_m::asm::wfe();
        }
        self.rtc.reset_event(RtcInterrupt::Compare0);
        cortex_m::peripheral::NVIC::unpend(nrf52840_hal::pac::Interrupt::RTC0);
    }
}

impl MonotonicClock for RtcClock {
    fn now_ms(&mut self) -> Millis {
        let counter = self.rtc.get_counter();
        if counter < self.last {
            self.wraps += 1;
        }
        self.last = counter;
        let ticks = (self.wraps << 24) | u64::from(counter);
        ticks * 1000 / 32_768
    }
}

/// The supply voltage measured by the SAADC (internal 0.6 V reference, gain 1/6: 3.6 V full
/// scale at 12 bits). The pendant runs straight from its coin cell, so VDD is the battery.
pub struct VddMonitor {
    pub saadc: Saadc,
}

#[derive(Debug)]
pub struct AdcError;

impl BatteryMonitor for VddMonitor {
    type Error = AdcError;

    fn read_battery_mv(&mut self) -> Result<u16, AdcError> {
        let raw = self
            .saadc
            .read_channel(&mut InternalVdd)
            .map_err(|_| AdcError)?;
        Ok((i32::from(raw.max(0)) * 3_600 / 4_096) as u16)
    }
}

/// The `boot_id` in the reserved last flash page: a magic word, then the id.
pub struct FlashBootId {
    pub nvmc: Nvmc<NVMC>,
}

const MAGIC: u32 = 0x5649_4731; // "VIG1"

impl BootIdStore for FlashBootId {
    type Error = nrf52840_hal::nvmc::NvmcError;

    fn load_boot_id(&mut self) -> Result<Option<u32>, Self::Error> {
        let mut raw = [0u8; 8];
        self.nvmc.read(0, &mut raw)?;
        let magic = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let id = u32::from_le_bytes([raw[4], raw[5], raw[6], raw[7]]);
        Ok((magic == MAGIC).then_some(id))
    }

    fn store_boot_id(&mut self, boot_id: u32) -> Result<(), Self::Error> {
        let mut raw = [0u8; 8];
        raw[..4].copy_from_slice(&MAGIC.to_le_bytes());
        raw[4..].copy_from_slice(&boot_id.to_le_bytes());
        self.nvmc.erase(0, 4_096)?;
        self.nvmc.write(0, &raw)
    }
}

/// The serial link to the radio modem (transparent TCP mode to the gateway's broker).
pub struct ModemLink {
    pub tx: UarteTx<UARTE0>,
    pub rx: UarteRx<UARTE0>,
}

impl embedded_io::ErrorType for ModemLink {
    type Error = uarte::Error;
}

impl embedded_io::Read for ModemLink {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, uarte::Error> {
        self.rx.read(buf)
    }
}

impl embedded_io::ReadReady for ModemLink {
    fn read_ready(&mut self) -> Result<bool, uarte::Error> {
        self.rx.read_ready()
    }
}

impl embedded_io::Write for ModemLink {
    fn write(&mut self, buf: &[u8]) -> Result<usize, uarte::Error> {
        self.tx.write(buf)
    }

    fn flush(&mut self) -> Result<(), uarte::Error> {
        self.tx.flush()
    }
}
