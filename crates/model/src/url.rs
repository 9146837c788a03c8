//! Small URL helpers shared by every part (host extraction for grouping by domain).

/// The host of `input`, lowercased, IDNA-encoded (punycode), without port or brackets.
/// `None` when `input` is not a URL with a host.
pub fn host_of(input: &str) -> Option<String> {
    let parsed = url::Url::parse(input.trim()).ok()?;
    let host = parsed.host_str()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        None
    } else {
        Some(host.to_ascii_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn hosts() {
        assert_eq!(host_of("https://X.com/home").as_deref(), Some("x.com"));
        assert_eq!(
            host_of("http://www.example.com:444/").as_deref(),
            Some("www.example.com")
        );
        assert_eq!(host_of("http://[::1]:80/").as_deref(), Some("::1"));
        assert_eq!(host_of("http://яндекс.рф/").as_deref(), Some("xn--d1acpjx3f.xn--p1ai"));
        assert_eq!(host_of("not a url"), None);
        assert_eq!(host_of("8.8.8.8:53"), None);
    }
}
