//! The measurement's clock and its log of network events (ooni/spec `df-008-netevents.md`):
//! every time in the test keys is seconds since the measurement started, and every step of one
//! connection shares a transaction id.
//!
//! [`Traced`] wraps a stream and logs its reads and writes. The first [`MAX_IO_EVENTS`] reads and
//! writes of a connection are logged one by one; after that only a `bytes_received_cumulative`
//! event every [`CUMULATIVE_EVERY`] (and one at the end), so a 512 KiB body does not become
//! thousands of events while the bytes-over-time curve (what throttling analysis needs) is kept.

use censorwatch_model::Failure;
use censorwatch_model::web_connectivity::NetworkEvent;
use serde_json::Number;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Reads and writes logged individually per connection.
pub const MAX_IO_EVENTS: usize = 32;
/// Interval of `bytes_received_cumulative` events.
pub const CUMULATIVE_EVERY: Duration = Duration::from_millis(100);

/// One measurement's clock, transaction counter and event log. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Trace {
    inner: Arc<TraceInner>,
}

#[derive(Debug)]
struct TraceInner {
    start: Instant,
    next_id: AtomicI64,
    events: Mutex<Vec<NetworkEvent>>,
}

/// Seconds as OONI writes them (microsecond precision is plenty and keeps lines short).
pub fn seconds(d: Duration) -> Number {
    let micros = d.as_micros() as f64 / 1e6;
    Number::from_f64(micros).unwrap_or_else(|| Number::from(0))
}

impl Trace {
    /// A trace whose time zero is now.
    pub fn new() -> Trace {
        Trace {
            inner: Arc::new(TraceInner {
                start: Instant::now(),
                next_id: AtomicI64::new(1),
                events: Mutex::new(Vec::new()),
            }),
        }
    }

    /// When the measurement started.
    pub fn start(&self) -> Instant {
        self.inner.start
    }

    /// Seconds from the start to `at`.
    pub fn t(&self, at: Instant) -> Number {
        seconds(at.saturating_duration_since(self.inner.start))
    }

    /// Seconds from the start to now.
    pub fn now(&self) -> Number {
        self.t(Instant::now())
    }

    /// A fresh transaction id.
    pub fn next_id(&self) -> i64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Logs one event.
    #[allow(clippy::too_many_arguments)]
    pub fn event(
        &self,
        operation: &str,
        address: &str,
        proto: &str,
        t0: Instant,
        num_bytes: Option<i64>,
        failure: Option<Failure>,
        transaction_id: i64,
        tags: &[String],
    ) {
        let ev = NetworkEvent {
            address: Some(address.to_owned()),
            failure,
            num_bytes,
            operation: Some(operation.to_owned()),
            proto: Some(proto.to_owned()),
            t0: Some(self.t(t0)),
            t: Some(self.now()),
            tags: Some(tags.to_vec()),
            transaction_id: Some(transaction_id),
            ..Default::default()
        };
        self.inner.events.lock().unwrap_or_else(|p| p.into_inner()).push(ev);
    }

    /// Every event so far, in the order logged.
    pub fn events(&self) -> Vec<NetworkEvent> {
        let mut v = self.inner.events.lock().unwrap_or_else(|p| p.into_inner()).clone();
        // Concurrent connections interleave; OONI's consumers expect time order.
        v.sort_by(|a, b| {
            let ta = a.t.as_ref().and_then(Number::as_f64).unwrap_or(0.0);
            let tb = b.t.as_ref().and_then(Number::as_f64).unwrap_or(0.0);
            ta.total_cmp(&tb)
        });
        v
    }
}

impl Default for Trace {
    fn default() -> Self {
        Trace::new()
    }
}

/// A stream that logs its I/O into a [`Trace`].
#[derive(Debug)]
pub struct Traced<S> {
    inner: S,
    trace: Trace,
    address: String,
    transaction_id: i64,
    tags: Vec<String>,
    logged: usize,
    received: i64,
    last_cumulative: Instant,
    reported_received: i64,
}

impl<S> Traced<S> {
    /// Wraps `inner`, logging under `transaction_id` with peer `address`.
    pub fn new(inner: S, trace: Trace, address: String, transaction_id: i64, tags: Vec<String>) -> Traced<S> {
        Traced {
            inner,
            trace,
            address,
            transaction_id,
            tags,
            logged: 0,
            received: 0,
            last_cumulative: Instant::now(),
            reported_received: 0,
        }
    }

    /// Bytes read so far.
    pub fn received(&self) -> i64 {
        self.received
    }

    fn log(&mut self, op: &str, n: Option<i64>, failure: Option<Failure>) {
        if self.logged < MAX_IO_EVENTS {
            self.logged += 1;
            self.trace.event(
                op,
                &self.address,
                "tcp",
                Instant::now(),
                n,
                failure,
                self.transaction_id,
                &self.tags,
            );
        }
    }

    fn cumulative(&mut self, force: bool) {
        let now = Instant::now();
        if self.received != self.reported_received && (force || now - self.last_cumulative >= CUMULATIVE_EVERY) {
            self.last_cumulative = now;
            self.reported_received = self.received;
            self.trace.event(
                "bytes_received_cumulative",
                &self.address,
                "tcp",
                now,
                Some(self.received),
                None,
                self.transaction_id,
                &self.tags,
            );
        }
    }
}

impl<S> Drop for Traced<S> {
    fn drop(&mut self) {
        self.cumulative(true);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Traced<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let n = (buf.filled().len() - before) as i64;
                this.received += n;
                let failure = (n == 0).then_some(Failure::EofError);
                this.log("read", Some(n), failure);
                this.cumulative(false);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => {
                this.log("read", None, Some(crate::failure::classify_io(&e)));
                Poll::Ready(Err(e))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Traced<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => {
                this.log("write", Some(n as i64), None);
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => {
                this.log("write", None, Some(crate::failure::classify_io(&e)));
                Poll::Ready(Err(e))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
