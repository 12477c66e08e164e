//! SDP handling for a WHIP endpoint (sans-IO): parse and check an offer, normalize what
//! webrtcbin 1.22 refuses, choose one codec per media section (the offer's order or ours), and
//! finish the answer (candidates, announced public addresses, bitrate hint, simulcast layers
//! accepted, which webrtcbin 1.22 does not write).

use std::fmt;
use std::net::IpAddr;

/// RTP header extensions that name a stream's layer (RFC 8852).
pub const RID_EXTENSION: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
pub const REPAIRED_RID_EXTENSION: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Audio,
    Video,
    Other,
}

/// A media section as lines (`m=` first), without line endings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub lines: Vec<String>,
}

impl Media {
    fn m_line(&self) -> &str {
        &self.lines[0][2..]
    }

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

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes(name).next()
    }

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
    pub session: Vec<String>,
    pub media: Vec<Media>,
}

impl Sdp {
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

/// A codec chosen for one media section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    pub payload_type: u8,
    /// Encoding name in upper case, as in GStreamer caps (AV1, H264, OPUS ...).
    pub name: String,
    pub clock_rate: u32,
    pub fmtp: Option<String>,
    /// The RTX payload type that repairs this codec, if offered.
    pub rtx_payload_type: Option<u8>,
}

/// What we will receive from each media section of the offer (in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPlan {
    pub mid: Option<String>,
    pub kind: MediaKind,
    /// `None`: the section is refused (made inactive).
    pub codec: Option<Codec>,
    /// Simulcast layers, in the order of the offer's `a=simulcast:send` (empty: one stream).
    pub rids: Vec<String>,
    /// The id of the RID header extension, which says which layer a packet belongs to.
    pub rid_extension: Option<u8>,
}

/// An offer made ready for webrtcbin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedOffer {
    pub sdp: Sdp,
    pub media: Vec<MediaPlan>,
}

/// Codec names (upper case) that may be received, most wanted first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecPreferences {
    pub video: Vec<String>,
    pub audio: Vec<String>,
    /// Which order picks among the acceptable codecs of a section.
    pub order: CodecOrder,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CodecOrder {
    /// The publisher's: the first acceptable codec of the offer (it knows its encoders).
    #[default]
    Offer,
    /// Ours: the first of `video`/`audio` that the offer has.
    Server,
}

/// How much an offer may ask of the server. webrtcbin gives every media section a transceiver,
/// and every unbundled one a transport of its own (ICE agent streams, sockets, DTLS, threads):
/// unchecked, one 64 KiB offer of 700 sections costs thousands of threads and descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfferLimits {
    /// Media sections (OBS sends 2, browsers 2 or 3).
    pub media_sections: usize,
    /// `a=candidate` lines in the whole offer (OBS sends none, Chromium a few per interface).
    pub candidates: usize,
    /// Simulcast layers of one section (OBS up to 4, browsers 3).
    pub layers: usize,
}

pub const DEFAULT_MAX_MEDIA_SECTIONS: usize = 4;

impl Default for OfferLimits {
    fn default() -> Self {
        OfferLimits { media_sections: DEFAULT_MAX_MEDIA_SECTIONS, candidates: 64, layers: 8 }
    }
}

