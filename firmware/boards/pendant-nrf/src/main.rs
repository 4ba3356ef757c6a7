//! Vigil call pendant on an nRF52840.
//!
//! Wiring (nRF52840-DK pins, so the firmware runs on the DK as well as on the pendant PCB):
//!
//! | function | pin | notes |
//! |---|---|---|
//! | call button | P0.11 | to ground, internal pull-up |
//! | LED | P0.13 | active low |
//! | buzzer | P0.14 | driver transistor, active high |
//! | LIS3DH SCL / SDA | P0.27 / P0.26 | TWIM0 at 400 kHz, SA0 high (0x19) |
//! | modem TXD / RXD | P0.06 / P0.08 | UARTE0 at 115 200 Bd, transparent TCP to the gateway |
//! | modem RTS / CTS | P0.05 / P0.07 | hardware flow control (the modem waits while we are busy) |
//! | modem carrier detect | P0.15 | low while the modem's TCP link is up |
//!
//! The main loop runs every 10 ms under a 2 s watchdog: it samples the button, reads the
//! accelerometer at 50 Hz, advances the pendant and the MQTT client with the RTC's time, moves
//! bytes to and from the modem, and drives the LED and buzzer; between passes the core sleeps
//! (WFE until an RTC compare). Known limit: it wakes every 10 ms whatever happens; a longer
//! sleep woken by the button's GPIOTE and the LIS3DH data-ready pin would save more.
#![no_std]
#![no_main]

mod board;

use core::fmt::Write as _;

use cortex_m_rt::entry;
use embedded_hal::digital::{InputPin, OutputPin};
use nrf52840_hal::clocks::{Clocks, LfOscConfiguration};
use nrf52840_hal::gpio::{p0, Level};
use nrf52840_hal::nvmc::Nvmc;
use nrf52840_hal::pac;
use nrf52840_hal::rng::Rng;
use nrf52840_hal::rtc::Rtc;
use nrf52840_hal::saadc::{Saadc, SaadcConfig};
use nrf52840_hal::twim::{self, Twim};
use nrf52840_hal::uarte::{self, Baudrate, Parity, Uarte};
use nrf52840_hal::wdt::{count, Watchdog};
use vigil_firmware::frame::FrameStamper;
use vigil_firmware::hal::{next_boot_id, BatteryMonitor, MonotonicClock};
use vigil_firmware::link::service;
use vigil_firmware::lis3dh::{DataRate, FullScale, Lis3dh, ADDRESS_SA0_HIGH};
use vigil_firmware::mqtt::{MqttClient, MqttConfig, MqttEvent};
use vigil_firmware::pendant::{self, Pendant, PendantConfig};
use vigil_firmware::spool::SpoolError;
use vigil_protocol::{DeviceId, DownlinkBody, UplinkFrame};

use board::{FlashBootId, ModemLink, RtcClock, VddMonitor};

const LOOP_MS: u32 = 10;
const ACCEL_PERIOD_MS: u64 = 20;
const BATTERY_PERIOD_MS: u64 = 60_000;

extern "C" {
    static _boot_id_page: u8;
}

