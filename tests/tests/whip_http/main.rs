//! The WHIP HTTP contract (RFC 9725) of whipcastsrc, with a real HTTP client against the
//! element in a running pipeline: every status code, CORS, auth, two streams on one port, and
//! hostile clients (offers asking too much, idle and slow connections, sessions never connected).
//!
//! One test binary, a module a topic: answers (what a POST gets back), protocol (status codes,
//! CORS, auth, PATCH, HTTPS), sessions (replacing, limits, streams on one port), hostile (clients
//! that ask too much or hold connections) and element (whipcastsrc in its pipeline); support
//! holds the server and the requests they share.

mod answers;
mod element;
mod hostile;
mod protocol;
mod sessions;
mod support;
