//! The decisions about one stream's sessions (sans-IO): who may publish (201, 409, 503, a
//! replacement), what a PATCH is (trickle or ICE restart; 404, 428, 412), when a session ends
//! (DELETE, no media for `timeout`, EOS sent to the element) and whether the stream ends with it.
//! Time comes in as an argument (`handle_timeout(now)`); the element shell owns the webrtcbins
//! and carries out what it is told.
//!
//! A session is current from its admission on, before its webrtcbin exists: a second POST
//! arriving meanwhile replaces it at once, and the shell, finding its session no longer current
//! once built, tears it down instead of storing it (two concurrent POSTs never leave a session
//! that nobody owns).

use std::time::Duration;

use crate::whip::Rejection;

/// whipcastsrc's default `timeout`, in seconds: a session without media this long ends.
pub const DEFAULT_TIMEOUT_S: u32 = 10;

/// What the element's properties say about sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// A POST to a live stream replaces its session (as OBS reconnects); otherwise 409.
    pub replace_publisher: bool,
    /// A session without media for this long ends (`None`: never).
    pub timeout: Option<Duration>,
    /// The stream ends with its session (on-disconnect=eos): later POSTs get 503.
    pub end_stream_with_session: bool,
}

/// A session to stop, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    /// The session's id (the last segment of its URL).
    pub id: String,
    /// Why it ends, in a few words, for the log and a later 404 on it.
    pub reason: String,
    /// Push EOS on every pad: the stream is over.
    pub end_stream: bool,
    /// The publisher said it is done (DELETE): what the session received still reaches the pads
    /// before it stops (see [`drained`]).
    pub drain: bool,
}

/// How long nothing may come out of a draining session, beyond the jitter buffer's latency,
/// before it counts as drained.
pub const DRAIN_QUIET: Duration = Duration::from_millis(100);
/// The longest a drain takes beyond the latency (a publisher that goes on sending after its DELETE).
pub const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// Whether a draining session has let out all it received, `waited` after its end, when nothing
/// came out of it for `quiet`: the jitter buffer holds a packet at most `latency` (waiting for a
/// lost one before it), so a longer silence means nothing is left.
pub fn drained(waited: Duration, quiet: Duration, latency: Duration) -> bool {
    quiet >= latency + DRAIN_QUIET || waited >= latency + DRAIN_LIMIT
}

/// Whether a stream negotiated in a session and silent so far is given up (its pad ends, so that
/// muxers waiting for every stream go on): the session's media has flowed for `media_for` (`None`:
/// no media yet), and `timeout` (`None`: never) has passed.
pub fn silent_stream_given_up(media_for: Option<Duration>, timeout: Option<Duration>) -> bool {
    matches!((media_for, timeout), (Some(flowed), Some(timeout)) if flowed >= timeout)
}

/// What a PATCH asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchAction {
    /// Candidates for the ICE session in place.
    Trickle,
    /// New ICE credentials: an ICE restart (RFC 9725 4.4.2).
    Restart,
}

#[derive(Debug)]
struct Current {
    id: String,
    etag: String,
    /// The publisher's ICE username fragment, to tell trickle from restart.
    remote_ufrag: Option<String>,
    /// When media last came (the admission until the first media).
    last_media: Duration,
    /// Media came: only then does the session's end end the stream.
    had_media: bool,
    /// When it was admitted, and whether its answer went out: until then the time without
    /// media does not count (gathering our candidates may take seconds), [`ANSWER_LIMIT`] does.
    admitted: Duration,
    answered: bool,
    /// Candidates trickled in PATCHes so far.
    trickled: usize,
}

/// The most candidates a session takes in PATCHes, all together (each one is checked by ICE).
pub const MAX_TRICKLED_CANDIDATES: usize = 64;

/// The longest a session may wait for its answer: the POST gives up after 6 s (504), and
/// webrtcbin never answering must not leave the session current for good.
pub const ANSWER_LIMIT: Duration = Duration::from_secs(10);

/// How many ended sessions are remembered, to say why a late DELETE or PATCH finds none.
const REMEMBERED_ENDINGS: usize = 16;

