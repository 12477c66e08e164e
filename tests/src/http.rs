//! A plain HTTP/1.1 client for the endpoints' tests, free ports, real publishers' offers, and a
//! hostile client's offer.

/// OBS Studio's WHIP offer (AV1 + Opus), captured.
pub const OBS_OFFER: &str = include_str!("../data/obs_av1.offer.sdp");
/// Chromium's WHIP offer (AV1 first), captured; the whipsrc crate's own tests read it too.
pub const CHROME_OFFER: &str = include_str!("../../gst-plugin-whipsrc/tests/data/chrome_av1.offer.sdp");

/// A free TCP/UDP port number on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An HTTP response as a test sees it.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
    }
}

/// A plain HTTP/1.1 request (Connection: close) to 127.0.0.1:`port`.
pub fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    http_from(std::net::Ipv4Addr::LOCALHOST, port, method, path, headers, body)
}

/// [`http`] from the loopback address `source` (any of 127.0.0.0/8): another client to the server.
pub fn http_from(
    source: std::net::Ipv4Addr,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    use std::io::{Read, Write};
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&std::net::SocketAddr::from((source, 0)).into()).unwrap_or_else(|e| panic!("bind {source}: {e}"));
    socket.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into()).expect("server is listening");
    let mut stream = std::net::TcpStream::from(socket);
    stream.set_read_timeout(Some(std::time::Duration::from_secs(15))).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    // A server may answer (413, 401) before reading a large body; that is fine.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    HttpResponse { status, headers, body: body.to_owned() }
}

/// `offer` (OBS's two bundled sections) without its BUNDLE group and grown to `sections` media
/// sections, each asking webrtcbin for a transport of its own: the offer of a hostile client.
pub fn unbundled_offer(offer: &str, sections: usize) -> String {
    let mut text = offer.replace("a=group:BUNDLE 0 1\r\n", "").replace("a=group:BUNDLE 0 1\n", "");
    for i in 2..sections {
        text += &format!("m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:{i}\r\na=sendonly\r\na=rtpmap:96 AV1/90000\r\n");
    }
    text
}
