//! What a censor sees in a flow's first flight: the server name of a TLS ClientHello (SNI) or the
//! Host of an HTTP request. Pure and total: any byte string gives [`Sniffed::Incomplete`] (wait
//! for more), a name-bearing result, or [`Sniffed::Other`]; nothing panics.
//!
//! The ClientHello is parsed by hand rather than with `tls-parser` or rustls: a DPI box needs
//! exactly one field, must reassemble a handshake message spread over several TLS records (and
//! TCP segments), and must tell "not complete yet" from "not TLS" — `tls-parser` parses one record
//! at a time and leaves the reassembly to the caller, and rustls' `Acceptor` judges the hello as
//! a server would (refusing ones it would not serve). The walk below follows RFC 8446 §4.1.2
//! (ClientHello), RFC 8446 §5.1 (records) and RFC 6066 §3 (server_name). HTTP requests are parsed
//! with `httparse`.

/// Largest TLS plaintext record body accepted (2^14, plus RFC 5246's 2048 bytes of slack).
const MAX_RECORD_LEN: usize = (1 << 14) + 2048;

/// The result of looking at the bytes a client sent so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sniffed {
    /// Could be a ClientHello or an HTTP request that has not fully arrived; read more.
    Incomplete,
    /// A complete TLS ClientHello, with its server_name if it sent one.
    Tls {
        /// The first host_name of the server_name extension (lowercase is not enforced here).
        sni: Option<String>,
    },
    /// Complete HTTP request headers, with the Host (port removed) if any.
    Http {
        /// The Host header's host, or the authority of an absolute-form request target.
        host: Option<String>,
    },
    /// Neither (or malformed): the flow carries no name a censor can read.
    Other,
}

/// Classifies a flow's first bytes.
pub fn sniff(first_flight: &[u8]) -> Sniffed {
    match first_flight.first() {
        None => Sniffed::Incomplete,
        Some(&TLS_HANDSHAKE) => match parse_client_hello(first_flight) {
            Ok(Some(sni)) => Sniffed::Tls { sni },
            Ok(None) => Sniffed::Incomplete,
            Err(_) => Sniffed::Other,
        },
        Some(_) => match parse_http_host(first_flight) {
            Ok(Some(host)) => Sniffed::Http { host },
            Ok(None) => Sniffed::Incomplete,
            Err(_) => Sniffed::Other,
        },
    }
}

/// Why bytes are not a ClientHello (or an HTTP request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotRecognized(pub &'static str);

impl std::fmt::Display for NotRecognized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for NotRecognized {}

const TLS_HANDSHAKE: u8 = 0x16;
const HANDSHAKE_CLIENT_HELLO: u8 = 0x01;
const EXTENSION_SERVER_NAME: u16 = 0x0000;
const SERVER_NAME_HOST_NAME: u8 = 0x00;