/// Checks the shape of an offer before anything is built for it: within `limits`, and every
/// section in one BUNDLE group when there are several (RFC 9725 section 4.2: WHIP clients and
/// endpoints use BUNDLE), so that a session is one transport.
pub fn check_offer(sdp: &Sdp, limits: &OfferLimits) -> Result<(), OfferError> {
    let over = |why: String| Err(OfferError::OverLimit(why));
    if sdp.media.len() > limits.media_sections {
        return over(format!(
            "{} media sections; at most {} are taken here (max-media-sections)",
            sdp.media.len(),
            limits.media_sections
        ));
    }
    let candidates = sdp.media.iter().map(|m| m.attributes("candidate").count()).sum::<usize>()
        + attributes(&sdp.session, "candidate").count();
    if candidates > limits.candidates {
        return over(format!("{candidates} candidates; at most {} are taken", limits.candidates));
    }
    for (i, media) in sdp.media.iter().enumerate() {
        let layers = media.sent_rids().len();
        if layers > limits.layers {
            return over(format!(
                "media section {i} sends {layers} simulcast layers; at most {} are taken",
                limits.layers
            ));
        }
    }
    if sdp.media.len() > 1 {
        let bundled: Vec<&str> = attributes(&sdp.session, "group")
            .filter_map(|g| g.strip_prefix("BUNDLE"))
            .flat_map(|mids| mids.split_ascii_whitespace())
            .collect();
        for (i, media) in sdp.media.iter().enumerate() {
            if !media.mid().is_some_and(|mid| bundled.contains(&mid)) {
                return over(format!(
                    "media section {i} is not in the BUNDLE group: WHIP sessions bundle every section (RFC 9725 4.2)"
                ));
            }
        }
    }
    Ok(())
}

/// [`prepare_offer_within`] with the default limits.
pub fn prepare_offer(text: &str, prefs: &CodecPreferences) -> Result<PreparedOffer, OfferError> {
    prepare_offer_within(text, prefs, &OfferLimits::default())
}

/// Reads a publisher's offer, checks it and makes it acceptable to webrtcbin: transport
/// attributes copied into every media section, one codec (and its RTX) kept per section by
/// preference, sections with nothing acceptable made inactive.
/// Within `limits` (see [`check_offer`]).
pub fn prepare_offer_within(
    text: &str,
    prefs: &CodecPreferences,
    limits: &OfferLimits,
) -> Result<PreparedOffer, OfferError> {
    prepare(text, prefs, limits, Role::Publisher)
}

/// A viewer's offer (WHEP), read as [`prepare_offer_within`] reads a publisher's: here the
/// sections taken are those that receive (`recvonly`, `sendrecv`), and `prefs` lists the codecs
/// we have to send.
pub fn prepare_viewer_offer(
    text: &str,
    prefs: &CodecPreferences,
    limits: &OfferLimits,
) -> Result<PreparedOffer, OfferError> {
    prepare(text, prefs, limits, Role::Viewer)
}

/// Who made an offer: which of its sections we can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Publisher,
    Viewer,
}

fn prepare(
    text: &str,
    prefs: &CodecPreferences,
    limits: &OfferLimits,
    role: Role,
) -> Result<PreparedOffer, OfferError> {
    let mut sdp = Sdp::parse(text)?;
    check_offer(&sdp, limits)?;
    normalize_transport(&mut sdp)?;
    let mut plans = Vec::with_capacity(sdp.media.len());
    for media in &mut sdp.media {
        let wanted = match media.kind() {
            MediaKind::Video => &prefs.video,
            MediaKind::Audio => &prefs.audio,
            MediaKind::Other => &Vec::new(),
        };
        let taken = match role {
            Role::Publisher => !matches!(media.direction(), Some("recvonly" | "inactive")),
            Role::Viewer => !matches!(media.direction(), Some("sendonly" | "inactive")),
        };
        let codec = if taken { choose_codec(media, wanted, prefs.order) } else { None };
        match &codec {
            Some(codec) => keep_only(media, codec),
            None => make_inactive(media),
        }
        let (rids, rid_extension) = match (&codec, media.extension_id(RID_EXTENSION)) {
            (Some(_), Some(id)) => (media.sent_rids(), Some(id)),
            _ => (Vec::new(), None),
        };
        plans.push(MediaPlan { mid: media.mid().map(str::to_owned), kind: media.kind(), codec, rids, rid_extension });
    }
    if plans.iter().all(|p| p.codec.is_none()) {
        let offered: Vec<String> = sdp
            .media
            .iter()
            .flat_map(|m| m.attributes("rtpmap").filter_map(|r| r.split(' ').nth(1)).map(str::to_owned))
            .collect();
        let (directions, verb) = match role {
            Role::Publisher => ("sendonly/sendrecv", "take"),
            Role::Viewer => ("recvonly/sendrecv", "send"),
        };
        return Err(OfferError::Unacceptable(format!(
            "no {directions} media with a codec we {verb} (video {:?}, audio {:?}); offered {:?}",
            prefs.video, prefs.audio, offered
        )));
    }
    Ok(PreparedOffer { sdp, media: plans })
}

