//! Evidence bundles: one archive holding measurements, their verdicts, the signed checkpoint,
//! an inclusion proof per measurement, a summary, charts and a manifest of hashes — and the
//! offline check of all of it ([`verify_bundle`]), which names the file and the check that fails.
//!
//! # Layout (a tar archive, optionally gzip- or zstd-compressed)
//!
//! ```text
//! README.txt                 how to check the bundle, by tool or by hand
//! manifest.json              format, title, description, checkpoint, verifier key, items, files
//! manifest.sig               optional: a signed note "censorwatch-bundle-manifest-v1\n<SHA-256 of manifest.json>\n"
//! checkpoint.txt             the signed checkpoint (C2SP tlog-checkpoint as a signed note)
//! verifier-key.txt           the log's verifier key
//! summary.md, summary.html   the summary
//! charts/blocked-share.svg   blocked share over time (when the measurements have times), and any others
//! measurements/<name>.json   each measurement, its exact stored bytes
//! verdicts/<name>.json       its verdict, the exact stored bytes
//! proofs/<name>.json         its leaf and inclusion proof in the checkpoint's tree (a [`LeafProof`])
//! ```
//!
//! `<name>` is the measurement id when it is made of `A-Z a-z 0-9 . _ -` (at most 150 bytes,
//! not starting with a dot), else `id-` and 32 hex digits of the id's SHA-256. The manifest lists
//! every file but itself and `manifest.sig` with its SHA-256 and size, every measurement with its
//! three files and leaf index, and the number of measurements.
//!
//! What ties it together is the signed checkpoint: each measurement's leaf is recomputed from its
//! id and the hashes in its proof file (see [`crate::leaf`]), the inclusion proof must lead from
//! it to the checkpoint's root, and the measurement and verdict files must hash to what the leaf
//! commits to. The manifest's hashes and count catch a changed or missing file directly, and
//! `manifest.sig` (made with the log's key) catches a manifest edited to match.

use crate::chart::{blocked_share_svg, escape_xml};
use crate::checkpoint::{Checkpoint, open_checkpoint};
use crate::keyring::Keyring;
use crate::leaf::{BadId, LEAF_FORMAT, MeasurementLeaf, check_id};
use crate::merkle::{Hash, verify_inclusion};
use crate::note::{Keys, Note, VerifierKey};
use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// The manifest's `format`.
pub const BUNDLE_FORMAT: &str = "censorwatch-evidence-bundle-v1";
/// The first line of the text that `manifest.sig` signs.
pub const MANIFEST_SIG_FORMAT: &str = "censorwatch-bundle-manifest-v1";
/// The manifest's path in the archive.
pub const MANIFEST: &str = "manifest.json";
/// The manifest signature's path.
pub const MANIFEST_SIG: &str = "manifest.sig";
/// The signed checkpoint's path.
pub const CHECKPOINT: &str = "checkpoint.txt";
/// The verifier key's path.
pub const VERIFIER_KEY: &str = "verifier-key.txt";
/// The chart [`BundleWriter`] draws from the measurements' times and statuses.
pub const BLOCKED_SHARE_CHART: &str = "charts/blocked-share.svg";
/// The most an archive may unpack to (everything is checked in memory).
const MAX_UNPACKED: u64 = 4 << 30;

/// One measurement to put in a bundle.
#[derive(Debug, Clone)]
pub struct BundleItem {
    /// The measurement id.
    pub id: String,
    /// The raw measurement, exactly as stored.
    pub measurement: Vec<u8>,
    /// The verdict JSON, exactly as stored.
    pub verdict: Vec<u8>,
    /// Its leaf index in the log.
    pub leaf_index: u64,
    /// Its inclusion proof in the tree of the bundle's checkpoint.
    pub proof: Vec<Hash>,
    /// When it was measured (for the chart and the summary).
    pub time: Option<DateTime<Utc>>,
    /// Its verdict's status (`ok`, `blocked`, `down`, `inconclusive`).
    pub status: Option<String>,
}

impl BundleItem {
    /// An item, with `time` taken from the measurement's `measurement_start_time` and `status`
    /// from the verdict's `status` when they parse.
    pub fn new(id: &str, measurement: Vec<u8>, verdict: Vec<u8>, leaf_index: u64, proof: Vec<Hash>) -> BundleItem {
        let time = serde_json::from_slice::<serde_json::Value>(&measurement)
            .ok()
            .and_then(|v| v.get("measurement_start_time")?.as_str().and_then(parse_time));
        let status = serde_json::from_slice::<serde_json::Value>(&verdict)
            .ok()
            .and_then(|v| Some(v.get("status")?.as_str()?.to_string()));
        BundleItem {
            id: id.to_string(),
            measurement,
            verdict,
            leaf_index,
            proof,
            time,
            status,
        }
    }

    /// The item's log leaf.
    pub fn leaf(&self) -> Result<MeasurementLeaf, BadId> {
        MeasurementLeaf::new(&self.id, &self.measurement, &self.verdict)
    }
}

/// Parses OONI's `YYYY-MM-DD HH:MM:SS` (UTC) or RFC 3339.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .map(|t| t.and_utc())
        .ok()
        .or_else(|| DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc)))
}