/// One stream's sessions: the current one (at most one publisher), the recently ended ones and
/// whether the stream is over.
#[derive(Debug, Default)]
pub struct Sessions {
    current: Option<Current>,
    /// The last sessions that ended, and why (oldest first).
    ended_recently: std::collections::VecDeque<(String, String)>,
    /// The stream is over (on-disconnect=eos after a session, or EOS sent to the element).
    stream_ended: bool,
    admitted: u64,
    ended: u64,
}

impl Sessions {
    /// A POST with an acceptable offer, at `now`: the session `id` becomes current, and the one it
    /// replaces (if any) is to be stopped, or the POST is refused.
    pub fn admit(
        &mut self,
        policy: &Policy,
        id: &str,
        etag: &str,
        remote_ufrag: Option<&str>,
        now: Duration,
    ) -> Result<Option<Ending>, Rejection> {
        if self.stream_ended {
            return Err(Rejection::new(503, "the stream has ended (on-disconnect=eos)"));
        }
        if self.current.is_some() && !policy.replace_publisher {
            return Err(Rejection::new(409, "a publisher is already live on this stream"));
        }
        let replaced = self.current.take().map(|old| {
            self.ended += 1;
            let reason = "replaced by a new publisher";
            self.remember(&old.id, reason);
            Ending { id: old.id, reason: reason.into(), end_stream: false, drain: false }
        });
        self.current = Some(Current {
            id: id.to_owned(),
            etag: etag.to_owned(),
            remote_ufrag: remote_ufrag.map(str::to_owned),
            last_media: now,
            had_media: false,
            admitted: now,
            answered: false,
            trickled: 0,
        });
        self.admitted += 1;
        Ok(replaced)
    }

    /// Whether session `id` is the current one (a replaced or ended one is not).
    pub fn is_current(&self, id: &str) -> bool {
        self.current.as_ref().is_some_and(|c| c.id == id)
    }

    /// The current session's id, if there is one.
    pub fn current_id(&self) -> Option<&str> {
        self.current.as_ref().map(|c| c.id.as_str())
    }

    /// The current session's ETag.
    pub fn etag(&self, id: &str) -> Option<&str> {
        self.current.as_ref().filter(|c| c.id == id).map(|c| c.etag.as_str())
    }

    /// Session `id` was answered at `at`: its publisher may send from now on, so the time
    /// without media counts from here (gathering our candidates may take seconds).
    pub fn answered(&mut self, id: &str, at: Duration) {
        self.received(id, at);
    }

    fn current_mut(&mut self, id: &str) -> Option<&mut Current> {
        self.current.as_mut().filter(|c| c.id == id)
    }

    /// Packets of session `id` came at `at` (perhaps nothing decodable yet): it is alive.
    pub fn received(&mut self, id: &str, at: Duration) {
        if let Some(c) = self.current_mut(id) {
            c.last_media = c.last_media.max(at);
            // Packets mean the publisher had the answer.
            c.answered = true;
        }
    }

    /// Media of session `id` came out at `at`.
    pub fn media(&mut self, id: &str, at: Duration) {
        if let Some(c) = self.current_mut(id) {
            c.last_media = c.last_media.max(at);
            c.had_media = true;
            c.answered = true;
        }
    }

    /// Session `id` ends (its ICE or DTLS failed, webrtcbin refused the offer, ...), if current.
    /// The stream ends with it where the policy says so, and only if media came: a POST that
    /// never connects (a scanner, a client behind a firewall) does not end it for everyone.
    pub fn end(&mut self, policy: &Policy, id: &str, reason: &str) -> Option<Ending> {
        let current = self.current.take_if(|c| c.id == id)?;
        self.ended += 1;
        self.remember(id, reason);
        let end_stream = policy.end_stream_with_session && current.had_media;
        self.stream_ended |= end_stream;
        Some(Ending { id: id.to_owned(), reason: reason.to_owned(), end_stream, drain: false })
    }

    /// Session `id` goes without ending the stream, whatever the policy: it was never answered
    /// (webrtcbin refused its offer), or the element stops.
    pub fn abandon(&mut self, id: &str, reason: &str) -> Option<Ending> {
        let policy = Policy { replace_publisher: true, timeout: None, end_stream_with_session: false };
        self.end(&policy, id, reason)
    }

