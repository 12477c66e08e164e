//! The kernels against their definitions, on every instruction set this CPU runs.

use super::*;

/// A small deterministic pseudo-random sequence in [-1, 1] (no extra dependency).
pub(in crate::core::cnn) fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "at {i}: {x} vs {y}");
    }
}

#[test]
fn the_environment_lowers_the_instruction_set_never_raises_it() {
    assert_eq!(Isa::pick(None, &[Isa::Portable]), Isa::Portable);
    assert_eq!(Isa::pick(Some("portable"), &Isa::available()), Isa::Portable);
    #[cfg(target_arch = "x86_64")]
    {
        let all = [Isa::Portable, Isa::Avx2, Isa::Avx512];
        assert_eq!(Isa::pick(None, &all), Isa::Avx512);
        assert_eq!(Isa::pick(Some(""), &all), Isa::Avx512);
        assert_eq!(Isa::pick(Some(" AVX2 "), &all), Isa::Avx2);
        assert_eq!(Isa::pick(Some("sse9"), &all), Isa::Avx512);
        // A set this CPU lacks is not taken.
        assert_eq!(Isa::pick(Some("avx512"), &all[..2]), Isa::Avx2);
    }
    assert_eq!(*Isa::available().last().unwrap(), Isa::detect());
}

#[test]
fn gemm_matches_the_definition_on_every_isa_and_tile() {
    for &isa in &Isa::available() {
        for (rows, k, n_real) in [(1, 288, 1404), (2, 7, 16), (37, 16, 16), (50, 24, 28), (9, 64, 96)] {
            for gather in [false, true] {
                let np = padded(n_real);
                let (mr, _) = isa.gemm_tile(np, rows);
                let rr = rows.div_ceil(mr) * mr + ROW_SLACK;
                // Gathering reads every other value of a row, from the second on.
                let lda = 2 * k + 3;
                let cols: Vec<usize> = (0..k).map(|kk| if gather { 2 * kk + 1 } else { kk }).collect();
                let a = values(rr * lda, 1);
                let w = values(k * n_real, 2);
                let bias: Vec<f32> = (0..np).map(|c| if c < n_real { c as f32 * 0.01 } else { 0.0 }).collect();
                let slopes = values(np, 3);
                let res_c = padded(n_real / 2).min(np);
                let res = values(rr * res_c, 4);
                let b = Packed::new(isa, k, n_real, np, rows, |kk, c| w[kk * n_real + c]);
                let mut out = vec![f32::NAN; rr * np];
                gemm(
                    isa,
                    &mut Gemm {
                        a: &a,
                        lda,
                        rows,
                        cols: gather.then_some(&cols[..]),
                        b: &b,
                        bias: &bias,
                        act: Act::PRelu(&slopes),
                        residual: Some((&res, res_c, res_c)),
                        out: &mut out,
                        ldo: np,
                    },
                );
                let mut want = vec![0.0; rows * np];
                for r in 0..rows {
                    for c in 0..np {
                        let mut s = bias[c];
                        if c < n_real {
                            for kk in 0..k {
                                s += a[r * lda + cols[kk]] * w[kk * n_real + c];
                            }
                        }
                        if c < res_c {
                            s += res[r * res_c + c];
                        }
                        want[r * np + c] = s.max(0.0) + slopes[c] * s.min(0.0);
                    }
                }
                close(&out[..rows * np], &want);
            }
        }
    }
}

/// The definition, with Relu.
fn naive_dw(win: &Window, input: &[f32], weights: &[f32], bias: &[f32]) -> Vec<f32> {
    let Window { h, w, cp, k, stride, pad_top, pad_left, oh, ow } = *win;
    let mut out = vec![0.0; oh * ow * cp];
    for oy in 0..oh {
        for ox in 0..ow {
            for c in 0..cp {
                let mut s = bias[c];
                for i in 0..k {
                    for j in 0..k {
                        let iy = (oy * stride + i) as isize - pad_top as isize;
                        let ix = (ox * stride + j) as isize - pad_left as isize;
                        if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                            s += input[(iy as usize * w + ix as usize) * cp + c] * weights[(i * k + j) * cp + c];
                        }
                    }
                }
                out[(oy * ow + ox) * cp + c] = s.max(0.0);
            }
        }
    }
    out
}