/// A measurement's leaf and inclusion proof, as `proofs/<name>.json` holds it (and as an API
/// can serve it). Hashes are lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeafProof {
    /// The measurement id.
    pub id: String,
    /// The leaf index.
    pub leaf_index: u64,
    /// The size of the tree the proof is in.
    pub tree_size: u64,
    /// SHA-256 of the raw measurement (the leaf's third line).
    pub measurement_sha256: String,
    /// SHA-256 of the verdict JSON (the leaf's fourth line).
    pub verdict_sha256: String,
    /// The leaf hash.
    pub leaf_hash: String,
    /// The inclusion proof, nearest the leaf first.
    pub inclusion_proof: Vec<String>,
}

impl LeafProof {
    /// The proof document of `leaf` at `leaf_index` in a tree of `tree_size` leaves.
    pub fn new(leaf: &MeasurementLeaf, leaf_index: u64, tree_size: u64, proof: &[Hash]) -> LeafProof {
        LeafProof {
            id: leaf.id.clone(),
            leaf_index,
            tree_size,
            measurement_sha256: hex::encode(leaf.measurement_sha256),
            verdict_sha256: hex::encode(leaf.verdict_sha256),
            leaf_hash: hex::encode(leaf.hash()),
            inclusion_proof: proof.iter().map(hex::encode).collect(),
        }
    }

    /// The leaf it describes and the decoded proof hashes; an error names the bad field.
    pub fn decode(&self) -> Result<(MeasurementLeaf, Hash, Vec<Hash>), String> {
        let leaf = MeasurementLeaf {
            id: self.id.clone(),
            measurement_sha256: decode_hash(&self.measurement_sha256)
                .ok_or("measurement_sha256 is not 64 hex digits")?,
            verdict_sha256: decode_hash(&self.verdict_sha256).ok_or("verdict_sha256 is not 64 hex digits")?,
        };
        check_id(&leaf.id).map_err(|e| e.to_string())?;
        let leaf_hash = decode_hash(&self.leaf_hash).ok_or("leaf_hash is not 64 hex digits")?;
        let proof = self
            .inclusion_proof
            .iter()
            .enumerate()
            .map(|(i, h)| decode_hash(h).ok_or_else(|| format!("inclusion_proof[{i}] is not 64 hex digits")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((leaf, leaf_hash, proof))
    }
}

fn decode_hash(s: &str) -> Option<Hash> {
    if s.len() != 64 {
        return None;
    }
    hex::decode(s).ok()?.try_into().ok()
}

/// The manifest's copy of the checkpoint's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestCheckpoint {
    /// The log's origin.
    pub origin: String,
    /// The tree size.
    pub size: u64,
    /// The root, base64.
    pub root: String,
}

/// One measurement in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestItem {
    /// The measurement id.
    pub id: String,
    /// Its leaf index.
    pub leaf_index: u64,
    /// The measurement file's path.
    pub measurement: String,
    /// The verdict file's path.
    pub verdict: String,
    /// The proof file's path.
    pub proof: String,
    /// When it was measured (RFC 3339), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// The verdict's status, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// One file in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Its path in the archive.
    pub path: String,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`BUNDLE_FORMAT`].
    pub format: String,
    /// When the bundle was written (RFC 3339).
    pub created: String,
    /// The bundle's title.
    pub title: String,
    /// What the bundle answers (the event, or the query), free-form.
    #[serde(default)]
    pub description: serde_json::Value,
    /// [`LEAF_FORMAT`].
    pub leaf_format: String,
    /// The checkpoint every proof is against.
    pub checkpoint: ManifestCheckpoint,
    /// The log's verifier key.
    pub verifier_key: String,
    /// How many measurements the bundle holds.
    pub measurement_count: u64,
    /// The measurements.
    pub items: Vec<ManifestItem>,
    /// Every file but `manifest.json` and `manifest.sig`.
    pub files: Vec<ManifestFile>,
}

/// Why a bundle could not be written.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The checkpoint does not verify with the verifier key.
    #[error("the checkpoint does not verify: {0}")]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// A measurement cannot go in the bundle.
    #[error("measurement {id:?}: {detail}")]
    Item {
        /// The measurement id.
        id: String,
        /// What is wrong.
        detail: String,
    },
    /// A chart's name is not a plain file name.
    #[error("chart name {0:?} must be a plain file name")]
    ChartName(String),
    /// Writing failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
}

/// How the archive is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd (with a content checksum).
    Zstd,
}

impl Compression {
    /// From the file name: `.tar.zst`/`.tzst` zstd, `.tar.gz`/`.tgz` gzip, anything else none.
    pub fn from_path(path: &Path) -> Compression {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        if name.ends_with(".zst") || name.ends_with(".tzst") {
            Compression::Zstd
        } else if name.ends_with(".gz") || name.ends_with(".tgz") {
            Compression::Gzip
        } else {
            Compression::None
        }
    }
}

/// What [`BundleWriter::write`] wrote.
#[derive(Debug, Clone)]
pub struct WrittenBundle {
    /// The archive.
    pub path: PathBuf,
    /// The manifest written into it.
    pub manifest: Manifest,
}

/// The name of a measurement's files (see the module documentation).
pub fn file_stem(id: &str) -> String {
    let plain = !id.is_empty()
        && id.len() <= 150
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if plain {
        id.to_string()
    } else {
        format!("id-{}", &hex::encode(Sha256::digest(id.as_bytes()))[..32])
    }
}

/// Writes a bundle (see the module documentation).
#[derive(Debug, Clone)]
pub struct BundleWriter {
    checkpoint: String,
    verifier_key: VerifierKey,
    title: String,
    description: serde_json::Value,
    summary: Option<(String, String)>,
    charts: Vec<(String, Vec<u8>)>,
    items: Vec<BundleItem>,
    signer: Option<Keys>,
    created: Option<DateTime<Utc>>,
}