fn normalize_transport(sdp: &mut Sdp) -> Result<(), OfferError> {
    for name in TRANSPORT_ATTRIBUTES {
        let Some(value) = sdp.session_attribute(name).map(str::to_owned) else { continue };
        for media in &mut sdp.media {
            if media.attribute(name).is_none() {
                media.lines.push(format!("a={name}:{value}"));
            }
        }
    }
    let first = &sdp.media[0];
    for name in ["ice-ufrag", "ice-pwd", "fingerprint"] {
        if first.attribute(name).is_none() {
            return Err(OfferError::Malformed(format!("no a={name} for the first media section")));
        }
    }
    Ok(())
}

fn rtpmap(media: &Media, pt: &str) -> Option<(String, u32)> {
    media.attributes("rtpmap").find_map(|value| {
        let (p, rest) = value.split_once(' ')?;
        if p != pt {
            return None;
        }
        let mut parts = rest.split('/');
        let name = parts.next()?.to_ascii_uppercase();
        let clock = parts.next()?.parse().ok()?;
        Some((name, clock))
    })
}

fn fmtp<'a>(media: &'a Media, pt: &str) -> Option<&'a str> {
    media.attributes("fmtp").find_map(|v| v.split_once(' ').filter(|(p, _)| *p == pt).map(|(_, f)| f))
}

