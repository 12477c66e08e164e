//! The instruction set the kernels run with: detected, lowered by `FACEMARK_ISA`, and the
//! GEMM tile each one uses.

use super::CHANNEL_ALIGN;

/// The instruction set the kernels run with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512F, 16 floats a vector.
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// AVX2 with FMA, 8 floats a vector.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// Plain Rust, for any CPU (and the reference the vector kernels are tested against).
    Portable,
}

impl Isa {
    /// The best this CPU has.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }

    /// The environment variable that lowers [`Isa::chosen`]: `avx2` or `portable`.
    pub const ENV: &'static str = "FACEMARK_ISA";

    /// What the engine runs with: [`Isa::detect`], or the lower instruction set named by
    /// [`Isa::ENV`] (to measure on an AVX-512 machine what AVX2 machines run).
    pub fn chosen() -> Isa {
        Isa::pick(std::env::var(Isa::ENV).ok().as_deref(), &Isa::available())
    }

    /// The set `requested` names when `available` has it, else the best available.
    pub fn pick(requested: Option<&str>, available: &[Isa]) -> Isa {
        let best = *available.last().unwrap_or(&Isa::Portable);
        let Some(requested) = requested.map(str::trim).filter(|r| !r.is_empty()) else {
            return best;
        };
        available.iter().copied().find(|isa| isa.name().eq_ignore_ascii_case(requested)).unwrap_or(best)
    }

    /// Its name as in [`Isa::ENV`] (lower case).
    pub fn name(self) -> &'static str {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => "avx512",
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => "avx2",
            Isa::Portable => "portable",
        }
    }

    /// Every instruction set this CPU can run (for tests that compare them).
    pub fn available() -> Vec<Isa> {
        match Isa::detect() {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => vec![Isa::Portable, Isa::Avx2, Isa::Avx512],
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => vec![Isa::Portable, Isa::Avx2],
            Isa::Portable => vec![Isa::Portable],
        }
    }

    /// The GEMM tile: (rows, output channels) computed at once, for `n` (padded) output channels
    /// and `rows` rows. The weights are packed in blocks of the second number.
    pub fn gemm_tile(self, n: usize, rows: usize) -> (usize, usize) {
        debug_assert!(n.is_multiple_of(CHANNEL_ALIGN));
        let wide = n.is_multiple_of(32);
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => match (rows < 4, wide) {
                (true, true) => (1, 32),
                (true, false) => (1, 16),
                (false, true) => (8, 32),
                (false, false) => (12, 16),
            },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => (if rows < 4 { 1 } else { 6 }, 16),
            Isa::Portable => (if rows < 4 { 1 } else { 4 }, 16),
        }
    }
}