    /// DELETE on a session's resource.
    pub fn delete(&mut self, policy: &Policy, id: &str) -> Result<Ending, Rejection> {
        let ending = self.end(policy, id, "publisher sent DELETE").ok_or_else(|| self.not_found(id))?;
        Ok(Ending { drain: true, ..ending })
    }

    /// EOS sent to the element: the current session ends and so does the stream.
    pub fn end_stream(&mut self, reason: &str) -> Option<Ending> {
        self.stream_ended = true;
        let current = self.current.take()?;
        self.ended += 1;
        self.remember(&current.id, reason);
        Some(Ending { id: current.id, reason: reason.to_owned(), end_stream: true, drain: false })
    }

    /// The element starts (again): a new stream.
    pub fn restart_stream(&mut self) {
        self.stream_ended = false;
    }

    /// Whether the stream is over: POSTs get 503 until [`restart_stream`](Self::restart_stream).
    pub fn stream_ended(&self) -> bool {
        self.stream_ended
    }

    /// What a PATCH with an sdpfrag (its `a=ice-ufrag`, if any) and `If-Match` asks of session
    /// `id`: trickle fragments repeat the current credentials, new ones ask for a restart.
    pub fn patch(&self, id: &str, ufrag: Option<&str>, if_match: Option<&str>) -> Result<PatchAction, Rejection> {
        let current = self.current.as_ref().filter(|c| c.id == id).ok_or_else(|| self.not_found(id))?;
        let restart = ufrag.is_some_and(|u| Some(u) != current.remote_ufrag.as_deref());
        match if_match {
            None if restart => Err(Rejection::new(428, "an ICE restart needs If-Match")),
            Some(tag) if tag != "*" && tag != current.etag => {
                Err(Rejection::new(412, "If-Match does not match the session's ETag"))
            }
            _ => Ok(if restart { PatchAction::Restart } else { PatchAction::Trickle }),
        }
    }

    /// Session `id` is trickled `count` more candidates: refused past [`MAX_TRICKLED_CANDIDATES`].
    pub fn trickle(&mut self, id: &str, count: usize) -> Result<(), Rejection> {
        let current =
            self.current.as_mut().filter(|c| c.id == id).ok_or_else(|| Rejection::new(404, "the session ended"))?;
        if current.trickled + count > MAX_TRICKLED_CANDIDATES {
            return Err(Rejection::new(
                422,
                format!("too many trickled candidates: at most {MAX_TRICKLED_CANDIDATES} per session"),
            ));
        }
        current.trickled += count;
        Ok(())
    }

    /// An ICE restart of session `id` went through: its new ETag and the publisher's new ufrag.
    pub fn restarted(&mut self, id: &str, etag: &str, remote_ufrag: Option<&str>) -> Result<(), Rejection> {
        let current =
            self.current.as_mut().filter(|c| c.id == id).ok_or_else(|| Rejection::new(404, "the session ended"))?;
        current.etag = etag.to_owned();
        current.remote_ufrag = remote_ufrag.map(str::to_owned);
        Ok(())
    }

    /// At `now`: the current session ends if no media came for the policy's timeout since its
    /// answer, or if it had no answer within [`ANSWER_LIMIT`].
    pub fn handle_timeout(&mut self, policy: &Policy, now: Duration) -> Option<Ending> {
        let current = self.current.as_ref()?;
        let (since, limit, reason) = match (current.answered, policy.timeout) {
            (true, None) => return None,
            (true, Some(timeout)) => (current.last_media, timeout, format!("no media for {} s", timeout.as_secs())),
            (false, _) => (current.admitted, ANSWER_LIMIT, format!("not answered within {} s", ANSWER_LIMIT.as_secs())),
        };
        if now.saturating_sub(since) <= limit {
            return None;
        }
        let id = current.id.clone();
        self.end(policy, &id, &reason)
    }

    /// 404 for a request on session `id`, with why it ended if it did lately.
    pub fn not_found(&self, id: &str) -> Rejection {
        match self.ended_recently.iter().rev().find(|(ended, _)| ended == id) {
            Some((_, reason)) => Rejection::new(404, format!("the session has ended: {reason}")),
            None => Rejection::new(404, "no such session"),
        }
    }

    fn remember(&mut self, id: &str, reason: &str) {
        if self.ended_recently.len() == REMEMBERED_ENDINGS {
            self.ended_recently.pop_front();
        }
        self.ended_recently.push_back((id.to_owned(), reason.to_owned()));
    }