fn fmtp_param<'a>(fmtp: &'a str, key: &str) -> Option<&'a str> {
    fmtp.split(';')
        .find_map(|kv| kv.trim().split_once('=').filter(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// The channels and sample rate an Opus stream is depayloaded with, from the offer's `a=fmtp`
/// (RFC 7587 section 7: `sprop-stereo`, `sprop-maxcapturerate`), as rtpopusdepay sets them:
/// stereo unless `sprop-stereo=0` (a mono sender may still send stereo at times), 48 kHz unless
/// a valid `sprop-maxcapturerate` says otherwise. opusparse's OpusHead keeps both.
pub fn opus_format(fmtp: Option<&str>) -> (u8, u32) {
    let param = |key| fmtp.and_then(|f| fmtp_param(f, key)).map(str::trim);
    let channels = if param("sprop-stereo") == Some("0") { 1 } else { 2 };
    let rate = param("sprop-maxcapturerate").and_then(|r| r.parse::<u32>().ok()).filter(|&r| r <= i32::MAX as u32);
    (channels, rate.unwrap_or(48_000))
}

/// How much we like one payload type of a codec among several (H264 profiles and modes).
fn variant_rank(name: &str, fmtp: Option<&str>) -> u32 {
    if name != "H264" {
        return 0;
    }
    let fmtp = fmtp.unwrap_or("");
    let mode1 = fmtp_param(fmtp, "packetization-mode") == Some("1");
    let profile = fmtp_param(fmtp, "profile-level-id").map(|p| p.to_ascii_lowercase());
    // Constrained baseline (42e0..) decodes everywhere; baseline (4200..) nearly so.
    let profile_rank = match profile.as_deref() {
        Some(p) if p.starts_with("42e0") => 2,
        Some(p) if p.starts_with("4200") => 1,
        _ => 0,
    };
    u32::from(mode1) * 4 + profile_rank
}

fn choose_codec(media: &Media, wanted: &[String], order: CodecOrder) -> Option<Codec> {
    let formats = media.formats();
    let names: Vec<Option<String>> = formats.iter().map(|pt| rtpmap(media, pt).map(|(name, _)| name)).collect();
    let candidates: Vec<(usize, u32, &str, String, u32)> = formats
        .iter()
        .filter_map(|pt| {
            let (name, clock) = rtpmap(media, pt)?;
            let ours = wanted.iter().position(|w| w.eq_ignore_ascii_case(&name))?;
            let preference = match order {
                // Where the codec first appears in the offer (its variants are ranked below).
                CodecOrder::Offer => names.iter().position(|n| n.as_deref() == Some(name.as_str()))?,
                CodecOrder::Server => ours,
            };
            Some((preference, variant_rank(&name, fmtp(media, pt)), *pt, name, clock))
        })
        .collect();
    let best = candidates.iter().min_by_key(|(pref, rank, ..)| (*pref, u32::MAX - rank))?;
    let (_, _, pt, name, clock) = best;
    let rtx_payload_type = formats.iter().find_map(|rtx| {
        let (rtx_name, _) = rtpmap(media, rtx)?;
        (rtx_name == "RTX" && fmtp(media, rtx).and_then(|f| fmtp_param(f, "apt")) == Some(*pt))
            .then(|| rtx.parse().ok())?
    });
    Some(Codec {
        payload_type: pt.parse().ok()?,
        name: name.clone(),
        clock_rate: *clock,
        fmtp: fmtp(media, pt).map(str::to_owned),
        rtx_payload_type,
    })
}

/// Removes every payload type but the codec's and its RTX's from a media section.
fn keep_only(media: &mut Media, codec: &Codec) {
    let keep: Vec<String> =
        std::iter::once(codec.payload_type).chain(codec.rtx_payload_type).map(|pt| pt.to_string()).collect();
    let mut m = media.m_line().split(' ').take(3).map(str::to_owned).collect::<Vec<_>>();
    m.extend(keep.iter().cloned());
    media.lines[0] = format!("m={}", m.join(" "));
    media.lines.retain(|line| {
        let Some(attr) = line.strip_prefix("a=") else { return true };
        for prefix in ["rtpmap:", "fmtp:", "rtcp-fb:"] {
            if let Some(rest) = attr.strip_prefix(prefix) {
                let pt = rest.split(' ').next().unwrap_or("");
                return pt == "*" || keep.iter().any(|k| k == pt);
            }
        }
        true
    });
}

fn make_inactive(media: &mut Media) {
    media.lines.retain(|l| !matches!(l.as_str(), "a=sendrecv" | "a=sendonly" | "a=recvonly" | "a=inactive"));
    media.lines.push("a=inactive".into());
}

/// A local ICE candidate as webrtcbin reports it: the media line index and the attribute value
/// (`candidate:...`, with or without the `a=` prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCandidate {
    pub mline: u32,
    pub candidate: String,
}

/// Completes an answer: every gathered candidate in its media section (and in every bundled
/// section), host candidates repeated for each announced public address, end-of-candidates, and
/// a start-bitrate hint on video so that browsers do not start at 320x180.
pub fn finish_answer(
    answer: &str,
    candidates: &[LocalCandidate],
    public_addresses: &[IpAddr],
    start_bitrate_kbps: u32,
) -> Result<String, OfferError> {
    let mut sdp = Sdp::parse(answer)?;
    let count = sdp.media.len();
    for (index, media) in sdp.media.iter_mut().enumerate() {
        if media.attributes("inactive").next().is_some() && index > 0 {
            continue;
        }
        let mut present: Vec<String> = media.attributes("candidate").map(str::to_owned).collect();
        let ours = candidates.iter().filter(|c| c.mline as usize == index || count == 1 || c.mline == 0);
        let mut added = Vec::new();
        for c in ours {
            let value = c.candidate.trim_start_matches("a=").trim_start_matches("candidate:").to_owned();
            if !present.contains(&value) {
                added.push(value.clone());
                present.push(value);
            }
        }
        for value in present.clone() {
            for (i, address) in public_addresses.iter().enumerate() {
                if let Some(public) = public_candidate(&value, *address, i)
                    && !present.contains(&public)
                {
                    added.push(public.clone());
                    present.push(public);
                }
            }
        }
        media.lines.extend(added.into_iter().map(|c| format!("a=candidate:{c}")));
        if media.attribute("end-of-candidates").is_none() {
            media.lines.push("a=end-of-candidates".into());
        }
        if media.kind() == MediaKind::Video && start_bitrate_kbps > 0 {
            add_start_bitrate(media, start_bitrate_kbps);
        }
    }
    Ok(sdp.to_string())
}

/// An answer that receives every simulcast layer the offer sends (RFC 8853): `a=rid:<id> recv`
/// for each and one `a=simulcast:recv` line listing them with `;` (OBS 32 counts the layers of the
/// first such line and gives up when they are fewer than it sends); and the header extensions
/// that tell layers apart where offered: MID, RID and repaired RID (simulcast), the AV1
/// dependency descriptor (SVC), with `a=extmap-allow-mixed` (its two-byte form). webrtcbin 1.22
/// writes none of these. Without the RID extension simulcast layers cannot be told apart: none
/// is accepted.
pub fn accept_layers(answer: &str, offer: &Sdp) -> Result<String, OfferError> {
    let mut sdp = Sdp::parse(answer)?;
    let mixed = |lines: &[String]| attributes(lines, "extmap-allow-mixed").next().is_some();
    if (mixed(&offer.session) || offer.media.iter().any(|m| mixed(&m.lines))) && !mixed(&sdp.session) {
        sdp.session.push("a=extmap-allow-mixed".into());
    }
    for (media, offered) in sdp.media.iter_mut().zip(&offer.media) {
        if media.attributes("inactive").next().is_some() {
            continue;
        }
        for uri in RECEIVED_EXTENSIONS {
            if let (Some(id), None) = (offered.extension_id(uri), media.extension_id(uri)) {
                media.lines.push(format!("a=extmap:{id} {uri}"));
            }
        }
        let rids = offered.sent_rids();
        if rids.is_empty() || offered.extension_id(RID_EXTENSION).is_none() || media.attribute("rid").is_some() {
            continue;
        }
        media.lines.extend(rids.iter().map(|rid| format!("a=rid:{rid} recv")));
        media.lines.push(format!("a=simulcast:recv {}", rids.join(";")));
    }
    Ok(sdp.to_string())
}

/// A host candidate with its address replaced by a public one (same port and transport).
fn public_candidate(candidate: &str, address: IpAddr, index: usize) -> Option<String> {
    let fields: Vec<&str> = candidate.split(' ').collect();
    // foundation component transport priority address port typ host ...
    if fields.len() < 8 || fields[6] != "typ" || fields[7] != "host" {
        return None;
    }
    if fields[4].parse::<IpAddr>().ok()?.is_ipv4() != address.is_ipv4() {
        return None;
    }
    let mut out: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
    out[0] = format!("{}p{index}", fields[0]);
    // A little below the real host candidate, so that a peer on the same network prefers it.
    out[3] = fields[3].parse::<u32>().ok()?.saturating_sub(1 + index as u32).to_string();
    out[4] = address.to_string();
    Some(out.join(" "))
}

fn add_start_bitrate(media: &mut Media, kbps: u32) {
    let video_pts: Vec<String> = media
        .formats()
        .iter()
        .filter(|pt| rtpmap(media, pt).is_some_and(|(name, _)| !matches!(name.as_str(), "RTX" | "RED" | "ULPFEC")))
        .map(|pt| (*pt).to_owned())
        .collect();
    for pt in video_pts {
        let hint = format!("x-google-start-bitrate={kbps}");
        if let Some(line) = media.lines.iter_mut().find(|l| l.starts_with(&format!("a=fmtp:{pt} "))) {
            if !line.contains("x-google-start-bitrate") {
                line.push(';');
                line.push_str(&hint);
            }
        } else {
            media.lines.push(format!("a=fmtp:{pt} {hint}"));
        }
    }
}

/// What a PATCH body (`application/trickle-ice-sdpfrag`, RFC 8840) carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SdpFragment {
    pub ice_ufrag: Option<String>,
    pub ice_pwd: Option<String>,
    /// (mid, candidate value without `candidate:`); mid is `None` before any `a=mid`.
    pub candidates: Vec<(Option<String>, String)>,
    pub end_of_candidates: bool,
}

