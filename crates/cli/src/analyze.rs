//! `censorwatch analyze`: OONI measurements in, one verdict per measurement out.
//!
//! The streaming loop ([`analyze_lines`]) works over any [`BufRead`] and [`Write`], so tests and
//! benchmarks call it without a process. It never holds more than one line: a line that fits in
//! the reader's buffer is parsed in place, a longer one is gathered into a reused buffer, and a
//! line longer than [`Options::max_line`] is reported and skipped without being buffered.
//! A bad line yields an error record and the run goes on.
//!
//! [`run`] drives several inputs: it opens and decompresses each ([`crate::input`]), shows a
//! progress bar on a terminal, reports inputs it cannot read, and writes a summary.

use crate::input::{Input, Layout};
use censorwatch_model::{Measurement, Method, ParseError, Status, Verdict};
use censorwatch_verdict::Analyzer;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::borrow::Cow;
use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The longest line analyzed: 64 MiB. Longer lines are reported as errors and skipped.
pub const MAX_LINE: usize = 64 << 20;

/// Inputs larger than this get a progress bar (when stderr is a terminal).
pub const PROGRESS_THRESHOLD: u64 = 8 << 20;

/// How to analyze one input.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// One JSON object per measurement (`--json`) instead of aligned text.
    pub json: bool,
    /// Lines (or documents) longer than this many bytes are errors.
    pub max_line: usize,
    /// The input's name, printed with every record when several inputs are analyzed.
    pub file: Option<&'a str>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            json: false,
            max_line: MAX_LINE,
            file: None,
        }
    }
}

/// Counts over one or more inputs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Physical lines read, blank ones included.
    pub lines: u64,
    /// Measurements that got a verdict.
    pub measurements: u64,
    /// Lines that could not be analyzed (bad JSON, not a measurement, too long).
    pub errors: u64,
    /// Decompressed bytes read.
    pub bytes: u64,
    by_status: [u64; 4],
    by_method: [u64; METHODS],
    no_method: u64,
}

const METHODS: usize = Method::ALL.len();
const STATUSES: [Status; 4] = [Status::Ok, Status::Blocked, Status::Down, Status::Inconclusive];

fn status_index(status: Status) -> usize {
    match status {
        Status::Ok => 0,
        Status::Blocked => 1,
        Status::Down => 2,
        Status::Inconclusive => 3,
    }
}

impl Summary {
    /// How many verdicts had `status`.
    pub fn status_count(&self, status: Status) -> u64 {
        self.by_status[status_index(status)]
    }

    /// How many verdicts had `method` (`None`: no method).
    pub fn method_count(&self, method: Option<Method>) -> u64 {
        match method {
            None => self.no_method,
            Some(m) => Method::ALL
                .iter()
                .position(|x| *x == m)
                .map_or(0, |i| self.by_method[i]),
        }
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &Summary) {
        self.lines += other.lines;
        self.measurements += other.measurements;
        self.errors += other.errors;
        self.bytes += other.bytes;
        for (a, b) in self.by_status.iter_mut().zip(other.by_status) {
            *a += b;
        }
        for (a, b) in self.by_method.iter_mut().zip(other.by_method) {
            *a += b;
        }
        self.no_method += other.no_method;
    }

    fn count(&mut self, verdict: &Verdict) {
        self.measurements += 1;
        self.by_status[status_index(verdict.status)] += 1;
        match verdict.method {
            None => self.no_method += 1,
            Some(m) => {
                if let Some(i) = Method::ALL.iter().position(|x| *x == m) {
                    self.by_method[i] += 1;
                }
            }
        }
    }

    /// Writes the counts by status and by method as two indented lines.
    pub fn write_counts(&self, w: &mut impl Write) -> io::Result<()> {
        write!(w, "  by status:")?;
        for status in STATUSES {
            write!(w, " {status} {}", self.status_count(status))?;
        }
        write!(w, "\n  by method:")?;
        for (method, n) in Method::ALL.iter().zip(self.by_method) {
            if n > 0 {
                write!(w, " {method} {n}")?;
            }
        }
        writeln!(w, " (none) {}", self.no_method)
    }
}

/// Why analyzing a stream stopped early.
#[derive(Debug)]
pub enum StreamError {
    /// The input could not be read (I/O error, corrupt compressed data).
    Read(io::Error),
    /// The output could not be written (including a closed pipe).
    Write(io::Error),
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Read(e) => write!(f, "reading the input: {e}"),
            StreamError::Write(e) => write!(f, "writing the output: {e}"),
        }
    }
}

impl std::error::Error for StreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StreamError::Read(e) | StreamError::Write(e) => Some(e),
        }
    }
}

