//! The product as a user meets it: the `whipcast` server (what `make run` starts) recording
//! session after session from real publishers, finalizing on Ctrl-C, its browser publish page
//! used by headless Chromium, and `make demo`'s script. Every recording is decoded.
//!
//! One test binary, a module a topic: recording (sessions, their containers, `make demo`),
//! page (the browser publish page and the tokens), stopping (Ctrl-C, SIGTERM, SIGKILL, no media,
//! a full disk), load (a busy machine), simulcast, metrics and facemark; support holds what they
//! share.

mod facemark;
mod load;
mod metrics;
mod page;
mod recording;
mod simulcast;
mod stopping;
mod support;
