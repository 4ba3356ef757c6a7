//! Measures how much stack the self-test really uses: the free RAM between the statics and
//! the stack pointer is painted at start, and the lowest overwritten word is found at the end.

use core::ptr::{addr_of, read_volatile, write_volatile};

const PAINT: u32 = 0xA5A5_A5A5;
/// Left unpainted below the stack pointer at the moment of painting.
const MARGIN: usize = 64;

extern "C" {
    static __sheap: u32;
    static _stack_start: u32;
    static _stack_reserve: u32;
}

fn bottom() -> usize {
    addr_of!(__sheap) as usize
}

fn top() -> usize {
    addr_of!(_stack_start) as usize
}

/// Bytes of stack reserved in `memory.x`.
pub fn reserved() -> usize {
    // `_stack_reserve` is an absolute symbol: its "address" is its value.
    addr_of!(_stack_reserve) as usize
}

/// Fills the unused RAM below the current stack pointer with a pattern.
pub fn paint() {
    let sp = cortex_m::register::msp::read() as usize;
    let mut p = bottom();
    while p + 4 <= sp - MARGIN {
        // SAFETY: the words between the end of the statics and the stack pointer are not in
        // use by anything yet.
        unsafe { write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
}

/// The deepest the stack has reached since [`paint`], in bytes.
pub fn high_water() -> usize {
    let mut p = bottom();
    // SAFETY: reads of RAM between the statics and the stack top.
    while p < top() && unsafe { read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    top() - p
}