#[derive(Serialize)]
struct VerdictRecord<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'a str>,
    line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    measurement_uid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    report_id: Option<&'a str>,
    input: Option<&'a str>,
    verdict: &'a Verdict,
}

#[derive(Serialize)]
struct ErrorRecord<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'a str>,
    line: u64,
    error: &'a str,
}

/// Where the streaming readers hand each measurement: `analyze` writes a record per measurement,
/// `ingest` stores them. One reader, several uses.
pub trait MeasurementSink {
    /// A measurement that parsed and got a verdict; `raw` is its exact text.
    fn verdict(&mut self, line: u64, raw: &[u8], m: &Measurement, v: &Verdict) -> io::Result<()>;
    /// A line (or document) that could not be analyzed; `raw` is its text when it was read.
    fn error(&mut self, line: u64, raw: Option<&[u8]>, message: &str) -> io::Result<()>;
}

/// Where the streaming readers hand each measurement's text, before it is parsed: [`Judge`]
/// parses and judges it on the spot; `ingest` ships texts in chunks to worker threads that each
/// run a [`Judge`].
pub trait TextSink {
    /// The text of one measurement, starting on `line`; `column` is where it starts in a document
    /// (`None` for a JSONL line).
    fn text(&mut self, line: u64, column: Option<u64>, text: &[u8]) -> io::Result<()>;
    /// Something on `line` that cannot be a measurement (too long, not JSON).
    fn unreadable(&mut self, line: u64, message: &str) -> io::Result<()>;
}

/// Parses and judges each measurement, counts it in a [`Summary`], and hands the result to a
/// [`MeasurementSink`].
pub struct Judge<'a, S: MeasurementSink + ?Sized> {
    analyzer: &'a Analyzer,
    sink: &'a mut S,
    summary: &'a mut Summary,
}

impl<'a, S: MeasurementSink + ?Sized> Judge<'a, S> {
    /// Judges with `analyzer`, hands verdicts and errors to `sink`, counts them in `summary`.
    pub fn new(analyzer: &'a Analyzer, sink: &'a mut S, summary: &'a mut Summary) -> Self {
        Judge {
            analyzer,
            sink,
            summary,
        }
    }

    fn error(&mut self, line: u64, raw: Option<&[u8]>, message: &str) -> io::Result<()> {
        self.summary.errors += 1;
        self.sink.error(line, raw, message)
    }
}

impl<S: MeasurementSink + ?Sized> TextSink for Judge<'_, S> {
    fn text(&mut self, line: u64, column: Option<u64>, text: &[u8]) -> io::Result<()> {
        let start = column.map(|c| (line, c));
        let m = match Measurement::from_slice(text) {
            Ok(m) => m,
            Err(e) => return self.error(line, Some(text), &describe(&e, start)),
        };
        match self.analyzer.verdict(&m) {
            Ok(v) => {
                self.summary.count(&v);
                self.sink.verdict(line, text, &m, &v)
            }
            Err(e) => self.error(line, Some(text), &describe(&e, start)),
        }
    }

    fn unreadable(&mut self, line: u64, message: &str) -> io::Result<()> {
        self.error(line, None, message)
    }
}

/// `analyze`'s sink: one aligned text line or JSON object per measurement.
pub struct VerdictWriter<'a, W: Write + ?Sized> {
    out: &'a mut W,
    opts: &'a Options<'a>,
}

impl<'a, W: Write + ?Sized> VerdictWriter<'a, W> {
    /// Writes records to `out` as `opts` says.
    pub fn new(out: &'a mut W, opts: &'a Options<'a>) -> Self {
        VerdictWriter { out, opts }
    }

    fn location(&mut self, line: u64) -> io::Result<()> {
        match self.opts.file {
            Some(file) => write!(self.out, "{file}:{line:<7}"),
            None => write!(self.out, "{line:>8}"),
        }
    }
}

