//! Serving a request: the publish page, a resource's GETs, the POST rate limit, and WHIP/WHEP
//! routed by [`crate::whip`] to the stream's [`Endpoint`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::Request;
use hyper::body::Incoming;

use super::reply::{EventBody, Reply, finish, reject, response, whole};
use super::{Content, Endpoint, Patched, Peer, Resource, Server};
use crate::whip::{self, Action, Protocol, Rejection, RequestHead, StreamAuth};

/// How long a POST may wait for its answer, counted from its arrival (OBS gives up after 8 s).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(6);
/// How long a request's body may take to arrive (at most 64 KiB).
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

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

    pub(super) async fn handle(self: Arc<Self>, req: Request<Incoming>, address: SocketAddr) -> Reply {
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
                // The publisher's clock: its wait starts with the POST.
                let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT;
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
                match tokio::time::timeout_at(deadline, receiver).await {
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
                    // Gathering is bounded well below this: a late answer is a busy server (the
                    // session's set-up, webrtcbin, the application's session-started handlers).
                    Err(_) => reject(Rejection::new(
                        504,
                        format!("no answer within {} s of the POST (the server is too busy)", ANSWER_TIMEOUT.as_secs()),
                    )),
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
