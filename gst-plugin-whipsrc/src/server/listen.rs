//! Accepting connections: the listener, TLS, and the bounds on open connections; each
//! connection's requests go to the server's `handle`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{RUNTIME, Server, TlsFiles};

/// How long a client may take to send a request's headers; also how long a kept-alive connection
/// may wait idle for its next request (hyper runs the same timer for both).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
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

/// The connections open now, in all and by client address.
#[derive(Debug, Default)]
pub(super) struct Connections {
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

/// Listens on `address` and serves there, until the last registration on it goes.
pub(super) fn start(
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

#[cfg(test)]
mod tests {
    use super::*;

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