/// Parses TLS records from the start of `bytes` and the ClientHello they carry.
///
/// `Ok(None)`: a valid prefix, read more. `Ok(Some(sni))`: the whole ClientHello arrived (the
/// bytes after it are ignored). `Err`: not a ClientHello.
pub fn parse_client_hello(bytes: &[u8]) -> Result<Option<Option<String>>, NotRecognized> {
    // Reassemble the handshake stream from consecutive handshake records.
    let mut handshake = Vec::new();
    let mut rest = bytes;
    loop {
        let Some(header) = rest.get(..5) else {
            // A partial record header: check what we can see of it.
            if rest.first().is_some_and(|&t| t != TLS_HANDSHAKE) {
                return Err(NotRecognized("a non-handshake TLS record before the ClientHello ended"));
            }
            if rest.get(1).is_some_and(|&major| major != 3) {
                return Err(NotRecognized("TLS record version is not 3.x"));
            }
            return Ok(None);
        };
        if header[0] != TLS_HANDSHAKE {
            return Err(NotRecognized("a non-handshake TLS record before the ClientHello ended"));
        }
        if header[1] != 3 {
            return Err(NotRecognized("TLS record version is not 3.x"));
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 || len > MAX_RECORD_LEN {
            return Err(NotRecognized("TLS record length out of range"));
        }
        let available = &rest[5..];
        let fragment = &available[..len.min(available.len())];
        handshake.extend_from_slice(fragment);
        match client_hello_sni(&handshake)? {
            Some(sni) => return Ok(Some(sni)),
            None if fragment.len() < len => return Ok(None),
            None => rest = &available[len..],
        }
    }
}

/// Parses a (possibly partial) handshake stream starting with a ClientHello. `Ok(None)`: partial.
fn client_hello_sni(handshake: &[u8]) -> Result<Option<Option<String>>, NotRecognized> {
    let mut r = Reader(handshake);
    let Some(kind) = r.u8() else { return Ok(None) };
    if kind != HANDSHAKE_CLIENT_HELLO {
        return Err(NotRecognized("first handshake message is not a ClientHello"));
    }
    let Some(len) = r.u24() else { return Ok(None) };
    let Some(body) = r.take(len) else { return Ok(None) };
    parse_client_hello_body(body).map(Some)
}

/// Walks a complete ClientHello body to its server_name extension.
fn parse_client_hello_body(body: &[u8]) -> Result<Option<String>, NotRecognized> {
    const TRUNCATED: NotRecognized = NotRecognized("ClientHello truncated inside its own length");
    let mut r = Reader(body);
    let _legacy_version = r.take(2).ok_or(TRUNCATED)?;
    let _random = r.take(32).ok_or(TRUNCATED)?;
    let session_id_len = usize::from(r.u8().ok_or(TRUNCATED)?);
    r.take(session_id_len).ok_or(TRUNCATED)?;
    let cipher_suites_len = usize::from(r.u16().ok_or(TRUNCATED)?);
    r.take(cipher_suites_len).ok_or(TRUNCATED)?;
    let compression_len = usize::from(r.u8().ok_or(TRUNCATED)?);
    r.take(compression_len).ok_or(TRUNCATED)?;
    if r.0.is_empty() {
        return Ok(None); // No extensions at all (allowed before TLS 1.3).
    }
    let extensions_len = usize::from(r.u16().ok_or(TRUNCATED)?);
    let mut extensions = Reader(r.take(extensions_len).ok_or(TRUNCATED)?);
    while !extensions.0.is_empty() {
        let kind = extensions.u16().ok_or(TRUNCATED)?;
        let len = usize::from(extensions.u16().ok_or(TRUNCATED)?);
        let data = extensions.take(len).ok_or(TRUNCATED)?;
        if kind == EXTENSION_SERVER_NAME {
            return parse_server_name(data);
        }
    }
    Ok(None)
}

/// The first host_name of a server_name extension's list (RFC 6066 §3).
fn parse_server_name(data: &[u8]) -> Result<Option<String>, NotRecognized> {
    const BAD: NotRecognized = NotRecognized("malformed server_name extension");
    let mut r = Reader(data);
    if r.0.is_empty() {
        return Ok(None); // A server's empty echo; clients should not send it, but it names nothing.
    }
    let list_len = usize::from(r.u16().ok_or(BAD)?);
    let mut list = Reader(r.take(list_len).ok_or(BAD)?);
    while !list.0.is_empty() {
        let name_type = list.u8().ok_or(BAD)?;
        let len = usize::from(list.u16().ok_or(BAD)?);
        let name = list.take(len).ok_or(BAD)?;
        if name_type == SERVER_NAME_HOST_NAME {
            return Ok(Some(String::from_utf8_lossy(name).into_owned()));
        }
    }
    Ok(None)
}

/// A cursor over bytes whose reads return `None` past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u24(&mut self) -> Option<usize> {
        self.take(3)
            .map(|b| usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }
}

/// Parses HTTP/1.x request headers from the start of `bytes`.
///
/// `Ok(None)`: a valid prefix, read more. `Ok(Some(host))`: the headers are complete; `host` is
/// the Host header's host (or an absolute-form target's), without port. `Err`: not HTTP.
pub fn parse_http_host(bytes: &[u8]) -> Result<Option<Option<String>>, NotRecognized> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(bytes) {
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(_)) => {
            let from_header = request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("host"))
                .and_then(|h| std::str::from_utf8(h.value).ok())
                .map(str::trim);
            let from_target = request.path.and_then(absolute_form_authority);
            Ok(Some(from_header.or(from_target).and_then(host_without_port)))
        }
        Err(httparse::Error::TooManyHeaders) => Err(NotRecognized("HTTP request with more than 128 headers")),
        Err(_) => Err(NotRecognized("not an HTTP/1.x request")),
    }
}

/// `example.org:8080` from `http://example.org:8080/path`.
fn absolute_form_authority(target: &str) -> Option<&str> {
    let (scheme, rest) = target.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    Some(authority.rsplit_once('@').map_or(authority, |(_, host)| host))
}

/// The host of a `host[:port]` authority (`[v6]` brackets removed); `None` when empty.
fn host_without_port(authority: &str) -> Option<String> {
    let host = if let Some(bracketed) = authority.strip_prefix('[') {
        bracketed.split_once(']').map_or(bracketed, |(inside, _)| inside)
    } else {
        authority.split_once(':').map_or(authority, |(host, _)| host)
    };
    (!host.is_empty()).then(|| host.to_owned())
}