impl<W: Write + ?Sized> MeasurementSink for VerdictWriter<'_, W> {
    fn verdict(&mut self, line: u64, _raw: &[u8], m: &Measurement, v: &Verdict) -> io::Result<()> {
        // Empty ids (as in probe-cli's QA data) say nothing: treat them as absent.
        let uid = m.measurement_uid.as_deref().filter(|s| !s.is_empty());
        if self.opts.json {
            let record = VerdictRecord {
                file: self.opts.file,
                line,
                measurement_uid: uid,
                report_id: match uid {
                    None => m.report_id.as_deref().filter(|s| !s.is_empty()),
                    Some(_) => None,
                },
                input: m.input_str(),
                verdict: v,
            };
            serde_json::to_writer(&mut *self.out, &record)?;
            return self.out.write_all(b"\n");
        }
        self.location(line)?;
        let method = v.method.map_or("-", Method::as_str);
        let cc = printable(m.probe_cc.as_deref().unwrap_or("??"));
        let asn = printable(m.probe_asn.as_deref().unwrap_or("AS?"));
        let input = printable(m.input_str().unwrap_or("-"));
        let reason = printable(v.reasons.first().map_or("", String::as_str));
        writeln!(
            self.out,
            "  {:<12}  {:<17}  {cc:<2} {asn:<9}  {input:<40}  {reason}",
            v.status.as_str(),
            method
        )
    }

    fn error(&mut self, line: u64, _raw: Option<&[u8]>, message: &str) -> io::Result<()> {
        if self.opts.json {
            let record = ErrorRecord {
                file: self.opts.file,
                line,
                error: message,
            };
            serde_json::to_writer(&mut *self.out, &record)?;
            return self.out.write_all(b"\n");
        }
        self.location(line)?;
        writeln!(self.out, "  ERROR         {}", printable(message))
    }
}

/// `text` fit for one line of a terminal: control characters (a newline in an input, an escape
/// sequence) are shown escaped. Borrows when there is nothing to escape, as almost always.
fn printable(text: &str) -> Cow<'_, str> {
    if text.chars().any(char::is_control) {
        Cow::Owned(
            text.chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_default().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(text)
    }
}

/// `serde_json`'s message without its " at line L column C" suffix.
fn bare_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(bare) => bare.to_owned(),
        None => text,
    }
}