impl BundleWriter {
    /// A bundle against `signed_checkpoint`, which must verify with `verifier_key`.
    pub fn new(signed_checkpoint: &str, verifier_key: &VerifierKey) -> BundleWriter {
        BundleWriter {
            checkpoint: signed_checkpoint.to_string(),
            verifier_key: verifier_key.clone(),
            title: "censorwatch evidence".into(),
            description: serde_json::Value::Null,
            summary: None,
            charts: Vec::new(),
            items: Vec::new(),
            signer: None,
            created: None,
        }
    }

    /// The title (summary heading, chart title).
    pub fn title(mut self, title: &str) -> Self {
        self.title = title.to_string();
        self
    }

    /// What the bundle answers: the event or the query (free-form JSON, kept in the manifest).
    pub fn description(mut self, description: serde_json::Value) -> Self {
        self.description = description;
        self
    }

    /// The summary, as Markdown and HTML (default: [`basic_summary`]).
    pub fn summary(mut self, markdown: &str, html: &str) -> Self {
        self.summary = Some((markdown.to_string(), html.to_string()));
        self
    }

    /// Another chart, `charts/<name>` (a plain file name such as `asn.svg`).
    pub fn chart(mut self, name: &str, bytes: Vec<u8>) -> Self {
        self.charts.push((name.to_string(), bytes));
        self
    }

    /// Adds a measurement.
    pub fn item(mut self, item: BundleItem) -> Self {
        self.items.push(item);
        self
    }

    /// Adds measurements.
    pub fn items(mut self, items: impl IntoIterator<Item = BundleItem>) -> Self {
        self.items.extend(items);
        self
    }

    /// Signs the manifest with the log's key (`manifest.sig`), so that a measurement dropped
    /// together with its manifest entry is caught too. Recommended.
    pub fn sign_manifest(mut self, keys: &Keys) -> Self {
        self.signer = Some(keys.clone());
        self
    }

    /// The creation time written in the manifest and the archive (default: now).
    pub fn created(mut self, at: DateTime<Utc>) -> Self {
        self.created = Some(at);
        self
    }

    /// Checks everything and writes the archive to `path` (compressed as its name says), via a
    /// temporary file beside it. Refuses items whose proof does not lead to the checkpoint root.
    pub fn write(&self, path: &Path) -> Result<WrittenBundle, BundleError> {
        let files = self.files()?;
        let manifest: Manifest = serde_json::from_slice(&files[1].1).expect("written by files()");
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |source| BundleError::Io { path: p, source }
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.tmp"));
        let file = File::create(&tmp).map_err(io(&tmp))?;
        let mtime = u64::try_from(self.created_at().timestamp()).unwrap_or(0);
        let result =
            write_archive(BufWriter::new(file), Compression::from_path(path), &files, mtime).and_then(|f| f.sync_all());
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(io(&tmp)(e));
        }
        fs::rename(&tmp, path).map_err(io(path))?;
        Ok(WrittenBundle {
            path: path.to_path_buf(),
            manifest,
        })
    }

    /// Checks everything and returns the archive's bytes (gzip-compressed tar), for a server to
    /// send; the same checks as [`BundleWriter::write`].
    pub fn to_gzip_bytes(&self) -> Result<Vec<u8>, BundleError> {
        let files = self.files()?;
        let mtime = u64::try_from(self.created_at().timestamp()).unwrap_or(0);
        write_archive(BufWriter::new(Vec::new()), Compression::Gzip, &files, mtime).map_err(|source| BundleError::Io {
            path: PathBuf::from("(in memory)"),
            source,
        })
    }

    fn created_at(&self) -> DateTime<Utc> {
        self.created
            .unwrap_or_else(|| DateTime::<Utc>::from(std::time::SystemTime::now()))
    }

    /// Every file of the archive, in order: README, manifest, manifest.sig, the rest.
    fn files(&self) -> Result<Vec<(String, Vec<u8>)>, BundleError> {
        let checkpoint = open_checkpoint(&self.checkpoint, &self.verifier_key)?;
        let mut seen = BTreeSet::new();
        let mut entries: Vec<(String, Vec<u8>)> = vec![
            (CHECKPOINT.into(), self.checkpoint.clone().into_bytes()),
            (VERIFIER_KEY.into(), format!("{}\n", self.verifier_key).into_bytes()),
        ];
        let (md, html) = match &self.summary {
            Some(s) => s.clone(),
            None => basic_summary(&self.title, &self.items, &checkpoint),
        };
        entries.push(("summary.md".into(), md.into_bytes()));
        entries.push(("summary.html".into(), html.into_bytes()));
        let points: Vec<(DateTime<Utc>, &str)> = self
            .items
            .iter()
            .filter_map(|i| Some((i.time?, i.status.as_deref().unwrap_or("inconclusive"))))
            .collect();
        if let Some(svg) = blocked_share_svg(&self.title, &points) {
            entries.push((BLOCKED_SHARE_CHART.into(), svg.into_bytes()));
        }
        for (name, bytes) in &self.charts {
            let plain = !name.is_empty()
                && !name.starts_with('.')
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !plain || format!("charts/{name}") == BLOCKED_SHARE_CHART {
                return Err(BundleError::ChartName(name.clone()));
            }
            entries.push((format!("charts/{name}"), bytes.clone()));
        }
        let mut items = Vec::with_capacity(self.items.len());
        for item in &self.items {
            let bad = |detail: String| BundleError::Item {
                id: item.id.clone(),
                detail,
            };
            let leaf = item.leaf().map_err(|e| bad(e.to_string()))?;
            let stem = file_stem(&item.id);
            if !seen.insert(stem.clone()) {
                return Err(bad("appears twice".into()));
            }
            verify_inclusion(
                item.leaf_index,
                checkpoint.size,
                &leaf.hash(),
                &item.proof,
                &checkpoint.root,
            )
            .map_err(|e| {
                bad(format!(
                    "the inclusion proof of leaf {} does not lead to the checkpoint root: {e}",
                    item.leaf_index
                ))
            })?;
            let proof = LeafProof::new(&leaf, item.leaf_index, checkpoint.size, &item.proof);
            let m = ManifestItem {
                id: item.id.clone(),
                leaf_index: item.leaf_index,
                measurement: format!("measurements/{stem}.json"),
                verdict: format!("verdicts/{stem}.json"),
                proof: format!("proofs/{stem}.json"),
                time: item.time.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
                status: item.status.clone(),
            };
            entries.push((m.measurement.clone(), item.measurement.clone()));
            entries.push((m.verdict.clone(), item.verdict.clone()));
            let mut proof_json = serde_json::to_vec_pretty(&proof).expect("serializable");
            proof_json.push(b'\n');
            entries.push((m.proof.clone(), proof_json));
            items.push(m);
        }
        let readme = readme(&checkpoint, &self.verifier_key);
        entries.insert(0, ("README.txt".into(), readme.into_bytes()));
        let manifest = Manifest {
            format: BUNDLE_FORMAT.into(),
            created: self.created_at().to_rfc3339_opts(SecondsFormat::Secs, true),
            title: self.title.clone(),
            description: self.description.clone(),
            leaf_format: LEAF_FORMAT.into(),
            checkpoint: ManifestCheckpoint {
                origin: checkpoint.origin.clone(),
                size: checkpoint.size,
                root: checkpoint.root_base64(),
            },
            verifier_key: self.verifier_key.to_string(),
            measurement_count: items.len() as u64,
            items,
            files: entries
                .iter()
                .map(|(path, bytes)| ManifestFile {
                    path: path.clone(),
                    sha256: hex::encode(Sha256::digest(bytes)),
                    size: bytes.len() as u64,
                })
                .collect(),
        };
        let mut manifest_json = serde_json::to_vec_pretty(&manifest).expect("serializable");
        manifest_json.push(b'\n');
        let mut head = vec![entries.remove(0), (MANIFEST.into(), manifest_json.clone())];
        if let Some(keys) = &self.signer {
            let text = manifest_sig_text(&manifest_json);
            let note = keys.sign_note(&text).expect("valid note text");
            head.push((MANIFEST_SIG.into(), note.into_bytes()));
        }
        head.extend(entries);
        Ok(head)
    }
}

