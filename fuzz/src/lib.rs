//! The logic of the gateway's fuzz targets, one module per target (see `docs/fuzzing.md`).
//!
//! Each `fuzz_targets/NAME.rs` is a one-line libFuzzer entry point calling
//! [`targets`]`::NAME::run`; keeping the logic here lets `tests/replay.rs` run every committed
//! corpus file and every crash regression through the same code under plain `cargo test`.
//!
//! Every target checks more than "no panic" where the crate offers an inverse: AMF and RTMP
//! chunks round-trip through encoder and decoder, incremental parsing agrees with whole-buffer
//! parsing, serializers' output parses back to the same value.
//!
//! An allocation cap ([`CappedAlloc`]) turns any single allocation above [`MAX_ALLOCATION`] into
//! an abort, so a length taken from the input and allocated before it is checked is a crash
//! here even without AddressSanitizer.

pub mod arb;
pub mod targets;

use std::alloc::{GlobalAlloc, Layout, System};

/// The largest single allocation a target may make. Every protocol limit in the gateway is well
/// below it (the largest is the 16 MiB RTMP message cap a test never reaches with 64 KiB inputs).
pub const MAX_ALLOCATION: usize = 64 << 20;

/// The system allocator, refusing (aborting on) any one allocation above [`MAX_ALLOCATION`].
pub struct CappedAlloc;

fn check(size: usize) {
    if size > MAX_ALLOCATION {
        // Nothing here may allocate: a static message to the unbuffered stderr, then abort.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"fuzz: a single allocation above MAX_ALLOCATION\n",
        );
        std::process::abort();
    }
}

// SAFETY: every method forwards to `System` after the size check.
unsafe impl GlobalAlloc for CappedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc;
