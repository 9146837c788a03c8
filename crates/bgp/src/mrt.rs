//! Reading MRT files (RFC 6396) with `bgpkit-parser`, one record at a time, into [`Event`]s.
//!
//! bgpkit-parser's own iterators log a broken record and go on, or stop without saying where. This
//! reader drives its record framing ([`bgpkit_parser::chunk_mrt_record`]) itself over a byte
//! counting reader, so that it can say where a stream broke and how many records came before:
//!
//! * a record whose body cannot be parsed is reported with its offset ([`MrtError::Malformed`])
//!   and skipped; the framing is intact, so reading goes on;
//! * a stream cut short (or compressed data that fails to decompress) ends the file with
//!   [`MrtError::Truncated`]; every record before it has been delivered;
//! * record types bgpkit-parser does not support (OSPF, the draft-era BGP4MP_ENTRY and
//!   BGP4MP_SNAPSHOT subtypes, TABLE_DUMP_V2 RIB_GENERIC) are counted, named in the report, and
//!   skipped: they are not damage, so they do not make a file unclean.
//!
//! Offsets are in the decompressed MRT stream: the same as file offsets for an uncompressed file.
//! Times are the MRT header's, also for RIB entries (whose own "originated" time is when the route
//! was learned, not when the dump was taken).

use crate::input::{self, Compression, CountingReader};
use crate::time::Time;
use crate::update::{Action, Event, Peer, RouteUpdate, Source};
use bgpkit_parser::models::{
    AsPathSegment, Bgp4MpEnum, Bgp4MpType, BgpElem, BgpState, CommonHeader, ElemType, EntryType, MrtMessage, MrtRecord,
    TableDumpV2Message,
};
use bgpkit_parser::{ElemError, Elementor, ParserError, RawMrtRecord, chunk_mrt_record};
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

/// Buffer between the decompressor and the record framing: records are read a header and a body
/// at a time, so this keeps those reads from reaching the decompressor one by one.
const BUFFER: usize = 256 << 10;

/// What went wrong reading an MRT file.
#[derive(Debug)]
pub enum MrtError {
    /// The file could not be opened or its first bytes read.
    Open {
        /// The file.
        file: String,
        /// Why.
        source: io::Error,
    },
    /// The stream stopped early: it ends inside a record, or its compressed data is cut or
    /// damaged. Every record before `offset` was read and delivered.
    Truncated {
        /// The file.
        file: String,
        /// How the file is compressed (offsets are in the decompressed stream).
        compression: Compression,
        /// Where the record that could not be read starts.
        offset: u64,
        /// Records read before it.
        records: u64,
        /// Whether the data simply ends (`true`) or is unreadable (damaged compression, an
        /// impossible record length).
        cut: bool,
        /// What the parser or decompressor said.
        detail: String,
    },
    /// One record could not be parsed and was skipped; the records after it were read.
    Malformed {
        /// The file.
        file: String,
        /// How the file is compressed (offsets are in the decompressed stream).
        compression: Compression,
        /// Where the record starts.
        offset: u64,
        /// Its 1-based number in the file.
        record: u64,
        /// What the parser said.
        detail: String,
    },
}

struct Where<'a>(&'a str, Compression);

impl fmt::Display for Where<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Compression::None => write!(f, "{}", self.0),
            c => write!(f, "{} ({c}-decompressed)", self.0),
        }
    }
}

impl fmt::Display for MrtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MrtError::Open { file, source } => write!(f, "cannot read {file}: {source}"),
            MrtError::Truncated {
                file,
                compression,
                offset,
                records,
                cut,
                detail,
            } => {
                let what = if *cut { "truncated" } else { "unreadable" };
                write!(
                    f,
                    "{what} MRT record at byte offset {offset} of {}, after {records} records: {detail}",
                    Where(file, *compression)
                )?;
                if *records == 0 && !*cut {
                    f.write_str(" (is it an MRT file?)")?;
                }
                Ok(())
            }
            MrtError::Malformed {
                file,
                compression,
                offset,
                record,
                detail,
            } => write!(
                f,
                "malformed MRT record {record} at byte offset {offset} of {}, skipped: {detail}",
                Where(file, *compression)
            ),
        }
    }
}

impl std::error::Error for MrtError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MrtError::Open { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// What reading one file gave.
#[derive(Debug, Default)]
pub struct ReadReport {
    /// The file's name as given.
    pub file: String,
    /// MRT records framed (parsed or not).
    pub records: u64,
    /// Route elements (one prefix seen by one peer) delivered.
    pub elements: u64,
    /// Peer sessions seen leaving the Established state.
    pub peer_downs: u64,
    /// Decompressed bytes read.
    pub bytes: u64,
    /// Records of types bgpkit-parser does not support, skipped.
    pub unsupported: u64,
    /// What the first of them was (`BGP4MP subtype 2 (BGP4MP_ENTRY)`).
    pub first_unsupported: Option<String>,
    /// Records that could not be parsed, skipped.
    pub malformed: u64,
    /// The first of them.
    pub first_malformed: Option<MrtError>,
    /// Why reading stopped before the end, if it did.
    pub fatal: Option<MrtError>,
}

impl ReadReport {
    /// Whether the whole file was read and every record parsed.
    pub fn is_clean(&self) -> bool {
        self.fatal.is_none() && self.malformed == 0
    }
}

/// A streaming reader of one MRT file.
pub struct MrtReader<'a> {
    compression: Compression,
    reader: CountingReader<BufReader<Box<dyn Read + 'a>>>,
    elementor: Elementor,
    path: Vec<u32>,
    rib_path_ids: Vec<Option<u32>>,
    report: ReadReport,
}

