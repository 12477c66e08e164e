//! The answer finished: candidates (and announced public addresses), the start-bitrate hint, the
//! simulcast layers accepted, DTLS role.

use std::net::IpAddr;

use super::*;

/// A local ICE candidate as webrtcbin reports it: the media line index and the attribute value
/// (`candidate:...`, with or without the `a=` prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCandidate {
    /// The index of the media section it was gathered for, 0 first.
    pub mline: u32,
    /// The candidate attribute's value (RFC 8839), `candidate:...`, with or without `a=`.
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
