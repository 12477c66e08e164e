//! The HTTP side of WHIP (RFC 9725) as plain rules (sans-IO): which request goes where, and
//! which status a bad one gets, with a one-line reason.

use std::fmt;

/// Bodies larger than this are refused (413): an SDP offer is a few KiB.
pub const MAX_BODY: usize = 64 * 1024;

/// The media type of an SDP offer or answer (RFC 8866), the body of a POST and its 201.
pub const SDP: &str = "application/sdp";
/// The media type of a trickle ICE / ICE restart PATCH body (RFC 8840).
pub const SDPFRAG: &str = "application/trickle-ice-sdpfrag";

/// Headers every response carries so that a page on any origin can publish.
pub const CORS_HEADERS: [(&str, &str); 5] = [
    ("access-control-allow-origin", "*"),
    ("access-control-allow-methods", "OPTIONS, GET, POST, PATCH, DELETE"),
    ("access-control-allow-headers", "Authorization, Content-Type, If-Match"),
    ("access-control-expose-headers", "Location, ETag, Link, Accept-Post, Accept-Patch, Retry-After"),
    ("access-control-max-age", "86400"),
];

/// A request as far as routing is concerned.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// The HTTP method, upper case as sent (`POST`, `PATCH`, ...).
    pub method: &'a str,
    /// The request target; a `?query` is ignored.
    pub path: &'a str,
    /// The Content-Type header's value, if any; parameters such as `charset` are ignored.
    pub content_type: Option<&'a str>,
    /// The Authorization header's value, if any (`Bearer <token>`).
    pub authorization: Option<&'a str>,
    /// The Content-Length header, in bytes, if given; over [`MAX_BODY`] is refused (413).
    pub content_length: Option<u64>,
}

/// What a routed request asks for, on the stream (and session) its path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// OPTIONS: CORS preflight / capability discovery. `resource` when aimed at a session URL.
    Preflight {
        /// The stream name (`cam` or `cam/source`).
        stream: String,
        /// Whether the path names a session of the stream, not the endpoint.
        resource: bool,
    },
    /// POST an offer to a stream.
    Create {
        /// The stream name the offer is for.
        stream: String,
    },
    /// DELETE a session.
    Delete {
        /// The stream name.
        stream: String,
        /// The session id, the last segment of the session URL.
        resource: String,
    },
    /// PATCH a session (trickle candidates, ICE restart).
    Patch {
        /// The stream name.
        stream: String,
        /// The session id, the last segment of the session URL.
        resource: String,
    },
}

/// An HTTP error response: status, a one-line reason for the body, and extra headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The HTTP status code (4xx or 5xx).
    pub status: u16,
    /// One line saying why, sent as the body.
    pub reason: String,
    /// Extra response headers (lower-case name, value), e.g. `allow` on a 405.
    pub headers: Vec<(&'static str, String)>,
}

impl Rejection {
    /// A rejection with `status` and `reason`, and no extra headers.
    pub fn new(status: u16, reason: impl Into<String>) -> Self {
        Self { status, reason: reason.into(), headers: Vec::new() }
    }

    /// Adds the response header `name: value` (name in lower case).
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.reason)
    }
}

/// Whether a stream exists on this server, and the token it wants.
pub enum StreamAuth {
    /// No such stream: the request gets 404.
    Unknown,
    /// The stream exists and needs no token.
    Open,
    /// The stream exists and POST, PATCH and DELETE need `Authorization: Bearer <token>`.
    Token(String),
}

/// What an endpoint serves: publishers POST to `/whip/<stream>` (RFC 9725), viewers to
/// `/whep/<stream>` (draft-ietf-wish-whep); a session's URL is the endpoint's with its id added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// WHIP (RFC 9725): a publisher sends media to us.
    Whip,
    /// WHEP (draft-ietf-wish-whep): a viewer receives media from us.
    Whep,
}

impl Protocol {
    /// The path prefix, lower case: `whip` or `whep`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Whip => "whip",
            Protocol::Whep => "whep",
        }
    }
}

/// Most path segments a stream name may have (`cam`, `cam/source`).
pub const MAX_STREAM_SEGMENTS: usize = 2;