fn manifest_sig_text(manifest_json: &[u8]) -> String {
    format!(
        "{MANIFEST_SIG_FORMAT}\n{}\n",
        hex::encode(Sha256::digest(manifest_json))
    )
}

fn write_archive<W: Write>(
    w: BufWriter<W>,
    compression: Compression,
    files: &[(String, Vec<u8>)],
    mtime: u64,
) -> io::Result<W> {
    fn tar_into<T: Write>(t: T, files: &[(String, Vec<u8>)], mtime: u64) -> io::Result<T> {
        let mut b = tar::Builder::new(t);
        for (path, bytes) in files {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_mtime(mtime);
            h.set_uid(0);
            h.set_gid(0);
            h.set_size(bytes.len() as u64);
            b.append_data(&mut h, path, bytes.as_slice())?;
        }
        b.into_inner()
    }
    let w = match compression {
        Compression::None => tar_into(w, files, mtime)?,
        Compression::Gzip => tar_into(
            flate2::write::GzEncoder::new(w, flate2::Compression::default()),
            files,
            mtime,
        )?
        .finish()?,
        Compression::Zstd => {
            let mut enc = zstd::Encoder::new(w, 3)?;
            enc.include_checksum(true)?;
            tar_into(enc, files, mtime)?.finish()?
        }
    };
    w.into_inner().map_err(|e| e.into_error())
}

fn readme(checkpoint: &Checkpoint, key: &VerifierKey) -> String {
    format!(
        "censorwatch evidence bundle ({BUNDLE_FORMAT})\n\
         \n\
         Check it offline, with no server and no network:\n\
         \n\
         \x20   censorwatch evidence verify THIS_FILE --key '{key}'\n\
         \n\
         (with the log's verifier key as published by its operator; without --key the key in\n\
         verifier-key.txt is used, which proves integrity but not who signed). If the log has\n\
         rotated its key since, this key is in its keyring (GET /api/v1/keys): pass that file\n\
         with --keyring, which also checks that the key was in use when the bundle was made.\n\
         \n\
         By hand: checkpoint.txt is a C2SP signed note (Ed25519) of a C2SP tlog-checkpoint for\n\
         log {origin} at size {size}. Each measurement has a leaf whose data is the four lines\n\
         \n\
         \x20   {LEAF_FORMAT}\n\
         \x20   <measurement id>\n\
         \x20   <hex SHA-256 of measurements/<name>.json>\n\
         \x20   <hex SHA-256 of verdicts/<name>.json>\n\
         \n\
         each ending in a newline; the leaf hash is SHA-256(0x00 || data) (RFC 6962), and\n\
         proofs/<name>.json holds the RFC 6962 inclusion proof from it to the checkpoint's root\n\
         (interior nodes SHA-256(0x01 || left || right); verify as in RFC 9162 section 2.1.3.2).\n\
         manifest.json lists the SHA-256 of every file; manifest.sig, if present, is a signed note\n\
         by the same key over \"{MANIFEST_SIG_FORMAT}\" and the hex SHA-256 of manifest.json.\n",
        origin = checkpoint.origin,
        size = checkpoint.size,
    )
}

