//! What the WHIP HTTP tests share: a pipeline of whipcastsrc elements on one port,
//! and the requests and checks they make of it.

use gst::prelude::*;
use whipcast_tests::*;

pub struct Server {
    pub pipeline: gst::Pipeline,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// A pipeline with one whipcastsrc per stream on one port; pads go to fakesinks.
pub fn serve(streams: &[&str], properties: &[(&str, &str)]) -> Server {
    serve_with(streams, properties, |_, _| {})
}

/// [`serve`], with `on_pad` called from each pad-added handler before the pad is linked.
pub fn serve_with(
    streams: &[&str],
    properties: &[(&str, &str)],
    on_pad: impl Fn(&gst::Element, &gst::Pad) + Clone + Send + Sync + 'static,
) -> Server {
    init();
    let port = free_port();
    let pipeline = gst::Pipeline::new();
    for stream in streams {
        let src = gst::ElementFactory::make("whipcastsrc")
            .property("address", "127.0.0.1")
            .property("port", u32::from(port))
            .property("stream", *stream)
            .build()
            .unwrap();
        for (name, value) in properties {
            src.set_property_from_str(name, value);
        }
        let (weak, on_pad) = (pipeline.downgrade(), on_pad.clone());
        src.connect_pad_added(move |src, pad| {
            on_pad(src, pad);
            let Some(pipeline) = weak.upgrade() else { return };
            let sink = gst::ElementFactory::make("fakesink").property("async", false).build().unwrap();
            pipeline.add(&sink).unwrap();
            sink.sync_state_with_parent().unwrap();
            pad.link(&sink.static_pad("sink").unwrap()).unwrap();
        });
        pipeline.add(&src).unwrap();
    }
    pipeline.set_state(gst::State::Playing).expect("whipcastsrc starts");
    Server { pipeline, port }
}

pub fn post(server: &Server, path: &str, headers: &[(&str, &str)], body: &str) -> HttpResponse {
    let mut all = vec![("Content-Type", "application/sdp")];
    all.extend_from_slice(headers);
    http(server.port, "POST", path, &all, body.as_bytes())
}

pub fn assert_error(response: &HttpResponse, status: u16) {
    assert_eq!(response.status, status, "{response:?}");
    assert!(response.header("content-type").unwrap().starts_with("text/plain"));
    let body = response.body.trim_end();
    assert!(!body.is_empty() && !body.contains('\n'), "one line saying why: {body:?}");
    assert_eq!(response.header("access-control-allow-origin"), Some("*"));
}

/// The session bins inside the (first) whipcastsrc of a pipeline.
pub fn session_bins(server: &Server) -> Vec<String> {
    let src = server
        .pipeline
        .children()
        .into_iter()
        .find(|e| e.factory().is_some_and(|f| f.name() == "whipcastsrc"))
        .and_downcast::<gst::Bin>()
        .unwrap();
    src.children().iter().map(|e| e.name().to_string()).filter(|n| n.starts_with("session-")).collect()
}
