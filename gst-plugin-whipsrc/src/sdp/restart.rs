//! ICE restart and trickle (PATCH, RFC 8840): the sdpfrag read, new credentials, the restarted
//! offer and the answer's fragment.

use super::*;

/// What a PATCH body (`application/trickle-ice-sdpfrag`, RFC 8840) carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SdpFragment {
    /// The `a=ice-ufrag`, if any: one other than the session's asks for an ICE restart.
    pub ice_ufrag: Option<String>,
    /// The `a=ice-pwd`, if any.
    pub ice_pwd: Option<String>,
    /// (mid, candidate value without `candidate:`); mid is `None` before any `a=mid`.
    pub candidates: Vec<(Option<String>, String)>,
    /// An `a=end-of-candidates` line was present: the client has no more candidates.
    pub end_of_candidates: bool,
}

/// Reads a PATCH body: its `a=` lines (unknown attributes and `m=` lines skipped); any other line
/// is malformed (400).
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
    /// The username fragment (`a=ice-ufrag`).
    pub ufrag: String,
    /// The password (`a=ice-pwd`).
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
