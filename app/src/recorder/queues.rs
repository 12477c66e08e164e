//! The queues that start a thread per stage, and what whipcast does with those threads: their
//! names (`cargo bench --bench capacity` splits the CPU by them) and the marking threads' priority.

use gst::prelude::*;

/// The queues whose threads do one stage each: a recording's inputs, its muxing, the face
/// branch's decoding and marking.
pub(super) const INPUT_PREFIX: &str = "in-";
pub(super) const MUXING_QUEUE: &str = "to-mux";
pub(super) const DECODING_QUEUE: &str = "face-decode";
pub(super) const MARKING_QUEUE: &str = "face-mark";
/// How much nicer than the rest the marking threads are (conversion, facemark and its inference thread, which
/// inherits it, snapshots): when the cores are busy, ingest and recording run first and facemark
/// passes frames on with its last result instead of a recording falling behind. The decoding
/// thread keeps the default: a decoder that falls behind loses compressed frames to its leaky
/// queue, which damages the frames after them.
pub(super) const MARKING_NICE: i32 = 10;

/// Lowers the calling thread's priority by [`MARKING_NICE`] from whatever whipcast runs at (a
/// whipcast started with `nice` keeps its marking threads below its others).
pub(super) fn yield_to_recording(queue: &gst::Element) {
    // SAFETY: getpriority and setpriority take plain integers; on Linux `who` 0 is the calling
    // thread. getpriority's -1 is also a valid nice value: errno tells them apart.
    let failed = unsafe {
        *libc::__errno_location() = 0;
        let now = libc::getpriority(libc::PRIO_PROCESS, 0);
        (now == -1 && *libc::__errno_location() != 0)
            || libc::setpriority(libc::PRIO_PROCESS, 0, (now + MARKING_NICE).min(19)) != 0
    };
    if failed {
        let why = std::io::Error::last_os_error();
        gst::warning!(gst::CAT_DEFAULT, obj = queue, "cannot lower the marking thread's priority: {why}");
    }
}

/// A queue for live data: up to 3 s, and for `leaky` ones the oldest data goes when full.
pub(super) fn live_queue(leaky: bool) -> Result<gst::Element, String> {
    let queue = gst::ElementFactory::make("queue")
        .property("max-size-buffers", 0u32)
        .property("max-size-bytes", 0u32)
        .property("max-size-time", 3 * gst::ClockTime::SECOND.nseconds())
        .build()
        .map_err(|_| "queue is missing")?;
    if leaky {
        queue.set_property_from_str("leaky", "downstream");
    }
    Ok(queue)
}