impl fmt::Debug for MrtReader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MrtReader")
            .field("file", &self.report.file)
            .field("compression", &self.compression)
            .field("records", &self.report.records)
            .finish_non_exhaustive()
    }
}

impl MrtReader<'static> {
    /// Opens an MRT file, compressed with gzip or bzip2 or not (told by its first bytes).
    pub fn open(path: &Path) -> Result<MrtReader<'static>, MrtError> {
        let name = path.display().to_string();
        match File::open(path) {
            Ok(file) => MrtReader::new(name, file),
            Err(source) => Err(MrtError::Open { file: name, source }),
        }
    }
}

impl<'a> MrtReader<'a> {
    /// Reads MRT data from `reader`, compressed with gzip or bzip2 or not; `name` is used in
    /// reports and errors.
    pub fn new(name: impl Into<String>, reader: impl Read + 'a) -> Result<MrtReader<'a>, MrtError> {
        let name = name.into();
        let (compression, decompressed) = match input::decompress(BufReader::new(reader)) {
            Ok(found) => found,
            Err(source) => return Err(MrtError::Open { file: name, source }),
        };
        Ok(MrtReader {
            compression,
            reader: CountingReader::new(BufReader::with_capacity(BUFFER, decompressed)),
            elementor: Elementor::new(),
            path: Vec::with_capacity(16),
            rib_path_ids: Vec::new(),
            report: ReadReport {
                file: name,
                ..ReadReport::default()
            },
        })
    }

    /// How the file is compressed.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Reads the whole file, calling `on_event` for every route element and peer session going
    /// down, in file order. Never fails: what went wrong is in the report.
    pub fn read_all(mut self, on_event: &mut dyn FnMut(&Event<'_>)) -> ReadReport {
        loop {
            let offset = self.reader.position();
            let error = match chunk_mrt_record(&mut self.reader) {
                Ok(raw) => {
                    self.report.records += 1;
                    self.record(raw, offset, on_event);
                    continue;
                }
                Err(e) => e.error,
            };
            let (cut, detail) = match error {
                // bgpkit-parser takes a read that ends before the first header byte for the end
                // of the data; a decompressor that gave up right at a record boundary looks the
                // same to it, so ask the counting reader whether the data really ended.
                ParserError::EofExpected => match self.reader.error() {
                    None => break,
                    Some(detail) => (true, detail.to_string()),
                },
                ParserError::IoError(e) | ParserError::EofError(e) => {
                    let cut = e.kind() == io::ErrorKind::UnexpectedEof;
                    (cut, self.reader.error().map_or_else(|| e.to_string(), str::to_string))
                }
                ParserError::OversizedRecord { length } => (
                    false,
                    format!("the record header declares a {length}-byte body, more than bgpkit-parser accepts"),
                ),
                // The header was rejected after its body was read: the next record is in place.
                other => {
                    self.report.records += 1;
                    self.malformed(offset, other.to_string());
                    continue;
                }
            };
            self.report.fatal = Some(MrtError::Truncated {
                file: self.report.file.clone(),
                compression: self.compression,
                offset,
                records: self.report.records,
                cut,
                detail,
            });
            break;
        }
        self.report.bytes = self.reader.position();
        self.report
    }

    fn malformed(&mut self, offset: u64, detail: String) {
        self.report.malformed += 1;
        if self.report.first_malformed.is_none() {
            self.report.first_malformed = Some(MrtError::Malformed {
                file: self.report.file.clone(),
                compression: self.compression,
                offset,
                record: self.report.records,
                detail,
            });
        }
    }

    fn unsupported(&mut self, what: String) {
        self.report.unsupported += 1;
        if self.report.first_unsupported.is_none() {
            self.report.first_unsupported = Some(what);
        }
    }

    fn record(&mut self, raw: RawMrtRecord, offset: u64, on_event: &mut dyn FnMut(&Event<'_>)) {
        if let Some(what) = unsupported_subtype(&raw.common_header) {
            return self.unsupported(what);
        }
        let time = Time(i64::from(raw.common_header.timestamp));
        let source = match raw.common_header.entry_type {
            EntryType::TABLE_DUMP | EntryType::TABLE_DUMP_V2 => Source::Rib,
            _ => Source::Update,
        };
        let record = match raw.parse() {
            Ok(record) => record,
            Err(ParserError::Unsupported(what)) => return self.unsupported(what),
            Err(e) => return self.malformed(offset, e.to_string()),
        };
        match &record.message {
            MrtMessage::Bgp4Mp(Bgp4MpEnum::StateChange(change)) => {
                if change.old_state == BgpState::Established && change.new_state != BgpState::Established {
                    self.report.peer_downs += 1;
                    let peer = Peer {
                        ip: change.peer_ip,
                        asn: change.peer_asn.to_u32(),
                    };
                    on_event(&Event::PeerDown { time, peer });
                }
            }
            MrtMessage::TableDumpV2Message(TableDumpV2Message::PeerIndexTable(_)) => {
                if let Err(e) = self.elementor.set_peer_table(record) {
                    self.malformed(offset, e.to_string());
                }
            }
            _ => self.elements(record, time, source, offset, on_event),
        }
    }

    fn elements(
        &mut self,
        record: MrtRecord,
        time: Time,
        source: Source,
        offset: u64,
        on_event: &mut dyn FnMut(&Event<'_>),
    ) {
        // bgpkit-parser's elems of a TABLE_DUMP_V2 ADD-PATH RIB entry lose the entry's path id
        // (RFC 8050 §4.1), and stop at an entry naming a peer the peer table lacks; keep the ids,
        // in entry order, and count the entries to tell.
        self.rib_path_ids.clear();
        if let MrtMessage::TableDumpV2Message(TableDumpV2Message::RibAfi(rib)) = &record.message {
            self.rib_path_ids.extend(rib.rib_entries.iter().map(|e| e.path_id));
        }
        let elems = match self.elementor.record_to_elems_iter(record) {
            Ok(elems) => elems,
            Err(ElemError::UnsupportedRibGeneric) => return self.unsupported("TABLE_DUMP_V2 RIB_GENERIC".into()),
            Err(ElemError::MissingPeerTable) => {
                let detail = "a TABLE_DUMP_V2 RIB entry with no PEER_INDEX_TABLE before it, so its peers cannot \
                              be told (is the start of the dump missing?)";
                return self.malformed(offset, detail.into());
            }
            Err(e) => {
                let detail = e.to_string();
                return self.malformed(offset, detail);
            }
        };
        let mut delivered = 0;
        for elem in elems {
            self.report.elements += 1;
            let path_id = elem
                .prefix
                .path_id
                .or_else(|| self.rib_path_ids.get(delivered).copied().flatten());
            delivered += 1;
            let action = match elem.elem_type {
                ElemType::WITHDRAW => Action::Withdraw,
                ElemType::ANNOUNCE => {
                    let origin = flatten_path(&elem, &mut self.path);
                    Action::Announce {
                        origin,
                        as_path: &self.path,
                    }
                }
            };
            on_event(&Event::Route(RouteUpdate {
                time,
                peer: Peer {
                    ip: elem.peer_ip,
                    asn: elem.peer_asn.to_u32(),
                },
                prefix: elem.prefix.prefix.trunc(),
                path_id: path_id.unwrap_or(0),
                source,
                action,
            }));
        }
        if delivered < self.rib_path_ids.len() {
            let detail = format!(
                "RIB entry {} of {} names a peer index the PEER_INDEX_TABLE does not have; the rest of the record \
                 was skipped",
                delivered + 1,
                self.rib_path_ids.len()
            );
            self.malformed(offset, detail);
        }
    }
}

/// Names a record bgpkit-parser has no parser for, which it would otherwise report as a parse
/// error: BGP4MP subtypes outside RFC 6396 and RFC 8050 (2 = BGP4MP_ENTRY and 3 =
/// BGP4MP_SNAPSHOT, from the pre-RFC MRT drafts, still written by OpenBGPD's table dumps).
fn unsupported_subtype(header: &CommonHeader) -> Option<String> {
    if !matches!(header.entry_type, EntryType::BGP4MP | EntryType::BGP4MP_ET) {
        return None;
    }
    let subtype = header.entry_subtype;
    if Bgp4MpType::try_from(subtype).is_ok() {
        return None;
    }
    let name = match subtype {
        2 => " (BGP4MP_ENTRY)",
        3 => " (BGP4MP_SNAPSHOT)",
        _ => "",
    };
    Some(format!("BGP4MP subtype {subtype}{name}"))
}

/// Writes `elem`'s AS path into `path` (AS_SET members in place, confederation segments left
/// out) and returns its origin: the last AS, or the only member of a final AS_SET. AS 0 is never
/// a valid origin (RFC 7607), so it counts as none.
fn flatten_path(elem: &BgpElem, path: &mut Vec<u32>) -> Option<u32> {
    path.clear();
    let as_path = elem.as_path.as_ref()?;
    for segment in as_path.iter_segments() {
        match segment {
            AsPathSegment::AsSequence(asns) | AsPathSegment::AsSet(asns) => {
                path.extend(asns.iter().map(|a| a.to_u32()));
            }
            AsPathSegment::ConfedSequence(_) | AsPathSegment::ConfedSet(_) => {}
        }
    }
    as_path.get_origin_opt().map(|a| a.to_u32()).filter(|&a| a != 0)
}
