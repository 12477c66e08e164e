//! The HTTP(S) server: one per address and port in a process, shared by every whipcastsrc
//! that names them; each registers its stream path. Requests are checked by the rules in
//! [`crate::whip`] and handed to the stream's [`Endpoint`]. An application may serve more on the
//! same port: a [`Resource`] answers GETs under a path of its own (whipcast's `/metrics` and
//! `/events/<stream>`), whole or as Server-Sent Events.
//!
//! Split by job: this module holds what the elements and the application see (the traits,
//! [`register`], [`register_resource`], [`responses`]) and the servers by address; `listen`
//! accepts connections (TLS, connection bounds), `handle` serves a request, `reply` builds
//! responses.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::ratelimit::RateLimit;
use crate::whip::{self, Protocol, Rejection, StreamAuth};

mod handle;
mod listen;
mod reply;

use listen::{Connections, start};

/// Threads for blocking work (sessions set up and torn down, PATCHes, stats) at most: a flood
/// queues rather than growing the process; idle ones go after a short while (the once-a-second
/// stats would otherwise keep waking, and so keeping, every thread a burst made).
const MAX_BLOCKING_THREADS: usize = 32;
const BLOCKING_KEEP_ALIVE: Duration = Duration::from_secs(2);

/// The tokio runtime every server of the process runs on (2 async threads, at most
/// `MAX_BLOCKING_THREADS` blocking ones); the elements spawn their own tasks on it too.
pub static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .thread_keep_alive(BLOCKING_KEEP_ALIVE)
        .thread_name("whipcastsrc-http")
        .enable_all()
        .build()
        .expect("tokio runtime starts")
});

/// A session was created: what the 201 carries.
#[derive(Debug, Clone)]
pub struct Created {
    /// The SDP answer (RFC 8866), the 201's body.
    pub answer: String,
    /// The session id: its URL (the `Location`) is the endpoint's with `/<resource>` added.
    pub resource: String,
    /// The session's strong entity tag, sent as `ETag` (If-Match of an ICE restart names it).
    pub etag: String,
    /// `Link` header values (ICE servers).
    pub links: Vec<String>,
}

/// What a PATCH did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patched {
    /// Trickled candidates were added (204).
    Trickle,
    /// ICE restarted (200): our new credentials and candidates, and the session's new ETag.
    Restarted {
        /// The answer's sdpfrag (RFC 8840): our new ICE credentials and candidates, the 200's body.
        sdpfrag: String,
        /// The session's new entity tag, sent as `ETag`.
        etag: String,
    },
}

/// What a request carries besides its body.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The client's address and port, as the TCP connection came from.
    pub address: SocketAddr,
    /// The User-Agent header's value, if any (in logs, signals and stats).
    pub user_agent: Option<String>,
}

/// A stream served here: implemented by whipcastsrc (publishers) and whipcastwhepsink (viewers).
pub trait Endpoint: Send + Sync + 'static {
    /// Whether the stream is served, and the bearer token it wants.
    fn auth(&self) -> StreamAuth;
    /// Sessions running now, and the most this endpoint allows on the server (0: no limit),
    /// counted among the endpoints of the same protocol.
    fn sessions(&self) -> usize;
    /// The most sessions this endpoint allows on the server (0: no limit): the least nonzero one
    /// of a protocol's endpoints caps the sum of their sessions (503 past it).
    fn max_sessions(&self) -> u32;
    /// POSTs a client address may send at once (then 2 per second); 0: no limit.
    fn posts_per_address(&self) -> u32;
    /// Whether a new POST would replace the running session rather than add one.
    fn replaces(&self) -> bool;
    /// Starts a session for an offer. It blocks while it checks the offer and sets up webrtcbin;
    /// the server calls it off its async threads, a few at a time.
    fn create(&self, offer: String, peer: Peer) -> oneshot::Receiver<Result<Created, Rejection>>;
    /// Ends session `resource` on its client's DELETE (200), or says why not (404 when unknown).
    fn delete(&self, resource: &str) -> Result<(), Rejection>;
    /// Trickle candidates (204) or an ICE restart (200) for a session. It may block for as long
    /// as webrtcbin takes to renegotiate; the server calls it off its async threads.
    fn patch(&self, resource: &str, sdpfrag: &str, if_match: Option<&str>) -> Result<Patched, Rejection>;
    /// Whether the browser publish page served at `/` offers this stream.
    fn publish_page(&self) -> bool {
        false
    }
}

