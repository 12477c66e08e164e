//! The viewers coming and going: the server's handle on the element (the [`Endpoint`] a
//! viewer's POST, DELETE and PATCH reach), viewers admitted, ended and watched, and their stats.

use std::sync::atomic::Ordering;
use std::time::Instant;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use tokio::sync::oneshot;

use super::imp::{CAT, WhepServerSink};
use super::viewer::{self, Viewer};
use crate::endpoint::gone;
use crate::server::{Created, Endpoint, Patched, Peer, RUNTIME};
use crate::viewers;
use crate::whip::{Rejection, StreamAuth};

/// The server's handle on this element.
pub(super) struct Handle(pub(super) glib::WeakRef<super::WhepServerSink>);

impl Handle {
    fn with<T>(&self, f: impl FnOnce(&WhepServerSink) -> T) -> Option<T> {
        self.0.upgrade().map(|e| f(e.imp()))
    }
}

impl Endpoint for Handle {
    fn auth(&self) -> StreamAuth {
        self.with(|imp| imp.settings.lock().unwrap().endpoint.auth()).unwrap_or(StreamAuth::Unknown)
    }

    fn sessions(&self) -> usize {
        self.with(|imp| imp.state.lock().unwrap().viewers.len()).unwrap_or(0)
    }

    /// max-viewers is the element's own (503 from `create`), not a server-wide limit.
    fn max_sessions(&self) -> u32 {
        0
    }

    fn posts_per_address(&self) -> u32 {
        crate::ratelimit::DEFAULT_POSTS_PER_ADDRESS
    }

    fn replaces(&self) -> bool {
        false
    }

    fn create(&self, offer: String, peer: Peer) -> oneshot::Receiver<Result<Created, Rejection>> {
        let (tx, rx) = oneshot::channel();
        let result = self.with(|imp| imp.add_viewer(&offer, peer)).unwrap_or_else(|| Err(gone()));
        let _ = tx.send(result);
        rx
    }

    fn delete(&self, resource: &str) -> Result<(), Rejection> {
        self.with(|imp| imp.delete_viewer(resource)).unwrap_or_else(|| Err(gone()))
    }

    fn patch(&self, resource: &str, sdpfrag: &str, if_match: Option<&str>) -> Result<Patched, Rejection> {
        self.with(|imp| imp.patch_viewer(resource, sdpfrag, if_match)).unwrap_or_else(|| Err(gone()))
    }
}

impl WhepServerSink {
    /// A viewer's offer: admitted (or 503), answered (or 4xx/5xx); its frames start once it is
    /// connected.
    fn add_viewer(&self, offer: &str, peer: Peer) -> Result<Created, Rejection> {
        let settings = self.settings.lock().unwrap().clone();
        {
            let mut state = self.state.lock().unwrap();
            if state.registration.is_none() {
                return Err(gone());
            }
            if !viewers::admits(state.viewers.len() + state.starting, settings.max_viewers) {
                return Err(Rejection::new(
                    503,
                    format!("{} viewers already watch (max-viewers)", state.viewers.len()),
                )
                .with_header("retry-after", "10"));
            }
            state.starting += 1;
        }
        let result = viewer::start(self, &settings, offer, peer);
        let mut state = self.state.lock().unwrap();
        state.starting -= 1;
        let (viewer, created) = result?;
        if state.registration.is_none() {
            drop(state);
            viewer::stop(viewer);
            return Err(gone());
        }
        state.viewers_started += 1;
        let (id, address, agent) =
            (viewer.id.clone(), viewer.peer.address.to_string(), viewer.peer.user_agent.clone().unwrap_or_default());
        state.viewers.insert(viewer.id.clone(), viewer);
        drop(state);
        gst::info!(CAT, imp = self, "Viewer {id} from {address} answered");
        self.obj().emit_by_name::<()>("viewer-added", &[&id, &address, &agent]);
        let _ = self.obj().post_message(
            gst::message::Element::builder(
                gst::Structure::builder("whepserversink-viewer-added")
                    .field("id", &id)
                    .field("remote-address", &address)
                    .field("user-agent", &agent)
                    .build(),
            )
            .src(&*self.obj())
            .build(),
        );
        Ok(created)
    }

