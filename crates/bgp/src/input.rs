//! Opening MRT and table files: decompression chosen by the first bytes (gzip, bzip2, or none),
//! never by the file name, optionally on a thread of its own, and a reader that counts bytes and
//! remembers read errors so that a stream cut short can be told from one that ended cleanly.

use flate2::bufread::MultiGzDecoder;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Decompressed bytes handed from the decompression thread at a time.
const CHUNK: usize = 256 << 10;
/// Chunks decompressed ahead of the reader, at most: bounds the memory (1 MiB) while letting
/// the two threads run at their own pace.
const CHUNKS_AHEAD: usize = 4;

/// How a stream is compressed, as told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Not compressed.
    None,
    /// gzip (one or more members).
    Gzip,
    /// bzip2 (one or more streams).
    Bzip2,
}

impl Compression {
    /// What `head` (the first bytes of a stream) says the stream is.
    pub fn sniff(head: &[u8]) -> Compression {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            // "BZh" and a block size digit.
            [b'B', b'Z', b'h', b'1'..=b'9', ..] => Compression::Bzip2,
            _ => Compression::None,
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
        })
    }
}

/// Wraps `reader` in the decompressor its first bytes call for (as [`crate::MrtReader`] and
/// [`crate::OriginTable::load`] do), for callers that want the MRT bytes themselves.
pub fn decompress<'a, R: BufRead + 'a>(mut reader: R) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let compression = Compression::sniff(reader.fill_buf()?);
    let reader: Box<dyn Read + 'a> = match compression {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(MultiGzDecoder::new(reader)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(reader)),
    };
    Ok((compression, reader))
}

/// Like [`decompress`], but a compressed stream is decompressed on a thread of its own, so that
/// decompression (for bzip2 the larger part of the work) and parsing overlap on two cores. The
/// bytes and the errors the reader gives are the same as [`decompress`]'s, in the same order;
/// dropping the reader stops the thread after its current chunk.
pub(crate) fn decompress_on_thread<R: Read + Send + 'static>(reader: R) -> io::Result<(Compression, Box<dyn Read>)> {
    let mut reader = BufReader::new(reader);
    let compression = Compression::sniff(reader.fill_buf()?);
    if compression == Compression::None {
        return Ok((compression, Box::new(reader)));
    }
    let (sender, receiver) = sync_channel(CHUNKS_AHEAD);
    std::thread::Builder::new()
        .name("mrt-decompress".into())
        .spawn(move || match decompress(reader) {
            Ok((_, mut decompressed)) => pump(&mut decompressed, &sender),
            Err(e) => {
                let _ = sender.send(Err(e));
            }
        })?;
    Ok((
        compression,
        Box::new(ChannelReader {
            receiver,
            chunk: Vec::new(),
            at: 0,
            done: false,
        }),
    ))
}

/// Sends `reader`'s bytes in chunks, then its error if it ends with one; stops when the
/// receiving end is gone.
fn pump(reader: &mut dyn Read, sender: &SyncSender<io::Result<Vec<u8>>>) {
    loop {
        let mut chunk = vec![0; CHUNK];
        match reader.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                chunk.truncate(n);
                if sender.send(Ok(chunk)).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = sender.send(Err(e));
                return;
            }
        }
    }
}

/// The reading end of [`decompress_on_thread`].
struct ChannelReader {
    receiver: Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
    /// The sender finished (end of data, or after its error).
    done: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            if self.done {
                return Ok(0);
            }
            match self.receiver.recv() {
                Ok(Ok(chunk)) => (self.chunk, self.at) = (chunk, 0),
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                // The thread ended without an error: the end of the data.
                Err(_) => self.done = true,
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A reader that counts the bytes it passes on and keeps the first error its inner reader
/// returned (a decompressor's complaint about a cut stream, which a caller further up may take
/// for a clean end of file).
#[derive(Debug)]
pub(crate) struct CountingReader<R> {
    inner: R,
    bytes: u64,
    error: Option<String>,
}

impl<R> CountingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        CountingReader {
            inner,
            bytes: 0,
            error: None,
        }
    }

