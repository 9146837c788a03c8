//! Blockpage fingerprints (placeholder API, being written).

/// Where a fingerprint is looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A DNS answer.
    Dns,
    /// The HTTP body.
    Body,
    /// An HTTP header (lowercase name).
    Header(String),
}

/// How the pattern is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternType {
    /// Equal.
    Full,
    /// Starts with.
    Prefix,
    /// Contains.
    Contains,
    /// Regular expression.
    Regexp,
}

/// Who deploys the blockpage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// National.
    Nat,
    /// One ISP.
    Isp,
    /// A commercial filtering product.
    Prod,
    /// An institution.
    Inst,
    /// Vendor/other.
    Other(String),
    /// A known false positive (not censorship).
    Fp,
}

/// One fingerprint.
#[derive(Debug, Clone, PartialEq)]
pub struct Fingerprint {
    /// Name, e.g. `ooni.pk_3`.
    pub name: String,
    /// Scope.
    pub scope: Scope,
    /// Where.
    pub location: Location,
    /// How.
    pub pattern_type: PatternType,
    /// What.
    pub pattern: String,
    /// Countries where it is expected.
    pub expected_countries: Vec<String>,
}

impl Fingerprint {
    /// Whether a match confirms blocking for a probe in `cc` (OONI fastpath rule).
    pub fn confirms_in(&self, cc: &str) -> bool {
        matches!(self.scope, Scope::Nat | Scope::Isp) || self.expected_countries.iter().any(|c| c == cc)
    }
}

/// Why fingerprints could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("fingerprint CSV: {0}")]
pub struct FingerprintError(String);

/// A set of fingerprints.
#[derive(Debug, Clone, Default)]
pub struct FingerprintDb {}

impl FingerprintDb {
    /// The shipped set.
    pub fn builtin() -> FingerprintDb {
        FingerprintDb {}
    }
    /// First fingerprint matching a DNS answer.
    pub fn match_dns_answer(&self, _answer: &str) -> Option<&Fingerprint> {
        None
    }
    /// First fingerprint matching a body.
    pub fn match_body(&self, _body: &[u8]) -> Option<&Fingerprint> {
        None
    }
    /// First fingerprint matching a header.
    pub fn match_header(&self, _name: &str, _value: &[u8]) -> Option<&Fingerprint> {
        None
    }
}