/// Says what is wrong with a measurement. `start` is where the measurement starts in a
/// document (line, column); `None` for a JSONL line, where only the column matters.
fn describe(e: &ParseError, start: Option<(u64, u64)>) -> String {
    match e {
        ParseError::Envelope(source) => {
            let msg = bare_message(source);
            let (l, c) = (source.line() as u64, source.column() as u64);
            match start {
                _ if l == 0 => format!("not an OONI measurement: {msg}"),
                None => format!("not an OONI measurement: {msg} at column {c}"),
                Some((line, column)) => {
                    let abs_line = line + l - 1;
                    let abs_col = if l == 1 { column + c - 1 } else { c };
                    format!("not an OONI measurement: {msg} at line {abs_line} column {abs_col}")
                }
            }
        }
        ParseError::TestKeys { test_name, source } => {
            let msg = bare_message(source);
            let name = if test_name.is_empty() {
                "its test"
            } else {
                test_name.as_str()
            };
            if source.line() == 0 {
                format!("test_keys do not have the shape of {name}: {msg}")
            } else {
                format!(
                    "test_keys do not have the shape of {name}: {msg} (line {} column {} of \
                     test_keys)",
                    source.line(),
                    source.column()
                )
            }
        }
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Analyzes a JSONL stream: one measurement per line, blank lines skipped, line numbers from 1.
///
/// Writes one record per non-blank line to `out` and adds to `summary`. A bad line becomes an
/// error record; only an unreadable input or an unwritable output stops the loop.
pub fn analyze_lines<R, W>(
    analyzer: &Analyzer,
    reader: &mut R,
    out: &mut W,
    opts: &Options<'_>,
    summary: &mut Summary,
) -> Result<(), StreamError>
where
    R: BufRead + ?Sized,
    W: Write + ?Sized,
{
    judged(summary, |summary, judged| {
        let mut writer = VerdictWriter::new(out, opts);
        split_lines(
            reader,
            &mut Judge::new(analyzer, &mut writer, judged),
            opts.max_line,
            summary,
        )
    })
}

/// Runs `read` with a fresh summary for the judge's counts, then adds those to `summary` (the
/// reader counts lines and bytes in `summary` itself).
fn judged<T>(summary: &mut Summary, read: impl FnOnce(&mut Summary, &mut Summary) -> T) -> T {
    let mut judged = Summary::default();
    let result = read(summary, &mut judged);
    summary.merge(&judged);
    result
}

/// Splits a JSONL stream into lines (numbered from 1, blank ones skipped, `\r\n` accepted) and
/// hands each to `sink`; counts lines and bytes in `summary`. A line longer than `max_line` is
/// reported as unreadable (and counted as an error) without being held in memory.
pub fn split_lines<R, S>(
    reader: &mut R,
    sink: &mut S,
    max_line: usize,
    summary: &mut Summary,
) -> Result<(), StreamError>
where
    R: BufRead + ?Sized,
    S: TextSink + ?Sized,
{
    let mut buf: Vec<u8> = Vec::new();
    let mut line_no: u64 = 0;
    loop {
        let avail = reader.fill_buf().map_err(StreamError::Read)?;
        if avail.is_empty() {
            break;
        }
        // Fast path: the whole line is in the reader's buffer; parse it in place.
        if let Some(end) = memchr::memchr(b'\n', avail) {
            line_no += 1;
            summary.lines += 1;
            summary.bytes += end as u64 + 1;
            let line = strip_cr(&avail[..end]);
            if line.len() > max_line {
                sink.unreadable(line_no, &too_long(line.len() as u64, max_line))
                    .map_err(StreamError::Write)?;
            } else if !is_blank(line) {
                sink.text(line_no, None, line).map_err(StreamError::Write)?;
            }
            reader.consume(end + 1);
            continue;
        }
        // Slow path: gather the line into `buf`, up to the cap; past it, skip to the newline.
        buf.clear();
        let mut length: u64 = 0;
        let mut oversized = false;
        loop {
            let avail = reader.fill_buf().map_err(StreamError::Read)?;
            if avail.is_empty() {
                break;
            }
            let (chunk, used, done) = match memchr::memchr(b'\n', avail) {
                Some(i) => (&avail[..i], i + 1, true),
                None => (avail, avail.len(), false),
            };
            length += chunk.len() as u64;
            if !oversized {
                if buf.len() + chunk.len() > max_line + 1 {
                    // +1: a trailing '\r' is not part of the line.
                    oversized = true;
                    buf.clear();
                    buf.shrink_to(crate::input::READ_BUFFER);
                } else {
                    buf.extend_from_slice(chunk);
                }
            }
            summary.bytes += used as u64;
            reader.consume(used);
            if done {
                break;
            }
        }
        line_no += 1;
        summary.lines += 1;
        let line = strip_cr(&buf);
        if oversized || line.len() > max_line {
            sink.unreadable(line_no, &too_long(length, max_line))
                .map_err(StreamError::Write)?;
        } else if !is_blank(line) {
            sink.text(line_no, None, line).map_err(StreamError::Write)?;
        }
        if buf.capacity() > 4 * crate::input::READ_BUFFER {
            buf = Vec::new();
        }
    }
    Ok(())
}

fn too_long(length: u64, max: usize) -> String {
    format!(
        "line is {length} bytes, longer than the {} MiB limit; skipped it (split the measurement \
         out or check that the file is JSONL)",
        max >> 20
    )
}

/// Analyzes one JSON document (a `.json` file): usually one pretty-printed measurement, possibly
/// several values in a row. Each record's line is where its measurement starts. The document is
/// read whole, up to [`Options::max_line`] bytes.
pub fn analyze_document<R, W>(
    analyzer: &Analyzer,
    reader: &mut R,
    out: &mut W,
    opts: &Options<'_>,
    summary: &mut Summary,
) -> Result<(), StreamError>
where
    R: BufRead + ?Sized,
    W: Write + ?Sized,
{
    judged(summary, |summary, judged| {
        let mut writer = VerdictWriter::new(out, opts);
        split_document(
            reader,
            &mut Judge::new(analyzer, &mut writer, judged),
            opts.max_line,
            summary,
        )
    })
}

/// Splits one JSON document into its top-level values and hands each to `sink` with the line and
/// column where it starts; counts lines and bytes in `summary`. The document is read whole, up to
/// `max_line` bytes; a longer one, or one that stops being valid JSON, is reported as unreadable.
pub fn split_document<R, S>(
    reader: &mut R,
    sink: &mut S,
    max_line: usize,
    summary: &mut Summary,
) -> Result<(), StreamError>
where
    R: BufRead + ?Sized,
    S: TextSink + ?Sized,
{
    let mut doc = Vec::new();
    let cap = max_line as u64;
    reader.take(cap + 1).read_to_end(&mut doc).map_err(StreamError::Read)?;
    if doc.len() as u64 > cap {
        let rest = io::copy(reader, &mut io::sink()).map_err(StreamError::Read)?;
        summary.bytes += doc.len() as u64 + rest;
        summary.lines += 1;
        let message = format!(
            "the JSON document is {} bytes, longer than the {} MiB limit; skipped it",
            doc.len() as u64 + rest,
            max_line >> 20
        );
        return sink.unreadable(1, &message).map_err(StreamError::Write);
    }
    summary.bytes += doc.len() as u64;
    let newlines = memchr::memchr_iter(b'\n', &doc).count() as u64;
    summary.lines += newlines + u64::from(!doc.is_empty() && !doc.ends_with(b"\n"));

    let base = doc.as_ptr() as usize;
    let mut line: u64 = 1;
    let mut scanned = 0usize; // `line` counts the newlines in doc[..scanned]
    let mut line_start = 0usize;
    let values = serde_json::Deserializer::from_slice(&doc).into_iter::<&serde_json::value::RawValue>();
    for value in values {
        match value {
            Ok(raw) => {
                let text = raw.get();
                let start = text.as_ptr() as usize - base;
                for i in memchr::memchr_iter(b'\n', &doc[scanned..start]) {
                    line += 1;
                    line_start = scanned + i + 1;
                }
                scanned = start;
                let column = (start - line_start) as u64 + 1;
                sink.text(line, Some(column), text.as_bytes())
                    .map_err(StreamError::Write)?;
            }
            Err(e) => {
                let message = format!(
                    "not valid JSON: {} at line {} column {}; the rest of this file was skipped",
                    bare_message(&e),
                    e.line(),
                    e.column()
                );
                sink.unreadable(e.line() as u64, &message).map_err(StreamError::Write)?;
                break;
            }
        }
    }
    Ok(())
}

/// Analyzes one stream laid out as `layout`.
pub fn analyze_stream<R, W>(
    analyzer: &Analyzer,
    layout: Layout,
    reader: &mut R,
    out: &mut W,
    opts: &Options<'_>,
    summary: &mut Summary,
) -> Result<(), StreamError>
where
    R: BufRead + ?Sized,
    W: Write + ?Sized,
{
    judged(summary, |summary, judged| {
        let mut writer = VerdictWriter::new(out, opts);
        split_stream(
            layout,
            reader,
            &mut Judge::new(analyzer, &mut writer, judged),
            opts.max_line,
            summary,
        )
    })
}

/// Splits one stream laid out as `layout` into measurement texts for `sink` ([`split_lines`] or
/// [`split_document`]).
pub fn split_stream<R, S>(
    layout: Layout,
    reader: &mut R,
    sink: &mut S,
    max_line: usize,
    summary: &mut Summary,
) -> Result<(), StreamError>
where
    R: BufRead + ?Sized,
    S: TextSink + ?Sized,
{
    match layout {
        Layout::Lines => split_lines(reader, sink, max_line, summary),
        Layout::Document => split_document(reader, sink, max_line, summary),
    }
}

/// What `censorwatch analyze` was asked to do.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// JSON records instead of aligned text.
    pub json: bool,
    /// Longest line analyzed, in bytes.
    pub max_line: usize,
    /// Whether progress bars may be drawn (stderr is a terminal).
    pub progress: bool,
}

/// How a run went.
#[derive(Debug, Clone, Default)]
pub struct RunOutcome {
    /// Counts over every input.
    pub summary: Summary,
    /// Inputs that could not be opened or read to the end.
    pub failed_inputs: Vec<PathBuf>,
    /// The output was closed early (e.g. `| head`): the run stopped quietly.
    pub output_closed: bool,
}

/// Analyzes every input in turn, writing records to `out` and messages and the summary to `err`;
/// progress bars go to stderr, so `err` must not hold stderr's lock (the bar's ticker thread
/// would wait for it forever). An input that cannot be opened or read is reported and the others still analyzed.
/// Returns an error only when `out` cannot be written for a reason other than a closed pipe.
pub fn run(
    analyzer: &Analyzer,
    files: &[PathBuf],
    opts: &RunOptions,
    out: &mut impl Write,
    err: &mut impl Write,
) -> io::Result<RunOutcome> {
    let started = Instant::now();
    let mut outcome = RunOutcome::default();
    let several = files.len() > 1;
    for path in files {
        let Some((input, bar)) = open_input(path, opts.progress, err)? else {
            outcome.failed_inputs.push(path.clone());
            continue;
        };
        let name = input.name.clone();
        let layout = input.layout;
        let file_opts = Options {
            json: opts.json,
            max_line: opts.max_line,
            file: several.then_some(name.as_str()),
        };
        let mut summary = Summary::default();
        let result = input
            .into_reader()
            .map_err(StreamError::Read)
            .and_then(|(mut reader, _)| analyze_stream(analyzer, layout, &mut *reader, out, &file_opts, &mut summary));
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let lines = summary.lines;
        outcome.summary.merge(&summary);
        match result {
            Ok(()) => {}
            Err(StreamError::Read(e)) => {
                out.flush().or_else(|e| closed_pipe(e, &mut outcome))?;
                if outcome.output_closed {
                    return Ok(outcome);
                }
                writeln!(
                    err,
                    "censorwatch: cannot read {name} after line {lines}: {e}; the file may be \
                     truncated or corrupt (the lines before were analyzed)"
                )?;
                outcome.failed_inputs.push(path.clone());
            }
            Err(StreamError::Write(e)) => {
                closed_pipe(e, &mut outcome)?;
                return Ok(outcome);
            }
        }
    }
    out.flush().or_else(|e| closed_pipe(e, &mut outcome))?;
    if outcome.output_closed {
        return Ok(outcome);
    }
    write_summary(err, &outcome, files.len(), started.elapsed())?;
    Ok(outcome)
}

/// Opens `path` for reading, with a progress bar when `progress` allows and the input is large.
/// An input that cannot be opened is reported on `err` (with what to do) and yields `Ok(None)`:
/// the caller skips it and goes on with the others.
pub(crate) fn open_input(
    path: &Path,
    progress: bool,
    err: &mut impl Write,
) -> io::Result<Option<(Input, Option<ProgressBar>)>> {
    let input = match Input::open(path) {
        Ok(input) => input,
        Err(e) => {
            writeln!(
                err,
                "censorwatch: cannot open {}: {e}; check the path and permissions (skipped it)",
                path.display()
            )?;
            return Ok(None);
        }
    };
    let bar = progress_bar(progress, &input);
    let input = match &bar {
        Some(bar) => {
            let bar = bar.clone();
            input.inspect_raw(move |raw| bar.wrap_read(raw))
        }
        None => input,
    };
    Ok(Some((input, bar)))
}

/// A closed pipe ends the run quietly; any other write error is returned.
fn closed_pipe(e: io::Error, outcome: &mut RunOutcome) -> io::Result<()> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        outcome.output_closed = true;
        Ok(())
    } else {
        Err(e)
    }
}

