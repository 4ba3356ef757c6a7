//! Driver for the ST LIS3DH three-axis accelerometer over I2C.
//!
//! Register map from the LIS3DH datasheet (DocID17530): `WHO_AM_I` (0x0F) reads 0x33;
//! `CTRL_REG1` (0x20) holds the output data rate (bits 7..4) and the axis enables (bits 2..0);
//! `CTRL_REG4` (0x23) holds block data update (bit 7), full scale (bits 5..4) and
//! high-resolution mode (bit 3); `OUT_X_L` (0x28) starts six output bytes, read in one burst
//! with the auto-increment bit (0x80) set in the sub-address. In high-resolution mode the
//! outputs are 12-bit, left-justified in 16 bits.

use embedded_hal::i2c::I2c;

use crate::fall::AccelMg;

/// I2C address with SA0 tied low.
pub const ADDRESS_SA0_LOW: u8 = 0x18;
/// I2C address with SA0 tied high.
pub const ADDRESS_SA0_HIGH: u8 = 0x19;

const WHO_AM_I: u8 = 0x0F;
const WHO_AM_I_VALUE: u8 = 0x33;
const CTRL_REG1: u8 = 0x20;
const CTRL_REG4: u8 = 0x23;
const OUT_X_L: u8 = 0x28;
const AUTO_INCREMENT: u8 = 0x80;
const XYZ_ENABLE: u8 = 0b0000_0111;
const BLOCK_DATA_UPDATE: u8 = 0b1000_0000;
const HIGH_RESOLUTION: u8 = 0b0000_1000;

/// Output data rate (normal and high-resolution modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataRate {
    Hz1,
    Hz10,
    Hz25,
    Hz50,
    Hz100,
    Hz200,
    Hz400,
}

impl DataRate {
    fn bits(self) -> u8 {
        let odr = match self {
            Self::Hz1 => 1,
            Self::Hz10 => 2,
            Self::Hz25 => 3,
            Self::Hz50 => 4,
            Self::Hz100 => 5,
            Self::Hz200 => 6,
            Self::Hz400 => 7,
        };
        odr << 4
    }

    pub fn hz(self) -> u16 {
        match self {
            Self::Hz1 => 1,
            Self::Hz10 => 10,
            Self::Hz25 => 25,
            Self::Hz50 => 50,
            Self::Hz100 => 100,
            Self::Hz200 => 200,
            Self::Hz400 => 400,
        }
    }
}

/// Measurement range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullScale {
    G2,
    G4,
    G8,
    G16,
}

impl FullScale {
    fn bits(self) -> u8 {
        let fs = match self {
            Self::G2 => 0,
            Self::G4 => 1,
            Self::G8 => 2,
            Self::G16 => 3,
        };
        fs << 4
    }

    /// Milli-g per digit of the 12-bit high-resolution output (datasheet table 4).
    fn mg_per_digit(self) -> i32 {
        match self {
            Self::G2 => 1,
            Self::G4 => 2,
            Self::G8 => 4,
            Self::G16 => 12,
        }
    }
}

/// What went wrong talking to the accelerometer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Lis3dhError<E: core::fmt::Debug> {
    #[error("I2C bus error: {0:?}")]
    Bus(E),
    #[error("expected WHO_AM_I 0x33, found {found:#04x}: not a LIS3DH or wrong address")]
    WrongDevice { found: u8 },
}

/// A LIS3DH on an I2C bus; `destroy` gives the bus back.
#[derive(Debug)]
pub struct Lis3dh<I2C> {
    i2c: I2C,
    address: u8,
    rate: DataRate,
    scale: FullScale,
}

impl<I2C: I2c> Lis3dh<I2C> {
    /// Checks the chip identity and configures it: all axes on, high resolution, block data
    /// update (so the two bytes of one axis always come from the same sample).
    pub fn new(
        i2c: I2C,
        address: u8,
        rate: DataRate,
        scale: FullScale,
    ) -> Result<Self, Lis3dhError<I2C::Error>> {
        let mut dev = Self {
            i2c,
            address,
            rate,
            scale,
        };
        let found = dev.read_register(WHO_AM_I)?;
        if found != WHO_AM_I_VALUE {
            return Err(Lis3dhError::WrongDevice { found });
        }
        dev.set_data_rate(rate)?;
        dev.set_full_scale(scale)?;
        Ok(dev)
    }

    pub fn set_data_rate(&mut self, rate: DataRate) -> Result<(), Lis3dhError<I2C::Error>> {
        self.write_register(CTRL_REG1, rate.bits() | XYZ_ENABLE)?;
        self.rate = rate;
        Ok(())
    }

    pub fn set_full_scale(&mut self, scale: FullScale) -> Result<(), Lis3dhError<I2C::Error>> {
        self.write_register(
            CTRL_REG4,
            BLOCK_DATA_UPDATE | scale.bits() | HIGH_RESOLUTION,
        )?;
        self.scale = scale;
        Ok(())
    }

    pub fn data_rate(&self) -> DataRate {
        self.rate
    }

