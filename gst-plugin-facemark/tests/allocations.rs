//! Once running, the face pipeline allocates nothing per frame: detection, mesh and irises
//! (fused engine), sampling, decoding and drawing all reuse their memory. Counted with a
//! global allocator that counts this thread's allocations (its own test binary, so other
//! tests' threads do not count).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::{Rgb, model_dir};
use gstfacemark::core::draw::{draw_face, flags};
use gstfacemark::core::image::{Frame, FrameMut, PixelLayout};
use gstfacemark::{Config, FaceMarker};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn frames_allocate_nothing_once_running() {
    let img = Rgb::load("astronaut.png");
    let layout = PixelLayout::Rgbx;
    let stride = img.width * 4;
    let src = img.to_layout(layout, stride);
    let mut buf = src.clone();
    for tracking in [false, true] {
        let mut m = FaceMarker::new(
            &model_dir(),
            Config {
                tracking,
                // The detector also runs now and then while tracking.
                detect_interval: 3,
                ..Config::default()
            },
        )
        .unwrap();
        assert!(m.runtimes().matches("fused").count() == 3, "{}", m.runtimes());
        // Each frame starts from the picture (drawing covers the face).
        let mut frame = |buf: &mut Vec<u8>| {
            buf.copy_from_slice(&src);
            let n = m.process(&Frame::new(buf, img.width, img.height, stride, layout)).unwrap().len();
            assert_eq!(n, 1);
            let mut canvas = FrameMut::new(buf, img.width, img.height, stride, layout);
            for f in m.faces() {
                draw_face(&mut canvas, f, flags::DEFAULT);
            }
        };
        for _ in 0..3 {
            frame(&mut buf);
        }
        let before = allocations();
        for _ in 0..10 {
            frame(&mut buf);
        }
        assert_eq!(allocations() - before, 0, "tracking={tracking}: allocations in 10 frames");
    }
}
