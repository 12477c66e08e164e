//! Building responses: headers every answer carries (CORS), rejections as text, bodies whole
//! or as Server-Sent Events.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::Response;
use hyper::body::Frame;

use crate::whip::{self, Rejection};

pub(super) type Reply = Response<BoxBody<Bytes, Infallible>>;

pub(super) fn whole(body: impl Into<Bytes>) -> BoxBody<Bytes, Infallible> {
    Full::new(body.into()).boxed()
}

/// A response body fed by a channel: Server-Sent Events as they come.
pub(super) struct EventBody(pub(super) tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|event| event.map(|bytes| Ok(Frame::data(bytes))))
    }
}

pub(super) fn response(status: u16, content_type: &str) -> hyper::http::response::Builder {
    let mut builder = Response::builder().status(status).header("content-type", content_type);
    for (name, value) in whip::CORS_HEADERS {
        builder = builder.header(name, value);
    }
    builder
}

pub(super) fn reject(rejection: Rejection) -> Reply {
    let mut builder = response(rejection.status, "text/plain; charset=utf-8");
    for (name, value) in &rejection.headers {
        builder = builder.header(*name, value);
    }
    finish(builder, whole(format!("{}\n", rejection.reason)))
}

/// The response, or a 500 saying why it could not be built (a header value it cannot carry),
/// instead of a panic in the connection's task.
pub(super) fn finish(builder: hyper::http::response::Builder, body: BoxBody<Bytes, Infallible>) -> Reply {
    builder.body(body).unwrap_or_else(|e| {
        let mut reply = Response::new(whole(format!("the response could not be built: {e}\n")));
        *reply.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        reply.headers_mut().insert("content-type", hyper::http::HeaderValue::from_static("text/plain; charset=utf-8"));
        reply
    })
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
}
