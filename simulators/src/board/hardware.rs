//! Simulated hardware behind the traits the firmware is written against: a LIS3DH that
//! answers I2C transactions at register level, an input pin, a battery, and the flash page
//! that keeps the `boot_id`. The board glue sets what the hardware "feels" (the current
//! acceleration, the pin level, the battery voltage); the firmware reads it through its own
//! drivers, exactly as on a board.

use std::sync::{Arc, Mutex};

use embedded_hal::digital::{ErrorType as PinErrorType, InputPin};
use embedded_hal::i2c::{
    ErrorKind, ErrorType as I2cErrorType, I2c, NoAcknowledgeSource, Operation,
};
use vigil_firmware::fall::AccelMg;
use vigil_firmware::hal::{BatteryMonitor, BootIdStore};

const WHO_AM_I: u8 = 0x0F;
const CTRL_REG1: u8 = 0x20;
const CTRL_REG4: u8 = 0x23;
const OUT_X_L: u8 = 0x28;
const AUTO_INCREMENT: u8 = 0x80;

/// The accelerometer's register file and the acceleration it currently senses.
#[derive(Debug, Clone)]
struct Lis3dhChip {
    address: u8,
    registers: [u8; 0x40],
    /// Register the next read starts at (the sub-address of the last write).
    pointer: u8,
    sensed: AccelMg,
    reads: u64,
}

/// A LIS3DH on a simulated I2C bus. Clones share the chip: the board glue keeps one to set
/// what the chip senses ([`Self::sense`]), the firmware's driver owns the other as its bus.
#[derive(Debug, Clone)]
pub struct SimLis3dh {
    chip: Arc<Mutex<Lis3dhChip>>,
}

impl SimLis3dh {
    /// A chip answering at `address` (0x18 or 0x19), at rest, reading 0 g until told.
    pub fn new(address: u8) -> Self {
        let mut registers = [0u8; 0x40];
        registers[usize::from(WHO_AM_I)] = 0x33;
        // Power-on defaults of the datasheet: 0x07 in CTRL_REG1 (power-down, axes on).
        registers[usize::from(CTRL_REG1)] = 0x07;
        Self {
            chip: Arc::new(Mutex::new(Lis3dhChip {
                address,
                registers,
                pointer: 0,
                sensed: AccelMg::new(0, 0, 0),
                reads: 0,
            })),
        }
    }

    /// What the chip senses from now on, in milli-g.
    pub fn sense(&self, sample: AccelMg) {
        if let Ok(mut c) = self.chip.lock() {
            c.sensed = sample;
        }
    }

    /// Output-register bursts read so far.
    pub fn samples_read(&self) -> u64 {
        self.chip.lock().map_or(0, |c| c.reads)
    }
}

impl Lis3dhChip {
    /// Milli-g per digit of the 12-bit output at the full scale set in CTRL_REG4.
    fn mg_per_digit(&self) -> i32 {
        match (self.registers[usize::from(CTRL_REG4)] >> 4) & 0b11 {
            0 => 1,
            1 => 2,
            2 => 4,
            _ => 12,
        }
    }

    /// The output registers for the sensed acceleration: 12-bit, left-justified, saturated
    /// at the full scale like the real converter.
    fn load_outputs(&mut self) {
        let per = self.mg_per_digit();
        let s = self.sensed;
        for (i, mg) in [s.x, s.y, s.z].into_iter().enumerate() {
            let counts = (i32::from(mg) / per).clamp(-2048, 2047);
            let raw = ((counts << 4) as i16).to_le_bytes();
            let base = usize::from(OUT_X_L) + 2 * i;
            self.registers[base] = raw[0];
            self.registers[base + 1] = raw[1];
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        let Some((&sub, data)) = bytes.split_first() else {
            return;
        };
        let increment = sub & AUTO_INCREMENT != 0;
        let mut reg = sub & !AUTO_INCREMENT;
        self.pointer = sub;
        for &b in data {
            // Only the control registers are writable; identity and outputs are read-only.
            if (CTRL_REG1..OUT_X_L).contains(&reg) {
                self.registers[usize::from(reg)] = b;
            }
            if !increment {
                break;
            }
            reg = reg.wrapping_add(1) & 0x3F;
        }
    }

    fn read(&mut self, buf: &mut [u8]) {
        let increment = self.pointer & AUTO_INCREMENT != 0;
        let mut reg = self.pointer & !AUTO_INCREMENT & 0x3F;
        if reg == OUT_X_L {
            self.load_outputs();
            self.reads += 1;
        }
        for b in buf.iter_mut() {
            *b = self.registers[usize::from(reg)];
            if increment {
                reg = reg.wrapping_add(1) & 0x3F;
            }
        }
    }
}

impl I2cErrorType for SimLis3dh {
    type Error = ErrorKind;
}

impl I2c for SimLis3dh {
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), ErrorKind> {
        let mut chip = self.chip.lock().map_err(|_| ErrorKind::Bus)?;
        if address != chip.address {
            return Err(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address));
        }
        for op in operations {
            match op {
                Operation::Write(bytes) => chip.write(bytes),
                Operation::Read(buf) => chip.read(buf),
            }
        }
        Ok(())
    }
}

