//! The element's shell against the GStreamer it runs on (viewers are in tests/tests/whep.rs).

use gst::prelude::*;

fn init() {
    let _ = gst::init();
    let _ = super::register_static();
}

#[test]
fn pads_are_requested_by_kind_and_released() {
    init();
    let sink = gst::ElementFactory::make("whipcastwhepsink").build().unwrap();
    let video = sink.request_pad_simple("video_%u").unwrap();
    let audio = sink.request_pad_simple("audio_%u").unwrap();
    assert_eq!((video.name().as_str(), audio.name().as_str()), ("video_0", "audio_0"));
    assert_eq!(sink.request_pad_simple("video_%u").unwrap().name(), "video_1");
    let taken = video.query_caps(None);
    for codec in ["video/x-h264", "video/x-vp8", "video/x-vp9", "video/x-av1", "video/x-h265"] {
        assert!(taken.iter().any(|s| s.name() == codec), "{codec} in {taken}");
    }
    sink.release_request_pad(&video);
    assert_eq!(sink.request_pad_simple("video_%u").unwrap().name(), "video_0", "a released name is free again");
}

#[test]
fn a_pad_added_handler_may_request_another_pad() {
    // The element lists its pads under a lock; adding a pad runs the application's handlers,
    // which must be free to request more.
    init();
    let sink = gst::ElementFactory::make("whipcastwhepsink").build().unwrap();
    sink.connect_pad_added(|sink, pad| {
        if pad.name() == "video_0" {
            sink.request_pad_simple("audio_%u").unwrap();
        }
    });
    let (done, finished) = std::sync::mpsc::channel();
    let requester = sink.clone();
    std::thread::spawn(move || done.send(requester.request_pad_simple("video_%u").map(|p| p.name())));
    let video = finished.recv_timeout(std::time::Duration::from_secs(10)).expect("request_pad returns");
    assert_eq!(video.unwrap(), "video_0");
    let names: Vec<_> = sink.pads().iter().map(|p| p.name().to_string()).collect();
    assert_eq!(names, ["video_0", "audio_0"]);
}

#[test]
fn bad_settings_fail_the_start_with_a_message() {
    init();
    for (property, value, says) in [
        ("stream", "a/b/c", "stream"),
        ("address", "localhost", "not an IP address"),
        ("port-range", "5-1", "port-range"),
    ] {
        let pipeline = gst::Pipeline::new();
        let sink = gst::ElementFactory::make("whipcastwhepsink").property("port", 0u32).build().unwrap();
        sink.set_property_from_str(property, value);
        pipeline.add(&sink).unwrap();
        assert!(pipeline.set_state(gst::State::Paused).is_err(), "{property}={value}");
        let bus = pipeline.bus().unwrap();
        let error = bus.timed_pop_filtered(gst::ClockTime::from_seconds(1), &[gst::MessageType::Error]).unwrap();
        let gst::MessageView::Error(error) = error.view() else { unreachable!() };
        assert!(error.error().to_string().contains(says), "{property}={value}: {}", error.error());
        pipeline.set_state(gst::State::Null).unwrap();
    }
}

#[test]
fn defaults_are_documented_in_the_properties() {
    init();
    let sink = gst::ElementFactory::make("whipcastwhepsink").build().unwrap();
    assert_eq!(sink.property::<u32>("max-viewers"), super::settings::DEFAULT_MAX_VIEWERS);
    assert_eq!(sink.property::<u32>("max-backlog"), super::settings::DEFAULT_MAX_BACKLOG);
    assert_eq!(sink.property::<String>("stream"), "live");
    let stats = sink.property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u64>("viewers-started").unwrap(), 0);
}

#[test]
fn the_end_of_the_stream_ends_the_pipeline_viewers_or_not() {
    init();
    let pipeline = gst::parse::launch(
        "videotestsrc num-buffers=10 ! video/x-raw,width=64,height=48 ! vp8enc deadline=1 ! whipcastwhepsink name=w address=127.0.0.1 port=0 \
         audiotestsrc num-buffers=5 ! opusenc ! w.audio_0",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let message = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Eos, gst::MessageType::Error])
        .expect("EOS within 10 s");
    assert_eq!(message.type_(), gst::MessageType::Eos, "{message:?}");
    pipeline.set_state(gst::State::Null).unwrap();
}