pub fn parse_sdpfrag(text: &str) -> Result<SdpFragment, OfferError> {
    let mut frag = SdpFragment::default();
    let mut mid = None;
    for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
        let Some(attr) = line.strip_prefix("a=") else {
            if line.starts_with("m=") {
                continue;
            }
            return Err(OfferError::Malformed(format!("unexpected line {line:?} in sdpfrag")));
        };
        if let Some(v) = attr.strip_prefix("ice-ufrag:") {
            frag.ice_ufrag = Some(v.to_owned());
        } else if let Some(v) = attr.strip_prefix("ice-pwd:") {
            frag.ice_pwd = Some(v.to_owned());
        } else if let Some(v) = attr.strip_prefix("mid:") {
            mid = Some(v.to_owned());
        } else if let Some(v) = attr.strip_prefix("candidate:") {
            frag.candidates.push((mid.clone(), v.to_owned()));
        } else if attr == "end-of-candidates" {
            frag.end_of_candidates = true;
        }
    }
    Ok(frag)
}

/// ICE credentials (RFC 8839: a ufrag of at least 4 and a password of at least 22 ice-chars).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceCredentials {
    pub ufrag: String,
    pub pwd: String,
}

impl IceCredentials {
    /// Fresh random credentials (hex: 32 bits of ufrag, 128 bits of password).
    pub fn random() -> Self {
        Self { ufrag: crate::whip::random_id()[..8].to_owned(), pwd: crate::whip::random_id() }
    }
}

