//! Opening MRT and table files: decompression chosen by the first bytes (gzip, bzip2, or none),
//! never by the file name, and a reader that counts bytes and remembers read errors so that a
//! stream cut short can be told from one that ended cleanly.

use flate2::bufread::MultiGzDecoder;
use std::fmt;
use std::io::{self, BufRead, Read};

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
