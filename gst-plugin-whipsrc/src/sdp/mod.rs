//! SDP handling for a WHIP endpoint (sans-IO): parse and check an offer, normalize what
//! webrtcbin 1.22 refuses, choose one codec per media section (the offer's order or ours), and
//! finish the answer (candidates, announced public addresses, bitrate hint, simulcast layers
//! accepted, which webrtcbin 1.22 does not write).

mod answer;
mod offer;
mod restart;
#[cfg(test)]
mod tests;

use std::fmt;

pub use answer::*;
pub use offer::*;
pub use restart::*;

/// RTP header extensions that name a stream's layer (RFC 8852).
pub const RID_EXTENSION: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
/// The rid of the stream a retransmission (RTX) stream repairs (RFC 8852).
pub const REPAIRED_RID_EXTENSION: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";
/// The RTP header extension carrying a packet's media section `mid`, for BUNDLE (RFC 8843).
pub const MID_EXTENSION: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
/// The AV1 RTP spec's dependency descriptor (frame dependencies of an SVC stream; Chromium 156
/// sends L1T3 with or without it, the layer ids being in the OBU extension headers too).
pub const DEPENDENCY_DESCRIPTOR_EXTENSION: &str =
    "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";
/// The header extensions we receive where offered (webrtcbin 1.22's answer has none).
const RECEIVED_EXTENSIONS: [&str; 4] =
    [MID_EXTENSION, RID_EXTENSION, REPAIRED_RID_EXTENSION, DEPENDENCY_DESCRIPTOR_EXTENSION];

/// Attributes that may stand at session level but that webrtcbin wants in every media section
/// (older libdatachannel, as some OBS builds use, writes them at session level only).
const TRANSPORT_ATTRIBUTES: [&str; 5] = ["ice-ufrag", "ice-pwd", "ice-options", "fingerprint", "setup"];

/// Why an offer is refused; the variant gives the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferError {
    /// Not an SDP offer we can read: 400.
    Malformed(String),
    /// Nothing in it we can receive: 422.
    Unacceptable(String),
    /// More than the server takes (sections, candidates, layers, unbundled transports): 422.
    OverLimit(String),
}

impl fmt::Display for OfferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OfferError::Malformed(why) => write!(f, "malformed SDP: {why}"),
            OfferError::Unacceptable(why) => write!(f, "nothing acceptable in the offer: {why}"),
            OfferError::OverLimit(why) => write!(f, "offer refused: {why}"),
        }
    }
}

impl std::error::Error for OfferError {}

/// A media section's media, the first word of its `m=` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// `m=audio`.
    Audio,
    /// `m=video`.
    Video,
    /// Anything else (`application` for data channels, ...).
    Other,
}

/// A media section as lines (`m=` first), without line endings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// The section's lines, `m=` first, as `<type>=<value>`.
    pub lines: Vec<String>,
}

impl Media {
    fn m_line(&self) -> &str {
        &self.lines[0][2..]
    }

    /// Audio, video or other, from the `m=` line.
    pub fn kind(&self) -> MediaKind {
        match self.m_line().split(' ').next() {
            Some("audio") => MediaKind::Audio,
            Some("video") => MediaKind::Video,
            _ => MediaKind::Other,
        }
    }

    /// The payload types listed in the `m=` line.
    pub fn formats(&self) -> Vec<&str> {
        self.m_line().split(' ').skip(3).collect()
    }

    /// Values of `a=<name>:...` lines (or `a=<name>` flags as empty strings).
    pub fn attributes<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        attributes(&self.lines, name)
    }

    /// The value of the first `a=<name>` line, if any (empty for a flag).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes(name).next()
    }

    /// The section's `a=mid` (RFC 8843), which BUNDLE and the mid header extension name it by.
    pub fn mid(&self) -> Option<&str> {
        self.attribute("mid")
    }

    /// The id of the `a=extmap` line for `uri`.
    pub fn extension_id(&self, uri: &str) -> Option<u8> {
        self.attributes("extmap").find_map(|value| {
            let (id, rest) = value.split_once(' ')?;
            // `a=extmap:<id>[/<direction>] <uri> [<attributes>]`
            (rest.split(' ').next() == Some(uri)).then(|| id.split('/').next()?.parse().ok())?
        })
    }

    /// The simulcast layers the section sends (RFC 8853): the rids of its `a=simulcast:send`
    /// list in order (alternatives and paused ones included), each declared by `a=rid:<id> send`.
    pub fn sent_rids(&self) -> Vec<String> {
        let declared: Vec<&str> = self
            .attributes("rid")
            .filter_map(|v| {
                let mut fields = v.split(' ');
                let id = fields.next()?;
                (fields.next() == Some("send")).then_some(id)
            })
            .collect();
        let Some(simulcast) = self.attribute("simulcast") else { return Vec::new() };
        let mut words = simulcast.split(' ');
        let mut rids = Vec::new();
        while let Some(direction) = words.next() {
            let Some(list) = words.next() else { break };
            if direction != "send" {
                continue;
            }
            for rid in list.split([';', ',']).map(|r| r.trim_start_matches('~')) {
                if declared.contains(&rid) && !rids.iter().any(|r| r == rid) {
                    rids.push(rid.to_owned());
                }
            }
        }
        rids
    }

    fn direction(&self) -> Option<&str> {
        ["sendrecv", "sendonly", "recvonly", "inactive"].into_iter().find(|d| self.attributes(d).next().is_some())
    }
}

fn attributes<'a, 'n>(lines: &'a [String], name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
    lines.iter().filter_map(move |line| {
        let rest = line.strip_prefix("a=")?.strip_prefix(name)?;
        if rest.is_empty() { Some("") } else { rest.strip_prefix(':') }
    })
}

/// A session description as lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    /// The session-level lines, `v=0` first.
    pub session: Vec<String>,
    /// The media sections in order; at least one after [`Sdp::parse`].
    pub media: Vec<Media>,
}

impl Sdp {
    /// Splits an SDP (RFC 8866) into lines by section, checking only the form: `v=0` first,
    /// `<type>=<value>` lines, complete `m=` lines and at least one media section.
    pub fn parse(text: &str) -> Result<Self, OfferError> {
        let malformed = |why: String| OfferError::Malformed(why);
        let mut lines = text.lines().map(str::trim_end).filter(|l| !l.is_empty());
        if lines.next() != Some("v=0") {
            return Err(malformed("does not start with v=0".into()));
        }
        let mut sdp = Sdp { session: vec!["v=0".into()], media: Vec::new() };
        for line in lines {
            let bytes = line.as_bytes();
            if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_lowercase() {
                return Err(malformed(format!("line {line:?} is not <type>=<value>")));
            }
            if let Some(media_line) = line.strip_prefix("m=") {
                if media_line.split(' ').count() < 4 {
                    return Err(malformed(format!("media line {line:?} is incomplete")));
                }
                sdp.media.push(Media { lines: vec![line.to_owned()] });
            } else if let Some(media) = sdp.media.last_mut() {
                media.lines.push(line.to_owned());
            } else {
                sdp.session.push(line.to_owned());
            }
        }
        if sdp.media.is_empty() {
            return Err(malformed("no media section".into()));
        }
        Ok(sdp)
    }

    /// The value of the first session-level `a=<name>` line, if any (empty for a flag).
    pub fn session_attribute(&self, name: &str) -> Option<&str> {
        attributes(&self.session, name).next()
    }
}

impl fmt::Display for Sdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in self.session.iter().chain(self.media.iter().flat_map(|m| &m.lines)) {
            write!(f, "{line}\r\n")?;
        }
        Ok(())
    }
}