fn count_statuses(items: &[BundleItem]) -> BTreeMap<&str, u64> {
    let mut m = BTreeMap::new();
    for i in items {
        *m.entry(i.status.as_deref().unwrap_or("unknown")).or_insert(0) += 1;
    }
    m
}

/// A plain summary of `items` (counts by status, period, the checkpoint, one row per
/// measurement), as Markdown and HTML: the summary of a bundle made for a query rather than for
/// a detected event.
pub fn basic_summary(title: &str, items: &[BundleItem], checkpoint: &Checkpoint) -> (String, String) {
    let counts = count_statuses(items);
    let counts_text = counts
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ");
    let first = items.iter().filter_map(|i| i.time).min();
    let last = items.iter().filter_map(|i| i.time).max();
    let fmt_t = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
    let period = match (fmt_t(first), fmt_t(last)) {
        (Some(a), Some(b)) => format!(" measured from {a} to {b}"),
        _ => String::new(),
    };
    let lead = format!(
        "{} measurements{period}: {}.",
        items.len(),
        if counts_text.is_empty() {
            "none".into()
        } else {
            counts_text
        }
    );
    let log_line = format!(
        "Every measurement is in the transparency log {} (checkpoint at size {}, root {}); \
         `censorwatch evidence verify` checks this bundle offline.",
        checkpoint.origin,
        checkpoint.size,
        checkpoint.root_base64()
    );
    let md_cell = |s: &str| s.replace('|', "\\|");
    let mut md = format!("# {}\n\n{lead}\n\n{log_line}\n\n", md_cell(title));
    md.push_str("| measurement | time | status | log leaf |\n|---|---|---|---|\n");
    let mut rows = String::new();
    for i in items {
        let t = fmt_t(i.time).unwrap_or_default();
        let s = i.status.as_deref().unwrap_or("");
        md.push_str(&format!("| {} | {t} | {s} | {} |\n", md_cell(&i.id), i.leaf_index));
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{t}</td><td>{}</td><td>{}</td></tr>\n",
            escape_xml(&i.id),
            escape_xml(s),
            i.leaf_index
        ));
    }
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title></head><body>\n<h1>{t}</h1>\n<p>{}</p>\n<p>{}</p>\n\
         <img src=\"{BLOCKED_SHARE_CHART}\" alt=\"blocked share over time\">\n\
         <table>\n<tr><th>measurement</th><th>time</th><th>status</th><th>log leaf</th></tr>\n{rows}</table>\n</body></html>\n",
        escape_xml(&lead),
        escape_xml(&log_line),
        t = escape_xml(title),
    );
    (md, html)
}

/// One check that failed: the file it concerns (or `bundle`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The file in the archive (`bundle` for the archive itself).
    pub file: String,
    /// What failed.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

/// The outcome of [`verify_bundle`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The archive checked.
    pub bundle: String,
    /// Whether every check passed.
    pub ok: bool,
    /// What failed, in the order checked.
    pub failures: Vec<Failure>,
    /// What passed but deserves a word (an unsigned manifest, no trusted key given).
    pub warnings: Vec<String>,
    /// The checkpoint's origin, size and root, when it parsed.
    pub checkpoint: Option<ManifestCheckpoint>,
    /// The verifier key the signatures were checked with.
    pub key: Option<String>,
    /// Measurements whose every check passed.
    pub measurements_verified: u64,
    /// Measurements the manifest lists.
    pub measurements_listed: u64,
    /// Files whose manifest hash matched.
    pub files_verified: u64,
}

impl Report {
    fn fail(&mut self, file: &str, message: impl Into<String>) {
        self.failures.push(Failure {
            file: file.to_string(),
            message: message.into(),
        });
    }

    /// Whether any failure names `file` (as its file or in its message).
    pub fn names(&self, file: &str) -> bool {
        self.failures.iter().any(|f| f.file == file || f.message.contains(file))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for fail in &self.failures {
            writeln!(f, "FAIL {fail}")?;
        }
        for w in &self.warnings {
            writeln!(f, "note: {w}")?;
        }
        if self.ok {
            let cp = self.checkpoint.as_ref().expect("ok implies a checkpoint");
            writeln!(
                f,
                "OK: {} measurements and {} files verified against checkpoint {} size {} root {}, signed by {}",
                self.measurements_verified,
                self.files_verified,
                cp.origin,
                cp.size,
                cp.root,
                self.key.as_deref().unwrap_or("?")
            )
        } else {
            writeln!(
                f,
                "FAILED: {} check(s) failed; {} of {} measurements verified",
                self.failures.len(),
                self.measurements_verified,
                self.measurements_listed
            )
        }
    }
}

