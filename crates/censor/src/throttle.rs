//! Rate limiting for throttled flows: a token bucket (pure, the caller passes the time) and a
//! one-direction copy that waits for tokens before each write, so a transfer through it measures
//! the configured rate whatever the buffers around it do.

use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The smallest burst allowed, in bytes (a few TCP segments).
const MIN_BURST_BYTES: f64 = 4096.0;
/// The burst, as the time at the configured rate it represents.
const BURST_TIME: Duration = Duration::from_millis(50);
/// The largest single read/write of a throttled copy.
const MAX_CHUNK: usize = 16 * 1024;

/// A token bucket counting bytes: `rate` per second, holding at most `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket for `bits_per_second` (at least 8, one byte a second), with a burst of 50 ms
    /// of traffic but at least 4 KiB.
    pub fn for_bits_per_second(bits_per_second: u64, now: Instant) -> Self {
        let rate = (bits_per_second.max(8) as f64) / 8.0;
        let burst = (rate * BURST_TIME.as_secs_f64()).max(MIN_BURST_BYTES);
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// The burst size in bytes: the most a caller should send at once.
    pub fn burst_bytes(&self) -> usize {
        self.burst as usize
    }

    /// Takes `bytes` tokens at `now` (the balance may go negative) and says how long to wait
    /// before sending them so the long-run rate is kept.
    pub fn take(&mut self, bytes: usize, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// Writes `first` then copies `reader` to `writer` at `bits_per_second`, shutting `writer` down
/// (a FIN) when `reader` ends. Returns the bytes written.
pub async fn copy_throttled<R, W>(
    first: &[u8],
    reader: &mut R,
    writer: &mut W,
    bits_per_second: u64,
) -> std::io::Result<u64>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut bucket = TokenBucket::for_bits_per_second(bits_per_second, Instant::now());
    let chunk = bucket.burst_bytes().clamp(1, MAX_CHUNK);
    let mut written = 0u64;
    for piece in first.chunks(chunk) {
        paced_write(&mut bucket, writer, piece).await?;
        written += piece.len() as u64;
    }
    let mut buf = vec![0u8; chunk];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            writer.shutdown().await?;
            return Ok(written);
        }
        paced_write(&mut bucket, writer, &buf[..n]).await?;
        written += n as u64;
    }
}

async fn paced_write<W: AsyncWrite + Unpin + ?Sized>(
    bucket: &mut TokenBucket,
    writer: &mut W,
    bytes: &[u8],
) -> std::io::Result<()> {
    let wait = bucket.take(bytes.len(), Instant::now());
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    writer.write_all(bytes).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_burst_is_free_then_the_rate_holds() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::for_bits_per_second(8_000, t0); // 1000 B/s, burst 4096 B
        assert_eq!(bucket.burst_bytes(), 4096);
        assert_eq!(bucket.take(4096, t0), Duration::ZERO);
        assert_eq!(bucket.take(1000, t0), Duration::from_secs(1));
        // Sending 10 000 more bytes in 1000-byte pieces, each at the time the bucket asks, ends
        // ten seconds later.
        let mut now = t0 + Duration::from_secs(1);
        for _ in 0..10 {
            now += bucket.take(1000, now);
        }
        let total = now - t0;
        assert!((total.as_secs_f64() - 11.0).abs() < 1e-6, "{total:?}");
    }

    #[test]
    fn idle_time_refills_only_up_to_the_burst() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::for_bits_per_second(1_000_000, t0); // 125 000 B/s, burst 6250 B
        assert_eq!(bucket.burst_bytes(), 6250);
        bucket.take(6250, t0);
        let later = t0 + Duration::from_secs(60);
        assert_eq!(bucket.take(6250, later), Duration::ZERO);
        let wait = bucket.take(12_500, later);
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
    }

    #[test]
    fn zero_rate_is_one_byte_a_second_not_a_division_by_zero() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::for_bits_per_second(0, t0);
        bucket.take(bucket.burst_bytes(), t0);
        assert_eq!(bucket.take(3, t0), Duration::from_secs(3));
    }
}