#[test]
fn depthwise_matches_the_definition_with_strides_and_padding() {
    for &isa in &Isa::available() {
        // (h, w, cp, k, stride, pad_top, pad_left, pad_bottom, pad_right)
        for (h, w, cp, k, s, pt, pl, pb, pr) in [
            (9, 7, 16, 3, 1, 1, 1, 1, 1),
            (8, 8, 32, 3, 2, 0, 0, 1, 1),
            (11, 6, 48, 5, 1, 2, 2, 2, 2),
            (10, 10, 16, 5, 2, 1, 2, 2, 1),
        ] {
            let oh = (h + pt + pb - k) / s + 1;
            let ow = (w + pl + pr - k) / s + 1;
            let input = values(h * w * cp, 5);
            let weights = values(k * k * cp, 6);
            let bias = values(cp, 7);
            let mut out = vec![f32::NAN; oh * ow * cp];
            let win = Window { h, w, cp, k, stride: s, pad_top: pt, pad_left: pl, oh, ow };
            depthwise(
                isa,
                &mut Depthwise { input: &input, win, weights: &weights, bias: &bias, act: Act::Relu, out: &mut out },
            );
            close(&out, &naive_dw(&win, &input, &weights, &bias));
        }
    }
}

#[test]
fn max_pool_ignores_padding() {
    for &isa in &Isa::available() {
        let (h, w, cp) = (5, 5, 16);
        let input: Vec<f32> = values(h * w * cp, 8).iter().map(|v| v - 5.0).collect();
        let mut out = vec![0.0; 3 * 3 * cp];
        max_pool(
            isa,
            &mut MaxPool {
                input: &input,
                win: Window { h, w, cp, k: 2, stride: 2, pad_top: 0, pad_left: 0, oh: 3, ow: 3 },
                out: &mut out,
            },
        );
        for oy in 0..3 {
            for ox in 0..3 {
                for c in 0..cp {
                    let mut m = f32::NEG_INFINITY;
                    for y in oy * 2..(oy * 2 + 2).min(h) {
                        for x in ox * 2..(ox * 2 + 2).min(w) {
                            m = m.max(input[(y * w + x) * cp + c]);
                        }
                    }
                    assert_eq!(out[(oy * 3 + ox) * cp + c], m);
                }
            }
        }
    }
}

#[test]
fn place_puts_nchw_and_nhwc_maps_at_the_same_spot() {
    let (h, w, c) = (4, 5, 3);
    let nchw = values(c * h * w, 9);
    let cp = padded(c);
    let mut nhwc = vec![0.0; h * w * cp];
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                nhwc[(y * w + x) * cp + ch] = nchw[(ch * h + y) * w + x];
            }
        }
    }
    let (wp, cs, top, left) = (8, 4, 1, 2);
    let nhwc_out = Strides { c: 1, y: wp * cs, x: cs };
    let run = |input: &[f32], strides, out_strides: Strides| {
        let mut out = vec![0.0; (h + 3) * wp * cs];
        place(&mut Place {
            input,
            strides,
            h,
            w,
            c,
            out: &mut out,
            out_strides,
            origin: top * out_strides.y + left * out_strides.x,
        });
        out
    };
    let nchw_in = Strides { c: h * w, y: w, x: 1 };
    let a = run(&nchw, nchw_in, nhwc_out);
    let b = run(&nhwc, Strides { c: 1, y: w * cp, x: cp }, nhwc_out);
    assert_eq!(a, b);
    // Planar out: the same values, plane after plane.
    let planar = run(&nchw, nchw_in, Strides { c: (h + 3) * wp, y: wp, x: 1 });
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                let at = ((top + y) * wp + left + x) * cs + ch;
                assert_eq!(planar[ch * (h + 3) * wp + (top + y) * wp + left + x], a[at]);
            }
        }
    }
    for (i, v) in a.iter().enumerate() {
        let (ch, px) = (i % cs, i / cs);
        let (y, x) = ((px / wp) as isize - top as isize, (px % wp) as isize - left as isize);
        let want = if ch < c && (0..h as isize).contains(&y) && (0..w as isize).contains(&x) {
            nchw[(ch * h + y as usize) * w + x as usize]
        } else {
            0.0
        };
        assert_eq!(*v, want, "at {i}");
    }
}