/// ClientHello builders for tests and benchmarks (this crate's and the lab's): syntactically
/// valid hellos with a chosen SNI, split into records of a chosen size. Not a TLS client.
pub mod build {
    /// A syntactically complete TLS 1.2-style ClientHello handshake message (no record header)
    /// with `sni` as its server_name (none when `None`) and a few other extensions around it.
    pub fn client_hello_message(sni: Option<&str>) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&[0x03, 0x03]);
        body.extend_from_slice(&[0x42; 32]);
        body.push(32);
        body.extend_from_slice(&[0x07; 32]);
        let suites: [u16; 3] = [0x1301, 0x1302, 0xc02f];
        body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
        for s in suites {
            body.extend_from_slice(&s.to_be_bytes());
        }
        body.extend_from_slice(&[1, 0]);
        let mut extensions = Vec::new();
        // supported_groups first, so the SNI is not at a fixed offset.
        push_extension(&mut extensions, 0x000a, &[0x00, 0x04, 0x00, 0x1d, 0x00, 0x17]);
        if let Some(name) = sni {
            let mut list = Vec::new();
            list.push(0);
            list.extend_from_slice(&(name.len() as u16).to_be_bytes());
            list.extend_from_slice(name.as_bytes());
            let mut data = (list.len() as u16).to_be_bytes().to_vec();
            data.extend_from_slice(&list);
            push_extension(&mut extensions, 0x0000, &data);
        }
        push_extension(&mut extensions, 0x002b, &[0x02, 0x03, 0x04]);
        push_extension(&mut extensions, 0x0015, &[0u8; 200]); // padding
        body.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
        body.extend_from_slice(&extensions);
        let mut message = vec![0x01];
        message.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        message.extend_from_slice(&body);
        message
    }

    fn push_extension(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(data);
    }

    /// `message` wrapped in TLS handshake records of at most `max_fragment` bytes each.
    pub fn in_records(message: &[u8], max_fragment: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in message.chunks(max_fragment.max(1)) {
            out.extend_from_slice(&[0x16, 0x03, 0x01]);
            out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            out.extend_from_slice(chunk);
        }
        out
    }

    /// A ClientHello for `sni` in one record.
    pub fn client_hello(sni: Option<&str>) -> Vec<u8> {
        in_records(&client_hello_message(sni), 1 << 14)
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn finds_the_sni_of_a_complete_hello() {
        let hello = client_hello(Some("abs.twimg.com"));
        assert_eq!(
            sniff(&hello),
            Sniffed::Tls {
                sni: Some("abs.twimg.com".into())
            }
        );
        assert_eq!(sniff(&client_hello(None)), Sniffed::Tls { sni: None });
    }

    #[test]
    fn every_strict_prefix_of_a_hello_is_incomplete() {
        let hello = client_hello(Some("x.com"));
        for cut in 0..hello.len() {
            assert_eq!(sniff(&hello[..cut]), Sniffed::Incomplete, "prefix of {cut} bytes");
        }
    }

    #[test]
    fn a_hello_split_over_records_is_reassembled() {
        let message = client_hello_message(Some("twitter.com"));
        for fragment in [1, 3, 4, 7, 50, 100] {
            let records = in_records(&message, fragment);
            assert_eq!(
                sniff(&records),
                Sniffed::Tls {
                    sni: Some("twitter.com".into())
                },
                "fragment {fragment}"
            );
            for cut in [0, 1, 5, 6, records.len() / 2, records.len() - 1] {
                assert_eq!(
                    sniff(&records[..cut]),
                    Sniffed::Incomplete,
                    "fragment {fragment}, cut {cut}"
                );
            }
        }
    }

    #[test]
    fn bytes_after_the_hello_are_ignored() {
        let mut hello = client_hello(Some("x.com"));
        hello.extend_from_slice(b"\x14\x03\x03\x00\x01\x01 and then anything");
        assert_eq!(
            sniff(&hello),
            Sniffed::Tls {
                sni: Some("x.com".into())
            }
        );
    }

    #[test]
    fn tls_that_is_not_a_client_hello_is_other() {
        // A ServerHello (type 2) in a handshake record.
        let mut message = client_hello_message(Some("x.com"));
        message[0] = 0x02;
        assert_eq!(sniff(&in_records(&message, 1 << 14)), Sniffed::Other);
        // An alert record where the hello's continuation should be.
        let message = client_hello_message(Some("x.com"));
        let mut records = in_records(&message[..10], 1 << 14);
        records.extend_from_slice(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);
        assert_eq!(sniff(&records), Sniffed::Other);
        // Wrong record version, zero and oversized lengths.
        assert_eq!(sniff(&[0x16, 0x02]), Sniffed::Other);
        assert_eq!(sniff(&[0x16, 0x03, 0x01, 0x00, 0x00]), Sniffed::Other);
        assert_eq!(sniff(&[0x16, 0x03, 0x01, 0xff, 0xff]), Sniffed::Other);
    }

    #[test]
    fn a_hello_whose_fields_overrun_it_is_other() {
        // Header 4, version 2, random 32, session id 1 + 32, suites 2 + 6, compression 1 + 1:
        // the extensions' length is at offset 81. Declaring 0xffff overruns the complete message.
        let mut message = client_hello_message(Some("x.com"));
        assert_eq!(
            u16::from_be_bytes([message[81], message[82]]) as usize,
            message.len() - 83
        );
        message[81] = 0xff;
        message[82] = 0xff;
        assert_eq!(sniff(&in_records(&message, 1 << 14)), Sniffed::Other);
        // An SNI entry longer than its list.
        let mut message = client_hello_message(Some("x.com"));
        let sni_at = message.windows(5).position(|w| w == b"x.com").unwrap();
        message[sni_at - 1] = 9;
        assert_eq!(sniff(&in_records(&message, 1 << 14)), Sniffed::Other);
    }

    #[test]
    fn http_host_is_found_without_its_port() {
        let got = sniff(b"GET / HTTP/1.1\r\nUser-Agent: x\r\nHost: WWW.Example.com:8080\r\n\r\n");
        assert_eq!(
            got,
            Sniffed::Http {
                host: Some("WWW.Example.com".into())
            }
        );
        let v6 = sniff(b"GET / HTTP/1.1\r\nhost: [2001:db8::1]:80\r\n\r\n");
        assert_eq!(
            v6,
            Sniffed::Http {
                host: Some("2001:db8::1".into())
            }
        );
        let absolute = sniff(b"GET http://user@x.com:81/a?b HTTP/1.1\r\n\r\n");
        assert_eq!(
            absolute,
            Sniffed::Http {
                host: Some("x.com".into())
            }
        );
        assert_eq!(sniff(b"GET / HTTP/1.0\r\n\r\n"), Sniffed::Http { host: None });
        assert_eq!(sniff(b"GET / HTTP/1.1\r\nHost: \r\n\r\n"), Sniffed::Http { host: None });
    }

    #[test]
    fn partial_http_is_incomplete_and_garbage_is_other() {
        let request = b"POST /x HTTP/1.1\r\nHost: x.com\r\nContent-Length: 3\r\n\r\nabc";
        let end_of_headers = request.len() - 3;
        for cut in 1..end_of_headers {
            assert_eq!(sniff(&request[..cut]), Sniffed::Incomplete, "cut {cut}");
        }
        assert_eq!(
            sniff(request),
            Sniffed::Http {
                host: Some("x.com".into())
            }
        );
        assert_eq!(sniff(b"\x00\x01binary"), Sniffed::Other);
        assert_eq!(sniff(b"SSH-2.0-OpenSSH_9.6\r\n"), Sniffed::Other);
        assert_eq!(sniff(b"GET / HTTP/1.1\r\nbad header line\r\n\r\n"), Sniffed::Other);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = sniff(&bytes);
        }

        #[test]
        fn tls_looking_garbage_never_panics(mut bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            if bytes.len() >= 6 {
                bytes[0] = 0x16;
                bytes[1] = 0x03;
                bytes[5] = 0x01;
            }
            let _ = sniff(&bytes);
        }

        #[test]
        fn corrupting_one_byte_of_a_hello_never_panics(
            index in 0usize..400, value in any::<u8>(), fragment in 1usize..300, name in "[a-z]{1,20}\\.[a-z]{2,5}",
        ) {
            let mut records = in_records(&client_hello_message(Some(&name)), fragment);
            let index = index % records.len();
            records[index] = value;
            let _ = sniff(&records);
        }

        #[test]
        fn any_fragmentation_finds_the_name(fragment in 1usize..600, name in "[a-z0-9-]{1,30}(\\.[a-z]{2,6}){1,3}") {
            let records = in_records(&client_hello_message(Some(&name)), fragment);
            prop_assert_eq!(sniff(&records), Sniffed::Tls { sni: Some(name) });
        }

        #[test]
        fn http_with_any_host_finds_it(host in "[a-z0-9.-]{1,40}", port in proptest::option::of(1u16..)) {
            let authority = match port { Some(p) => format!("{host}:{p}"), None => host.clone() };
            let request = format!("GET / HTTP/1.1\r\nHost: {authority}\r\nAccept: */*\r\n\r\n");
            prop_assert_eq!(sniff(request.as_bytes()), Sniffed::Http { host: Some(host) });
        }
    }
}