/// Reads an archive (plain, gzip or zstd tar, told apart by their magic bytes) into memory.
fn read_archive(reader: impl Read, report: &mut Report) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut r = BufReader::new(reader);
    let magic = r.fill_buf().map_err(|e| format!("cannot be read: {e}"))?.to_vec();
    let (kind, inner): (&str, Box<dyn Read + '_>) = if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        (
            "zstd",
            Box::new(zstd::Decoder::with_buffer(r).map_err(|e| format!("not a zstd stream: {e}"))?),
        )
    } else if magic.starts_with(&[0x1f, 0x8b]) {
        ("gzip", Box::new(flate2::bufread::MultiGzDecoder::new(r)))
    } else {
        ("tar", Box::new(r))
    };
    let mut archive = tar::Archive::new(inner.take(MAX_UNPACKED + 1));
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    let err = |e: io::Error| format!("not a readable {kind} archive: {e}");
    for entry in archive.entries().map_err(err)? {
        let mut entry = entry.map_err(err)?;
        let path = match entry.path() {
            Ok(p) => p.to_string_lossy().into_owned(),
            Err(e) => return Err(err(e)),
        };
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            tar::EntryType::Directory => continue,
            other => {
                report.fail(&path, format!("is not a regular file ({other:?})"));
                continue;
            }
        }
        let mut bytes = Vec::with_capacity(entry.size().min(1 << 24) as usize);
        entry.read_to_end(&mut bytes).map_err(err)?;
        total += bytes.len() as u64;
        if total > MAX_UNPACKED {
            return Err(format!("unpacks to more than {MAX_UNPACKED} bytes; not checked"));
        }
        if path.starts_with('/') || path.split('/').any(|c| c == ".." || c.is_empty()) {
            report.fail(&path, "has an unsafe path");
            continue;
        }
        if files.insert(path.clone(), bytes).is_some() {
            report.fail(&path, "appears twice in the archive");
        }
    }
    Ok(files)
}

/// The keys a verifier trusts a bundle to be signed with.
///
/// - none: the key the bundle carries is used (integrity, not authorship; a warning says so);
/// - one or more keys (`--key`, repeatable): the bundle must be signed by one of them — after a
///   key rotation, trust the old key and the new one;
/// - a keyring (`--keyring`, as the log publishes it): any of its keys, and the bundle must have
///   been made within that key's validity period.
#[derive(Debug, Clone, Default)]
pub struct Trusted {
    keys: Vec<VerifierKey>,
    keyring: Option<Keyring>,
}

impl Trusted {
    /// Trust the key the bundle carries.
    pub fn bundle_key() -> Trusted {
        Trusted::default()
    }

    /// Trust these keys (none: the bundle's own).
    pub fn keys(keys: Vec<VerifierKey>) -> Trusted {
        Trusted { keys, keyring: None }
    }

    /// Trust the keys of a keyring, each within its validity period.
    pub fn keyring(keyring: Keyring) -> Trusted {
        Trusted {
            keys: keyring.verifier_keys(),
            keyring: Some(keyring),
        }
    }

    /// The trusted keys (empty: the bundle's own).
    pub fn trusted_keys(&self) -> &[VerifierKey] {
        &self.keys
    }
}

/// Checks a bundle offline and reports every failure (see the module documentation). With
/// `trusted_key`, signatures are checked against it instead of the key the bundle carries.
pub fn verify_bundle(path: &Path, trusted_key: Option<&VerifierKey>) -> Report {
    verify_bundle_trusting(path, &Trusted::keys(trusted_key.into_iter().cloned().collect()))
}

/// [`verify_bundle`] with any number of trusted keys, or a keyring ([`Trusted`]).
pub fn verify_bundle_trusting(path: &Path, trusted: &Trusted) -> Report {
    let mut report = Report {
        bundle: path.display().to_string(),
        ..Report::default()
    };
    match File::open(path) {
        Ok(f) => verify_reader(f, trusted, &mut report),
        Err(e) => report.fail("bundle", format!("cannot be opened: {e}")),
    }
    report.ok = report.failures.is_empty() && report.checkpoint.is_some();
    report
}

/// [`verify_bundle`] on an archive in memory.
pub fn verify_bundle_bytes(bytes: &[u8], trusted_key: Option<&VerifierKey>) -> Report {
    verify_bundle_bytes_trusting(bytes, &Trusted::keys(trusted_key.into_iter().cloned().collect()))
}

/// [`verify_bundle_trusting`] on an archive in memory.
pub fn verify_bundle_bytes_trusting(bytes: &[u8], trusted: &Trusted) -> Report {
    let mut report = Report {
        bundle: "(memory)".into(),
        ..Report::default()
    };
    verify_reader(bytes, trusted, &mut report);
    report.ok = report.failures.is_empty() && report.checkpoint.is_some();
    report
}

/// The trusted key to check the bundle with: the one it carries when trusted, else the trusted
/// key that signed its checkpoint, else the first trusted key (whose check then fails).
fn pick_trusted<'a>(
    trusted: &'a [VerifierKey],
    embedded: Option<&VerifierKey>,
    checkpoint: Option<&[u8]>,
) -> &'a VerifierKey {
    if let Some(e) = embedded.and_then(|e| trusted.iter().find(|t| *t == e)) {
        return e;
    }
    let note = checkpoint
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|t| Note::parse(t).ok());
    note.and_then(|n| trusted.iter().find(|t| n.verify(t).is_ok()))
        .unwrap_or(&trusted[0])
}

