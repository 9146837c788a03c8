//! Compares the probe's final HTTP response with the control's, the way OONI's Web Connectivity
//! does (ts-017; probe-cli `internal/experiment/webconnectivity/httpanalysis.go`, which the LTE's
//! `analysishttpdiff.go` ports): status code (not judged when only the control's is a 5xx), body
//! length proportion (> 0.7; not judged for a truncated body), headers (the same header names, or
//! at least one uncommon name in common), and titles (every word of 5+ bytes in both, so two
//! pages without long title words match — ooniprobe 0.5's rule; v0.4 left it null without a
//! title).

use censorwatch_model::web_connectivity::{ControlHttpRequest, HttpResponse};

/// Body-length proportion above which bodies "match" (OONI: `bodyProportionFactor = 0.7`).
pub(crate) const BODY_PROPORTION_FACTOR: f64 = 0.7;

/// Headers every server sends, ignored when comparing header sets (OONI's common-headers list).
const COMMON_HEADERS: &[&str] = &[
    "date",
    "content-type",
    "server",
    "cache-control",
    "vary",
    "set-cookie",
    "location",
    "expires",
    "x-powered-by",
    "content-encoding",
    "last-modified",
    "accept-ranges",
    "pragma",
    "x-frame-options",
    "etag",
    "x-content-type-options",
    "age",
    "via",
    "p3p",
    "x-xss-protection",
    "content-language",
    "cf-ray",
    "strict-transport-security",
    "link",
    "x-varnish",
];

/// The four comparisons; `None` where OONI would not decide.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct HttpDiff {
    pub(crate) status_code_match: Option<bool>,
    pub(crate) body_proportion: Option<f64>,
    pub(crate) body_length_match: Option<bool>,
    pub(crate) headers_match: Option<bool>,
    pub(crate) title_match: Option<bool>,
}

impl HttpDiff {
    /// OONI's http-diff decision: a diff unless the status matches and one of body length,
    /// uncommon headers or title matches.
    pub(crate) fn is_diff(&self) -> bool {
        !(self.status_code_match == Some(true)
            && (self.body_length_match == Some(true)
                || self.headers_match == Some(true)
                || self.title_match == Some(true)))
    }
}

/// Compares `response` (the probe's final one) with the control's.
pub(crate) fn compare(response: &HttpResponse, control: &ControlHttpRequest) -> HttpDiff {
    let mut out = HttpDiff::default();
    let code = response.code.unwrap_or(0);
    let control_code = control.status_code.unwrap_or(0);
    if code > 0 && control_code > 0 {
        // A 5xx at the control says nothing about what the probe should see.
        if code == control_code || control_code / 100 != 5 {
            out.status_code_match = Some(code == control_code);
        }
    }
    let truncated = response.body_is_truncated == Some(true);
    let body = response.body.as_ref().and_then(|b| b.bytes());
    let body_len = body.as_ref().map_or(0, |b| b.len()) as f64;
    let control_len = control.body_length.unwrap_or(-1) as f64;
    if !truncated && control_len > 0.0 && body_len > 0.0 {
        let p = if body_len >= control_len {
            control_len / body_len
        } else {
            body_len / control_len
        };
        out.body_proportion = Some(p);
        out.body_length_match = Some(p > BODY_PROPORTION_FACTOR);
    }
    if code > 0 && control_code > 0 {
        out.headers_match = Some(uncommon_headers_intersect(response, control));
    }
    if code > 0 && control_code > 0 {
        let title = body.as_deref().and_then(extract_title).unwrap_or_default();
        out.title_match = Some(long_words_agree(&title, control.title.as_deref().unwrap_or("")));
    }
    out
}

fn is_common(name: &str) -> bool {
    COMMON_HEADERS.iter().any(|c| c.eq_ignore_ascii_case(name))
}

/// OONI's header rule: the same set of header names (case-insensitive) matches outright;
/// otherwise at least one uncommon name must be in both.
fn uncommon_headers_intersect(response: &HttpResponse, control: &ControlHttpRequest) -> bool {
    let mut probe: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    if let Some(h) = &response.headers {
        probe.extend(h.keys().map(|k| k.to_ascii_lowercase()));
    } else if let Some(list) = &response.headers_list {
        probe.extend(list.iter().map(|(k, _)| k.to_ascii_lowercase()));
    }
    let theirs: std::collections::BTreeSet<String> = control
        .headers
        .iter()
        .flatten()
        .map(|(k, _)| k.to_ascii_lowercase())
        .collect();
    if probe == theirs {
        return true;
    }
    theirs.iter().any(|k| !is_common(k) && probe.contains(k))
}

