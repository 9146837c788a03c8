//! Citizen Lab test lists (github.com/citizenlab/test-lists): CSV with the header
//! `url,category_code,category_description,date_added,source,notes`.

use serde::{Deserialize, Serialize};

/// One entry of a test list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestListEntry {
    /// The URL to test.
    pub url: String,
    /// Category code, e.g. `NEWS`, `GRP`.
    pub category_code: String,
    /// Category description.
    #[serde(default)]
    pub category_description: String,
    /// Date added, `YYYY-MM-DD`.
    #[serde(default)]
    pub date_added: String,
    /// Who added it.
    #[serde(default)]
    pub source: String,
    /// Free-form notes.
    #[serde(default)]
    pub notes: String,
}

/// Why a test list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TestListError {
    /// The header row lacks a required column.
    #[error(
        "test list header lacks the {0:?} column (expected url,category_code,category_description,date_added,source,notes)"
    )]
    MissingColumn(&'static str),
    /// A row could not be read.
    #[error("test list line {line}: {message}")]
    Row {
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
}

/// Reads a test list. Rows with an empty URL are skipped; a malformed row is an error naming its line.
pub fn parse_test_list<R: std::io::Read>(reader: R) -> Result<Vec<TestListEntry>, TestListError> {
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers = csv
        .headers()
        .map_err(|e| TestListError::Row {
            line: 1,
            message: e.to_string(),
        })?
        .clone();
    for required in ["url", "category_code"] {
        if !headers.iter().any(|h| h == required) {
            return Err(TestListError::MissingColumn(required));
        }
    }
    let mut out = Vec::new();
    for record in csv.records() {
        let record = record.map_err(|e| TestListError::Row {
            line: e.position().map_or(0, |p| p.line()),
            message: e.to_string(),
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let entry: TestListEntry = record.deserialize(Some(&headers)).map_err(|e| TestListError::Row {
            line,
            message: e.to_string(),
        })?;
        if entry.url.is_empty() {
            continue;
        }
        if url::Url::parse(&entry.url).is_err() {
            return Err(TestListError::Row {
                line,
                message: format!("{:?} is not a URL", entry.url),
            });
        }
        out.push(entry);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_citizenlab_rows() {
        let text = "url,category_code,category_description,date_added,source,notes\n\
                    https://x.com/,GRP,Social Networking,2023-01-01,citizenlab,\"with, comma\"\n\
                    https://twitter.com/,GRP,Social Networking,2014-04-15,citizenlab,\n";
        let list = parse_test_list(text.as_bytes()).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].url, "https://x.com/");
        assert_eq!(list[0].notes, "with, comma");
        assert_eq!(list[1].category_code, "GRP");
    }

    #[test]
    fn bad_header_and_bad_url_are_named() {
        let err = parse_test_list("link,category\nhttps://x.com/,GRP\n".as_bytes()).unwrap_err();
        assert!(err.to_string().contains("\"url\""), "{err}");
        let err = parse_test_list("url,category_code\nnot a url,GRP\n".as_bytes()).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