/// Whether `stream` can name an endpoint: one or two segments of letters, digits, `-`, `_`, `.`.
pub fn is_stream_name(stream: &str) -> bool {
    let segments = stream.split('/').count();
    segments <= MAX_STREAM_SEGMENTS && stream.split('/').all(is_name)
}

/// Splits `/whip/<stream>[/<resource>]` (or `/whep/...`) into the protocol and the segments.
pub fn parse_path(path: &str) -> Option<(Protocol, Vec<&str>)> {
    let (protocol, rest) = [Protocol::Whip, Protocol::Whep]
        .into_iter()
        .find_map(|p| Some((p, path.strip_prefix('/')?.strip_prefix(p.name())?.strip_prefix('/')?)))?;
    let segments: Vec<&str> = rest.split('/').collect();
    (segments.len() <= MAX_STREAM_SEGMENTS + 1 && segments.iter().all(|s| is_name(s))).then_some((protocol, segments))
}

/// Where a request goes: its protocol, the stream that exists (the longest name the path starts
/// with: `/whep/cam/source` is stream `cam/source` when served, else a session `source` of
/// `cam`), the session id after it, and the token the stream wants (`None`: open).
pub fn locate(
    path: &str,
    mut auth: impl FnMut(Protocol, &str) -> StreamAuth,
) -> Result<(Protocol, String, Option<String>, Option<String>), Rejection> {
    let path = path.split('?').next().unwrap_or("");
    let Some((protocol, segments)) = parse_path(path) else {
        return Err(Rejection::new(
            404,
            format!("no WHIP or WHEP endpoint at {path}; publish to /whip/<stream>, watch /whep/<stream>"),
        ));
    };
    for resource_segments in 0..=1 {
        let Some(split) = segments.len().checked_sub(resource_segments).filter(|&n| n >= 1) else { continue };
        if split > MAX_STREAM_SEGMENTS {
            continue;
        }
        let stream = segments[..split].join("/");
        let token = match auth(protocol, &stream) {
            StreamAuth::Unknown => continue,
            StreamAuth::Open => None,
            StreamAuth::Token(token) => Some(token),
        };
        return Ok((protocol, stream, segments.get(split).map(|s| (*s).to_owned()), token));
    }
    let stream = segments[..segments.len().min(MAX_STREAM_SEGMENTS)].join("/");
    Err(Rejection::new(404, format!("no stream named {stream:?} here")))
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn media_type(content_type: Option<&str>) -> Option<String> {
    let value = content_type?.split(';').next()?.trim();
    Some(value.to_ascii_lowercase())
}

/// Decides what to do with a request, or why not.
pub fn route(
    head: &RequestHead<'_>,
    auth: impl FnMut(Protocol, &str) -> StreamAuth,
) -> Result<(Protocol, Action), Rejection> {
    let (protocol, stream, resource, token) = locate(head.path, auth)?;
    let action = match (head.method, resource) {
        ("OPTIONS", resource) => return Ok((protocol, Action::Preflight { stream, resource: resource.is_some() })),
        ("POST", None) => Action::Create { stream },
        ("DELETE", Some(resource)) => Action::Delete { stream, resource },
        ("PATCH", Some(resource)) => Action::Patch { stream, resource },
        (method, None) => {
            let name = protocol.name().to_ascii_uppercase();
            return Err(Rejection::new(
                405,
                format!("{method} is not allowed on a {name} endpoint; POST an SDP offer"),
            )
            .with_header("allow", "OPTIONS, POST"));
        }
        (method, Some(_)) => {
            let name = protocol.name().to_ascii_uppercase();
            return Err(Rejection::new(
                405,
                format!("{method} is not allowed on a {name} session; use PATCH or DELETE"),
            )
            .with_header("allow", "OPTIONS, PATCH, DELETE"));
        }
    };
    if let Some(token) = token {
        check_token(head.authorization, &token)?;
    }
    let expected_type = match &action {
        Action::Create { .. } => Some(SDP),
        Action::Patch { .. } => Some(SDPFRAG),
        _ => None,
    };
    if let Some(expected) = expected_type {
        let given = media_type(head.content_type);
        if given.as_deref() != Some(expected) {
            return Err(Rejection::new(
                415,
                format!("Content-Type must be {expected}, not {}", given.as_deref().unwrap_or("(none)")),
            )
            .with_header(if expected == SDP { "accept-post" } else { "accept-patch" }, expected));
        }
    }
    if head.content_length.is_some_and(|len| len > MAX_BODY as u64) {
        return Err(too_large());
    }
    Ok((protocol, action))
}

/// `authorization` (the header's value) must carry `Bearer <token>`.
pub fn check_token(authorization: Option<&str>, token: &str) -> Result<(), Rejection> {
    let given = authorization.and_then(|a| a.strip_prefix("Bearer ").or_else(|| a.strip_prefix("bearer ")));
    match given {
        None => Err(unauthorized("missing Authorization: Bearer token")),
        Some(given) if !constant_time_eq(given.trim().as_bytes(), token.as_bytes()) => {
            Err(unauthorized("wrong bearer token"))
        }
        Some(_) => Ok(()),
    }
}

/// The 413 for a body over [`MAX_BODY`] bytes.
pub fn too_large() -> Rejection {
    Rejection::new(413, format!("body larger than {MAX_BODY} bytes"))
}

fn unauthorized(reason: &str) -> Rejection {
    Rejection::new(401, reason).with_header("www-authenticate", "Bearer")
}

/// Compares without an early exit, so the time taken does not tell how much of a guess was
/// right (only whether its length was).
pub fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = given.len() ^ expected.len();
    for (i, e) in expected.iter().enumerate() {
        diff |= usize::from(given.get(i).copied().unwrap_or(!e) ^ e);
    }
    diff == 0
}

