//! A lossy network between a real WHIP publisher and our server, on loopback.
//!
//! The publisher is pointed at [`WhipRelay::url`]: an HTTP proxy in front of the server that
//! removes the publisher's ICE candidates from its offer (so the server can only reach it through
//! the relay) and replaces the server's candidates in the answer with one UDP relay port. Every
//! datagram then passes the relay, which drops RTP video packets from the publisher (seeded, so a
//! failure reproduces). With [`Nack::Defeated`] it drops them again when they are retransmitted on
//! their SSRC, and every RTX packet, so NACK repairs nothing; with [`Nack::Repairs`] those pass.
//! Key frame requests (RTCP) always reach the publisher. The relay logs every video packet it
//! saw, so a test knows which frames were sent and which were damaged.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::Rng;

/// Which video packets the relay drops.
#[derive(Clone, Copy, Debug)]
pub enum Loss {
    /// None: the relay only watches (how many frames really went out).
    Nothing,
    /// Each packet with this probability.
    Scattered(f64),
    /// Runs of 2 to 10 packets, each run starting with this probability.
    Bursts(f64),
    /// The first packet of each frame (RTP timestamp, counted from 0 in order of arrival) in
    /// `first..end`: packets flow, and from a publisher that ignores PLI nothing decodable.
    Frames { first: usize, end: usize },
}

/// Decides, packet after packet, which are lost (seeded: a failure reproduces).
pub struct Dropper {
    loss: Loss,
    rng: Rng,
    /// Packets left in the current burst.
    burst: u32,
    /// The frames seen so far: the last one's RTP timestamp, and how many.
    frame: Option<(u32, usize)>,
}

impl Dropper {
    pub fn new(loss: Loss, seed: u64) -> Dropper {
        Dropper { loss, rng: Rng::new(seed), burst: 0, frame: None }
    }

    /// Whether the next packet, of the frame with RTP `timestamp`, is lost.
    pub fn lose(&mut self, timestamp: u32) -> bool {
        let (index, starts_frame) = match self.frame {
            Some((last, count)) if last == timestamp => (count - 1, false),
            Some((_, count)) => (count, true),
            None => (0, true),
        };
        if starts_frame {
            self.frame = Some((timestamp, index + 1));
        }
        match self.loss {
            Loss::Nothing => false,
            Loss::Frames { first, end } => starts_frame && (first..end).contains(&index),
            Loss::Scattered(p) => self.rng.chance(p),
            Loss::Bursts(p) => {
                if self.burst == 0 && self.rng.chance(p) {
                    self.burst = 2 + (self.rng.next_u64() % 9) as u32;
                }
                let lose = self.burst > 0;
                self.burst = self.burst.saturating_sub(1);
                lose
            }
        }
    }
}

/// How many frames a loss-safe receiver keeps, given each frame in order as (key frame, damaged):
/// from an intact key frame, every frame up to the first damaged one, and so on.
pub fn decodable_frames(frames: impl IntoIterator<Item = (bool, bool)>) -> Vec<usize> {
    let mut intact_since_key = false;
    let mut kept = Vec::new();
    for (i, (key, damaged)) in frames.into_iter().enumerate() {
        if damaged {
            intact_since_key = false;
        } else if key {
            intact_since_key = true;
        }
        if intact_since_key {
            kept.push(i);
        }
    }
    kept
}

/// What happens to retransmissions of the packets the relay dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nack {
    /// Dropped as well (and every RTX packet): nothing is repaired.
    Defeated,
    /// They pass: NACK can repair every loss.
    Repairs,
}

/// One RTP video packet from the publisher, as the relay saw it (header only: SRTP hides the rest).
#[derive(Clone, Copy, Debug)]
pub struct VideoPacket {
    pub ssrc: u32,
    pub seq: u16,
    pub timestamp: u32,
    /// Dropped by the relay.
    pub lost: bool,
    /// Dropped, then passed when retransmitted on its own SSRC (RTX hides which packet it repairs).
    pub repaired: bool,
}

/// A frame (one RTP timestamp of the main video stream) the publisher sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SentFrame {
    pub timestamp: u32,
    /// At least one of its packets never reached the server (lost and not repaired on its SSRC).
    pub damaged: bool,
}

#[derive(Default)]
struct Log {
    /// Payload types of the offer's video codecs, and of their RTX.
    video_pts: HashSet<u8>,
    rtx_pts: HashSet<u8>,
    packets: Vec<VideoPacket>,
    /// Where each dropped packet is in `packets`.
    lost: std::collections::HashMap<(u32, u16), usize>,
    nack: Option<Nack>,
    retransmissions_dropped: u64,
    retransmissions_passed: u64,
}

pub struct WhipRelay {
    port: u16,
    log: Arc<Mutex<Log>>,
    stop: Arc<AtomicBool>,
}