/// What GETs under a path of its own get (whipcast's `/metrics`, `/events/<stream>`).
pub trait Resource: Send + Sync + 'static {
    /// Whether `rest` (the path after the resource's own, `""` or `/...`) is served (`None`:
    /// 404), and the bearer tokens that may GET it (any one; none: open).
    fn tokens(&self, rest: &str) -> Option<Vec<String>>;
    /// The answer to a GET of `rest` (as in [`tokens`](Self::tokens)), once its token is checked.
    fn get(&self, rest: &str) -> Result<Content, Rejection>;
}

/// A resource's answer to a GET.
pub enum Content {
    /// A whole body (200, not cached).
    Whole {
        /// The Content-Type header's value (`text/plain; version=0.0.4`, ...).
        content_type: &'static str,
        /// The body.
        body: Bytes,
    },
    /// `text/event-stream`: each item one or more whole events, until the sender is dropped.
    Events(tokio::sync::mpsc::Receiver<Bytes>),
}

/// The files of an HTTPS server; servers sharing an address must name the same ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The PEM certificate chain file.
    pub certificate: PathBuf,
    /// The PEM private key file.
    pub key: PathBuf,
}

struct Server {
    endpoints: Mutex<HashMap<(Protocol, String), Arc<dyn Endpoint>>>,
    /// GET resources by their path (`/metrics`).
    resources: Mutex<HashMap<String, Arc<dyn Resource>>>,
    /// Responses given, by status code.
    responses: Mutex<BTreeMap<u16, u64>>,
    tls: Option<TlsFiles>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    connections: Arc<Mutex<Connections>>,
    starting: Arc<tokio::sync::Semaphore>,
    /// POSTs by client address (each builds a session: the costly request).
    posts: Mutex<RateLimit>,
    /// The rate limit's time origin.
    started: Instant,
}

static SERVERS: LazyLock<Mutex<HashMap<SocketAddr, Arc<Server>>>> = LazyLock::new(Default::default);

/// Keeps a stream or a resource registered; dropping it unregisters (and stops the server with
/// the last).
pub struct Registration {
    address: SocketAddr,
    what: Registered,
}

enum Registered {
    Stream(Protocol, String),
    Resource(String),
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut servers = SERVERS.lock().unwrap();
        let Some(server) = servers.get(&self.address) else { return };
        let empty = {
            let mut endpoints = server.endpoints.lock().unwrap();
            let mut resources = server.resources.lock().unwrap();
            match &self.what {
                Registered::Stream(protocol, stream) => endpoints.remove(&(*protocol, stream.clone())).map(|_| ()),
                Registered::Resource(path) => resources.remove(path).map(|_| ()),
            };
            endpoints.is_empty() && resources.is_empty()
        };
        if empty {
            let task = server.task.lock().unwrap().take();
            servers.remove(&self.address);
            if let Some(task) = task {
                task.abort();
                // Still holding SERVERS: nothing starts on this address before the port is free.
                wait_closed(task);
            }
        }
    }
}

/// How long an unregistering element waits for its server's listening socket to close.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Waits (up to [`CLOSE_WAIT`]) until the runtime has dropped the aborted accept task, and with
/// it the listening socket: the port is then free when the element's stop returns. A pipeline
/// set to NULL and started again on the same port failed to listen now and then on a busy
/// machine ("Address already in use") while the abort had not run yet.
fn wait_closed(task: tokio::task::JoinHandle<()>) {
    let (done, closed) = std::sync::mpsc::channel();
    RUNTIME.spawn(async move {
        let _ = task.await;
        let _ = done.send(());
    });
    let _ = closed.recv_timeout(CLOSE_WAIT);
}

