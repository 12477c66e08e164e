//! What flows in: each request pad's track (its caps, its group-of-pictures cache, the viewers'
//! feeds), each frame distributed to the feeds that can take it, and key frames asked upstream.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::imp::{CAT, WhepServerSink};
use crate::viewers::{DEFAULT_GOP_LIMITS, Gate, GopCache, KeyRequests, Verdict};

/// The SDP name of what `caps` carry.
pub(super) fn codec_of(caps: &gst::CapsRef) -> Option<&'static str> {
    Some(match caps.structure(0)?.name().as_str() {
        "video/x-h264" => "H264",
        "video/x-h265" => "H265",
        "video/x-vp8" => "VP8",
        "video/x-vp9" => "VP9",
        "video/x-av1" => "AV1",
        "audio/x-opus" => "OPUS",
        _ => return None,
    })
}

/// One viewer's share of one pad's stream.
pub(super) struct Feed {
    pub(super) viewer: String,
    pub(super) appsrc: gst_app::AppSrc,
    pub(super) gate: Gate,
    pub(super) counters: Arc<FeedCounters>,
}

#[derive(Debug, Default)]
pub(super) struct FeedCounters {
    pub(super) frames_sent: AtomicU64,
    pub(super) frames_skipped: AtomicU64,
    pub(super) bytes_sent: AtomicU64,
}

#[derive(Default)]
pub(super) struct TrackState {
    pub(super) caps: Option<gst::Caps>,
    pub(super) cache: Option<GopCache<gst::Buffer>>,
    pub(super) feeds: Vec<Feed>,
    pub(super) key_requests: KeyRequests,
}

/// What flows into one request pad.
pub(super) struct Track {
    pub(super) pad_name: String,
    pub(super) video: bool,
    pub(super) appsink: gst_app::AppSink,
    pub(super) ghost: gst::GhostPad,
    pub(super) state: Mutex<TrackState>,
}

impl Track {
    pub(super) fn codec(&self) -> Option<&'static str> {
        self.state.lock().unwrap().caps.as_ref().and_then(|c| codec_of(c))
    }
}

impl WhepServerSink {
    /// The pads' tracks that have caps, and their codecs, once every pad has caps or after `wait`.
    pub(super) fn tracks_with_codecs(&self, wait: Duration) -> Vec<(Arc<Track>, &'static str)> {
        let deadline = Instant::now() + wait;
        loop {
            let tracks = self.tracks.lock().unwrap().clone();
            let all = tracks.len();
            let known: Vec<_> = tracks.into_iter().filter_map(|t| t.codec().map(|c| (t, c))).collect();
            if known.len() == all || Instant::now() >= deadline {
                return known;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A viewer is connected: each of its feeds joins its track, starting with the track's
    /// current group of pictures (or the next key frame, asked for).
    pub(super) fn start_feeds(&self, id: &str) {
        let (feeds, counters) = {
            let mut state = self.state.lock().unwrap();
            let Some(viewer) = state.viewers.get_mut(id) else { return };
            (std::mem::take(&mut viewer.pending_feeds), viewer.counters.clone())
        };
        for (track, appsrc) in feeds {
            let ask = {
                let mut state = track.state.lock().unwrap();
                let replay = state.cache.as_ref().map(|c| c.replay()).unwrap_or_default();
                for buffer in replay {
                    counters.frames_sent.fetch_add(1, Ordering::Relaxed);
                    counters.bytes_sent.fetch_add(buffer.size() as u64, Ordering::Relaxed);
                    let _ = appsrc.push_buffer(buffer.clone());
                }
                let needs_key = track.video && replay.is_empty();
                let counters = counters.clone();
                state.feeds.push(Feed { viewer: id.to_owned(), appsrc, gate: Gate::new(needs_key), counters });
                needs_key
            };
            gst::debug!(CAT, imp = self, "Viewer {id} joins {} (key frame asked: {ask})", track.pad_name);
            if ask {
                self.request_key_unit(&track);
            }
        }
    }

    /// Asks upstream for a key frame on `track` (an encoder makes one; whipcastsrc asks its
    /// publisher), at most once per interval.
    pub(super) fn request_key_unit(&self, track: &Track) {
        let now = self.epoch.elapsed();
        if !track.state.lock().unwrap().key_requests.ask(now) {
            return;
        }
        let event = gst_video::UpstreamForceKeyUnitEvent::builder().all_headers(true).build();
        if let Some(pad) = track.appsink.static_pad("sink") {
            let sent = pad.push_event(event);
            gst::debug!(CAT, imp = self, "Key frame asked upstream of {} (taken: {sent})", track.pad_name);
        }
    }

    /// One frame into `track`: kept for viewers to come, sent to each viewer that can take it.
    pub(super) fn distribute(&self, track: &Track, sample: &gst::Sample) -> Result<gst::FlowSuccess, gst::FlowError> {
        let Some(buffer) = sample.buffer() else { return Ok(gst::FlowSuccess::Ok) };
        // Timestamps as running time: each viewer's pipeline runs on this pipeline's clock and
        // base time.
        let segment = sample.segment().and_then(|s| s.downcast_ref::<gst::ClockTime>().cloned());
        let mut out = buffer.copy();
        if let Some(segment) = &segment {
            let out = out.make_mut();
            let pts = buffer.pts().and_then(|t| segment.to_running_time(t));
            gst::log!(CAT, imp = self, "{}: pts {:?} in {:?} -> {:?}", track.pad_name, buffer.pts(), segment, pts);
            let dts = buffer.dts().and_then(|t| segment.to_running_time(t));
            out.set_pts(pts);
            out.set_dts(dts);
        }
        let key = !track.video || !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let max_backlog = u64::from(self.settings.lock().unwrap().max_backlog);
        let mut ask = false;
        {
            let mut state = track.state.lock().unwrap();
            if let Some(caps) = sample.caps()
                && state.caps.as_ref().is_none_or(|c| c.as_ref() != caps)
            {
                let caps = caps.to_owned();
                for feed in &state.feeds {
                    feed.appsrc.set_caps(Some(&caps));
                }
                gst::info!(CAT, imp = self, "{} carries {caps}", track.pad_name);
                state.caps = Some(caps);
            }
            if track.video {
                state.cache.get_or_insert_with(|| GopCache::new(DEFAULT_GOP_LIMITS)).push(key, out.size(), &out);
            }
            for feed in &mut state.feeds {
                let full = feed.appsrc.current_level_buffers() >= max_backlog;
                match feed.gate.offer(key, full) {
                    Verdict::Send => {
                        feed.counters.frames_sent.fetch_add(u64::from(track.video), Ordering::Relaxed);
                        feed.counters.bytes_sent.fetch_add(out.size() as u64, Ordering::Relaxed);
                        let _ = feed.appsrc.push_buffer(out.clone());
                    }
                    Verdict::Skip => {
                        feed.counters.frames_skipped.fetch_add(u64::from(track.video), Ordering::Relaxed);
                    }
                    Verdict::SkipAndAskKey => {
                        feed.counters.frames_skipped.fetch_add(u64::from(track.video), Ordering::Relaxed);
                        gst::info!(CAT, imp = self, "Viewer {} fell behind on {}", feed.viewer, track.pad_name);
                        ask = true;
                    }
                }
            }
        }
        if ask {
            self.request_key_unit(track);
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
