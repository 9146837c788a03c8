//! censorwatch's verdict engine: one measurement (with the control's view inside it) in, one
//! [`Verdict`] out — status, method, confidence, blockpage, OONI's own `blocking`/`accessible`
//! recomputed, and reasons a journalist can read.
//!
//! Pure: no I/O, no clock, no network. Blockpage fingerprints are data handed in by the caller
//! ([`FingerprintDb`]); the OONI set shipped with censorwatch is compiled in for convenience.
//!
//! The verdict is computed from the observations only (DNS answers, connects, handshakes, HTTP
//! transactions, the control). The probe's own `blocking`, `accessible` and `x_*_flags` keys are
//! never read: they are opinions, often missing or wrong in old data.

pub mod bogon;
pub mod fingerprint;
mod other_tests;
mod web;

use censorwatch_model::{Measurement, ParseError, Verdict};
pub use fingerprint::{Fingerprint, FingerprintDb, FingerprintError, Location, PatternType, Scope};
pub use web::OoniComparison;

/// Decides verdicts. Holds the fingerprint database; cheap to share across threads.
#[derive(Debug, Clone)]
pub struct Analyzer {
    fingerprints: FingerprintDb,
}

impl Analyzer {
    /// An analyzer using `fingerprints`.
    pub fn new(fingerprints: FingerprintDb) -> Analyzer {
        Analyzer { fingerprints }
    }

    /// An analyzer using the OONI fingerprint set shipped with censorwatch.
    pub fn with_builtin_fingerprints() -> Analyzer {
        Analyzer::new(FingerprintDb::builtin())
    }

    /// The fingerprints in use.
    pub fn fingerprints(&self) -> &FingerprintDb {
        &self.fingerprints
    }

    /// OONI's comparison keys (`dns_consistency`, `body_length_match`, `body_proportion`,
    /// `status_code_match`, `headers_match`, `title_match`) of a Web Connectivity measurement,
    /// recomputed from its observations and control; `None` for other tests or without test keys.
    pub fn ooni_comparison(&self, measurement: &Measurement) -> Result<Option<OoniComparison>, ParseError> {
        if measurement.test_name() != "web_connectivity" {
            return Ok(None);
        }
        Ok(measurement
            .web_connectivity()?
            .map(|keys| web::ooni_comparison(measurement, &keys)))
    }

    /// The verdict on one measurement. Tests censorwatch has no rules for get `inconclusive` with a
    /// reason; the only error is test keys that do not have the shape their test name promises.
    pub fn verdict(&self, measurement: &Measurement) -> Result<Verdict, ParseError> {
        match measurement.test_name() {
            "web_connectivity" => match measurement.web_connectivity()? {
                Some(keys) => Ok(web::verdict(measurement, &keys, &self.fingerprints)),
                None => Ok(Verdict::inconclusive("the measurement has no test keys")),
            },
            name => {
                let keys = measurement.test_keys_value()?;
                Ok(other_tests::verdict(name, measurement, &keys))
            }
        }
    }
}
