//! censorwatch's data model: OONI measurements (the df-000 envelope and Web Connectivity test keys,
//! v0.4 and v0.5, back to the 2014 formats), the df-007 failure vocabulary, censorwatch's verdict
//! type, and Citizen Lab test lists.
//!
//! Every type reads what a decade of probes wrote and writes back what it read: unknown keys and
//! explicit nulls are kept (see [`object`]). This crate does no I/O and makes no judgement; the
//! verdict rules live in `censorwatch-verdict`.

#[doc(hidden)]
pub use serde;
#[doc(hidden)]
pub use serde_json;

pub mod binary;
pub mod failure;
pub mod measurement;
pub mod object;
pub mod testlist;
pub mod url;
pub mod verdict;
pub mod web_connectivity;

pub use binary::MaybeBinary;
pub use failure::{Failure, FailureKind};
pub use measurement::{Input, Measurement, ParseError, RawJson};
pub use testlist::{TestListEntry, parse_test_list};
pub use verdict::{Method, Status, Verdict};
pub use web_connectivity::{OoniBlocking, WebConnectivityTestKeys};
