//! Vigil board logic: `#![no_std]`, no allocator, generic over `embedded-hal` 1.0.
#![no_std]
#![forbid(unsafe_code)]
pub mod fall;