fn verify_reader(reader: impl Read, trusted: &Trusted, r: &mut Report) {
    let files = match read_archive(reader, r) {
        Ok(f) => f,
        Err(message) => return r.fail("bundle", message),
    };
    let Some(manifest_bytes) = files.get(MANIFEST) else {
        return r.fail(MANIFEST, "missing from the bundle");
    };
    let manifest: Manifest = match serde_json::from_slice(manifest_bytes) {
        Ok(m) => m,
        Err(e) => return r.fail(MANIFEST, format!("not a valid manifest: {e}")),
    };
    if manifest.format != BUNDLE_FORMAT {
        return r.fail(
            MANIFEST,
            format!("format {:?} is not {BUNDLE_FORMAT:?}", manifest.format),
        );
    }
    r.measurements_listed = manifest.measurement_count;

    // 1. Every file against the manifest, and nothing unlisted.
    let mut listed = BTreeMap::new();
    for f in &manifest.files {
        if listed.insert(f.path.as_str(), f).is_some() {
            r.fail(MANIFEST, format!("lists {} twice", f.path));
        }
    }
    for (path, f) in &listed {
        match files.get(*path) {
            None => r.fail(path, "listed in the manifest but missing from the bundle"),
            Some(bytes) => {
                let got = hex::encode(Sha256::digest(bytes));
                if got != f.sha256 {
                    r.fail(
                        path,
                        format!("SHA-256 differs from manifest (expected {}, got {got})", f.sha256),
                    );
                } else if bytes.len() as u64 != f.size {
                    r.fail(
                        path,
                        format!("size differs from manifest (expected {}, got {})", f.size, bytes.len()),
                    );
                } else {
                    r.files_verified += 1;
                }
            }
        }
    }
    for path in files.keys() {
        if path != MANIFEST && path != MANIFEST_SIG && !listed.contains_key(path.as_str()) {
            r.fail(path, "not listed in the manifest");
        }
    }

    // 2. The key: the trusted one if given, else the bundle's own.
    let embedded = match files.get(VERIFIER_KEY).map(|b| String::from_utf8_lossy(b).into_owned()) {
        None => {
            r.fail(VERIFIER_KEY, "missing from the bundle");
            None
        }
        Some(text) => match VerifierKey::parse(&text) {
            Ok(k) => Some(k),
            Err(e) => {
                r.fail(VERIFIER_KEY, e.to_string());
                None
            }
        },
    };
    if let Some(k) = &embedded {
        if k.to_string() != manifest.verifier_key {
            r.fail(
                MANIFEST,
                format!(
                    "verifier_key {} differs from {VERIFIER_KEY} ({k})",
                    manifest.verifier_key
                ),
            );
        }
    }
    let trusted_key = (!trusted.keys.is_empty()).then(|| {
        pick_trusted(
            &trusted.keys,
            embedded.as_ref(),
            files.get(CHECKPOINT).map(Vec::as_slice),
        )
    });
    let key = match (trusted_key, &embedded) {
        (Some(t), Some(e)) if t != e => {
            r.warnings.push(format!(
                "the bundle carries key {e}, not the trusted key {t}; checked with the trusted key"
            ));
            Some(t.clone())
        }
        (Some(t), _) => Some(t.clone()),
        (None, Some(e)) => {
            r.warnings.push(format!(
                "checked with the key the bundle carries ({e}); pass --key with the log's published key to rule out a forged bundle"
            ));
            Some(e.clone())
        }
        (None, None) => None,
    };
    r.key = key.as_ref().map(ToString::to_string);
    if let (Some(ring), Some(key)) = (&trusted.keyring, &key) {
        match parse_time(&manifest.created) {
            None => r.fail(
                MANIFEST,
                format!(
                    "created {:?} is not a time, so the key's validity cannot be checked",
                    manifest.created
                ),
            ),
            Some(created) => {
                if ring.valid_at(key, created) == Some(false) {
                    let entry = ring.entry(key).expect("a keyring key");
                    r.fail(
                        MANIFEST,
                        format!(
                            "created {} is outside the validity of key {key} (from {} until {})",
                            manifest.created,
                            entry.from.as_deref().unwrap_or("the start"),
                            entry.until.as_deref().unwrap_or("now")
                        ),
                    );
                }
            }
        }
    }

    // 3. The checkpoint: its signature, then its contents.
    let mut checkpoint = None;
    let mut checkpoint_trusted = false;
    match files.get(CHECKPOINT).map(|b| std::str::from_utf8(b)) {
        None => r.fail(CHECKPOINT, "missing from the bundle"),
        Some(Err(_)) => r.fail(CHECKPOINT, "not UTF-8"),
        Some(Ok(text)) => match Note::parse(text) {
            Err(e) => r.fail(CHECKPOINT, e.to_string()),
            Ok(note) => {
                if let Some(key) = &key {
                    match note.verify(key) {
                        Ok(()) => checkpoint_trusted = true,
                        Err(e) => r.fail(CHECKPOINT, e.to_string()),
                    }
                }
                match Checkpoint::parse_body(&note.text) {
                    Ok(c) => checkpoint = Some(c),
                    Err(e) => r.fail(CHECKPOINT, e.to_string()),
                }
            }
        },
    }
    if let Some(c) = &checkpoint {
        let m = &manifest.checkpoint;
        for (what, differs) in [
            ("origin", m.origin != c.origin),
            ("size", m.size != c.size),
            ("root", m.root != c.root_base64()),
        ] {
            if differs {
                r.fail(MANIFEST, format!("checkpoint {what} differs from {CHECKPOINT}"));
            }
        }
        r.checkpoint = Some(ManifestCheckpoint {
            origin: c.origin.clone(),
            size: c.size,
            root: c.root_base64(),
        });
    }

    // 4. The manifest's signature.
    match files.get(MANIFEST_SIG) {
        None => r.warnings.push(format!(
            "the manifest is unsigned ({MANIFEST_SIG} absent): a measurement dropped together with its manifest entry would not be noticed"
        )),
        Some(bytes) => match (std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string()), &key) {
            (Err(e), _) => r.fail(MANIFEST_SIG, e),
            (Ok(_), None) => r.fail(MANIFEST_SIG, "no key to check it with"),
            (Ok(text), Some(key)) => match Note::parse(text).and_then(|n| n.verify(key).map(|()| n)) {
                Err(e) => r.fail(MANIFEST_SIG, e.to_string()),
                Ok(n) => {
                    let expected = manifest_sig_text(manifest_bytes);
                    if n.text != expected {
                        let signed = n.text.lines().nth(1).unwrap_or("").to_string();
                        r.fail(
                            MANIFEST_SIG,
                            format!(
                                "{MANIFEST} differs from the signed manifest (signed SHA-256 {signed}, {MANIFEST} has {})",
                                hex::encode(Sha256::digest(manifest_bytes))
                            ),
                        );
                    }
                }
            },
        },
    }

    // 5. The measurements: count, then each one's leaf, proof and files.
    let mut ids = BTreeSet::new();
    let mut missing = Vec::new();
    for item in &manifest.items {
        if !ids.insert(item.id.as_str()) {
            r.fail(MANIFEST, format!("lists measurement {} twice", item.id));
        }
        if !files.contains_key(&item.measurement) {
            missing.push(item.id.clone());
        }
    }
    let held = manifest.items.len() - missing.len();
    if manifest.measurement_count != held as u64 || !missing.is_empty() {
        let unlisted = manifest.measurement_count.saturating_sub(manifest.items.len() as u64);
        let mut names = missing.clone();
        if unlisted > 0 {
            names.push(format!("{unlisted} not among the manifest's items"));
        }
        r.fail(
            MANIFEST,
            format!(
                "lists {} measurements, bundle holds {held}{}",
                manifest.measurement_count,
                if names.is_empty() {
                    String::new()
                } else {
                    format!(" (missing: {})", names.join(", "))
                }
            ),
        );
    }
    let Some(checkpoint) = checkpoint else {
        return;
    };
    let mut inclusion_failures = Vec::new();
    let mut checked = 0u64;
    for item in &manifest.items {
        let (Some(measurement), Some(verdict)) = (files.get(&item.measurement), files.get(&item.verdict)) else {
            if files.contains_key(&item.measurement) {
                r.fail(
                    &item.verdict,
                    format!("missing: measurement {} has no verdict", item.id),
                );
            }
            continue;
        };
        let Some(proof_bytes) = files.get(&item.proof) else {
            r.fail(&item.proof, format!("missing: measurement {} has no proof", item.id));
            continue;
        };
        let decoded = serde_json::from_slice::<LeafProof>(proof_bytes)
            .map_err(|e| e.to_string())
            .and_then(|p| p.decode().map(|d| (p, d)));
        let (proof, (leaf, claimed_hash, path)) = match decoded {
            Ok(d) => d,
            Err(e) => {
                r.fail(&item.proof, format!("not a valid proof: {e}"));
                continue;
            }
        };
        let mut item_ok = true;
        if proof.id != item.id {
            r.fail(
                &item.proof,
                format!("is for measurement {:?}, not {:?}", proof.id, item.id),
            );
            item_ok = false;
        }
        if proof.leaf_index != item.leaf_index {
            r.fail(
                &item.proof,
                format!(
                    "leaf index {} differs from the manifest's {}",
                    proof.leaf_index, item.leaf_index
                ),
            );
            item_ok = false;
        }
        // Failures that an altered checkpoint causes for every item alike are held back (below).
        let mut against_checkpoint = None;
        if proof.tree_size != checkpoint.size {
            against_checkpoint = Some(format!(
                "is for tree size {}, the checkpoint has size {}",
                proof.tree_size, checkpoint.size
            ));
        }
        let leaf_hash = leaf.hash();
        if claimed_hash != leaf_hash {
            r.fail(
                &item.proof,
                format!(
                    "leaf_hash {} is not the hash of the leaf it describes ({})",
                    proof.leaf_hash,
                    hex::encode(leaf_hash)
                ),
            );
            item_ok = false;
        }
        checked += 1;
        if against_checkpoint.is_none() {
            if let Err(e) = verify_inclusion(proof.leaf_index, checkpoint.size, &leaf_hash, &path, &checkpoint.root) {
                against_checkpoint = Some(format!(
                    "inclusion proof does not lead to the checkpoint root for leaf {}: {e}",
                    proof.leaf_index
                ));
            }
        }
        if let Some(message) = against_checkpoint {
            inclusion_failures.push((item.proof.clone(), message));
            item_ok = false;
        }
        for (file, bytes, committed, what) in [
            (&item.measurement, measurement, &leaf.measurement_sha256, "measurement"),
            (&item.verdict, verdict, &leaf.verdict_sha256, "verdict"),
        ] {
            let got: Hash = Sha256::digest(bytes).into();
            if got != *committed {
                r.fail(
                    file,
                    format!(
                        "{what} does not match log leaf {} (its SHA-256 is {}, the leaf commits to {})",
                        proof.leaf_index,
                        hex::encode(got),
                        hex::encode(committed)
                    ),
                );
                item_ok = false;
            }
        }
        if item_ok && checkpoint_trusted {
            r.measurements_verified += 1;
        }
    }
    if !checkpoint_trusted && checked > 1 && inclusion_failures.len() as u64 == checked {
        r.fail(
            CHECKPOINT,
            format!("none of the {checked} inclusion proofs leads to its tree (the checkpoint was altered)"),
        );
    } else {
        for (file, message) in inclusion_failures {
            r.fail(&file, message);
        }
    }
}
