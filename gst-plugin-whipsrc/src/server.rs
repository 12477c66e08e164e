//! The HTTP(S) server: one per address and port in a process, shared by every whipcastsrc
//! that names them; each registers its stream path. Requests are checked by the rules in
//! [`crate::whip`] and handed to the stream's [`Endpoint`]. An application may serve more on the
//! same port: a [`Resource`] answers GETs under a path of its own (whipcast's `/metrics` and
//! `/events/<stream>`), whole or as Server-Sent Events.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use tokio::sync::oneshot;

use crate::ratelimit::RateLimit;
use crate::whip::{self, Action, Protocol, Rejection, RequestHead, StreamAuth};

/// How long a POST may wait for its answer (OBS gives up after 8 s).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(6);
/// How long a client may take to send a request's headers; also how long a kept-alive connection
/// may wait idle for its next request (hyper runs the same timer for both).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request's body may take to arrive (at most 64 KiB).
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Open connections at most, in all and from one client address: a connection past either is
/// closed as soon as it is accepted, so idle or slow clients cannot use up the descriptors.
const MAX_CONNECTIONS: usize = 512;
const MAX_CONNECTIONS_PER_ADDRESS: usize = 64;
/// The longest pause of the accept loop after an error (out of descriptors: EMFILE, ENFILE).
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);
/// Sessions being set up at once on a server (each a webrtcbin with its threads and sockets);
/// a POST past them gets 503 at once rather than queueing work.
const MAX_STARTING_SESSIONS: usize = 8;

/// Threads for blocking work (sessions set up and torn down, PATCHes, stats) at most: a flood
/// queues rather than growing the process; idle ones go after a short while (the once-a-second
/// stats would otherwise keep waking, and so keeping, every thread a burst made).
const MAX_BLOCKING_THREADS: usize = 32;
const BLOCKING_KEEP_ALIVE: Duration = Duration::from_secs(2);

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
    pub answer: String,
    pub resource: String,
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
    Restarted { sdpfrag: String, etag: String },
}

/// What a request carries besides its body.
#[derive(Debug, Clone)]
pub struct Peer {
    pub address: SocketAddr,
    pub user_agent: Option<String>,
}

/// A stream served here: implemented by whipcastsrc (publishers) and whipcastwhepsink (viewers).
pub trait Endpoint: Send + Sync + 'static {
    fn auth(&self) -> StreamAuth;
    /// Sessions running now, and the most this endpoint allows on the server (0: no limit),
    /// counted among the endpoints of the same protocol.
    fn sessions(&self) -> usize;
    fn max_sessions(&self) -> u32;
    /// POSTs a client address may send at once (then 2 per second); 0: no limit.
    fn posts_per_address(&self) -> u32;
    /// Whether a new POST would replace the running session rather than add one.
    fn replaces(&self) -> bool;
    /// Starts a session for an offer. It blocks while it checks the offer and sets up webrtcbin;
    /// the server calls it off its async threads, a few at a time.
    fn create(&self, offer: String, peer: Peer) -> oneshot::Receiver<Result<Created, Rejection>>;
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
    fn get(&self, rest: &str) -> Result<Content, Rejection>;
}