fn is_ice_chars(value: &str) -> bool {
    value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// The ICE credentials an ICE-restart PATCH carries, checked (RFC 8839 lengths and characters).
pub fn restart_credentials(frag: &SdpFragment) -> Result<IceCredentials, OfferError> {
    let (Some(ufrag), Some(pwd)) = (&frag.ice_ufrag, &frag.ice_pwd) else {
        return Err(OfferError::Malformed("an ICE restart needs both a=ice-ufrag and a=ice-pwd".into()));
    };
    let valid = |value: &str, min: usize| (min..=256).contains(&value.len()) && is_ice_chars(value);
    if !valid(ufrag, 4) || !valid(pwd, 22) {
        return Err(OfferError::Malformed("ice-ufrag must be 4-256 and ice-pwd 22-256 ice-chars (RFC 8839)".into()));
    }
    Ok(IceCredentials { ufrag: ufrag.clone(), pwd: pwd.clone() })
}

/// Replaces the values of `a=ice-ufrag` and `a=ice-pwd` wherever they stand.
fn set_credentials(lines: &mut [String], credentials: &IceCredentials) {
    for line in lines {
        if line.starts_with("a=ice-ufrag:") {
            *line = format!("a=ice-ufrag:{}", credentials.ufrag);
        } else if line.starts_with("a=ice-pwd:") {
            *line = format!("a=ice-pwd:{}", credentials.pwd);
        }
    }
}

/// The offer an ICE restart amounts to (RFC 9725 4.4.2): the session's offer with the
/// publisher's new credentials, its old candidates replaced by the PATCH's (each in the section
/// its `a=mid` names, the first one when none is named) and the origin's version increased.
pub fn restart_offer(offer: &Sdp, frag: &SdpFragment) -> Result<Sdp, OfferError> {
    let credentials = restart_credentials(frag)?;
    let mut sdp = offer.clone();
    set_credentials(&mut sdp.session, &credentials);
    for line in sdp.session.iter_mut().filter(|l| l.starts_with("o=")) {
        let mut fields: Vec<String> = line[2..].split(' ').map(str::to_owned).collect();
        if let Some(version) = fields.get(2).and_then(|v| v.parse::<u64>().ok()) {
            fields[2] = (version + 1).to_string();
            *line = format!("o={}", fields.join(" "));
        }
    }
    for media in &mut sdp.media {
        set_credentials(&mut media.lines, &credentials);
        media.lines.retain(|l| !l.starts_with("a=candidate:") && l != "a=end-of-candidates");
    }
    for (mid, candidate) in &frag.candidates {
        let index = mid.as_deref().and_then(|mid| sdp.media.iter().position(|m| m.mid() == Some(mid))).unwrap_or(0);
        sdp.media[index].lines.push(format!("a=candidate:{candidate}"));
    }
    Ok(sdp)
}

/// An answer with our new ICE credentials in place of the ones webrtcbin wrote (it keeps its
/// first answer's credentials on every later answer).
pub fn with_credentials(answer: &str, credentials: &IceCredentials) -> Result<String, OfferError> {
    let mut sdp = Sdp::parse(answer)?;
    set_credentials(&mut sdp.session, credentials);
    for media in &mut sdp.media {
        set_credentials(&mut media.lines, credentials);
    }
    Ok(sdp.to_string())
}

/// An answer in which we are the DTLS server (`a=setup:passive`) where the offer let us choose
/// (`actpass`; webrtcbin answers `active`). As DTLS server our SRTP keys are ready before the
/// publisher's last handshake flight reaches it, so its first packets (the first key frame) are
/// never dropped for want of a key, which a DTLS client on a busy CPU does (webrtcbin's srtpdec:
/// "no srtp key available yet").
pub fn as_dtls_server(answer: &str, offer: &Sdp) -> Result<String, OfferError> {
    let offered = |lines: &[String]| attributes(lines, "setup").next().map(str::to_owned);
    let session_setup = offered(&offer.session);
    let mut sdp = Sdp::parse(answer)?;
    for (index, media) in sdp.media.iter_mut().enumerate() {
        let setup = offer.media.get(index).and_then(|m| offered(&m.lines)).or_else(|| session_setup.clone());
        if setup.as_deref() == Some("actpass") {
            for line in media.lines.iter_mut().filter(|l| l.as_str() == "a=setup:active") {
                *line = "a=setup:passive".into();
            }
        }
    }
    Ok(sdp.to_string())
}

/// The body of the 200 to an ICE restart (RFC 9725 4.4.2, RFC 8840): our new credentials and our
/// candidates (those of the session's answer) for the first, bundle-carrying media section.
pub fn restart_sdpfrag(answer: &Sdp, credentials: &IceCredentials) -> String {
    let mut lines: Vec<String> = answer.session.iter().filter(|l| l.starts_with("a=group:BUNDLE")).cloned().collect();
    let first = &answer.media[0];
    lines.push(first.lines[0].clone());
    if let Some(mid) = first.mid() {
        lines.push(format!("a=mid:{mid}"));
    }
    lines.push(format!("a=ice-ufrag:{}", credentials.ufrag));
    lines.push(format!("a=ice-pwd:{}", credentials.pwd));
    lines.extend(first.attributes("candidate").map(|c| format!("a=candidate:{c}")));
    lines.push("a=end-of-candidates".into());
    lines.iter().map(|l| format!("{l}\r\n")).collect()
}

#[cfg(test)]
#[path = "sdp_tests.rs"]
mod tests;
