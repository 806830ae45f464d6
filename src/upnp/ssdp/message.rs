//! Parsing incoming SSDP datagrams (HTTPU, UDA 2.0 §1.1.3): bounded, case-insensitive header
//! names, never panics on any bytes. A cargo-fuzz target calls [`parse`] directly.

/// Largest datagram [`parse`] accepts.
pub const MAX_DATAGRAM: usize = 8 * 1024;
/// Longest line (start line or header field), without its line end.
pub const MAX_LINE: usize = 1024;
/// Most header fields in one message.
pub const MAX_HEADERS: usize = 32;

/// What the start line says the message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartLine {
    /// `M-SEARCH * HTTP/1.1`.
    Search,
    /// `NOTIFY * HTTP/1.1`.
    Notify,
    /// `HTTP/1.1 <status> <reason>`: a search response.
    Response {
        /// The status code.
        status: u16,
    },
}

/// One parsed SSDP message: its start line and header fields. SSDP messages have no body;
/// anything after the blank line is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsdpMessage {
    start: StartLine,
    headers: Vec<(String, String)>,
}

impl SsdpMessage {
    /// The start line.
    pub fn start_line(&self) -> StartLine {
        self.start
    }

    /// The value of header field `name` (compared case-insensitively), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header field, in order, names as sent.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// Why a datagram is not an SSDP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The datagram is empty.
    #[error("empty datagram")]
    Empty,
    /// The datagram is larger than [`MAX_DATAGRAM`].
    #[error("datagram of {0} bytes is larger than the {MAX_DATAGRAM}-byte limit")]
    TooLarge(usize),
    /// A line is longer than [`MAX_LINE`].
    #[error("line {line} is longer than {MAX_LINE} bytes")]
    LineTooLong {
        /// 1-based line number.
        line: usize,
    },
    /// More than [`MAX_HEADERS`] header fields.
    #[error("more than {MAX_HEADERS} header fields")]
    TooManyHeaders,
    /// A line is not UTF-8.
    #[error("line {line} is not UTF-8")]
    NotUtf8 {
        /// 1-based line number.
        line: usize,
    },
    /// The datagram ends inside a line or before the blank line that ends the header fields.
    #[error("datagram ends at line {line} before the blank line that ends the header: truncated")]
    Truncated {
        /// 1-based number of the line the datagram ends in.
        line: usize,
    },
    /// A line holds a control character other than tab (a lone CR, NUL...).
    #[error("line {line} holds a control character")]
    ControlCharacter {
        /// 1-based line number.
        line: usize,
    },
    /// The start line is not `M-SEARCH * HTTP/1.x`, `NOTIFY * HTTP/1.x` or `HTTP/1.x <status>`.
    #[error("start line {0:?} is not M-SEARCH, NOTIFY or an HTTP/1.x response")]
    StartLine(String),
    /// A header line is not `name: value`.
    #[error("line {line} is not a `name: value` header field")]
    Header {
        /// 1-based line number.
        line: usize,
    },
    /// A header field appears twice; SSDP has no list-valued fields, so this is ambiguous.
    #[error("header field {0:?} appears more than once")]
    DuplicateHeader(String),
}