    fn delete_viewer(&self, resource: &str) -> Result<(), Rejection> {
        if self.end_viewer(resource, "the viewer sent DELETE") {
            Ok(())
        } else {
            Err(Rejection::new(404, format!("no viewer {resource:?} here (it ended, or never was)")))
        }
    }

    fn patch_viewer(&self, resource: &str, sdpfrag: &str, if_match: Option<&str>) -> Result<Patched, Rejection> {
        let (webrtcbin, etag, mids, ufrag) = {
            let state = self.state.lock().unwrap();
            let viewer = state
                .viewers
                .get(resource)
                .ok_or_else(|| Rejection::new(404, format!("no viewer {resource:?} here")))?;
            (viewer.webrtcbin.clone(), viewer.etag.clone(), viewer.mids.clone(), viewer.remote_ufrag.clone())
        };
        viewer::trickle(&webrtcbin, &etag, &mids, ufrag.as_deref(), sdpfrag, if_match)
    }

    /// Ends a viewer (its frames stop, its pipeline goes): whether it was there.
    pub(super) fn end_viewer(&self, id: &str, reason: &str) -> bool {
        let viewer = {
            let mut state = self.state.lock().unwrap();
            let viewer = state.viewers.remove(id);
            state.viewers_ended += u64::from(viewer.is_some());
            viewer
        };
        let Some(viewer) = viewer else { return false };
        for track in self.tracks.lock().unwrap().iter() {
            track.state.lock().unwrap().feeds.retain(|f| f.viewer != id);
        }
        gst::info!(
            CAT,
            imp = self,
            "Viewer {id} ended: {reason} ({} frames sent, {} skipped, {} key frame requests)",
            viewer.counters.frames_sent.load(Ordering::Relaxed),
            viewer.counters.frames_skipped.load(Ordering::Relaxed),
            viewer.key_requests.load(Ordering::Relaxed)
        );
        // Never from a thread of the viewer's own pipeline: stopping it would wait for itself.
        RUNTIME.spawn_blocking(move || viewer::stop(viewer));
        self.obj().emit_by_name::<()>("viewer-removed", &[&id, &reason]);
        let _ = self.obj().post_message(
            gst::message::Element::builder(
                gst::Structure::builder("whepserversink-viewer-removed")
                    .field("id", id)
                    .field("reason", reason)
                    .build(),
            )
            .src(&*self.obj())
            .build(),
        );
        true
    }

    pub(super) fn stats(&self) -> gst::Structure {
        let state = self.state.lock().unwrap();
        let mut viewers: Vec<&Viewer> = state.viewers.values().collect();
        viewers.sort_by_key(|v| v.started);
        let list = gst::Array::new(viewers.iter().map(|v| {
            gst::Structure::builder("viewer")
                .field("id", &v.id)
                .field("remote-address", v.peer.address.to_string())
                .field("user-agent", v.peer.user_agent.clone().unwrap_or_default())
                .field("duration", v.started.elapsed().as_secs_f64())
                .field("connection-state", v.connection_state())
                .field("frames-sent", v.counters.frames_sent.load(Ordering::Relaxed))
                .field("frames-skipped", v.counters.frames_skipped.load(Ordering::Relaxed))
                .field("bytes-sent", v.counters.bytes_sent.load(Ordering::Relaxed))
                .field("keyframe-requests", v.key_requests.load(Ordering::Relaxed))
                .build()
                .to_send_value()
        }));
        gst::Structure::builder("application/x-whepserversink-stats")
            .field("viewers-started", state.viewers_started)
            .field("viewers-ended", state.viewers_ended)
            .field("viewers", list)
            .build()
    }

    /// Ends viewers whose connection failed or closed, or who went silent (checked once a second).
    pub(super) fn watch(&self) {
        let failed: Vec<(String, String)> = {
            let state = self.state.lock().unwrap();
            let now = Instant::now();
            state.viewers.values().filter_map(|v| v.failure(now).map(|why| (v.id.clone(), why))).collect()
        };
        for (id, why) in failed {
            self.end_viewer(&id, &why);
        }
    }
}
