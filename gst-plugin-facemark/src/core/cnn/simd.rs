//! The vector operations the kernels are written in, for each instruction set the engine runs on.
//!
//! Kernels are generic over [`Simd`] and instantiated inside `#[target_feature]` functions
//! (see `kernels/`), so each gets compiled for AVX-512, AVX2+FMA, or portable code picked at
//! run time. Every method is `#[inline(always)]`: once inlined into a function with the target
//! features, the intrinsics inline too and the vectors stay in registers.

/// A vector of `W` f32 lanes.
pub trait Simd: Copy {
    /// Lanes per vector; divides [`super::kernels::CHANNEL_ALIGN`].
    const W: usize;
    /// The vector type: a register, or an array for [`Portable`].
    type V: Copy;

    /// All lanes 0.
    fn zero() -> Self::V;
    /// All lanes `x`.
    fn splat(x: f32) -> Self::V;
    /// `W` floats from `p` (no alignment needed).
    ///
    /// # Safety
    /// `p..p + W` must be readable.
    unsafe fn load(p: *const f32) -> Self::V;
    /// Writes the `W` lanes of `v` to `p` (no alignment needed).
    ///
    /// # Safety
    /// `p..p + W` must be writable.
    unsafe fn store(p: *mut f32, v: Self::V);
    /// `a * b + c` (fused where the instruction set has it).
    fn mul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `a + b`, lane by lane.
    fn add(a: Self::V, b: Self::V) -> Self::V;
    /// The larger of `a` and `b`, lane by lane.
    fn max(a: Self::V, b: Self::V) -> Self::V;
    /// The smaller of `a` and `b`, lane by lane.
    fn min(a: Self::V, b: Self::V) -> Self::V;
}

/// Plain Rust on 8-lane arrays: any CPU; the compiler vectorizes what it can.
#[derive(Clone, Copy)]
pub struct Portable;

impl Simd for Portable {
    const W: usize = 8;
    type V = [f32; 8];

    #[inline(always)]
    fn zero() -> Self::V {
        [0.0; 8]
    }
    #[inline(always)]
    fn splat(x: f32) -> Self::V {
        [x; 8]
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self::V {
        // SAFETY: the caller guarantees 8 readable floats.
        unsafe { std::ptr::read_unaligned(p as *const [f32; 8]) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: Self::V) {
        // SAFETY: the caller guarantees 8 writable floats.
        unsafe { std::ptr::write_unaligned(p as *mut [f32; 8], v) }
    }
    #[inline(always)]
    fn mul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        std::array::from_fn(|i| a[i] * b[i] + c[i])
    }
    #[inline(always)]
    fn add(a: Self::V, b: Self::V) -> Self::V {
        std::array::from_fn(|i| a[i] + b[i])
    }
    #[inline(always)]
    fn max(a: Self::V, b: Self::V) -> Self::V {
        std::array::from_fn(|i| a[i].max(b[i]))
    }
    #[inline(always)]
    fn min(a: Self::V, b: Self::V) -> Self::V {
        std::array::from_fn(|i| a[i].min(b[i]))
    }
}

#[cfg(target_arch = "x86_64")]
pub use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Simd;
    use std::arch::x86_64::*;

    /// AVX2 + FMA, 8 lanes. Only used inside functions compiled with those features.
    #[derive(Clone, Copy)]
    pub struct Avx2;

    // SAFETY (all methods): the kernels using `Avx2` are only called after run-time detection
    // of AVX2 and FMA, from functions compiled with those features.
    impl Simd for Avx2 {
        const W: usize = 8;
        type V = __m256;

        #[inline(always)]
        fn zero() -> Self::V {
            unsafe { _mm256_setzero_ps() }
        }
        #[inline(always)]
        fn splat(x: f32) -> Self::V {
            unsafe { _mm256_set1_ps(x) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self::V {
            unsafe { _mm256_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: Self::V) {
            unsafe { _mm256_storeu_ps(p, v) }
        }
        #[inline(always)]
        fn mul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
            unsafe { _mm256_fmadd_ps(a, b, c) }
        }
        #[inline(always)]
        fn add(a: Self::V, b: Self::V) -> Self::V {
            unsafe { _mm256_add_ps(a, b) }
        }
        #[inline(always)]
        fn max(a: Self::V, b: Self::V) -> Self::V {
            unsafe { _mm256_max_ps(a, b) }
        }
        #[inline(always)]
        fn min(a: Self::V, b: Self::V) -> Self::V {
            unsafe { _mm256_min_ps(a, b) }
        }
    }

    /// AVX-512F, 16 lanes. Only used inside functions compiled with that feature.
    #[derive(Clone, Copy)]
    pub struct Avx512;

    // SAFETY (all methods): as for Avx2, with AVX-512F detected.
    impl Simd for Avx512 {
        const W: usize = 16;
        type V = __m512;

        #[inline(always)]
        fn zero() -> Self::V {
            unsafe { _mm512_setzero_ps() }
        }
        #[inline(always)]
        fn splat(x: f32) -> Self::V {
            unsafe { _mm512_set1_ps(x) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self::V {
            unsafe { _mm512_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: Self::V) {
            unsafe { _mm512_storeu_ps(p, v) }
        }
        #[inline(always)]
        fn mul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
            unsafe { _mm512_fmadd_ps(a, b, c) }
        }
        #[inline(always)]
        fn add(a: Self::V, b: Self::V) -> Self::V {
            unsafe { _mm512_add_ps(a, b) }
        }
        #[inline(always)]
        fn max(a: Self::V, b: Self::V) -> Self::V {
            unsafe { _mm512_max_ps(a, b) }
        }
        #[inline(always)]
        fn min(a: Self::V, b: Self::V) -> Self::V {
            unsafe { _mm512_min_ps(a, b) }
        }
    }
}