    /// Sessions admitted and ended since the element was made.
    pub fn counts(&self) -> (u64, u64) {
        (self.admitted, self.ended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy =
        Policy { replace_publisher: true, timeout: Some(Duration::from_secs(10)), end_stream_with_session: false };

    fn s(v: u64) -> Duration {
        Duration::from_secs(v)
    }

    #[test]
    fn a_silent_stream_is_given_up_once_the_others_flowed_long_enough() {
        let timeout = Some(Duration::from_millis(1000));
        assert!(!silent_stream_given_up(None, timeout), "no media at all: a publisher still connecting");
        assert!(!silent_stream_given_up(Some(Duration::from_millis(999)), timeout));
        assert!(silent_stream_given_up(Some(Duration::from_millis(1000)), timeout));
        assert!(!silent_stream_given_up(Some(s(3600)), None), "never, where the stream outlives the session");
    }

    fn admit(sessions: &mut Sessions, policy: &Policy, id: &str, now: u64) -> Result<Option<Ending>, Rejection> {
        sessions.admit(policy, id, &format!("\"{id}-etag\""), Some(&format!("{id}-ufrag")), s(now))
    }

    #[test]
    fn a_new_publisher_replaces_the_live_one_or_gets_409() {
        let mut sessions = Sessions::default();
        assert_eq!(admit(&mut sessions, &POLICY, "a", 0).unwrap(), None);
        let replaced = admit(&mut sessions, &POLICY, "b", 1).unwrap().unwrap();
        assert_eq!((replaced.id.as_str(), replaced.end_stream), ("a", false));
        assert!(sessions.is_current("b") && !sessions.is_current("a"));
        let strict = Policy { replace_publisher: false, ..POLICY };
        assert_eq!(admit(&mut sessions, &strict, "c", 2).unwrap_err().status, 409);
        assert!(sessions.is_current("b"));
        assert_eq!(sessions.counts(), (2, 1));
    }

    #[test]
    fn a_session_replaced_while_it_was_being_built_is_no_longer_current() {
        // Two POSTs at once: the first's webrtcbin is still being made when the second comes.
        let mut sessions = Sessions::default();
        admit(&mut sessions, &POLICY, "first", 0).unwrap();
        let replaced = admit(&mut sessions, &POLICY, "second", 0).unwrap().unwrap();
        assert_eq!(replaced.id, "first");
        // The shell, done building "first", finds it is not current: it stops it, stores nothing.
        assert!(!sessions.is_current("first"));
        assert_eq!(sessions.end(&POLICY, "first", "too late"), None, "ending it again changes nothing");
        assert_eq!(sessions.current_id(), Some("second"));
    }

    #[test]
    fn with_on_disconnect_eos_the_first_end_ends_the_stream() {
        let eos = Policy { end_stream_with_session: true, ..POLICY };
        let mut sessions = Sessions::default();
        admit(&mut sessions, &eos, "a", 0).unwrap();
        sessions.media("a", s(1));
        let ending = sessions.delete(&eos, "a").unwrap();
        assert_eq!((ending.reason.as_str(), ending.end_stream, ending.drain), ("publisher sent DELETE", true, true));
        assert_eq!(admit(&mut sessions, &eos, "b", 1).unwrap_err().status, 503);
        let late = sessions.delete(&eos, "a").unwrap_err();
        assert_eq!((late.status, late.reason.as_str()), (404, "the session has ended: publisher sent DELETE"));
        assert_eq!(sessions.delete(&eos, "never").unwrap_err().reason, "no such session");
        sessions.restart_stream();
        assert!(admit(&mut sessions, &eos, "b", 2).is_ok());
    }

    #[test]
    fn a_session_that_never_delivered_media_does_not_end_the_stream() {
        // A POST that never connects (or connects and sends nothing), then times out or says
        // DELETE: the stream goes on for the next publisher even with on-disconnect=eos.
        let eos = Policy { end_stream_with_session: true, ..POLICY };
        let mut sessions = Sessions::default();
        admit(&mut sessions, &eos, "scanner", 0).unwrap();
        let ending = sessions.handle_timeout(&eos, s(11)).unwrap();
        assert!(!ending.end_stream && !sessions.stream_ended());
        admit(&mut sessions, &eos, "silent", 12).unwrap();
        assert!(!sessions.delete(&eos, "silent").unwrap().end_stream);
        admit(&mut sessions, &eos, "publisher", 13).unwrap();
        sessions.media("publisher", s(14));
        assert!(sessions.handle_timeout(&eos, s(30)).unwrap().end_stream && sessions.stream_ended());
    }

    #[test]
    fn packets_with_nothing_decodable_keep_a_session_alive_but_are_not_media() {
        // A publisher whose key frame was lost and who ignores PLI: packets come, the depayloader
        // drops them until the next key frame, seconds later. It is live, yet it delivered nothing.
        let eos = Policy { end_stream_with_session: true, ..POLICY };
        let mut sessions = Sessions::default();
        admit(&mut sessions, &eos, "a", 0).unwrap();
        sessions.received("a", s(9));
        assert_eq!(sessions.handle_timeout(&eos, s(15)), None, "packets 6 s ago: alive");
        let ending = sessions.handle_timeout(&eos, s(20)).unwrap();
        assert_eq!(ending.reason, "no media for 10 s");
        assert!(!ending.end_stream, "nothing came out: the stream goes on");
        sessions.received("gone", s(21));
        assert_eq!(sessions.current_id(), None);
    }

    #[test]
    fn trickled_candidates_are_bounded_per_session() {
        let mut sessions = Sessions::default();
        admit(&mut sessions, &POLICY, "a", 0).unwrap();
        sessions.trickle("a", MAX_TRICKLED_CANDIDATES - 1).unwrap();
        sessions.trickle("a", 1).unwrap();
        assert_eq!(sessions.trickle("a", 1).unwrap_err().status, 422);
        assert_eq!(sessions.trickle("gone", 1).unwrap_err().status, 404);
        admit(&mut sessions, &POLICY, "b", 1).unwrap();
        assert!(sessions.trickle("b", MAX_TRICKLED_CANDIDATES).is_ok(), "each session its own count");
    }

    #[test]
    fn only_a_publisher_that_said_it_is_done_is_drained() {
        let mut sessions = Sessions::default();
        admit(&mut sessions, &POLICY, "a", 0).unwrap();
        let replaced = admit(&mut sessions, &POLICY, "b", 1).unwrap().unwrap();
        assert!(!replaced.drain, "a replaced publisher may be gone: nothing to wait for");
        assert!(!sessions.handle_timeout(&POLICY, s(20)).unwrap().drain, "no media: nothing to drain");
        admit(&mut sessions, &POLICY, "c", 30).unwrap();
        assert!(sessions.delete(&POLICY, "c").unwrap().drain);
    }

    #[test]
    fn a_drain_ends_after_a_silence_longer_than_the_jitter_buffer_holds_or_at_its_limit() {
        let ms = Duration::from_millis;
        let latency = ms(200);
        // Frames still coming out: not yet, even past the latency.
        assert!(!drained(ms(250), ms(10), latency));
        // A gap the jitter buffer may still be waiting out (a lost packet before the last ones).
        assert!(!drained(ms(290), ms(290), latency));
        assert!(drained(ms(300), ms(300), latency));
        // The publisher stopped long before its DELETE: at once.
        assert!(drained(ms(0), ms(800), latency));
        // A publisher still sending after its DELETE is not waited for beyond the limit.
        assert!(!drained(latency + DRAIN_LIMIT - ms(1), ms(5), latency));
        assert!(drained(latency + DRAIN_LIMIT, ms(5), latency));
    }

    #[test]
    fn a_session_refused_before_its_answer_never_ends_the_stream() {
        let eos = Policy { end_stream_with_session: true, ..POLICY };
        let mut sessions = Sessions::default();
        admit(&mut sessions, &eos, "a", 0).unwrap();
        let ending = sessions.abandon("a", "webrtcbin refused the offer").unwrap();
        assert!(!ending.end_stream && !sessions.stream_ended());
        assert!(admit(&mut sessions, &eos, "b", 1).is_ok());
    }

    #[test]
    fn eos_sent_to_the_element_ends_the_session_and_the_stream() {
        let mut sessions = Sessions::default();
        admit(&mut sessions, &POLICY, "a", 0).unwrap();
        let ending = sessions.end_stream("EOS sent to the element").unwrap();
        assert!(ending.end_stream && sessions.stream_ended());
        assert_eq!(admit(&mut sessions, &POLICY, "b", 1).unwrap_err().status, 503);
    }

    #[test]
    fn the_time_without_media_counts_from_the_answer() {
        let mut sessions = Sessions::default();
        admit(&mut sessions, &POLICY, "a", 100).unwrap();
        // Our candidates took long (a busy machine, STUN): the publisher could not send before.
        assert_eq!(sessions.handle_timeout(&POLICY, s(105)), None);
        sessions.answered("a", s(105));
        assert_eq!(sessions.handle_timeout(&POLICY, s(114)), None);
        assert_eq!(sessions.handle_timeout(&POLICY, s(116)).unwrap().reason, "no media for 10 s");
    }

    #[test]
    fn a_session_never_answered_ends_after_the_answer_limit_whatever_the_timeout() {
        let never = Policy { timeout: None, ..POLICY };
        let mut sessions = Sessions::default();
        admit(&mut sessions, &never, "a", 0).unwrap();
        assert_eq!(sessions.handle_timeout(&never, ANSWER_LIMIT), None);
        let ending = sessions.handle_timeout(&never, ANSWER_LIMIT + s(1)).unwrap();
        assert_eq!((ending.reason.as_str(), ending.end_stream), ("not answered within 10 s", false));
        // A short timeout does not cut the wait for the answer short.
        let short = Policy { timeout: Some(s(1)), ..POLICY };
        admit(&mut sessions, &short, "b", 20).unwrap();
        assert_eq!(sessions.handle_timeout(&short, s(25)), None);
    }

    #[test]
    fn no_media_for_the_timeout_ends_the_session() {
        let mut sessions = Sessions::default();
        admit(&mut sessions, &POLICY, "a", 100).unwrap();
        sessions.answered("a", s(100));
        assert_eq!(sessions.handle_timeout(&POLICY, s(110)), None, "10 s after the answer: not yet");
        sessions.media("a", s(105));
        assert_eq!(sessions.handle_timeout(&POLICY, s(115)), None);
        sessions.media("a", s(104)); // late news never moves the clock back
        let ending = sessions.handle_timeout(&POLICY, s(116)).unwrap();
        assert_eq!((ending.id.as_str(), ending.reason.as_str()), ("a", "no media for 10 s"));
        assert_eq!(sessions.current_id(), None);
        let never = Policy { timeout: None, ..POLICY };
        admit(&mut sessions, &never, "b", 0).unwrap();
        sessions.answered("b", s(0));
        assert_eq!(sessions.handle_timeout(&never, s(100_000)), None);
    }

    #[test]
    fn patch_is_trickle_or_restart_by_its_credentials() {
        let mut sessions = Sessions::default();
        admit(&mut sessions, &POLICY, "a", 0).unwrap();
        let etag = sessions.etag("a").unwrap().to_owned();
        assert_eq!(sessions.patch("a", None, None), Ok(PatchAction::Trickle));
        assert_eq!(sessions.patch("a", Some("a-ufrag"), None), Ok(PatchAction::Trickle));
        assert_eq!(sessions.patch("a", Some("new"), None).unwrap_err().status, 428);
        assert_eq!(sessions.patch("a", Some("new"), Some("\"stale\"")).unwrap_err().status, 412);
        assert_eq!(sessions.patch("a", None, Some("\"stale\"")).unwrap_err().status, 412);
        assert_eq!(sessions.patch("a", Some("new"), Some("*")), Ok(PatchAction::Restart));
        assert_eq!(sessions.patch("a", Some("new"), Some(&etag)), Ok(PatchAction::Restart));
        assert_eq!(sessions.patch("zz", None, None).unwrap_err().status, 404);
        // After the restart the new credentials are the current ones and the old ETag is stale.
        sessions.restarted("a", "\"e2\"", Some("new")).unwrap();
        assert_eq!(sessions.patch("a", Some("new"), None), Ok(PatchAction::Trickle));
        assert_eq!(sessions.patch("a", Some("newer"), Some(&etag)).unwrap_err().status, 412);
        assert_eq!(sessions.restarted("zz", "x", None).unwrap_err().status, 404);
    }
}
