//! The HTTP side of WHIP (RFC 9725) as plain rules (sans-IO): which request goes where, and
//! which status a bad one gets, with a one-line reason.

use std::fmt;

/// Bodies larger than this are refused (413): an SDP offer is a few KiB.
pub const MAX_BODY: usize = 64 * 1024;

pub const SDP: &str = "application/sdp";
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
    pub method: &'a str,
    pub path: &'a str,
    pub content_type: Option<&'a str>,
    pub authorization: Option<&'a str>,
    pub content_length: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// OPTIONS: CORS preflight / capability discovery. `resource` when aimed at a session URL.
    Preflight { stream: String, resource: bool },
    /// POST an offer to a stream.
    Create { stream: String },
    /// DELETE a session.
    Delete { stream: String, resource: String },
    /// PATCH a session (trickle candidates, ICE restart).
    Patch { stream: String, resource: String },
}

/// An HTTP error response: status, a one-line reason for the body, and extra headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(&'static str, String)>,
}

impl Rejection {
    pub fn new(status: u16, reason: impl Into<String>) -> Self {
        Self { status, reason: reason.into(), headers: Vec::new() }
    }

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
    Unknown,
    Open,
    Token(String),
}

/// Splits `/whip/<stream>[/<resource>]`.
pub fn parse_path(path: &str) -> Option<(&str, Option<&str>)> {
    let rest = path.strip_prefix("/whip/")?;
    let mut parts = rest.split('/');
    let stream = parts.next().filter(|s| is_name(s))?;
    let resource = match parts.next() {
        None => None,
        Some(r) if is_name(r) => Some(r),
        Some(_) => return None,
    };
    parts.next().is_none().then_some((stream, resource))
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
pub fn route(head: &RequestHead<'_>, auth: impl FnOnce(&str) -> StreamAuth) -> Result<Action, Rejection> {
    let path = head.path.split('?').next().unwrap_or("");
    let Some((stream, resource)) = parse_path(path) else {
        return Err(Rejection::new(404, format!("no WHIP endpoint at {path}; publish to /whip/<stream>")));
    };
    let token = match auth(stream) {
        StreamAuth::Unknown => return Err(Rejection::new(404, format!("no stream named {stream:?} here"))),
        StreamAuth::Open => None,
        StreamAuth::Token(t) => Some(t),
    };
    let (stream, resource) = (stream.to_owned(), resource.map(str::to_owned));
    let action = match (head.method, resource) {
        ("OPTIONS", resource) => return Ok(Action::Preflight { stream, resource: resource.is_some() }),
        ("POST", None) => Action::Create { stream },
        ("DELETE", Some(resource)) => Action::Delete { stream, resource },
        ("PATCH", Some(resource)) => Action::Patch { stream, resource },
        (method, None) => {
            return Err(Rejection::new(405, format!("{method} is not allowed on a WHIP endpoint; POST an SDP offer"))
                .with_header("allow", "OPTIONS, POST"));
        }
        (method, Some(_)) => {
            return Err(Rejection::new(405, format!("{method} is not allowed on a WHIP session; use PATCH or DELETE"))
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
    Ok(action)
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

    fn open(_: &str) -> StreamAuth {
        StreamAuth::Open
    }

    fn secret(stream: &str) -> StreamAuth {
        if stream == "live" { StreamAuth::Token("s3cret".into()) } else { StreamAuth::Unknown }
    }

    #[test]
    fn routes() {
        assert_eq!(route(&head("POST", "/whip/live"), open), Ok(Action::Create { stream: "live".into() }));
        assert_eq!(
            route(&head("DELETE", "/whip/live/abc"), open),
            Ok(Action::Delete { stream: "live".into(), resource: "abc".into() })
        );
        assert_eq!(
            route(&head("OPTIONS", "/whip/live"), secret),
            Ok(Action::Preflight { stream: "live".into(), resource: false }),
            "preflight needs no token"
        );
        let mut patch = head("PATCH", "/whip/live/abc");
        patch.content_type = Some("application/trickle-ice-sdpfrag");
        assert_eq!(route(&patch, open), Ok(Action::Patch { stream: "live".into(), resource: "abc".into() }));
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
        for path in ["/", "/whip", "/whip/", "/other/live", "/whip/a/b/c", "/whip/../etc"] {
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