    /// Bytes read so far.
    pub(crate) fn position(&self) -> u64 {
        self.bytes
    }

    /// The first error the inner reader returned, if any.
    pub(crate) fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.bytes += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                if self.error.is_none() {
                    self.error = Some(e.to_string());
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn sniffs_by_magic_bytes() {
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(Compression::sniff(b"BZh91AY"), Compression::Bzip2);
        assert_eq!(Compression::sniff(b"BZ"), Compression::None);
        assert_eq!(Compression::sniff(&[0x47, 0xc1, 0x7c, 0x5d]), Compression::None);
    }

    #[test]
    fn decompresses_gzip_and_bzip2_whatever_the_name() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"hello").unwrap();
        let gz = gz.finish().unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(b"world").unwrap();
        let bz = bz.finish().unwrap();
        for (data, want, kind) in [
            (gz, "hello", Compression::Gzip),
            (bz, "world", Compression::Bzip2),
            (b"plain".to_vec(), "plain", Compression::None),
        ] {
            let (found, mut r) = decompress(data.as_slice()).unwrap();
            let mut out = String::new();
            r.read_to_string(&mut out).unwrap();
            assert_eq!((found, out.as_str()), (kind, want));
        }
    }

    /// Reads `reader` to its end or first error, in odd-sized steps.
    fn drain(mut reader: impl Read) -> (Vec<u8>, Option<String>) {
        let mut out = Vec::new();
        let mut buf = [0u8; 1000];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return (out, None),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }

    #[test]
    fn a_decompression_thread_gives_the_same_bytes_and_errors() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8 ^ (i >> 12) as u8).collect();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&data).unwrap();
        let bz = bz.finish().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        for (compressed, kind) in [(bz, Compression::Bzip2), (gz, Compression::Gzip)] {
            for cut in [compressed.len(), compressed.len() * 2 / 3, 5] {
                let part = compressed[..cut].to_vec();
                let (_, inline) = decompress(part.as_slice()).unwrap();
                let want = drain(inline);
                let (found, threaded) = decompress_on_thread(io::Cursor::new(part)).unwrap();
                assert_eq!(found, kind);
                let got = drain(threaded);
                assert_eq!(got.0.len(), want.0.len(), "{kind} cut at {cut}");
                assert!(got.0 == want.0, "{kind} cut at {cut}: same bytes");
                assert_eq!(got.1, want.1, "{kind} cut at {cut}: same error");
                if cut == compressed.len() {
                    assert_eq!((got.0.len(), got.1), (data.len(), None));
                } else {
                    assert!(got.1.is_some(), "{kind} cut at {cut}: an error");
                }
            }
        }
        let (found, mut plain) = decompress_on_thread(io::Cursor::new(b"plain".to_vec())).unwrap();
        let mut out = String::new();
        plain.read_to_string(&mut out).unwrap();
        assert_eq!((found, out.as_str()), (Compression::None, "plain"));
    }

    #[test]
    fn dropping_the_reader_stops_the_thread() {
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&vec![1u8; 20 * CHUNK]).unwrap();
        let (_, mut reader) = decompress_on_thread(io::Cursor::new(bz.finish().unwrap())).unwrap();
        let mut first = [0u8; 10];
        reader.read_exact(&mut first).unwrap();
        drop(reader);
        // Nothing to join: the thread's next send fails and it returns. This only checks that
        // dropping early neither blocks nor panics.
    }

    #[test]
    fn counting_reader_keeps_the_first_error() {
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&[7u8; 10_000]).unwrap();
        let mut bz = bz.finish().unwrap();
        bz.truncate(bz.len() / 2);
        let (_, r) = decompress(bz.as_slice()).unwrap();
        let mut r = CountingReader::new(r);
        let mut sink = Vec::new();
        assert!(r.read_to_end(&mut sink).is_err());
        assert!(r.error().is_some());
        assert_eq!(r.position(), sink.len() as u64);
    }
}