/// A digital input whose level the simulation sets (a reed contact, a button).
#[derive(Debug, Clone, Copy, Default)]
pub struct SimPin {
    high: bool,
}

impl SimPin {
    pub fn set(&mut self, high: bool) {
        self.high = high;
    }
}

impl PinErrorType for SimPin {
    type Error = core::convert::Infallible;
}

impl InputPin for SimPin {
    fn is_high(&mut self) -> Result<bool, Self::Error> {
        Ok(self.high)
    }
    fn is_low(&mut self) -> Result<bool, Self::Error> {
        Ok(!self.high)
    }
}

/// A battery whose voltage the simulation sets (full, or draining through an incident).
#[derive(Debug, Clone, Copy)]
pub struct SimBattery {
    pub mv: u16,
}

impl BatteryMonitor for SimBattery {
    type Error = core::convert::Infallible;
    fn read_battery_mv(&mut self) -> Result<u16, Self::Error> {
        Ok(self.mv)
    }
}

/// The flash page holding the `boot_id`; survives power cycles of the simulated board.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimBootStore {
    stored: Option<u32>,
}

impl SimBootStore {
    /// A flash page that holds `boot_id` from an earlier life of the board.
    pub fn with_last(boot_id: u32) -> Self {
        Self {
            stored: Some(boot_id),
        }
    }
}

impl BootIdStore for SimBootStore {
    type Error = core::convert::Infallible;
    fn load_boot_id(&mut self) -> Result<Option<u32>, Self::Error> {
        Ok(self.stored)
    }
    fn store_boot_id(&mut self, boot_id: u32) -> Result<(), Self::Error> {
        self.stored = Some(boot_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use vigil_firmware::lis3dh::{DataRate, FullScale, Lis3dh, ADDRESS_SA0_HIGH};

    use super::*;

    #[test]
    fn the_firmware_driver_identifies_configures_and_reads_the_simulated_chip() {
        let chip = SimLis3dh::new(ADDRESS_SA0_HIGH);
        let mut dev = Lis3dh::new(
            chip.clone(),
            ADDRESS_SA0_HIGH,
            DataRate::Hz50,
            FullScale::G4,
        )
        .expect("the simulated chip answers WHO_AM_I 0x33");
        chip.sense(AccelMg::new(1000, -250, 3));
        // ±4 g: 2 mg per digit, so 3 mg reads as 2.
        assert_eq!(dev.read_mg().unwrap(), AccelMg::new(1000, -250, 2));
        dev.set_full_scale(FullScale::G16).unwrap();
        chip.sense(AccelMg::new(30_000, 0, -30_000));
        assert_eq!(
            dev.read_mg().unwrap(),
            AccelMg::new(24_564, 0, -24_576),
            "saturates at the ±16 g full scale"
        );
        assert_eq!(chip.samples_read(), 2);
    }

    #[test]
    fn a_driver_at_the_wrong_address_gets_no_acknowledge() {
        let chip = SimLis3dh::new(ADDRESS_SA0_HIGH);
        let err = Lis3dh::new(chip, 0x18, DataRate::Hz50, FullScale::G4).unwrap_err();
        assert!(matches!(
            err,
            vigil_firmware::lis3dh::Lis3dhError::Bus(ErrorKind::NoAcknowledge(_))
        ));
    }
}
