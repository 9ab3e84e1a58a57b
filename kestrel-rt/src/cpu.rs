//! Cache hints. Prefetching is the runtime's second audited `unsafe` block
//! (ARCHITECTURE.md, "No `unsafe`"): `_mm_prefetch` never dereferences its pointer
//! (a prefetch of any address, mapped or not, has no effect but on the cache), so it is
//! sound for every pointer; it is `unsafe` to call only because of its
//! `#[target_feature(enable = "sse")]`, which the x86-64 baseline guarantees.

/// Asks for the cache line holding `value` to be loaded, without waiting for it.
#[inline(always)]
pub fn prefetch<T: ?Sized>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: SSE is in the x86-64 baseline, and a prefetch does not access memory.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((value as *const T).cast::<i8>())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}