#[entry]
fn main() -> ! {
    let Some(p) = pac::Peripherals::take() else {
        halt()
    };
    let Some(mut core) = cortex_m::Peripherals::take() else {
        halt()
    };
    // Pending (but NVIC-disabled) interrupts wake the core from WFE: the RTC compare ends
    // each sleep between passes.
    core.SCB.set_sevonpend();
    let _clocks = Clocks::new(p.CLOCK)
        .enable_ext_hfosc()
        .set_lfclk_src_external(LfOscConfiguration::NoExternalNoBypass)
        .start_lfclk();

    let mut wdt = match Watchdog::try_new(p.WDT) {
        Ok(mut w) => {
            w.set_lfosc_ticks(2 * 32_768);
            w.activate::<count::One>()
        }
        // Already running after a watchdog reset: take it over as it is.
        Err(wdt) => match Watchdog::try_recover::<count::One>(wdt) {
            Ok(parts) => parts,
            Err(_) => halt(),
        },
    };

    let port0 = p0::Parts::new(p.P0);
    let mut button = port0.p0_11.into_pullup_input();
    let mut led = port0.p0_13.into_push_pull_output(Level::High);
    let mut buzzer = port0.p0_14.into_push_pull_output(Level::Low);
    let mut carrier = port0.p0_15.into_pullup_input();

    let twim = Twim::new(
        p.TWIM0,
        twim::Pins {
            scl: port0.p0_27.into_floating_input().degrade(),
            sda: port0.p0_26.into_floating_input().degrade(),
        },
        twim::Frequency::K400,
    );
    // Without a working accelerometer the pendant is still a call button: fall detection is
    // off and every heartbeat says so through the pendant's counters.
    let mut accel = Lis3dh::new(twim, ADDRESS_SA0_HIGH, DataRate::Hz50, FullScale::G8).ok();

    let uarte = Uarte::new(
        p.UARTE0,
        uarte::Pins {
            rxd: port0.p0_08.into_floating_input().degrade(),
            txd: port0.p0_06.into_push_pull_output(Level::High).degrade(),
            // Hardware flow control: the RX path holds one byte plus a small FIFO, and the loop
            // services it every 10 ms, so the modem must wait while RTS is high.
            cts: Some(port0.p0_07.into_floating_input().degrade()),
            rts: Some(port0.p0_05.into_push_pull_output(Level::High).degrade()),
        },
        Parity::EXCLUDED,
        Baudrate::BAUD115200,
    );
    let tx_buf = cortex_m::singleton!(: [u8; 64] = [0; 64]).unwrap_or_else(|| halt());
    let rx_buf = cortex_m::singleton!(: [u8; 1] = [0; 1]).unwrap_or_else(|| halt());
    let Ok((tx, rx)) = uarte.split(tx_buf, rx_buf) else {
        halt()
    };
    let mut modem = ModemLink { tx, rx };
    let mut link_open = false;

    let Ok(rtc) = Rtc::new(p.RTC0, 0) else { halt() };
    let mut clock = RtcClock::new(rtc);
    let mut battery = VddMonitor {
        saadc: Saadc::new(
            p.SAADC,
            SaadcConfig {
                reference: nrf52840_hal::saadc::Reference::INTERNAL,
                gain: nrf52840_hal::saadc::Gain::GAIN1_6,
                resolution: nrf52840_hal::saadc::Resolution::_12BIT,
                ..SaadcConfig::default()
            },
        ),
    };
    let mut rng = Rng::new(p.RNG);

    // SAFETY: `_boot_id_page` is the start of the 4 KiB BOOTID region in memory.x, which
    // nothing else is linked into; the slice is handed to the NVMC driver only.
    let page = unsafe {
        core::slice::from_raw_parts_mut(core::ptr::addr_of!(_boot_id_page) as *mut u8, 4_096)
    };
    let mut store = FlashBootId {
        nvmc: Nvmc::new(p.NVMC, page),
    };
    // A flash fault must not silence the pendant: fall back to a random boot_id in the upper
    // half, which no counted boot reaches, so (device, boot, seq) stays unique in practice.
    let boot_id = next_boot_id(&mut store).unwrap_or_else(|_| rng.random_u32() | 0x8000_0000);

    let mut id = heapless::String::<32>::new();
    let _ = write!(
        id,
        "pendant-{:08x}{:08x}",
        p.FICR.deviceid[1].read().bits(),
        p.FICR.deviceid[0].read().bits()
    );
    let Ok(device) = DeviceId::new(&id) else {
        halt()
    };

    let now = clock.now_ms();
    let client = cortex_m::singleton!(: MqttClient<8, { pendant::MAX_FRAME_BYTES }> =
        MqttClient::new(MqttConfig::default(), &device, boot_id, rng.random_u32(), now))
    .unwrap_or_else(|| halt());
    let pendant = cortex_m::singleton!(: Pendant = Pendant::new(
        PendantConfig::default(),
        FrameStamper::new(device.clone(), boot_id),
        now,
    ))
    .unwrap_or_else(|| halt());
    // An urgent frame the spool could not take yet (full of urgent frames); offered again
    // every loop, never dropped.
    let mut held: Option<UplinkFrame> = None;
    let mut next_accel = now;
    let mut next_battery = now;

    loop {
        wdt.handles.0.pet();
        let now = clock.now_ms();

        pendant.handle_button(button.is_low().unwrap_or(false), now);
        if now >= next_accel {
            next_accel = now + ACCEL_PERIOD_MS;
            if let Some(sample) = accel.as_mut().and_then(|a| a.read_mg().ok()) {
                pendant.handle_accel(sample, now);
            }
        }
        if now >= next_battery {
            next_battery = now + BATTERY_PERIOD_MS;
            if let Ok(mv) = battery.read_battery_mv() {
                // The modem does not report RSSI over the transparent link.
                pendant.handle_health(mv, i8::MIN);
            }
        }
        pendant.handle_timeout(now);

        if let Some(frame) = held.take() {
            if let Err(SpoolError::FullOfUrgent) = client.submit(&frame, now) {
                held = Some(frame);
            }
        }
        while held.is_none() {
            let Some(frame) = pendant.poll_frame() else {
                break;
            };
            if let Err(SpoolError::FullOfUrgent) = client.submit(&frame, now) {
                held = Some(frame);
            }
        }

        client.handle_timeout(now);
        while let Some(event) = client.poll_event() {
            match event {
                MqttEvent::OpenTransport => {
                    if carrier.is_low().unwrap_or(false) {
                        link_open = true;
                        client.handle_transport_open(now);
                    } else {
                        client.handle_transport_closed(now);
                    }
                }
                MqttEvent::CloseTransport => link_open = false,
                MqttEvent::Downlink(DownlinkBody::HelpComing(help)) => {
                    pendant.handle_help_coming(help, now);
                }
                MqttEvent::Downlink(DownlinkBody::Config(config)) => {
                    pendant.handle_config(&config, now);
                }
                MqttEvent::Downlink(DownlinkBody::Receipt(_))
                | MqttEvent::Connected
                | MqttEvent::Disconnected => {}
            }
        }
        if link_open {
            if carrier.is_high().unwrap_or(true) {
                link_open = false;
                client.handle_transport_closed(now);
            } else if service(client, &mut modem, now).is_err() {
                link_open = false;
            }
        }
        pendant.handle_link(client.is_up());

        let show = pendant.indication(now);
        let _ = if show.led {
            led.set_low()
        } else {
            led.set_high()
        };
        let _ = if show.buzzer {
            buzzer.set_high()
        } else {
            buzzer.set_low()
        };
        clock.sleep_ms(LOOP_MS);
    }
}

/// Stops in a state the watchdog resets from.
fn halt() -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The watchdog resets the board; the new boot gets a new boot_id.
    halt()
}