/// Parses one SSDP datagram. Lines end in CRLF (a bare LF is accepted); header field names are
/// HTTP tokens, compared case-insensitively; values are trimmed. Never panics.
pub fn parse(datagram: &[u8]) -> Result<SsdpMessage, ParseError> {
    if datagram.is_empty() {
        return Err(ParseError::Empty);
    }
    if datagram.len() > MAX_DATAGRAM {
        return Err(ParseError::TooLarge(datagram.len()));
    }
    let mut rest = datagram;
    let mut start = None;
    let mut headers: Vec<(String, String)> = Vec::new();
    for line_no in 1.. {
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            if rest.len() > MAX_LINE {
                return Err(ParseError::LineTooLong { line: line_no });
            }
            return Err(ParseError::Truncated { line: line_no });
        };
        let raw = rest.get(..end).unwrap_or_default();
        rest = rest.get(end + 1..).unwrap_or_default();
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.len() > MAX_LINE {
            return Err(ParseError::LineTooLong { line: line_no });
        }
        let line = std::str::from_utf8(raw).map_err(|_| ParseError::NotUtf8 { line: line_no })?;
        // Values may be echoed into responses; nothing may smuggle in a line end.
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return Err(ParseError::ControlCharacter { line: line_no });
        }
        let Some(start) = start else {
            start = Some(start_line(line)?);
            continue;
        };
        if line.is_empty() {
            return Ok(SsdpMessage { start, headers });
        }
        if headers.len() == MAX_HEADERS {
            return Err(ParseError::TooManyHeaders);
        }
        let (name, value) = header(line).ok_or(ParseError::Header { line: line_no })?;
        if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Err(ParseError::DuplicateHeader(name.to_owned()));
        }
        headers.push((name.to_owned(), value.to_owned()));
    }
    // `1..` only ends after usize::MAX lines, which a bounded datagram cannot hold.
    Err(ParseError::Truncated { line: usize::MAX })
}

fn start_line(line: &str) -> Result<StartLine, ParseError> {
    let bad = || ParseError::StartLine(line.chars().take(64).collect());
    let mut parts = line.split(' ');
    let (Some(first), Some(second), third) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let http1 = |version: &str| matches!(version, "HTTP/1.1" | "HTTP/1.0");
    match (first, second, third) {
        ("M-SEARCH", "*", Some(v)) if http1(v) && parts.next().is_none() => Ok(StartLine::Search),
        ("NOTIFY", "*", Some(v)) if http1(v) && parts.next().is_none() => Ok(StartLine::Notify),
        (v, status, _) if http1(v) => {
            if status.len() != 3 || !status.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let status = status.parse().map_err(|_| bad())?;
            Ok(StartLine::Response { status })
        }
        _ => Err(bad()),
    }
}

