//! The response body type shared by every endpoint.
//!
//! Scripted bodies run as a small task that feeds a channel: each piece becomes one HTTP chunk,
//! and because the body is `Pending` between pieces hyper flushes each one to the socket at once.
//! Generated bodies (`/stream`, the endless scenarios) are produced synchronously in
//! `poll_frame`, so their speed is bounded by the socket, not by a task hop per write.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

use crate::conn::ConnInfo;
use crate::load::LoadBody;
use crate::log::DoneGuard;
use crate::stream::StreamGen;

/// One step of a scripted body.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// Write these bytes as one chunk.
    Send(Bytes),
    /// Wait this long.
    Sleep(Duration),
    /// Drop the TCP connection abruptly, without the chunked terminator.
    Abort,
    /// Send nothing more and keep the connection open until the client goes away.
    Hold,
    /// End the whole TCP connection with a RST (`SO_LINGER` 0), every stream on it included.
    Reset(Arc<ConnInfo>),
}

pub(crate) enum Kind {
    /// One chunk (or none) then the end. `exact` makes hyper use `Content-Length`.
    Full { data: Option<Bytes>, exact: bool },
    /// Pieces fed by a scripted task.
    Chan(mpsc::Receiver<io::Result<Bytes>>),
    /// The `/stream` workload generator.
    Gen(Box<StreamGen>),
    /// `first`, then `chunk` again and again, forever.
    Repeat { first: Option<Bytes>, chunk: Bytes },
    /// A `/load/*` stream.
    Load(Box<LoadBody>),
}

/// The response body of every endpoint.
pub struct Out {
    kind: Kind,
    _done: Option<Arc<DoneGuard>>,
}

impl Out {
    pub(crate) fn empty() -> Self {
        Self::full(Bytes::new())
    }

    /// A chunked body holding `data` then ending.
    pub(crate) fn full(data: impl Into<Bytes>) -> Self {
        let data: Bytes = data.into();
        let data = if data.is_empty() { None } else { Some(data) };
        Self { kind: Kind::Full { data, exact: false }, _done: None }
    }

    /// A body with a known length (hyper sends `Content-Length`).
    pub(crate) fn exact(data: impl Into<Bytes>) -> Self {
        Self { kind: Kind::Full { data: Some(data.into()), exact: true }, _done: None }
    }

    pub(crate) fn generated(generator: StreamGen) -> Self {
        Self { kind: Kind::Gen(Box::new(generator)), _done: None }
    }

    pub(crate) fn load(body: LoadBody) -> Self {
        Self { kind: Kind::Load(Box::new(body)), _done: None }
    }

    pub(crate) fn repeat(first: Option<Bytes>, chunk: Bytes) -> Self {
        Self { kind: Kind::Repeat { first, chunk }, _done: None }
    }

    /// A body that plays `steps` on a spawned task. Without sleeps, holds or aborts it is just
    /// the concatenation, sent as one chunk.
    pub(crate) fn steps(steps: Vec<Step>) -> Self {
        if steps.iter().all(|s| matches!(s, Step::Send(_))) {
            let mut all = Vec::new();
            for step in &steps {
                if let Step::Send(b) = step {
                    all.extend_from_slice(b);
                }
            }
            return Self::full(all);
        }
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            for step in steps {
                match step {
                    Step::Send(b) => {
                        if tx.send(Ok(b)).await.is_err() {
                            return;
                        }
                    }
                    Step::Sleep(d) => tokio::time::sleep(d).await,
                    Step::Abort => {
                        let _ = tx.send(Err(io::Error::other("scripted abort"))).await;
                        return;
                    }
                    Step::Hold => {
                        tx.closed().await;
                        return;
                    }
                    Step::Reset(conn) => {
                        conn.reset();
                        // Stay pending until the connection is gone: ending the body here
                        // could let a clean end reach the client before the RST.
                        tx.closed().await;
                        return;
                    }
                }
            }
        });
        Self { kind: Kind::Chan(rx), _done: None }
    }

    /// Marks the log entry as done when this body is dropped (finished or abandoned).
    pub(crate) fn with_done(mut self, done: Option<Arc<DoneGuard>>) -> Self {
        self._done = done;
        self
    }
}

impl Body for Out {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        match &mut this.kind {
            Kind::Full { data, .. } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Kind::Chan(rx) => rx.poll_recv(cx).map(|piece| piece.map(|r| r.map(Frame::data))),
            Kind::Gen(g) => g.poll_next(cx).map(|piece| piece.map(|b| Ok(Frame::data(b)))),
            Kind::Load(l) => l.poll_next(cx).map(|piece| piece.map(|b| Ok(Frame::data(b)))),
            Kind::Repeat { first, chunk } => {
                let next = first.take().unwrap_or_else(|| chunk.clone());
                Poll::Ready(Some(Ok(Frame::data(next))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(&self.kind, Kind::Full { data: None, exact: true })
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full { data, exact: true } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            _ => SizeHint::default(),
        }
    }
}