impl Drop for WhipRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl WhipRelay {
    /// A relay in front of the WHIP server listening on 127.0.0.1:`server_port`.
    pub fn start(server_port: u16, loss: Loss, nack: Nack, seed: u64) -> WhipRelay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Log { nack: Some(nack), ..Log::default() }));
        let stop = Arc::new(AtomicBool::new(false));
        let (log2, stop2) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            let dropper = Arc::new(Mutex::new(Dropper::new(loss, seed)));
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (log, stop, dropper) = (log2.clone(), stop2.clone(), dropper.clone());
                        std::thread::spawn(move || proxy(client, server_port, dropper, log, stop));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        WhipRelay { port, log, stop }
    }

    /// The WHIP endpoint `path` (e.g. `/whip/s`) of the server, through the relay.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every video packet of the main stream (the SSRC that sent the most), in the order sent.
    pub fn video_packets(&self) -> Vec<VideoPacket> {
        let log = self.log.lock().unwrap();
        let mut counts = std::collections::HashMap::new();
        for p in &log.packets {
            *counts.entry(p.ssrc).or_insert(0u64) += 1;
        }
        let main = counts.into_iter().max_by_key(|(_, n)| *n).map(|(ssrc, _)| ssrc);
        log.packets.iter().filter(|p| Some(p.ssrc) == main).copied().collect()
    }

    /// The frames of the main video stream, in the order their first packets were sent.
    pub fn frames_sent(&self) -> Vec<SentFrame> {
        let mut frames: Vec<SentFrame> = Vec::new();
        let mut index = std::collections::HashMap::new();
        for p in self.video_packets() {
            let at = *index.entry(p.timestamp).or_insert_with(|| {
                frames.push(SentFrame { timestamp: p.timestamp, damaged: false });
                frames.len() - 1
            });
            frames[at].damaged |= p.lost && !p.repaired;
        }
        frames
    }

    /// Retransmissions (RTX packets, lost packets sent again) dropped and passed.
    pub fn retransmissions(&self) -> (u64, u64) {
        let log = self.log.lock().unwrap();
        (log.retransmissions_dropped, log.retransmissions_passed)
    }
}

/// Reads one HTTP/1.1 message (head and a Content-Length body) from `stream`.
fn read_message(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut buf).ok().filter(|&n| n > 0)?;
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = raw[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buf).ok().filter(|&n| n > 0)?;
        body.extend_from_slice(&buf[..n]);
    }
    Some((head, body))
}