/// A new unguessable identifier (128 random bits, hex).
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The browser publish page, offering `streams` (names as they appear in `/whip/<stream>`).
pub fn publish_page(streams: &[String]) -> String {
    let options: String = streams.iter().map(|s| format!("<option value=\"{}\">", html_escape(s))).collect();
    include_str!("publish-page.html").replacen("<!--STREAMS-->", &options, 1)
}

fn html_escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// A strong entity tag for a session's ICE state.
pub fn new_etag() -> String {
    format!("\"{}\"", random_id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head<'a>(method: &'a str, path: &'a str) -> RequestHead<'a> {
        RequestHead {
            method,
            path,
            content_type: Some("application/sdp"),
            authorization: None,
            content_length: Some(100),
        }
    }

    fn open(_: Protocol, stream: &str) -> StreamAuth {
        if stream.contains('/') { StreamAuth::Unknown } else { StreamAuth::Open }
    }

    fn secret(_: Protocol, stream: &str) -> StreamAuth {
        if stream == "live" { StreamAuth::Token("s3cret".into()) } else { StreamAuth::Unknown }
    }

    const W: Protocol = Protocol::Whip;

    #[test]
    fn routes() {
        assert_eq!(route(&head("POST", "/whip/live"), open), Ok((W, Action::Create { stream: "live".into() })));
        assert_eq!(
            route(&head("DELETE", "/whip/live/abc"), open),
            Ok((W, Action::Delete { stream: "live".into(), resource: "abc".into() }))
        );
        assert_eq!(
            route(&head("OPTIONS", "/whip/live"), secret),
            Ok((W, Action::Preflight { stream: "live".into(), resource: false })),
            "preflight needs no token"
        );
        let mut patch = head("PATCH", "/whip/live/abc");
        patch.content_type = Some("application/trickle-ice-sdpfrag");
        assert_eq!(route(&patch, open), Ok((W, Action::Patch { stream: "live".into(), resource: "abc".into() })));
    }

    #[test]
    fn whep_streams_of_two_segments_are_told_from_sessions() {
        // Served: whep "cam" and whep "cam/source"; whip "cam".
        let served = |protocol: Protocol, stream: &str| match (protocol, stream) {
            (_, "cam") | (Protocol::Whep, "cam/source") => StreamAuth::Open,
            _ => StreamAuth::Unknown,
        };
        let whep = Protocol::Whep;
        assert_eq!(route(&head("POST", "/whep/cam"), served), Ok((whep, Action::Create { stream: "cam".into() })));
        assert_eq!(
            route(&head("POST", "/whep/cam/source"), served),
            Ok((whep, Action::Create { stream: "cam/source".into() }))
        );
        assert_eq!(
            route(&head("DELETE", "/whep/cam/source/abc"), served),
            Ok((whep, Action::Delete { stream: "cam/source".into(), resource: "abc".into() }))
        );
        assert_eq!(
            route(&head("DELETE", "/whep/cam/abc"), served),
            Ok((whep, Action::Delete { stream: "cam".into(), resource: "abc".into() }))
        );
        // whip has no "cam/source": a POST there aims at a session of "cam".
        assert_eq!(route(&head("POST", "/whip/cam/source"), served).unwrap_err().status, 405);
        assert_eq!(route(&head("POST", "/whep/other"), served).unwrap_err().status, 404);
        assert_eq!(route(&head("DELETE", "/whep/cam/source/abc/def"), served).unwrap_err().status, 404);
        assert!(is_stream_name("cam/source") && is_stream_name("live"));
        assert!(!is_stream_name("a/b/c") && !is_stream_name("a//b") && !is_stream_name("../x") && !is_stream_name(""));
    }

    #[test]
    fn publish_page_lists_streams_escaped() {
        let page = publish_page(&["live".into(), "a\"><script>".into()]);
        assert!(page.contains(
            r#"<datalist id="streams"><option value="live"><option value="a&quot;&gt;&lt;script&gt;"></datalist>"#
        ));
        assert!(!page.contains("<!--STREAMS-->"));
        assert!(page.contains("window.whipPublish"));
    }

    #[test]
    fn not_found_and_not_allowed() {
        for path in ["/", "/whip", "/whip/", "/other/live", "/whip/a/b/c", "/whip/../etc", "/whipx/live", "/whep"] {
            assert_eq!(route(&head("POST", path), open).unwrap_err().status, 404, "{path}");
        }
        assert_eq!(route(&head("POST", "/whip/nope"), secret).unwrap_err().status, 404);
        let r = route(&head("GET", "/whip/live"), open).unwrap_err();
        assert_eq!((r.status, r.headers[0].0), (405, "allow"));
        assert_eq!(route(&head("POST", "/whip/live/abc"), open).unwrap_err().status, 405);
    }

    #[test]
    fn bearer_token_on_post_delete_patch() {
        for method in ["POST", "DELETE", "PATCH"] {
            let path = if method == "POST" { "/whip/live" } else { "/whip/live/abc" };
            let mut h = head(method, path);
            h.content_type = Some(if method == "PATCH" { SDPFRAG } else { SDP });
            let r = route(&h, secret).unwrap_err();
            assert_eq!(r.status, 401);
            assert_eq!(r.headers, vec![("www-authenticate", "Bearer".to_string())]);
            h.authorization = Some("Bearer wrong");
            assert_eq!(route(&h, secret).unwrap_err().status, 401);
            h.authorization = Some("Bearer s3cret");
            assert!(route(&h, secret).is_ok(), "{method}");
        }
    }

    #[test]
    fn content_type_and_size() {
        let mut h = head("POST", "/whip/live");
        h.content_type = Some("text/plain");
        assert_eq!(route(&h, open).unwrap_err().status, 415);
        h.content_type = None;
        assert_eq!(route(&h, open).unwrap_err().status, 415);
        h.content_type = Some("Application/SDP; charset=utf-8");
        assert!(route(&h, open).is_ok());
        h.content_length = Some(MAX_BODY as u64 + 1);
        assert_eq!(route(&h, open).unwrap_err().status, 413);
        let mut p = head("PATCH", "/whip/live/x");
        p.content_type = Some(SDP);
        assert_eq!(route(&p, open).unwrap_err().status, 415);
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abd", b"abc"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"abcd", b"abc"));
        assert!(!constant_time_eq(b"", b"abc"));
    }

    #[test]
    fn ids_are_unguessable_hex() {
        let (a, b) = (random_id(), random_id());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(new_etag().starts_with('"'));
    }
}