/// Serves `stream` on `address` at `/<protocol>/<stream>`, starting the server there if this is
/// its first stream.
pub fn register(
    address: SocketAddr,
    tls: Option<TlsFiles>,
    protocol: Protocol,
    stream: &str,
    endpoint: Arc<dyn Endpoint>,
) -> Result<Registration, String> {
    if !whip::is_stream_name(stream) {
        return Err(format!(
            "{stream:?} cannot name a stream: one or two /-separated parts of letters, digits, '-', '_', '.'"
        ));
    }
    let server = server_at(address, tls)?;
    let mut endpoints = server.endpoints.lock().unwrap();
    let key = (protocol, stream.to_owned());
    if endpoints.contains_key(&key) {
        let path = format!("/{}/{stream}", protocol.name());
        return Err(format!("{path} is already served on {address} by another element"));
    }
    endpoints.insert(key, endpoint);
    Ok(Registration { address, what: Registered::Stream(protocol, stream.to_owned()) })
}

/// The server on `address`, started if none runs there yet; one with other TLS settings is an
/// error.
fn server_at(address: SocketAddr, tls: Option<TlsFiles>) -> Result<Arc<Server>, String> {
    let mut servers = SERVERS.lock().unwrap();
    match servers.get(&address) {
        Some(server) if server.tls != tls => Err(format!("{address} is already served with other TLS settings")),
        Some(server) => Ok(server.clone()),
        None => start(&mut servers, address, tls),
    }
}

/// Serves `resource` at `path` (and below) on `address`, starting the server there if need be.
pub fn register_resource(
    address: SocketAddr,
    tls: Option<TlsFiles>,
    path: &str,
    resource: Arc<dyn Resource>,
) -> Result<Registration, String> {
    if !path.starts_with('/')
        || path.len() < 2
        || path.ends_with('/')
        || path.starts_with("/whip")
        || path.starts_with("/whep")
    {
        return Err(format!("{path:?} cannot be a resource's path"));
    }
    let server = server_at(address, tls)?;
    let mut resources = server.resources.lock().unwrap();
    if resources.contains_key(path) {
        return Err(format!("{path} is already served on {address}"));
    }
    resources.insert(path.to_owned(), resource);
    Ok(Registration { address, what: Registered::Resource(path.to_owned()) })
}

/// The responses the server on `address` gave so far, by status code.
pub fn responses(address: SocketAddr) -> Vec<(u16, u64)> {
    let server = SERVERS.lock().unwrap().get(&address).cloned();
    server.map(|s| s.responses.lock().unwrap().iter().map(|(c, n)| (*c, *n)).collect()).unwrap_or_default()
}

/// At most this many events wait for a slow reader; past them its stream ends (an EventSource
/// reconnects).
pub const EVENTS_BACKLOG: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    struct Nothing;

    impl Resource for Nothing {
        fn tokens(&self, _rest: &str) -> Option<Vec<String>> {
            None
        }

        fn get(&self, _rest: &str) -> Result<Content, Rejection> {
            Err(Rejection::new(404, "nothing"))
        }
    }

    /// Once the last registration on an address is dropped, the port is free: anyone may listen
    /// on it at once (before, the aborted accept task still held the socket for a while).
    #[test]
    fn the_port_is_free_once_the_last_registration_is_dropped() {
        for _ in 0..20 {
            let address: SocketAddr = {
                let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                probe.local_addr().unwrap()
            };
            let registration = register_resource(address, None, "/nothing", Arc::new(Nothing)).unwrap();
            // The server accepts: the accept task owns the socket.
            std::net::TcpStream::connect(address).unwrap();
            drop(registration);
            std::net::TcpListener::bind(address).unwrap_or_else(|e| panic!("{address} still taken: {e}"));
        }
    }
}
