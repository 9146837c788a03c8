//! The OONI measurement envelope (ooni/spec `df-000-base.md`), as written by every OONI probe since
//! 2014 and by censorwatch's own probe.
//!
//! The test keys are kept as raw JSON until asked for, because their shape depends on `test_name`,
//! which usually comes *after* `test_keys` in the object (keys are sorted). Parsing them on demand
//! also means a measurement whose test keys are odd still yields its envelope.

use crate::web_connectivity::WebConnectivityTestKeys;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use std::fmt;

/// The OONI data-format version censorwatch writes.
pub const DATA_FORMAT_VERSION: &str = "0.2.0";

/// A JSON value kept as its exact text.
#[derive(Clone)]
pub struct RawJson(pub Box<RawValue>);

impl RawJson {
    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Serializes `value` into raw JSON.
    pub fn from_value<T: Serialize>(value: &T) -> Result<RawJson, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(RawJson)
    }
}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Serialize for RawJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for RawJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(d).map(RawJson)
    }
}

/// A measurement's `input`: a URL (web_connectivity), or a list (some old tests), or null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Input {
    /// One input, usually a URL.
    One(String),
    /// Several inputs (old tests such as `dns_consistency` with several names).
    Many(Vec<serde_json::Value>),
}

impl Input {
    /// The first input as text.
    pub fn first(&self) -> Option<&str> {
        match self {
            Input::One(s) => Some(s),
            Input::Many(items) => items.iter().find_map(|v| v.as_str()),
        }
    }
}

crate::json_object! {
    /// One OONI measurement: the df-000 envelope with its test keys.
    pub struct Measurement {
        /// Free-form annotations (`engine_name`, `network_type`, …).
        annotations: serde_json::Map<String, serde_json::Value> => "annotations",
        /// Set by the backend.
        backend_version: String => "backend_version",
        /// Set by the pipeline.
        bucket_date: String => "bucket_date",
        /// `"0.2.0"`.
        data_format_version: String => "data_format_version",
        /// Data-format extensions used and their versions.
        extensions: serde_json::Map<String, serde_json::Value> => "extensions",
        /// Client-side UUID (deprecated).
        id: String => "id",
        /// What was measured (the URL for web_connectivity).
        input: Input => "input",
        /// Deprecated.
        input_hashes: serde_json::Value => "input_hashes",
        /// Start of this measurement, `"YYYY-MM-DD HH:MM:SS"` UTC.
        measurement_start_time: String => "measurement_start_time",
        /// Backend-assigned id, e.g. `20220911T203447Z_webconnectivity_IT_30722_n1_…`.
        measurement_uid: String => "measurement_uid",
        /// Deprecated command-line options.
        options: serde_json::Value => "options",
        /// `"AS1234"`, `"AS0"` if unknown.
        probe_asn: String => "probe_asn",
        /// Two-letter country code, `"ZZ"` if unknown.
        probe_cc: String => "probe_cc",
        /// Deprecated.
        probe_city: serde_json::Value => "probe_city",
        /// Always `"127.0.0.1"` in published data; censorwatch scrubs it.
        probe_ip: String => "probe_ip",
        /// Name of the probe's network.
        probe_network_name: String => "probe_network_name",
        /// Set by the backend.
        report_filename: String => "report_filename",
        /// Report the measurement belongs to.
        report_id: String => "report_id",
        /// ASN of the system resolver.
        resolver_asn: String => "resolver_asn",
        /// IP of the system resolver.
        resolver_ip: String => "resolver_ip",
        /// Network name of the system resolver.
        resolver_network_name: String => "resolver_network_name",
        /// Probe software name.
        software_name: String => "software_name",
        /// Probe software version.
        software_version: String => "software_version",
        /// Test helpers used.
        test_helpers: serde_json::Value => "test_helpers",
        /// Per-test results, parsed on demand (see [`Measurement::web_connectivity`]).
        test_keys: RawJson => "test_keys",
        /// Test name, e.g. `"web_connectivity"`.
        test_name: String => "test_name",
        /// Duration of the measurement, seconds.
        test_runtime: serde_json::Number => "test_runtime",
        /// Start of the whole run.
        test_start_time: String => "test_start_time",
        /// Test version, e.g. `"0.4.3"` (classic) or `"0.5.28"` (LTE).
        test_version: String => "test_version",
    }
}

/// Why a measurement or its test keys could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The text is not a JSON object of the measurement shape.
    #[error("not an OONI measurement: {0}")]
    Envelope(#[source] serde_json::Error),
    /// The envelope is fine but its test keys do not have the shape of the test they claim.
    #[error("test_keys do not fit {test_name}: {source}")]
    TestKeys {
        /// The envelope's `test_name`.
        test_name: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
}

impl Measurement {
    /// Parses one measurement from JSON text.
    pub fn from_slice(json: &[u8]) -> Result<Measurement, ParseError> {
        serde_json::from_slice(json).map_err(ParseError::Envelope)
    }

    /// The test name, or `""`.
    pub fn test_name(&self) -> &str {
        self.test_name.as_deref().unwrap_or("")
    }

    /// The first input, if any.
    pub fn input_str(&self) -> Option<&str> {
        self.input.as_ref().and_then(Input::first)
    }

    /// The host of the input URL, lowercased, without port.
    pub fn domain(&self) -> Option<String> {
        self.input_str().and_then(crate::url::host_of)
    }

    /// The test keys as `T`. `Ok(None)` when they are absent or null.
    pub fn test_keys_as<T: DeserializeOwned>(&self) -> Result<Option<T>, ParseError> {
        let Some(raw) = &self.test_keys else { return Ok(None) };
        serde_json::from_str(raw.get())
            .map(Some)
            .map_err(|source| ParseError::TestKeys {
                test_name: self.test_name().to_owned(),
                source,
            })
    }

    /// The test keys as a `serde_json::Value` (`Null` when absent).
    pub fn test_keys_value(&self) -> Result<serde_json::Value, ParseError> {
        Ok(self
            .test_keys_as::<serde_json::Value>()?
            .unwrap_or(serde_json::Value::Null))
    }

    /// The web_connectivity test keys, if this is a web_connectivity measurement with test keys.
    pub fn web_connectivity(&self) -> Result<Option<WebConnectivityTestKeys>, ParseError> {
        if self.test_name() != "web_connectivity" {
            return Ok(None);
        }
        self.test_keys_as()
    }

    /// Replaces the test keys.
    pub fn set_test_keys<T: Serialize>(&mut self, keys: &T) -> Result<(), serde_json::Error> {
        self.test_keys = Some(RawJson::from_value(keys)?);
        self.extra.remove("test_keys");
        Ok(())
    }
}
