//! Tensor layouts: strides, copying a feature map into a zero-bordered buffer of other strides,
//! and the column offsets a convolution reads such a buffer in place with.

/// Where a tensor's values are: element (c, y, x) is at `c * c_stride + y * y_stride + x *
/// x_stride`. NHWC padded tensors have `c_stride == 1`; the model input is NCHW.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Strides {
    /// Between consecutive channels, in floats.
    pub c: usize,
    /// Between consecutive rows, in floats.
    pub y: usize,
    /// Between consecutive columns, in floats.
    pub x: usize,
}

/// Copies a feature map (any strides) into a buffer with other strides, its value (0, 0, 0)
/// at `origin`: the zero-bordered buffer a padded convolution reads in place. Only the map's
/// values are written: the borders keep the zeros they were made with.
pub struct Place<'a> {
    /// The feature map to copy.
    pub input: &'a [f32],
    /// Where the map's values are in `input`.
    pub strides: Strides,
    /// Rows of the map.
    pub h: usize,
    /// Columns of the map.
    pub w: usize,
    /// Channels copied.
    pub c: usize,
    /// The destination buffer.
    pub out: &'a mut [f32],
    /// Where the map's values go in `out`, from `origin`.
    pub out_strides: Strides,
    /// The index in `out` of value (0, 0, 0): past the top and left borders.
    pub origin: usize,
}

/// Does the copy `p` describes. Panics when either slice is too short for it.
pub fn place(p: &mut Place) {
    let (st, os) = (p.strides, p.out_strides);
    let last = |s: Strides| (p.c - 1) * s.c + (p.h - 1) * s.y + (p.w - 1) * s.x;
    assert!(p.input.len() > last(st));
    assert!(p.out.len() > p.origin + last(os));
    for y in 0..p.h {
        if st.c == 1 && os.c == 1 {
            for x in 0..p.w {
                let (i, o) = (y * st.y + x * st.x, p.origin + y * os.y + x * os.x);
                p.out[o..o + p.c].copy_from_slice(&p.input[i..i + p.c]);
            }
        } else if st.x == 1 && os.x == 1 {
            for c in 0..p.c {
                let (i, o) = (c * st.c + y * st.y, p.origin + c * os.c + y * os.y);
                p.out[o..o + p.w].copy_from_slice(&p.input[i..i + p.w]);
            }
        } else {
            for c in 0..p.c {
                for x in 0..p.w {
                    p.out[p.origin + c * os.c + y * os.y + x * os.x] = p.input[c * st.c + y * st.y + x * st.x];
                }
            }
        }
    }
}

/// The [`Gemm::cols`](super::Gemm::cols) of a `kh x kw` convolution over `c` channels reading a buffer with
/// `strides`: column (ky, kx, c) of an output pixel's row is that far from the window's
/// top-left value.
pub fn conv_cols(kh: usize, kw: usize, c: usize, strides: Strides) -> Vec<usize> {
    let mut cols = Vec::with_capacity(kh * kw * c);
    for ky in 0..kh {
        for kx in 0..kw {
            for ch in 0..c {
                cols.push(ky * strides.y + kx * strides.x + ch * strides.c);
            }
        }
    }
    cols
}
