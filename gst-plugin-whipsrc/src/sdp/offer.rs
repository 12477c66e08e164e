//! The offer: its shape checked, what webrtcbin 1.22 refuses normalized, one codec chosen per
//! media section.

use super::*;

/// A codec chosen for one media section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    /// The RTP payload type of the `m=` line (0..=127).
    pub payload_type: u8,
    /// Encoding name in upper case, as in GStreamer caps (AV1, H264, OPUS ...).
    pub name: String,
    /// The RTP clock rate from `a=rtpmap`, in Hz (90000 for video, 48000 for Opus).
    pub clock_rate: u32,
    /// The payload type's `a=fmtp` parameters (what follows `a=fmtp:<pt> `), if given.
    pub fmtp: Option<String>,
    /// The RTX payload type that repairs this codec, if offered.
    pub rtx_payload_type: Option<u8>,
}

/// What we will receive from each media section of the offer (in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPlan {
    /// The section's `a=mid`, if it has one.
    pub mid: Option<String>,
    /// Audio, video or other, from the `m=` line.
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
    /// The offer as normalized, to set as webrtcbin's remote description.
    pub sdp: Sdp,
    /// One plan per media section, in the offer's order.
    pub media: Vec<MediaPlan>,
}

/// Codec names (upper case) that may be received, most wanted first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecPreferences {
    /// Video codec names, most wanted first (`AV1`, `H264`, ...).
    pub video: Vec<String>,
    /// Audio codec names, most wanted first (`OPUS`, ...).
    pub audio: Vec<String>,
    /// Which order picks among the acceptable codecs of a section.
    pub order: CodecOrder,
}

/// Whose order of preference picks a section's codec.
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

/// The default of [`OfferLimits::media_sections`] (whipcastsrc `max-media-sections`).
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

pub(super) fn rtpmap(media: &Media, pt: &str) -> Option<(String, u32)> {
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