/// A resource's answer to a GET.
pub enum Content {
    Whole {
        content_type: &'static str,
        body: Bytes,
    },
    /// `text/event-stream`: each item one or more whole events, until the sender is dropped.
    Events(tokio::sync::mpsc::Receiver<Bytes>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub certificate: PathBuf,
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

/// The connections open now, in all and by client address.
#[derive(Debug, Default)]
struct Connections {
    open: usize,
    by_address: HashMap<IpAddr, usize>,
}

impl Connections {
    /// Counts a new connection from `address`, unless it is one too many.
    fn open(&mut self, address: IpAddr) -> bool {
        let from_address = self.by_address.entry(address).or_default();
        if self.open >= MAX_CONNECTIONS || *from_address >= MAX_CONNECTIONS_PER_ADDRESS {
            if *from_address == 0 {
                self.by_address.remove(&address);
            }
            return false;
        }
        *from_address += 1;
        self.open += 1;
        true
    }

    fn close(&mut self, address: IpAddr) {
        if let Some(count) = self.by_address.get_mut(&address) {
            *count -= 1;
            self.open -= 1;
            if *count == 0 {
                self.by_address.remove(&address);
            }
        }
    }
}

/// One counted connection: uncounted when dropped.
struct ConnectionSlot {
    connections: Arc<Mutex<Connections>>,
    address: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.connections.lock().unwrap().close(self.address);
    }
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
            if let Some(task) = server.task.lock().unwrap().take() {
                task.abort();
            }
            servers.remove(&self.address);
        }
    }
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
    let mut servers = SERVERS.lock().unwrap();
    let server = match servers.get(&address) {
        Some(server) if server.tls != tls => {
            return Err(format!("{address} is already served with other TLS settings"));
        }
        Some(server) => server.clone(),
        None => start(&mut servers, address, tls)?,
    };
    let mut endpoints = server.endpoints.lock().unwrap();
    let key = (protocol, stream.to_owned());
    if endpoints.contains_key(&key) {
        let path = format!("/{}/{stream}", protocol.name());
        return Err(format!("{path} is already served on {address} by another element"));
    }
    endpoints.insert(key, endpoint);
    Ok(Registration { address, what: Registered::Stream(protocol, stream.to_owned()) })
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
    let mut servers = SERVERS.lock().unwrap();
    let server = match servers.get(&address) {
        Some(server) if server.tls != tls => {
            return Err(format!("{address} is already served with other TLS settings"));
        }
        Some(server) => server.clone(),
        None => start(&mut servers, address, tls)?,
    };
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

/// Listens on `address` and serves there, until the last registration on it goes.
fn start(
    servers: &mut HashMap<SocketAddr, Arc<Server>>,
    address: SocketAddr,
    tls: Option<TlsFiles>,
) -> Result<Arc<Server>, String> {
    let acceptor = tls.as_ref().map(tls_acceptor).transpose()?;
    let listener = std::net::TcpListener::bind(address).map_err(|e| format!("cannot listen on {address}: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let server = Arc::new(Server {
        endpoints: Mutex::default(),
        resources: Mutex::default(),
        responses: Mutex::default(),
        tls,
        task: Mutex::new(None),
        connections: Arc::default(),
        starting: Arc::new(tokio::sync::Semaphore::new(MAX_STARTING_SESSIONS)),
        posts: Mutex::default(),
        started: Instant::now(),
    });
    let weak = Arc::downgrade(&server);
    let task = RUNTIME.spawn(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(_) => return,
        };
        let mut backoff = Duration::ZERO;
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => {
                    backoff = Duration::ZERO;
                    accepted
                }
                Err(_) => {
                    // Out of descriptors (or a connection reset before it was accepted): the
                    // listener stays readable, so retrying at once would spin.
                    backoff = (backoff * 2).clamp(Duration::from_millis(10), MAX_ACCEPT_BACKOFF);
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            };
            let Some(server) = weak.upgrade() else { return };
            if !server.connections.lock().unwrap().open(peer.ip()) {
                drop(stream);
                continue;
            }
            let slot = ConnectionSlot { connections: server.connections.clone(), address: peer.ip() };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _slot = slot;
                let service = hyper::service::service_fn(move |req| {
                    let server = server.clone();
                    async move {
                        let reply = server.clone().handle(req, peer).await;
                        *server.responses.lock().unwrap().entry(reply.status().as_u16()).or_default() += 1;
                        Ok::<_, Infallible>(reply)
                    }
                });
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
                match acceptor {
                    Some(acceptor) => {
                        if let Ok(Ok(tls)) = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                        {
                            let _ = builder.serve_connection(hyper_util::rt::TokioIo::new(tls), service).await;
                        }
                    }
                    None => {
                        let _ = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
                    }
                }
            });
        }
    });
    *server.task.lock().unwrap() = Some(task);
    servers.insert(address, server.clone());
    Ok(server)
}

