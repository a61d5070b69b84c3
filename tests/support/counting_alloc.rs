//! The counting global allocator behind every zero-allocation test (`tests/alloc_*.rs`,
//! `tests/rules_alloc.rs`, `tests/scored_alloc.rs`): each includes this file as a module, which
//! installs the allocator for that test binary. It counts only on a thread that switched
//! counting on (the harness allocates on its own threads) and forwards every call to `System`
//! unchanged. The `unsafe` here is what `GlobalAlloc` requires; nothing else is done with it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

struct CountingAllocator;

fn note_allocation() {
    // `try_with`: the thread-locals may already be gone while a thread shuts down.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// Every call is forwarded unchanged to the system allocator with the caller's own arguments;
// counting touches only const-initialised thread-locals, which never allocate.
// SAFETY: `System` upholds `GlobalAlloc`'s contract, and this type only forwards to it.
unsafe impl GlobalAlloc for CountingAllocator {
    // SAFETY: the caller upholds `alloc`'s contract (non-zero size); forwarded to `System`.
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract; passed on as is.
        unsafe { System.alloc(layout) }
    }

    // SAFETY: as for `alloc`.
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    // SAFETY: the caller passes a pointer from this allocator with its layout; forwarded.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: `ptr` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    // SAFETY: the caller passes a pointer from this allocator with its layout; forwarded.
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Runs `f` and returns its result with the allocations (alloc, alloc_zeroed, realloc) it
/// made on this thread.
pub fn counted<R>(f: impl FnOnce() -> R) -> (R, u64) {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    let r = f();
    COUNTING.with(|on| on.set(false));
    (r, ALLOCATIONS.with(Cell::get))
}
