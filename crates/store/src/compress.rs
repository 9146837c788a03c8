//! How raw measurements are compressed for storage: zstd, one level for every backend, with a
//! compression context reused per thread.
//!
//! Creating a zstd context costs about as much as compressing a 5 KB measurement, and ingest
//! compresses thousands per second, so each thread keeps one. Level 1 ("fast" strategy) rather
//! than zstd's default 3: on the OONI corpus it compresses about twice as fast for a 5% larger
//! output (7.3× instead of 7.7×), and compression was the largest single cost of an ingest.
//! Negative ("fast") levels were measured too and not taken: level -1 saves a quarter of the
//! time for a 17% larger output (6.1×), level -3 a third for 23% (`INGEST_STAGES_LEVELS=1
//! cargo bench -p censorwatch --bench ingest_stages`).
//!
//! Each thread also keeps its output buffer: zstd's one-shot API sizes its output for the
//! worst case (about the input's size) and leaves that capacity in the returned vector, so a
//! record held in a batch would keep twice its raw size, and every large measurement would take
//! fresh pages from the system (faulted in and zeroed, a fifth of an ingest's CPU time). The
//! compressed bytes are copied out of the buffer into a vector of their exact size.

use crate::StoreError;
use std::cell::RefCell;

/// The zstd level raw measurements are compressed with (see the module docs).
pub const ZSTD_LEVEL: i32 = 1;

/// A thread's output buffer is kept only up to this size, so that one huge measurement does
/// not pin its size in memory for the rest of the thread's life.
const KEEP_BUFFER: usize = 4 << 20;

/// A thread's compression context and output buffer.
struct Packer {
    compressor: zstd::bulk::Compressor<'static>,
    buffer: Vec<u8>,
}

thread_local! {
    static PACKER: RefCell<Option<Packer>> = const { RefCell::new(None) };
}

/// `raw` compressed at [`ZSTD_LEVEL`] with this thread's context, in a vector of its exact size.
pub fn compress(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    PACKER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let packer = match slot.as_mut() {
            Some(p) => p,
            None => slot.insert(Packer {
                compressor: zstd::bulk::Compressor::new(ZSTD_LEVEL)?,
                buffer: Vec::new(),
            }),
        };
        packer.buffer.clear();
        packer.buffer.reserve(zstd::zstd_safe::compress_bound(raw.len()));
        packer.compressor.compress_to_buffer(raw, &mut packer.buffer)?;
        let packed = packer.buffer.as_slice().to_vec();
        if packer.buffer.capacity() > KEEP_BUFFER {
            packer.buffer = Vec::new();
        }
        Ok(packed)
    })
}

/// Decompresses what [`compress`] made for the record `id`, checking it has `expected_len`
/// bytes (the length stored beside it). Streams rather than trusting `expected_len` for the
/// allocation: a corrupt length must not decide how much memory is taken.
pub fn decompress(id: &str, compressed: &[u8], expected_len: u64) -> Result<Vec<u8>, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        id: id.to_owned(),
        message,
    };
    let raw =
        zstd::stream::decode_all(compressed).map_err(|e| corrupt(format!("its raw bytes do not decompress: {e}")))?;
    if raw.len() as u64 != expected_len {
        return Err(corrupt(format!(
            "its raw bytes decompress to {} bytes, not the {expected_len} stored",
            raw.len()
        )));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let raw = br#"{"measurement_uid":"x","test_keys":{"body":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}}"#;
        let packed = compress(raw).unwrap();
        assert!(packed.len() < raw.len());
        assert_eq!(
            compress(raw).unwrap(),
            packed,
            "the reused context gives the same bytes"
        );
        assert_eq!(packed.capacity(), packed.len(), "no worst-case capacity is kept");
        let big: Vec<u8> = (0..(6u32 << 20)).map(|i| (i % 251) as u8).collect();
        let packed_big = compress(&big).unwrap();
        assert_eq!(decompress("big", &packed_big, big.len() as u64).unwrap(), big);
        assert_eq!(compress(raw).unwrap(), packed, "still right after a large one");
        assert_eq!(decompress("x", &packed, raw.len() as u64).unwrap(), raw);
        let err = decompress("x", &packed, raw.len() as u64 + 1).unwrap_err().to_string();
        assert!(err.contains("decompress to"), "{err}");
        let err = decompress("x", &packed[..packed.len() / 2], raw.len() as u64)
            .unwrap_err()
            .to_string();
        assert!(err.contains("do not decompress"), "{err}");
        assert!(decompress("x", &packed, u64::MAX).is_err());
    }
}
