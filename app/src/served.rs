//! What whipcast serves beside WHIP, on the same port: `/metrics` (Prometheus text) and
//! `/events/<stream>` (facemark's results as Server-Sent Events), each behind the publishers'
//! tokens (`/metrics` open with `--metrics-open`), and `/watch/<stream>`, a page that plays the
//! stream's WHEP views (open: the token is entered in the page).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use gstwhipsrc::server::{self, Content, Registration, Resource, TlsFiles};
use gstwhipsrc::whip::Rejection;

use crate::faces::{self, Frame};
use crate::metrics::{self, Snapshot};

/// The registrations on the server: served as long as this lives.
pub struct Served {
    _registrations: Vec<Registration>,
}

/// Where the server listens, and who may read what.
pub struct Access {
    pub address: SocketAddr,
    pub tls: Option<TlsFiles>,
    /// Each stream and its token (`None`: open).
    pub streams: Vec<(String, Option<String>)>,
    pub metrics_open: bool,
}

impl Served {
    pub fn start(
        access: &Access,
        events: Arc<EventsHub>,
        snapshot: impl Fn() -> Snapshot + Send + Sync + 'static,
    ) -> Result<Served, String> {
        let all_tokens: Vec<String> = access.streams.iter().filter_map(|(_, t)| t.clone()).collect();
        let metrics = Arc::new(Metrics {
            tokens: if access.metrics_open { Vec::new() } else { all_tokens },
            snapshot: Box::new(snapshot),
        });
        let registrations = vec![
            server::register_resource(access.address, access.tls.clone(), "/metrics", metrics)?,
            server::register_resource(access.address, access.tls.clone(), "/events", events)?,
            server::register_resource(
                access.address,
                access.tls.clone(),
                "/watch",
                Arc::new(WatchPage { streams: access.streams.iter().map(|(s, _)| s.clone()).collect() }),
            )?,
        ];
        Ok(Served { _registrations: registrations })
    }
}

struct Metrics {
    tokens: Vec<String>,
    snapshot: Box<dyn Fn() -> Snapshot + Send + Sync>,
}

impl Resource for Metrics {
    fn tokens(&self, rest: &str) -> Option<Vec<String>> {
        rest.is_empty().then(|| self.tokens.clone())
    }

    fn get(&self, _: &str) -> Result<Content, Rejection> {
        let body = metrics::render(&(self.snapshot)());
        Ok(Content::Whole { content_type: "text/plain; version=0.0.4; charset=utf-8", body: Bytes::from(body) })
    }
}

/// `/watch/<stream>`: the page playing the stream's views.
struct WatchPage {
    streams: Vec<String>,
}

impl Resource for WatchPage {
    fn tokens(&self, rest: &str) -> Option<Vec<String>> {
        let stream = rest.strip_prefix('/')?;
        self.streams.iter().any(|s| s == stream).then(Vec::new)
    }

    fn get(&self, rest: &str) -> Result<Content, Rejection> {
        let stream = rest.trim_start_matches('/');
        // Stream names are letters, digits, '-', '_' and '.' (whipcastsrc refuses others).
        let page = include_str!("watch-page.html").replace("<!--STREAM-->", stream);
        Ok(Content::Whole { content_type: "text/html; charset=utf-8", body: Bytes::from(page) })
    }
}

/// `/events/<stream>`: each analysed frame of the stream's session to every reader.
pub struct EventsHub {
    streams: Vec<(String, Option<String>)>,
    readers: Mutex<HashMap<String, Vec<tokio::sync::mpsc::Sender<Bytes>>>>,
}

impl EventsHub {
    pub fn new(streams: Vec<(String, Option<String>)>) -> EventsHub {
        EventsHub { streams, readers: Mutex::default() }
    }

    /// A frame of `stream` to its readers. A reader whose backlog is full (it does not keep up)
    /// is let go: its stream ends, which an EventSource answers by reconnecting.
    pub fn publish(&self, stream: &str, frame: &Frame) {
        let mut readers = self.readers.lock().unwrap();
        let Some(list) = readers.get_mut(stream) else { return };
        let event = Bytes::from(faces::event(frame));
        list.retain(|reader| reader.try_send(event.clone()).is_ok());
    }

