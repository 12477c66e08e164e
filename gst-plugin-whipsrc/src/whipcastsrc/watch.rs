//! Once a second: the session logic's timeouts, and the current session's stats from
//! webrtcbin (the `stats` property).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::imp::{SessionStats, WhipServerSrc};

impl WhipServerSrc {
    /// Once a second: the session logic's timeouts, and the current session's stats.
    pub(super) fn watch(&self) {
        let policy = self.settings.lock().unwrap().policy();
        let (ending, current) = {
            let mut state = self.state.lock().unwrap();
            let state = &mut *state;
            if let Some(s) = state.session.as_ref() {
                let since_epoch = |ms: u64| s.started.duration_since(self.epoch) + Duration::from_millis(ms);
                match s.received_ms.load(Ordering::Relaxed) {
                    u64::MAX => {}
                    received => state.sessions.received(&s.id, since_epoch(received)),
                }
                if s.first_media_ms.load(Ordering::Relaxed) != u64::MAX {
                    state.sessions.media(&s.id, since_epoch(s.last_media_ms.load(Ordering::Relaxed)));
                }
            }
            let ending = state.sessions.handle_timeout(&policy, self.epoch.elapsed());
            (ending, state.session.as_ref().map(|s| (s.webrtcbin.clone(), s.stats.clone(), s.layer_ssrcs.clone())))
        };
        if let Some(ending) = ending {
            self.carry_out(ending);
            return;
        }
        self.give_up_silent_streams();
        let Some((webrtcbin, stats, layer_ssrcs)) = current else { return };
        let layer_ssrcs = layer_ssrcs.lock().unwrap().clone();
        let promise = gst::Promise::new();
        webrtcbin.emit_by_name::<()>("get-stats", &[&None::<gst::Pad>, &promise]);
        if promise.wait() != gst::PromiseResult::Replied {
            return;
        }
        let Some(reply) = promise.get_reply() else { return };
        let mut s = stats.lock().unwrap();
        let mut total = SessionStats { last_bytes: s.last_bytes, ..Default::default() };
        for (_, value) in reply.iter() {
            let Ok(entry) = value.get::<gst::Structure>() else { continue };
            if entry.get::<gst_webrtc::WebRTCStatsType>("type") != Ok(gst_webrtc::WebRTCStatsType::InboundRtp) {
                continue;
            }
            total.packets_received += entry.get::<u64>("packets-received").unwrap_or(0);
            total.bytes_received += entry.get::<u64>("bytes-received").unwrap_or(0);
            total.packets_lost += entry.get::<i64>("packets-lost").unwrap_or(0);
            total.nack_count += u64::from(entry.get::<u32>("nack-count").unwrap_or(0));
            total.pli_count += u64::from(entry.get::<u32>("pli-count").unwrap_or(0));
            total.fir_count += u64::from(entry.get::<u32>("fir-count").unwrap_or(0));
            total.jitter = total.jitter.max(entry.get::<f64>("jitter").unwrap_or(0.0));
            if let Some(rid) = entry.get::<u32>("ssrc").ok().and_then(|ssrc| layer_ssrcs.get(&ssrc)) {
                total.layers.push((
                    rid.clone(),
                    entry.get::<u64>("packets-received").unwrap_or(0),
                    entry.get::<u64>("bytes-received").unwrap_or(0),
                    entry.get::<i64>("packets-lost").unwrap_or(0),
                ));
            }
        }
        let now = Instant::now();
        if let Some((then, bytes)) = total.last_bytes {
            let seconds = now.duration_since(then).as_secs_f64();
            if seconds > 0.0 {
                total.bitrate = (total.bytes_received.saturating_sub(bytes) as f64 * 8.0 / seconds) as u64;
            }
        }
        total.last_bytes = Some((now, total.bytes_received));
        *s = total;
    }

    pub(super) fn stats(&self) -> gst::Structure {
        let state = self.state.lock().unwrap();
        let (started, ended) = state.sessions.counts();
        let mut builder = gst::Structure::builder("application/x-whipserversrc-stats")
            .field("sessions-started", started)
            .field("sessions-ended", ended);
        if let Some(session) = &state.session {
            let s = session.stats.lock().unwrap();
            let current = gst::Structure::builder("session")
                .field("id", &session.id)
                .field("remote-address", session.peer.address.to_string())
                .field("user-agent", session.peer.user_agent.clone().unwrap_or_default())
                .field("duration", session.started.elapsed().as_secs_f64())
                .field("bitrate", s.bitrate)
                .field("packets-received", s.packets_received)
                .field("bytes-received", s.bytes_received)
                .field("packets-lost", s.packets_lost)
                .field("nack-count", s.nack_count)
                .field("pli-count", s.pli_count)
                .field("fir-count", s.fir_count)
                .field("jitter", s.jitter)
                .field("keyframes", session.keyframes.load(Ordering::Relaxed))
                .field("keyframe-requests", session.keyframe_requests.load(Ordering::Relaxed))
                .field("layers", layer_stats(&s.layers))
                .field("receiving", gst::Array::new(session.receiving.lock().unwrap().iter()))
                .build();
            builder = builder.field("session", current);
        }
        builder.build()
    }
}

/// Per simulcast layer, in rid order: `layer, rid=0, packets-received=..., bytes-received=...,
/// packets-lost=...`.
pub(super) fn layer_stats(layers: &[(String, u64, u64, i64)]) -> gst::Array {
    let mut layers = layers.to_vec();
    layers.sort();
    gst::Array::new(layers.into_iter().map(|(rid, packets, bytes, lost)| {
        gst::Structure::builder("layer")
            .field("rid", rid)
            .field("packets-received", packets)
            .field("bytes-received", bytes)
            .field("packets-lost", lost)
            .build()
            .to_send_value()
    }))
}