/// `head` with Content-Length set to `length` and `Connection: close`.
fn with_length(head: &str, length: usize) -> String {
    let mut lines = head.lines();
    let mut out = format!("{}\r\n", lines.next().unwrap_or_default());
    for line in lines {
        let name = line.split(':').next().unwrap_or_default().trim().to_ascii_lowercase();
        if name != "content-length" && name != "connection" {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out + &format!("Content-Length: {length}\r\nConnection: close\r\n\r\n")
}

fn without_candidates(sdp: &str) -> String {
    sdp.split_inclusive('\n').filter(|l| !l.starts_with("a=candidate:")).collect()
}

/// Forwards one HTTP exchange; a WHIP answer gets the relay's candidate and starts the relay.
fn proxy(
    mut client: TcpStream,
    server_port: u16,
    dropper: Arc<Mutex<Dropper>>,
    log: Arc<Mutex<Log>>,
    stop: Arc<AtomicBool>,
) {
    let _ = client.set_nonblocking(false);
    let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
    let Some((head, body)) = read_message(&mut client) else { return };
    let sdp = String::from_utf8_lossy(&body).into_owned();
    let body = if sdp.contains("v=0") || sdp.contains("a=candidate:") {
        if head.starts_with("POST") {
            note_payload_types(&sdp, &mut log.lock().unwrap());
        }
        without_candidates(&sdp).into_bytes()
    } else {
        body
    };
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", server_port)) else { return };
    let _ = server.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = server.write_all(with_length(&head, body.len()).as_bytes());
    let _ = server.write_all(&body);
    let Some((answer_head, answer_body)) = read_message(&mut server) else { return };
    let answer = String::from_utf8_lossy(&answer_body).into_owned();
    let answer_body = match server_candidate(&answer) {
        Some(target) if head.starts_with("POST") => {
            let relay = start_media_relay(target, dropper, log, stop);
            let mut replaced = false;
            answer
                .split_inclusive('\n')
                .filter_map(|l| {
                    if !l.starts_with("a=candidate:") {
                        return Some(l.to_owned());
                    }
                    let first = !std::mem::replace(&mut replaced, true);
                    first.then(|| format!("a=candidate:1 1 UDP 2130706431 127.0.0.1 {relay} typ host\r\n"))
                })
                .collect::<String>()
                .into_bytes()
        }
        _ => answer_body,
    };
    let _ = client.write_all(with_length(&answer_head, answer_body.len()).as_bytes());
    let _ = client.write_all(&answer_body);
}

/// The server's UDP candidate the relay sends to (127.0.0.1 where it offers one).
fn server_candidate(sdp: &str) -> Option<SocketAddr> {
    let candidates: Vec<SocketAddr> = sdp
        .lines()
        .filter_map(|l| l.strip_prefix("a=candidate:"))
        .filter_map(|c| {
            let f: Vec<&str> = c.split_whitespace().collect();
            (f.len() >= 6 && f[2].eq_ignore_ascii_case("udp")).then(|| format!("{}:{}", f[4], f[5]).parse().ok())?
        })
        .filter(SocketAddr::is_ipv4)
        .collect();
    candidates.iter().find(|a| a.ip().is_loopback()).or(candidates.first()).copied()
}

fn note_payload_types(offer: &str, log: &mut Log) {
    let mut in_video = false;
    for line in offer.lines() {
        if let Some(m) = line.strip_prefix("m=") {
            in_video = m.starts_with("video");
        } else if let Some(map) = line.strip_prefix("a=rtpmap:").filter(|_| in_video) {
            let (pt, codec) = map.split_once(' ').unwrap_or_default();
            let Ok(pt) = pt.parse::<u8>() else { continue };
            let codec = codec.to_ascii_lowercase();
            if codec.starts_with("rtx/") {
                log.rtx_pts.insert(pt);
            } else if !["red/", "ulpfec/", "flexfec"].iter().any(|c| codec.starts_with(c)) {
                log.video_pts.insert(pt);
            }
        }
    }
}

/// Starts relaying between the publisher (whoever sends to the returned port) and `server`.
fn start_media_relay(
    server: SocketAddr,
    dropper: Arc<Mutex<Dropper>>,
    log: Arc<Mutex<Log>>,
    stop: Arc<AtomicBool>,
) -> u16 {
    let facing_publisher = UdpSocket::bind("127.0.0.1:0").unwrap();
    let facing_server = UdpSocket::bind("127.0.0.1:0").unwrap();
    for s in [&facing_publisher, &facing_server] {
        s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    }
    let port = facing_publisher.local_addr().unwrap().port();
    let publisher: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
    {
        let (from, to, publisher, stop) = (
            facing_publisher.try_clone().unwrap(),
            facing_server.try_clone().unwrap(),
            publisher.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !stop.load(Ordering::Relaxed) {
                let Ok((n, sender)) = from.recv_from(&mut buf) else { continue };
                *publisher.lock().unwrap() = Some(sender);
                if passes(&buf[..n], &mut dropper.lock().unwrap(), &mut log.lock().unwrap()) {
                    let _ = to.send_to(&buf[..n], server);
                }
            }
        });
    }
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, _)) = facing_server.recv_from(&mut buf) else { continue };
            if let Some(publisher) = *publisher.lock().unwrap() {
                let _ = facing_publisher.send_to(&buf[..n], publisher);
            }
        }
    });
    port
}

/// Whether a datagram from the publisher reaches the server (and logs its video packets).
fn passes(datagram: &[u8], dropper: &mut Dropper, log: &mut Log) -> bool {
    // RFC 7983: 128..=191 is RTP or RTCP (STUN and DTLS pass); RTCP's types are 192..=223.
    if datagram.len() < 12 || !(128..=191).contains(&datagram[0]) || (64..=95).contains(&(datagram[1] & 0x7F)) {
        return true;
    }
    let pt = datagram[1] & 0x7F;
    let defeated = log.nack == Some(Nack::Defeated);
    if log.rtx_pts.contains(&pt) {
        if defeated {
            log.retransmissions_dropped += 1;
        } else {
            log.retransmissions_passed += 1;
        }
        return !defeated;
    }
    if !log.video_pts.contains(&pt) {
        return true;
    }
    let ssrc = u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]);
    let seq = u16::from_be_bytes([datagram[2], datagram[3]]);
    if let Some(&at) = log.lost.get(&(ssrc, seq)) {
        // Sent again on its own SSRC.
        if defeated {
            log.retransmissions_dropped += 1;
        } else {
            log.retransmissions_passed += 1;
            log.packets[at].repaired = true;
        }
        return !defeated;
    }
    let timestamp = u32::from_be_bytes([datagram[4], datagram[5], datagram[6], datagram[7]]);
    let lose = dropper.lose(timestamp);
    log.packets.push(VideoPacket { ssrc, seq, timestamp, lost: lose, repaired: false });
    if lose {
        log.lost.insert((ssrc, seq), log.packets.len() - 1);
    }
    !lose
}