pub(crate) fn progress_bar(allowed: bool, input: &Input) -> Option<ProgressBar> {
    if !allowed {
        return None;
    }
    let bar = match input.len {
        Some(len) if len > PROGRESS_THRESHOLD => {
            let bar = ProgressBar::new(len);
            bar.set_style(
                ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}")
                    .ok()?
                    .progress_chars("=> "),
            );
            bar
        }
        Some(_) => return None,
        None => {
            let bar = ProgressBar::new_spinner();
            bar.set_style(ProgressStyle::with_template("{spinner} {msg} {bytes} {binary_bytes_per_sec}").ok()?);
            bar
        }
    };
    bar.set_message(input.name.clone());
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}

fn write_summary(err: &mut impl Write, outcome: &RunOutcome, inputs: usize, elapsed: Duration) -> io::Result<()> {
    let s = &outcome.summary;
    let secs = elapsed.as_secs_f64();
    let mb = s.bytes as f64 / 1e6;
    write!(
        err,
        "censorwatch analyze: {} lines read, {} measurements, {} errors; {} of {inputs} inputs read",
        s.lines,
        s.measurements,
        s.errors,
        inputs - outcome.failed_inputs.len()
    )?;
    if secs > 0.0 {
        writeln!(err, " ({mb:.1} MB in {secs:.2} s, {:.0} MB/s)", mb / secs)?;
    } else {
        writeln!(err)?;
    }
    s.write_counts(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::io::Cursor;

    const SYNTHETIC: &str = include_str!("../../../testdata/ooni/synthetic/successWithHTTPS.json");

    fn compact(pretty: &str) -> String {
        serde_json::to_string(&serde_json::from_str::<Value>(pretty).unwrap()).unwrap()
    }

    fn run_lines(input: &[u8], opts: &Options<'_>) -> (Vec<Value>, Summary) {
        let analyzer = Analyzer::with_builtin_fingerprints();
        let mut out = Vec::new();
        let mut summary = Summary::default();
        analyze_lines(&analyzer, &mut Cursor::new(input), &mut out, opts, &mut summary).unwrap();
        let records = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        (records, summary)
    }

    fn json() -> Options<'static> {
        Options {
            json: true,
            ..Options::default()
        }
    }

    #[test]
    fn one_record_per_line_with_uid_input_and_verdict() {
        let line = compact(SYNTHETIC);
        let input = format!("{line}\n\n{line}\r\n   \n{line}");
        let (records, summary) = run_lines(input.as_bytes(), &json());
        assert_eq!(records.len(), 3);
        let lines: Vec<u64> = records.iter().map(|r| r["line"].as_u64().unwrap()).collect();
        assert_eq!(lines, [1, 3, 5]);
        let first = records[0].as_object().unwrap();
        // This QA measurement has no uid and an empty report_id: neither is printed.
        assert_eq!(first.len(), 3, "{first:?}");
        assert_eq!(first["input"], "https://www.example.com/");
        assert!(first["verdict"]["status"].is_string());
        assert_eq!(summary.lines, 5);
        assert_eq!(summary.measurements, 3);
        assert_eq!(summary.errors, 0);
        assert_eq!(summary.bytes, input.len() as u64);
        let by_status: u64 = STATUSES.iter().map(|s| summary.status_count(*s)).sum();
        assert_eq!(by_status, 3);
    }

    #[test]
    fn report_id_stands_in_for_a_missing_uid_and_neither_is_omitted() {
        let input = concat!(
            "{\"report_id\":\"R1\",\"input\":null,\"test_name\":\"x\"}\n",
            "{\"test_name\":\"x\"}\n",
            "{\"report_id\":\"R2\",\"measurement_uid\":\"U2\",\"input\":\"http://a/\"}\n",
        );
        let (records, _) = run_lines(input.as_bytes(), &json());
        assert_eq!(records[0]["report_id"], "R1");
        assert!(records[0].get("measurement_uid").is_none());
        assert_eq!(records[0]["input"], Value::Null);
        assert_eq!(records[2]["measurement_uid"], "U2");
        assert!(records[2].get("report_id").is_none());
        assert_eq!(records[2]["input"], "http://a/");
        let keys: Vec<&String> = records[1].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["input", "line", "verdict"]);
        // The printed key order is the documented one.
        let analyzer = Analyzer::with_builtin_fingerprints();
        let mut out = Vec::new();
        let mut summary = Summary::default();
        let mut reader = Cursor::new(input.as_bytes());
        analyze_lines(&analyzer, &mut reader, &mut out, &json(), &mut summary).unwrap();
        let text = String::from_utf8(out).unwrap();
        let starts: Vec<&str> = text.lines().map(|l| &l[..l.find("\"verdict\"").unwrap()]).collect();
        assert_eq!(
            starts,
            [
                "{\"line\":1,\"report_id\":\"R1\",\"input\":null,",
                "{\"line\":2,\"input\":null,",
                "{\"line\":3,\"measurement_uid\":\"U2\",\"input\":\"http://a/\",",
            ]
        );
    }

    #[test]
    fn bad_line_is_an_error_record_and_the_run_goes_on() {
        let line = compact(SYNTHETIC);
        let input = format!("{line}\n{{\"test_name\": tru}}\n[1,2]\n{line}\n");
        let (records, summary) = run_lines(input.as_bytes(), &json());
        assert_eq!(records.len(), 4);
        assert_eq!(records[1].as_object().unwrap().len(), 2);
        assert_eq!(records[1]["line"], 2);
        let err = records[1]["error"].as_str().unwrap();
        assert!(err.contains("at column 18"), "{err}");
        assert!(!err.contains("line 1"), "{err}");
        assert_eq!(records[2]["line"], 3);
        assert!(
            records[2]["error"]
                .as_str()
                .unwrap()
                .contains("not an OONI measurement")
        );
        assert_eq!(records[3]["line"], 4);
        assert!(records[3]["verdict"].is_object());
        assert_eq!((summary.measurements, summary.errors), (2, 2));
    }

    #[test]
    fn oversized_line_is_skipped_without_buffering_and_the_next_is_read() {
        let line = r#"{"measurement_uid":"a","test_name":"web_connectivity","input":"http://a/"}"#;
        let big = format!("{{\"x\":\"{}\"}}", "a".repeat(5000));
        let input = format!("{line}\n{big}\n{line}\n{big}");
        let opts = Options {
            json: true,
            max_line: 1000,
            file: None,
        };
        // A reader buffer smaller than the line forces the slow path.
        let analyzer = Analyzer::with_builtin_fingerprints();
        let mut reader = io::BufReader::with_capacity(256, Cursor::new(input.as_bytes()));
        let mut out = Vec::new();
        let mut summary = Summary::default();
        analyze_lines(&analyzer, &mut reader, &mut out, &opts, &mut summary).unwrap();
        let records: Vec<Value> = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(records.len(), 4);
        assert_eq!(records[1]["line"], 2);
        let err = records[1]["error"].as_str().unwrap();
        assert!(err.contains(&format!("line is {} bytes", big.len())), "{err}");
        assert!(records[2]["verdict"].is_object());
        assert_eq!(records[3]["line"], 4);
        assert!(records[3]["error"].is_string());
        assert_eq!((summary.measurements, summary.errors, summary.lines), (2, 2, 4));
        assert_eq!(summary.bytes, input.len() as u64);
    }

    #[test]
    fn oversized_line_in_the_fast_path_too() {
        let input = format!("{}\n{{}}\n", "x".repeat(100));
        let opts = Options {
            json: true,
            max_line: 10,
            file: None,
        };
        let (records, _) = run_lines(input.as_bytes(), &opts);
        assert!(records[0]["error"].as_str().unwrap().contains("100 bytes"));
        assert!(records[1]["verdict"].is_object());
    }

    #[test]
    fn file_name_is_carried_when_given() {
        let opts = Options {
            json: true,
            max_line: MAX_LINE,
            file: Some("a.jsonl"),
        };
        let (records, _) = run_lines(b"{}\nnope\n", &opts);
        assert_eq!(records[0]["file"], "a.jsonl");
        assert_eq!(records[1]["file"], "a.jsonl");
        assert_eq!(records[1]["line"], 2);
    }

    #[test]
    fn pretty_document_is_one_measurement() {
        let analyzer = Analyzer::with_builtin_fingerprints();
        let mut out = Vec::new();
        let mut summary = Summary::default();
        let mut reader = Cursor::new(SYNTHETIC.as_bytes());
        analyze_document(&analyzer, &mut reader, &mut out, &json(), &mut summary).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 1);
        let record: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(record["line"], 1);
        assert_eq!(record["input"], "https://www.example.com/");
        assert_eq!(summary.measurements, 1);
        assert_eq!(summary.lines, SYNTHETIC.lines().count() as u64);
    }

    #[test]
    fn document_errors_point_into_the_document() {
        let analyzer = Analyzer::with_builtin_fingerprints();
        let doc = "{\"test_name\": \"x\"}\n\n  {\n  \"input\": 5\n}\n{ oops";
        let mut out = Vec::new();
        let mut summary = Summary::default();
        analyze_document(&analyzer, &mut Cursor::new(doc), &mut out, &json(), &mut summary).unwrap();
        let records: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(records.len(), 3, "{records:?}");
        assert_eq!(records[0]["line"], 1);
        assert_eq!(records[1]["line"], 3);
        let e = records[1]["error"].as_str().unwrap();
        // serde reports an untagged enum mismatch at the end of the value.
        assert!(e.ends_with("at line 5 column 1"), "{e}");
        assert_eq!(records[2]["line"], 6);
        assert!(records[2]["error"].as_str().unwrap().contains("not valid JSON"));
    }

    #[test]
    fn human_output_is_aligned_and_marks_errors() {
        let line = compact(SYNTHETIC);
        let input = format!("{line}\nbad\n");
        let analyzer = Analyzer::with_builtin_fingerprints();
        let mut out = Vec::new();
        let mut summary = Summary::default();
        let opts = Options::default();
        analyze_lines(&analyzer, &mut Cursor::new(input), &mut out, &opts, &mut summary).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("       1  "), "{text}");
        assert!(lines[0].contains("IT AS137"), "{text}");
        assert!(lines[0].contains("https://www.example.com/"), "{text}");
        assert!(lines[1].starts_with("       2  ERROR"), "{text}");
    }

    #[test]
    fn human_output_escapes_control_characters() {
        assert_eq!(printable("github.com:443\n"), "github.com:443\\n");
        assert_eq!(printable("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert!(matches!(printable("plain"), Cow::Borrowed("plain")));
        let input = "{\"input\":\"a\\nb\",\"test_name\":\"x\"}\n";
        let analyzer = Analyzer::with_builtin_fingerprints();
        let mut out = Vec::new();
        let mut summary = Summary::default();
        let opts = Options::default();
        analyze_lines(&analyzer, &mut Cursor::new(input), &mut out, &opts, &mut summary).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("a\\nb"), "{text}");
    }

    #[test]
    fn a_closed_output_stops_with_a_write_error() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let analyzer = Analyzer::with_builtin_fingerprints();
        let mut summary = Summary::default();
        let r = analyze_lines(
            &analyzer,
            &mut Cursor::new("{}\n{}\n"),
            &mut Closed,
            &json(),
            &mut summary,
        );
        assert!(matches!(r, Err(StreamError::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe));
    }

    #[test]
    fn summary_counts_write_statuses_and_methods() {
        let mut s = Summary::default();
        s.count(&Verdict::inconclusive("x"));
        let blocked = Verdict {
            status: Status::Blocked,
            method: Some(Method::DnsNxdomain),
            ..Verdict::inconclusive("y")
        };
        s.count(&blocked);
        let mut total = Summary::default();
        total.merge(&s);
        total.merge(&s);
        assert_eq!(total.status_count(Status::Blocked), 2);
        assert_eq!(total.method_count(Some(Method::DnsNxdomain)), 2);
        assert_eq!(total.method_count(None), 2);
        let mut text = Vec::new();
        total.write_counts(&mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("blocked 2"), "{text}");
        assert!(text.contains("dns.nxdomain 2"), "{text}");
        assert!(!text.contains("tcp.reset"), "{text}");
    }
}