fn tls_acceptor(files: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&files.certificate)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read TLS certificate {}: {e}", files.certificate.display()))?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("cannot read TLS key {}: {e}", files.key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate/key rejected: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

type Reply = Response<BoxBody<Bytes, Infallible>>;

fn whole(body: impl Into<Bytes>) -> BoxBody<Bytes, Infallible> {
    Full::new(body.into()).boxed()
}

/// A response body fed by a channel: Server-Sent Events as they come.
struct EventBody(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|event| event.map(|bytes| Ok(Frame::data(bytes))))
    }
}

fn response(status: u16, content_type: &str) -> hyper::http::response::Builder {
    let mut builder = Response::builder().status(status).header("content-type", content_type);
    for (name, value) in whip::CORS_HEADERS {
        builder = builder.header(name, value);
    }
    builder
}

fn reject(rejection: Rejection) -> Reply {
    let mut builder = response(rejection.status, "text/plain; charset=utf-8");
    for (name, value) in &rejection.headers {
        builder = builder.header(*name, value);
    }
    finish(builder, whole(format!("{}\n", rejection.reason)))
}

/// The response, or a 500 saying why it could not be built (a header value it cannot carry),
/// instead of a panic in the connection's task.
fn finish(builder: hyper::http::response::Builder, body: BoxBody<Bytes, Infallible>) -> Reply {
    builder.body(body).unwrap_or_else(|e| {
        let mut reply = Response::new(whole(format!("the response could not be built: {e}\n")));
        *reply.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        reply.headers_mut().insert("content-type", hyper::http::HeaderValue::from_static("text/plain; charset=utf-8"));
        reply
    })
}

impl Server {
    fn endpoint(&self, protocol: Protocol, stream: &str) -> Option<Arc<dyn Endpoint>> {
        self.endpoints.lock().unwrap().get(&(protocol, stream.to_owned())).cloned()
    }

    /// The resource serving `path`, and the rest of the path after the resource's own.
    fn resource(&self, path: &str) -> Option<(Arc<dyn Resource>, String)> {
        let resources = self.resources.lock().unwrap();
        resources.iter().find_map(|(own, resource)| {
            let rest = path.strip_prefix(own.as_str())?;
            (rest.is_empty() || rest.starts_with('/')).then(|| (resource.clone(), rest.to_owned()))
        })
    }