    /// Reads one sample of the three axes, in milli-g.
    pub fn read_mg(&mut self) -> Result<AccelMg, Lis3dhError<I2C::Error>> {
        let mut raw = [0u8; 6];
        self.i2c
            .write_read(self.address, &[OUT_X_L | AUTO_INCREMENT], &mut raw)
            .map_err(Lis3dhError::Bus)?;
        let per = self.scale.mg_per_digit();
        let axis = |lo: u8, hi: u8| -> i16 {
            let counts = i32::from(i16::from_le_bytes([lo, hi]) >> 4);
            // ±2048 counts × 12 mg stays inside i16 (±24 576).
            (counts * per) as i16
        };
        Ok(AccelMg {
            x: axis(raw[0], raw[1]),
            y: axis(raw[2], raw[3]),
            z: axis(raw[4], raw[5]),
        })
    }

    /// Releases the bus.
    pub fn destroy(self) -> I2C {
        self.i2c
    }

    fn read_register(&mut self, register: u8) -> Result<u8, Lis3dhError<I2C::Error>> {
        let mut value = [0u8];
        self.i2c
            .write_read(self.address, &[register], &mut value)
            .map_err(Lis3dhError::Bus)?;
        Ok(value[0])
    }

    fn write_register(&mut self, register: u8, value: u8) -> Result<(), Lis3dhError<I2C::Error>> {
        self.i2c
            .write(self.address, &[register, value])
            .map_err(Lis3dhError::Bus)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec;

    use embedded_hal::i2c::ErrorKind;
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction};

    use super::*;

    const A: u8 = ADDRESS_SA0_HIGH;

    fn init_transactions() -> vec::Vec<Transaction> {
        vec![
            Transaction::write_read(A, vec![0x0F], vec![0x33]),
            // 50 Hz (0b0100) and X, Y, Z enabled.
            Transaction::write(A, vec![0x20, 0x47]),
            // BDU, ±4 g (0b01), high resolution.
            Transaction::write(A, vec![0x23, 0x98]),
        ]
    }

    #[test]
    fn init_checks_identity_then_sets_rate_and_scale() {
        let mut i2c = Mock::new(&init_transactions());
        let dev = Lis3dh::new(i2c.clone(), A, DataRate::Hz50, FullScale::G4).unwrap();
        assert_eq!(dev.data_rate(), DataRate::Hz50);
        i2c.done();
    }

    #[test]
    fn a_wrong_identity_is_a_typed_error_and_nothing_is_written() {
        let mut i2c = Mock::new(&[Transaction::write_read(A, vec![0x0F], vec![0x44])]);
        let err = Lis3dh::new(i2c.clone(), A, DataRate::Hz50, FullScale::G2).unwrap_err();
        assert_eq!(err, Lis3dhError::WrongDevice { found: 0x44 });
        i2c.done();
    }

    #[test]
    fn reading_xyz_bursts_six_bytes_and_scales_to_milli_g() {
        let mut expected = init_transactions();
        // x = +1000 mg at ±4 g: 500 counts << 4 = 0x1F40; y = -250 mg: -125 << 4 = 0xF830;
        // z = 0.
        expected.push(Transaction::write_read(
            A,
            vec![0xA8],
            vec![0x40, 0x1F, 0x30, 0xF8, 0x00, 0x00],
        ));
        let mut i2c = Mock::new(&expected);
        let mut dev = Lis3dh::new(i2c.clone(), A, DataRate::Hz50, FullScale::G4).unwrap();
        let s = dev.read_mg().unwrap();
        assert_eq!(
            s,
            AccelMg {
                x: 1000,
                y: -250,
                z: 0
            }
        );
        dev.destroy();
        i2c.done();
    }

    #[test]
    fn changing_rate_and_scale_rewrites_the_control_registers() {
        let mut expected = init_transactions();
        expected.push(Transaction::write(A, vec![0x20, 0x57]));
        expected.push(Transaction::write(A, vec![0x23, 0xB8]));
        // Full-scale negative at ±16 g: -2048 counts × 12 mg.
        expected.push(Transaction::write_read(
            A,
            vec![0xA8],
            vec![0x00, 0x80, 0x00, 0x80, 0x00, 0x80],
        ));
        let mut i2c = Mock::new(&expected);
        let mut dev = Lis3dh::new(i2c.clone(), A, DataRate::Hz50, FullScale::G4).unwrap();
        dev.set_data_rate(DataRate::Hz100).unwrap();
        dev.set_full_scale(FullScale::G16).unwrap();
        let s = dev.read_mg().unwrap();
        assert_eq!(
            s,
            AccelMg {
                x: -24_576,
                y: -24_576,
                z: -24_576
            }
        );
        i2c.done();
    }

    #[test]
    fn a_bus_error_is_returned_not_a_panic() {
        let mut expected = init_transactions();
        expected
            .push(Transaction::write_read(A, vec![0xA8], vec![0; 6]).with_error(ErrorKind::Other));
        let mut i2c = Mock::new(&expected);
        let mut dev = Lis3dh::new(i2c.clone(), A, DataRate::Hz50, FullScale::G4).unwrap();
        assert_eq!(dev.read_mg(), Err(Lis3dhError::Bus(ErrorKind::Other)));
        i2c.done();
    }
}