/// `name: value` with `name` an HTTP token (RFC 9110 §5.6.2); `None` otherwise.
fn header(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.split_once(':')?;
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return None;
    }
    Some((name, value.trim_matches([' ', '\t'])))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEARCH: &[u8] = b"M-SEARCH * HTTP/1.1\r\n\
        HOST: 239.255.255.250:1900\r\n\
        MAN: \"ssdp:discover\"\r\n\
        MX: 3\r\n\
        ST: ssdp:all\r\n\
        USER-AGENT: Linux/6.1 UPnP/2.0 test/1\r\n\
        \r\n";

    #[test]
    fn a_multicast_search_should_parse_with_every_header() {
        let msg = parse(SEARCH).unwrap();
        assert_eq!(msg.start_line(), StartLine::Search);
        assert_eq!(msg.header("HOST"), Some("239.255.255.250:1900"));
        assert_eq!(msg.header("MAN"), Some("\"ssdp:discover\""));
        assert_eq!(msg.header("MX"), Some("3"));
        assert_eq!(msg.header("ST"), Some("ssdp:all"));
        assert_eq!(msg.headers().count(), 5);
    }

    #[test]
    fn header_names_should_match_in_any_case() {
        let msg = parse(
            b"M-SEARCH * HTTP/1.1\r\nhost:239.255.255.250:1900\r\nSt:  upnp:rootdevice \r\n\r\n",
        )
        .unwrap();
        assert_eq!(msg.header("HOST"), Some("239.255.255.250:1900"));
        assert_eq!(msg.header("st"), Some("upnp:rootdevice"));
        assert_eq!(msg.header("Man"), None);
    }

    #[test]
    fn notify_and_response_start_lines_should_parse_and_bare_lf_is_accepted() {
        let notify = parse(b"NOTIFY * HTTP/1.1\nNTS: ssdp:alive\n\n").unwrap();
        assert_eq!(notify.start_line(), StartLine::Notify);
        let response = parse(b"HTTP/1.1 200 OK\r\nEXT:\r\n\r\n").unwrap();
        assert_eq!(response.start_line(), StartLine::Response { status: 200 });
        assert_eq!(response.header("ext"), Some(""));
    }

    #[test]
    fn oversize_input_should_be_rejected_before_parsing() {
        let mut big = SEARCH.to_vec();
        big.resize(MAX_DATAGRAM + 1, b'a');
        assert_eq!(parse(&big), Err(ParseError::TooLarge(MAX_DATAGRAM + 1)));
        assert_eq!(parse(b""), Err(ParseError::Empty));
    }

    #[test]
    fn a_long_line_or_too_many_headers_should_be_rejected() {
        let long = format!(
            "M-SEARCH * HTTP/1.1\r\nST: {}\r\n\r\n",
            "a".repeat(MAX_LINE)
        );
        assert_eq!(
            parse(long.as_bytes()),
            Err(ParseError::LineTooLong { line: 2 })
        );
        let mut many = String::from("M-SEARCH * HTTP/1.1\r\n");
        for i in 0..=MAX_HEADERS {
            many.push_str(&format!("X-{i}: {i}\r\n"));
        }
        many.push_str("\r\n");
        assert_eq!(parse(many.as_bytes()), Err(ParseError::TooManyHeaders));
    }

    #[test]
    fn truncated_input_should_be_rejected_at_every_cut() {
        for cut in 1..SEARCH.len() - 1 {
            let err = parse(&SEARCH[..cut]).unwrap_err();
            assert!(
                matches!(err, ParseError::Truncated { .. }),
                "cut at {cut}: {err}"
            );
        }
        let err = parse(b"M-SEARCH * HTTP/1.1\r\nST: ssdp:all\r\n").unwrap_err();
        assert_eq!(err, ParseError::Truncated { line: 3 });
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    #[test]
    fn garbage_should_be_rejected_with_a_clear_error() {
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\n\r\n"),
            Err(ParseError::StartLine(_))
        ));
        assert!(matches!(
            parse(b"M-SEARCH * HTTP/2\r\n\r\n"),
            Err(ParseError::StartLine(_))
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 2000 OK\r\n\r\n"),
            Err(ParseError::StartLine(_))
        ));
        assert_eq!(
            parse(b"M-SEARCH * HTTP/1.1\r\nno colon here\r\n\r\n"),
            Err(ParseError::Header { line: 2 })
        );
        assert_eq!(
            parse(b"M-SEARCH * HTTP/1.1\r\n folded: x\r\n\r\n"),
            Err(ParseError::Header { line: 2 })
        );
        assert_eq!(
            parse(b"M-SEARCH * HTTP/1.1\r\nST: \xff\xfe\r\n\r\n"),
            Err(ParseError::NotUtf8 { line: 2 })
        );
        assert_eq!(
            parse(b"M-SEARCH * HTTP/1.1\r\nST: a\rEvil: 1\r\n\r\n"),
            Err(ParseError::ControlCharacter { line: 2 })
        );
        assert_eq!(
            parse(b"M-SEARCH * HTTP/1.1\r\nST: a\r\nst: b\r\n\r\n"),
            Err(ParseError::DuplicateHeader("st".into()))
        );
    }

    #[test]
    fn any_bytes_should_parse_or_fail_without_panicking() {
        // A cheap stand-in for the fuzz target: every prefix and single-byte corruption of a
        // good message, plus a run of pseudo-random datagrams.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for i in 0..SEARCH.len() {
            for byte in [0u8, b'\r', b'\n', b':', 0xff] {
                let mut corrupt = SEARCH.to_vec();
                corrupt[i] = byte;
                let _ = parse(&corrupt);
            }
        }
        for _ in 0..2000 {
            let len = (next() % 300) as usize;
            let alphabet = b"M-SEARCH* HTP/1.:\r\n\"ab\xff";
            let datagram: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let _ = parse(&datagram);
        }
    }
}