    fn session_limit_reached(&self, protocol: Protocol, endpoint: &Arc<dyn Endpoint>) -> bool {
        let endpoints: Vec<_> = self
            .endpoints
            .lock()
            .unwrap()
            .iter()
            .filter(|((p, _), _)| *p == protocol)
            .map(|(_, e)| e.clone())
            .collect();
        let limit = endpoints.iter().map(|e| e.max_sessions()).filter(|&m| m > 0).min();
        let running: usize = endpoints.iter().map(|e| e.sessions()).sum();
        let freed = usize::from(endpoint.replaces() && endpoint.sessions() > 0);
        limit.is_some_and(|limit| running - freed >= limit as usize)
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>, address: SocketAddr) -> Reply {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (content_type, authorization, user_agent, if_match) =
            (header("content-type"), header("authorization"), header("user-agent"), header("if-match"));
        let content_length = header("content-length").and_then(|v| v.parse().ok());
        let method = req.method().as_str().to_owned();
        let path = req.uri().path().to_owned();

        if method == "GET" && path == "/" {
            let mut streams: Vec<String> = self
                .endpoints
                .lock()
                .unwrap()
                .iter()
                .filter(|((protocol, _), e)| *protocol == Protocol::Whip && e.publish_page())
                .map(|((_, s), _)| s.clone())
                .collect();
            if !streams.is_empty() {
                streams.sort();
                return finish(
                    response(200, "text/html; charset=utf-8").header("cache-control", "no-store"),
                    whole(whip::publish_page(&streams)),
                );
            }
        }
        if let Some((resource, rest)) = self.resource(&path) {
            return serve_resource(resource.as_ref(), &method, &rest, authorization.as_deref());
        }
        // Counted before the token is checked: guessing tokens is as slow as flooding.
        let posts_per_address = || {
            let mut endpoint = None;
            let _ = whip::locate(&path, |protocol, stream| match self.endpoint(protocol, stream) {
                Some(found) => {
                    endpoint = Some(found);
                    StreamAuth::Open
                }
                None => StreamAuth::Unknown,
            });
            endpoint.map(|e| e.posts_per_address()).filter(|&burst| burst > 0)
        };
        if let Some(burst) = (method == "POST").then(posts_per_address).flatten() {
            let allowed = self.posts.lock().unwrap().check(address.ip(), burst, self.started.elapsed());
            if let Err(wait) = allowed {
                let seconds = wait.as_secs_f64().ceil().max(1.0);
                return reject(
                    Rejection::new(429, format!("too many POSTs from this address: retry in {seconds} s"))
                        .with_header("retry-after", seconds.to_string()),
                );
            }
        }
        let head = RequestHead {
            method: &method,
            path: &path,
            content_type: content_type.as_deref(),
            authorization: authorization.as_deref(),
            content_length,
        };
        let (protocol, action) = match whip::route(&head, |protocol, stream| match self.endpoint(protocol, stream) {
            Some(e) => e.auth(),
            None => StreamAuth::Unknown,
        }) {
            Ok(action) => action,
            Err(rejection) => return reject(rejection),
        };
        let stream = match &action {
            Action::Preflight { stream, .. } | Action::Create { stream } => stream,
            Action::Delete { stream, .. } | Action::Patch { stream, .. } => stream,
        };
        let Some(endpoint) = self.endpoint(protocol, stream) else {
            return reject(Rejection::new(404, format!("no stream named {stream:?} here")));
        };

        match action {
            Action::Preflight { resource, .. } => {
                let builder = response(204, "text/plain");
                let builder = if resource {
                    builder.header("accept-patch", whip::SDPFRAG)
                } else {
                    builder.header("accept-post", whip::SDP)
                };
                finish(builder, whole(Bytes::new()))
            }
            Action::Create { stream } => {
                let offer = match read_body(req.into_body()).await {
                    Ok(body) => body,
                    Err(rejection) => return reject(rejection),
                };
                if self.session_limit_reached(protocol, &endpoint) {
                    return reject(
                        Rejection::new(503, "too many sessions on this server (max-sessions)")
                            .with_header("retry-after", "10"),
                    );
                }
                // SDP checks and webrtcbin's set-up block: off the threads serving every client.
                let Ok(_starting) = self.starting.clone().try_acquire_owned() else {
                    return reject(
                        Rejection::new(503, "too many sessions starting at once on this server")
                            .with_header("retry-after", "1"),
                    );
                };
                let peer = Peer { address, user_agent };
                let Ok(receiver) = tokio::task::spawn_blocking(move || endpoint.create(offer, peer)).await else {
                    return reject(Rejection::new(500, "the session could not be started"));
                };
                match tokio::time::timeout(ANSWER_TIMEOUT, receiver).await {
                    Ok(Ok(Ok(created))) => {
                        let mut builder = response(201, whip::SDP)
                            .header("location", format!("/{}/{stream}/{}", protocol.name(), created.resource))
                            .header("etag", &created.etag);
                        for link in &created.links {
                            builder = builder.header("link", link);
                        }
                        finish(builder, whole(created.answer))
                    }
                    Ok(Ok(Err(rejection))) => reject(rejection),
                    Ok(Err(_)) => reject(Rejection::new(500, "the session ended before it was answered")),
                    Err(_) => reject(Rejection::new(504, "no answer in time (ICE gathering did not complete)")),
                }
            }
            Action::Delete { resource, .. } => match endpoint.delete(&resource) {
                Ok(()) => finish(response(200, "text/plain"), whole(Bytes::new())),
                Err(rejection) => reject(rejection),
            },
            Action::Patch { resource, .. } => {
                let body = match read_body(req.into_body()).await {
                    Ok(body) => body,
                    Err(rejection) => return reject(rejection),
                };
                let patched =
                    tokio::task::spawn_blocking(move || endpoint.patch(&resource, &body, if_match.as_deref())).await;
                match patched {
                    Ok(Ok(Patched::Trickle)) => finish(response(204, "text/plain"), whole(Bytes::new())),
                    Ok(Ok(Patched::Restarted { sdpfrag, etag })) => {
                        finish(response(200, whip::SDPFRAG).header("etag", etag), whole(sdpfrag))
                    }
                    Ok(Err(rejection)) => reject(rejection),
                    Err(_) => reject(Rejection::new(500, "the PATCH could not be handled")),
                }
            }
        }
    }
}

