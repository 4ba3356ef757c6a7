//! A counting global allocator for `vigil bench detection`: how many heap bytes the calling
//! thread holds, so the benchmark can measure the real allocation of detector state.
//!
//! Design: the count is thread-local (a `const`-initialised `Cell`, no destructor), so the
//! server's hot paths pay one thread-local add per allocation and never contend on a shared
//! counter. Memory freed by another thread than the one that allocated it makes the two
//! threads' counts drift; the benchmark builds and measures on one thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

pub struct CountingAllocator;

thread_local! {
    static HELD: Cell<i64> = const { Cell::new(0) };
}

fn add(bytes: i64) {
    // `try_with`: never fail an allocation because the thread is being torn down.
    let _ = HELD.try_with(|h| h.set(h.get().wrapping_add(bytes)));
}

// SAFETY: every call is forwarded unchanged to the system allocator; the bookkeeping around
// it never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            add(layout.size() as i64);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            add(layout.size() as i64);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (every allocation goes there).
        unsafe { System.dealloc(ptr, layout) };
        add(-(layout.size() as i64));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; `new_size` is the caller's, passed on.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            add(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

/// Heap bytes the calling thread allocated and has not freed (requested sizes, without the
/// allocator's own rounding and headers).
pub fn thread_heap_bytes() -> Option<i64> {
    HELD.try_with(Cell::get).ok()
}