    /// Readers of `stream` now.
    #[cfg(test)]
    fn readers(&self, stream: &str) -> usize {
        self.readers.lock().unwrap().get(stream).map_or(0, Vec::len)
    }
}

impl Resource for EventsHub {
    fn tokens(&self, rest: &str) -> Option<Vec<String>> {
        let stream = rest.strip_prefix('/')?;
        let (_, token) = self.streams.iter().find(|(s, _)| s == stream)?;
        Some(token.iter().cloned().collect())
    }

    fn get(&self, rest: &str) -> Result<Content, Rejection> {
        let stream = rest.trim_start_matches('/');
        let (sender, receiver) = tokio::sync::mpsc::channel(server::EVENTS_BACKLOG);
        // A comment first: the reader sees the stream open before the first frame.
        let _ = sender.try_send(Bytes::from_static(b": whipcast face events\n\n"));
        let mut readers = self.readers.lock().unwrap();
        let list = readers.entry(stream.to_owned()).or_default();
        // Readers gone while no frame came are forgotten here.
        list.retain(|reader| !reader.is_closed());
        list.push(sender);
        Ok(Content::Events(receiver))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(pts: u64) -> Frame {
        Frame { pts, width: 64, height: 48, faces: Vec::new() }
    }

    #[test]
    fn each_reader_of_a_stream_gets_its_frames_and_a_slow_one_is_let_go() {
        let hub = EventsHub::new(vec![("a".into(), Some("t".into())), ("b".into(), None)]);
        assert_eq!(hub.tokens("/a"), Some(vec!["t".to_string()]));
        assert_eq!(hub.tokens("/b"), Some(vec![]));
        assert_eq!(hub.tokens("/c"), None);
        assert_eq!(hub.tokens(""), None);
        let Ok(Content::Events(mut fast)) = hub.get("/a") else { panic!("events") };
        let Ok(Content::Events(slow)) = hub.get("/a") else { panic!("events") };
        let Ok(Content::Events(mut other)) = hub.get("/b") else { panic!("events") };
        assert_eq!(fast.try_recv().unwrap(), Bytes::from_static(b": whipcast face events\n\n"));
        hub.publish("a", &frame(7));
        assert_eq!(fast.try_recv().unwrap(), Bytes::from(faces::event(&frame(7))));
        assert_eq!(other.try_recv().unwrap(), Bytes::from_static(b": whipcast face events\n\n"));
        assert!(other.try_recv().is_err(), "another stream's frame");
        for pts in 0..server::EVENTS_BACKLOG as u64 {
            hub.publish("a", &frame(pts));
            while fast.try_recv().is_ok() {}
        }
        assert_eq!(hub.readers("a"), 1, "the reader that did not read is let go");
        drop(slow);
        drop(fast);
        hub.publish("a", &frame(1));
        assert_eq!(hub.readers("a"), 0, "a reader gone is forgotten");
    }

    #[test]
    fn the_watch_page_is_open_for_the_streams_served() {
        let page = WatchPage { streams: vec!["cam".into()] };
        assert_eq!(page.tokens("/cam"), Some(vec![]));
        assert_eq!(page.tokens("/other"), None);
        assert_eq!(page.tokens(""), None);
        let Ok(Content::Whole { body, .. }) = page.get("/cam") else { panic!("whole") };
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.contains("const STREAM = 'cam';") && !text.contains("<!--STREAM-->"));
    }

    #[test]
    fn metrics_need_a_publishers_token_unless_open() {
        let snapshot = || Snapshot {
            sessions: Vec::new(),
            viewers: 0,
            http_responses: Vec::new(),
            inference_seconds: metrics::Histogram::new(&metrics::INFERENCE_BUCKETS),
            dropped_inferences: 0,
        };
        let closed = Metrics { tokens: vec!["a".into(), "b".into()], snapshot: Box::new(snapshot) };
        assert_eq!(closed.tokens(""), Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(closed.tokens("/x"), None);
        let Ok(Content::Whole { body, .. }) = closed.get("") else { panic!("whole") };
        assert!(body.starts_with(b"# HELP whipcast_sessions_active"));
    }
}