/// At most this many events wait for a slow reader; past them its stream ends (an EventSource
/// reconnects).
pub const EVENTS_BACKLOG: usize = 256;

fn serve_resource(resource: &dyn Resource, method: &str, rest: &str, authorization: Option<&str>) -> Reply {
    let Some(tokens) = resource.tokens(rest) else {
        return reject(Rejection::new(404, format!("nothing here at {rest:?}")));
    };
    match method {
        "OPTIONS" => {
            return finish(response(204, "text/plain").header("allow", "OPTIONS, GET"), whole(Bytes::new()));
        }
        "GET" => {}
        other => {
            return reject(
                Rejection::new(405, format!("{other} is not allowed here; GET it"))
                    .with_header("allow", "OPTIONS, GET"),
            );
        }
    }
    if let Some(Err(rejection)) = tokens.iter().map(|t| whip::check_token(authorization, t)).reduce(|a, b| a.or(b)) {
        return reject(rejection);
    }
    match resource.get(rest) {
        Ok(Content::Whole { content_type, body }) => {
            finish(response(200, content_type).header("cache-control", "no-store"), whole(body))
        }
        Ok(Content::Events(receiver)) => finish(
            response(200, "text/event-stream").header("cache-control", "no-store").header("x-accel-buffering", "no"),
            EventBody(receiver).boxed(),
        ),
        Err(rejection) => reject(rejection),
    }
}

async fn read_body(body: Incoming) -> Result<String, Rejection> {
    let collected = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, whip::MAX_BODY).collect())
        .await
        .map_err(|_| Rejection::new(408, format!("the body did not arrive within {} s", BODY_TIMEOUT.as_secs())))?
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                whip::too_large()
            } else {
                Rejection::new(400, format!("cannot read the body: {e}"))
            }
        })?;
    String::from_utf8(collected.to_bytes().to_vec()).map_err(|_| Rejection::new(400, "body is not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_value_that_cannot_be_sent_is_a_500_not_a_panic() {
        let reply = finish(response(201, whip::SDP).header("link", "<turn:a\r\nb>"), whole("v=0"));
        assert_eq!(reply.status(), 500);
        assert_eq!(reply.headers()["content-type"], "text/plain; charset=utf-8");
        let reply = finish(response(201, whip::SDP).header("link", "<turn:a>"), whole("v=0"));
        assert_eq!((reply.status(), reply.headers()["link"].to_str().unwrap()), (201.try_into().unwrap(), "<turn:a>"));
    }

    #[test]
    fn connections_are_bounded_in_all_and_per_address() {
        let mut connections = Connections::default();
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        for _ in 0..MAX_CONNECTIONS_PER_ADDRESS {
            assert!(connections.open(a));
        }
        assert!(!connections.open(a), "one address cannot take more");
        assert!(connections.open(b), "another still can");
        connections.close(a);
        assert!(connections.open(a), "a closed connection frees its place");
        for i in 0..MAX_CONNECTIONS {
            connections.open(IpAddr::from([10, 1, (i / 256) as u8, (i % 256) as u8]));
        }
        assert_eq!(connections.open, MAX_CONNECTIONS);
        assert!(!connections.open(IpAddr::from([10, 2, 0, 1])), "none past the total");
        assert!(!connections.by_address.contains_key(&IpAddr::from([10, 2, 0, 1])), "a refusal leaves nothing");
    }
}