/// OONI's title rule: words (split on spaces) of 5+ bytes must appear in both titles
/// (case-insensitive); Go's `len` counts bytes, so a 3-letter Cyrillic word counts as 6.
fn long_words_agree(probe: &str, control: &str) -> bool {
    const MIN_WORD_BYTES: usize = 5;
    let words = |t: &str| -> Vec<String> {
        t.split(' ')
            .filter(|w| w.len() >= MIN_WORD_BYTES)
            .map(str::to_lowercase)
            .collect()
    };
    let (p, c) = (words(probe), words(control));
    p.iter().all(|w| c.contains(w)) && c.iter().all(|w| p.contains(w))
}

/// The text of the first `<title>` element (case-insensitive, at most 512 bytes, as OONI).
pub(crate) fn extract_title(body: &[u8]) -> Option<String> {
    const MAX: usize = 512;
    let finder = memchr::memmem::Finder::new(b"<");
    for start in finder.find_iter(body) {
        let rest = &body[start + 1..];
        if rest.len() >= 6 && rest[..5].eq_ignore_ascii_case(b"title") && (rest[5] == b'>') {
            let text = &rest[6..];
            let end = memchr::memchr(b'<', text)?;
            if end == 0 || end > MAX {
                return None;
            }
            return Some(String::from_utf8_lossy(&text[..end]).trim().to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles() {
        assert_eq!(
            extract_title(b"<html><TITLE>Default Web Page</TITLE>").as_deref(),
            Some("Default Web Page")
        );
        assert_eq!(extract_title(b"<html><body>no title</body>"), None);
        assert_eq!(extract_title(b"<title></title>"), None);
    }

    #[test]
    fn long_words() {
        assert!(long_words_agree("Default Web Page", "default web page"));
        assert!(!long_words_agree("Access Denied", "Default Web Page"));
        assert!(long_words_agree("a b c", "x y"), "short words are ignored");
    }

    fn response(code: i64, body: &str, headers: &[(&str, &str)]) -> HttpResponse {
        HttpResponse {
            code: Some(code),
            body: Some(body.into()),
            headers: Some(headers.iter().map(|(k, v)| (k.to_string(), (*v).into())).collect()),
            ..Default::default()
        }
    }

    fn control(code: i64, len: i64, title: &str, headers: &[(&str, &str)]) -> ControlHttpRequest {
        ControlHttpRequest {
            status_code: Some(code),
            body_length: Some(len),
            title: Some(title.into()),
            headers: Some(headers.iter().map(|(k, v)| (k.to_string(), (*v).into())).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn same_page_is_no_diff() {
        let body = "<title>Default Web Page</title>".repeat(10);
        let d = compare(
            &response(200, &body, &[("Alt-Svc", "h3"), ("Date", "x")]),
            &control(200, body.len() as i64, "Default Web Page", &[("Alt-Svc", "h3")]),
        );
        assert_eq!(d.status_code_match, Some(true));
        assert_eq!(d.body_length_match, Some(true));
        assert_eq!(d.headers_match, Some(true));
        assert_eq!(d.title_match, Some(true));
        assert!(!d.is_diff());
    }

    #[test]
    fn blockpage_is_a_diff() {
        let d = compare(
            &response(200, "<title>Access Denied</title>", &[("Content-Type", "text/html")]),
            &control(200, 1533, "Default Web Page", &[("Alt-Svc", "h3")]),
        );
        assert_eq!(d.status_code_match, Some(true));
        assert_eq!(d.body_length_match, Some(false));
        assert_eq!(d.headers_match, Some(false));
        assert_eq!(d.title_match, Some(false));
        assert!(d.is_diff());
    }

    #[test]
    fn control_5xx_does_not_decide_status() {
        let d = compare(&response(200, "x", &[]), &control(503, 10, "", &[]));
        assert_eq!(d.status_code_match, None);
        assert!(d.is_diff());
    }
}
