//! `eventsource-core`: a WHATWG-exact EventSource (server-sent events) client.
//!
//! Two ways to consume a source, same semantics:
//! - pull: [`EventSource::new`] / [`EventSource::with_options`] give a source that is a
//!   `futures_core::Stream` of [`Event`]s, with blocking and batch receives for bindings;
//! - push: [`EventSource::with_handler`] calls a [`Handler`] on the library's internal runtime,
//!   so a program without an async runtime can use it.
//!
//! The parser ([`parser::Parser`]) is usable on its own, without the `client` feature.

#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
#[path = "fuzzing.rs"]
pub mod __fuzz;

#[cfg(target_arch = "x86_64")]
mod cpu;
mod error;
mod event;
mod lines;
#[cfg(feature = "client")]
mod options;
pub mod parser;
#[cfg(feature = "client")]
mod runtime;
#[cfg(feature = "client")]
mod source;
mod text;
#[cfg(feature = "client")]
mod transport;
mod utf8;

pub use error::{Error, ErrorKind};
pub use event::{ErrorEvent, Event, MessageEvent, ReadyState};
#[cfg(feature = "client")]
pub use options::{Options, TransportKind};
#[cfg(feature = "client")]
pub use source::{Batch, EventSource, Handler, Recv};
pub use text::Text;

/// The crate version, for `es_version()` and friends.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
