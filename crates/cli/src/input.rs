//! Opening inputs for `censorwatch analyze`: a path or `-` (stdin), decompressed by what the
//! first bytes say (gzip or zstd magic), not only by the extension.
//!
//! Nothing here reads a whole file: every input becomes a [`BufRead`] over a fixed-size buffer.
//! A hook ([`Input::inspect_raw`]) sees the raw (still compressed) bytes as they are read, so a
//! progress bar can count the bytes of the file on disk.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::Path;

/// Size of the buffer lines are read from. Large enough that most measurements (tens of KiB) are
/// parsed straight out of it without a copy.
pub const READ_BUFFER: usize = 1 << 20;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// How an input's measurements are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One measurement per line (`.jsonl`, stdin, anything not named `.json`).
    Lines,
    /// One JSON document, possibly pretty-printed over many lines (`.json`, `.json.gz`, …).
    Document,
}

/// How an input is compressed, as told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Not compressed.
    None,
    /// gzip (one or more members).
    Gzip,
    /// zstd (one or more frames).
    Zstd,
}

impl Compression {
    /// What `prefix` (the first bytes of a stream) says the stream is.
    pub fn sniff(prefix: &[u8]) -> Compression {
        if prefix.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else if prefix.starts_with(&ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// An opened input, not yet decompressed.
pub struct Input {
    /// The name given on the command line (`-` for stdin).
    pub name: String,
    /// Size in bytes on disk, when it is a regular file.
    pub len: Option<u64>,
    /// How its measurements are laid out, from the file name.
    pub layout: Layout,
    raw: Box<dyn Read>,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("name", &self.name)
            .field("len", &self.len)
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl Input {
    /// Opens `path`: `-` is stdin, anything else a path. Fails only when the file cannot be
    /// opened (missing, a directory, no permission).
    pub fn open(path: &Path) -> io::Result<Input> {
        if path.as_os_str() == "-" {
            return Ok(Input::from_reader("-", io::stdin(), None, Layout::Lines));
        }
        let file = File::open(path)?;
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "is a directory; pass the files inside it",
            ));
        }
        let len = meta.is_file().then_some(meta.len());
        Ok(Input::from_reader(
            path.display().to_string(),
            file,
            len,
            layout_for(path),
        ))
    }

    /// An input over any reader (used for stdin and by tests).
    pub fn from_reader(name: impl Into<String>, raw: impl Read + 'static, len: Option<u64>, layout: Layout) -> Input {
        Input {
            name: name.into(),
            len,
            layout,
            raw: Box::new(raw),
        }
    }

    /// Whether this input is stdin.
    pub fn is_stdin(&self) -> bool {
        self.name == "-"
    }

    /// Routes the raw bytes through `wrap` (e.g. a progress bar's counting reader) before they
    /// are decompressed.
    pub fn inspect_raw<R: Read + 'static>(mut self, wrap: impl FnOnce(Box<dyn Read>) -> R) -> Input {
        self.raw = Box::new(wrap(self.raw));
        self
    }

    /// Sniffs the compression from the first bytes and returns a buffered reader of the
    /// decompressed text, with what was found.
    pub fn into_reader(mut self) -> io::Result<(Box<dyn BufRead>, Compression)> {
        let mut prefix = [0u8; 4];
        let mut got = 0;
        while got < prefix.len() {
            match self.raw.read(&mut prefix[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let compression = Compression::sniff(&prefix[..got]);
        let whole = Cursor::new(prefix).take(got as u64).chain(self.raw);
        let reader: Box<dyn BufRead> = match compression {
            Compression::None => Box::new(BufReader::with_capacity(READ_BUFFER, whole)),
            Compression::Gzip => Box::new(BufReader::with_capacity(
                READ_BUFFER,
                flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 16, whole)),
            )),
            Compression::Zstd => Box::new(BufReader::with_capacity(
                READ_BUFFER,
                zstd::stream::read::Decoder::new(whole)?,
            )),
        };
        Ok((reader, compression))
    }
}

/// `.json` (optionally followed by `.gz`, `.gzip`, `.zst`, `.zstd`) is one document; everything
/// else is read as lines.
pub fn layout_for(path: &Path) -> Layout {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let stem = ["gz", "gzip", "zst", "zstd"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext).and_then(|s| s.strip_suffix('.')))
        .unwrap_or(&name);
    if stem.ends_with(".json") {
        Layout::Document
    } else {
        Layout::Lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_all(input: Input) -> (String, Compression) {
        let (mut r, c) = input.into_reader().unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        (s, c)
    }

    #[test]
    fn layout_follows_the_name() {
        assert_eq!(layout_for(Path::new("a/b.json")), Layout::Document);
        assert_eq!(layout_for(Path::new("b.JSON.gz")), Layout::Document);
        assert_eq!(layout_for(Path::new("b.json.zst")), Layout::Document);
        assert_eq!(layout_for(Path::new("b.jsonl")), Layout::Lines);
        assert_eq!(layout_for(Path::new("b.jsonl.gz")), Layout::Lines);
        assert_eq!(layout_for(Path::new("json")), Layout::Lines);
    }

    #[test]
    fn sniffs_gzip_and_zstd_regardless_of_name() {
        let text = "{\"a\":1}\n{\"b\":2}\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(text.as_bytes(), 1).unwrap();
        for (bytes, want) in [
            (gz, Compression::Gzip),
            (zst, Compression::Zstd),
            (text.as_bytes().to_vec(), Compression::None),
        ] {
            let input = Input::from_reader("x.jsonl", Cursor::new(bytes), None, Layout::Lines);
            assert_eq!(read_all(input), (text.to_owned(), want));
        }
    }

    #[test]
    fn concatenated_gzip_members_are_all_read() {
        let mut all = Vec::new();
        for part in ["{\"a\":1}\n", "{\"b\":2}\n"] {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(part.as_bytes()).unwrap();
            all.extend(gz.finish().unwrap());
        }
        let input = Input::from_reader("x", Cursor::new(all), None, Layout::Lines);
        assert_eq!(read_all(input).0, "{\"a\":1}\n{\"b\":2}\n");
    }

    #[test]
    fn tiny_inputs_shorter_than_the_magic_survive() {
        for text in ["", "{", "{}\n"] {
            let input = Input::from_reader("x", Cursor::new(text.as_bytes().to_vec()), None, Layout::Lines);
            assert_eq!(read_all(input), (text.to_owned(), Compression::None));
        }
    }

    #[test]
    fn missing_file_is_an_open_error() {
        let err = Input::open(Path::new("/nonexistent/censorwatch/x.jsonl")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
