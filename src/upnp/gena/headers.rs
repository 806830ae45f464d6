//! SUBSCRIBE and UNSUBSCRIBE request parsing (UDA 2.0 §4.1): which of new subscription,
//! renewal or cancellation a request is, its callback URLs, its requested TIMEOUT and its SID.
//!
//! Pure and bounded: no IO, no DNS, nothing longer than the bounds below is looked at.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

use hyper::{HeaderMap, Method, header::HeaderValue};

use super::error::{CallbackRefusal, GenaError, shorten};
use crate::upnp::net::ServedInterface;

/// Most callback URLs one SUBSCRIBE may give.
pub const MAX_CALLBACKS: usize = 4;
/// Longest callback URL accepted, in bytes.
pub const MAX_CALLBACK_URL_LEN: usize = 512;
/// Longest CALLBACK header accepted: the URLs, their brackets and some white space.
const MAX_CALLBACK_HEADER_LEN: usize = MAX_CALLBACKS * (MAX_CALLBACK_URL_LEN + 4);
/// Longest SID, NT or TIMEOUT looked at (`uuid:` + 36 is 41).
const MAX_SHORT_HEADER_LEN: usize = 64;
/// How much of an offending value a reason echoes.
const ECHO_LEN: usize = 80;

/// A parsed SUBSCRIBE or UNSUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenaRequest {
    /// SUBSCRIBE with NT and CALLBACK: a new subscription.
    Subscribe {
        /// The callback URLs, in the order given (at least one).
        callbacks: Vec<CallbackUrl>,
        /// The duration asked for.
        timeout: RequestedTimeout,
    },
    /// SUBSCRIBE with SID: a renewal.
    Renew {
        /// The subscription to renew.
        sid: Sid,
        /// The duration asked for.
        timeout: RequestedTimeout,
    },
    /// UNSUBSCRIBE.
    Unsubscribe {
        /// The subscription to cancel.
        sid: Sid,
    },
}

/// The TIMEOUT header of a SUBSCRIBE, before clamping (see
/// [`GenaLimits::grant`](super::GenaLimits::grant)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestedTimeout {
    /// No TIMEOUT header.
    Unspecified,
    /// `Second-<n>`.
    Seconds(u64),
    /// `Second-infinite`.
    Infinite,
}

/// A subscription identifier, `uuid:<uuid>` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid(uuid::Uuid);

impl Sid {
    /// A new random SID (a version-4 UUID from the thread's CSPRNG).
    pub fn random() -> Self {
        Self(uuid::Builder::from_random_bytes(rand::random()).into_uuid())
    }

    /// Parses a SID header value (`uuid:` prefix, any UUID form the `uuid` crate reads).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let rest = text
            .get(..5)
            .filter(|p| p.eq_ignore_ascii_case("uuid:"))
            .map(|_| &text[5..])?;
        uuid::Uuid::try_parse(rest).ok().map(Self)
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "uuid:{}", self.0.hyphenated())
    }
}

/// One callback URL: `http://` with an IPv4 literal host, checked to be safe to send a NOTIFY
/// request line to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackUrl {
    addr: SocketAddrV4,
    path: String,
    text: String,
}

impl CallbackUrl {
    /// Parses one URL from between CALLBACK's angle brackets.
    pub fn parse(url: &str) -> Result<Self, CallbackRefusal> {
        if url.len() > MAX_CALLBACK_URL_LEN {
            return Err(CallbackRefusal::TooLong(MAX_CALLBACK_URL_LEN));
        }
        let (scheme, rest) = url.split_once("://").ok_or(CallbackRefusal::NotAbsolute)?;
        if scheme.eq_ignore_ascii_case("https") {
            return Err(CallbackRefusal::Https);
        }
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(CallbackRefusal::NotHttp);
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.contains('@') {
            return Err(CallbackRefusal::UserInfo);
        }
        if authority.starts_with('[') {
            return Err(CallbackRefusal::Ipv6);
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => {
                let port = port
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0 && port.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or(CallbackRefusal::BadPort)?;
                (host, port)
            }
            None => (authority, 80),
        };
        let ip = host
            .parse::<Ipv4Addr>()
            .map_err(|_| CallbackRefusal::Hostname)?;
        // The fragment is never sent; the rest becomes the NOTIFY request target.
        let path = path.split_once('#').map_or(path, |(p, _)| p);
        if !path.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(CallbackRefusal::BadPath);
        }
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        if path.parse::<hyper::Uri>().is_err() {
            return Err(CallbackRefusal::BadPath);
        }
        Ok(Self {
            addr: SocketAddrV4::new(ip, port),
            path,
            text: url.to_owned(),
        })
    }

    /// Whether a NOTIFY may be sent here for a SUBSCRIBE that arrived on `iface`: a unicast
    /// address on that interface's subnet (CallStranger, CVE-2020-12695).
    pub fn check_reachable_from(&self, iface: &ServedInterface) -> Result<(), CallbackRefusal> {
        let ip = *self.addr.ip();
        let prefix = u32::from(iface.netmask).leading_ones();
        let directed_broadcast = prefix < 31 && ip == (iface.addr | !iface.netmask);
        if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() || directed_broadcast {
            return Err(CallbackRefusal::NotUnicast(ip));
        }
        if !iface.contains(ip) {
            return Err(CallbackRefusal::OffSubnet {
                addr: ip,
                interface: iface.name.clone(),
                local: iface.addr,
                prefix,
            });
        }
        Ok(())
    }

    /// Where to connect.
    pub fn addr(&self) -> SocketAddrV4 {
        self.addr
    }

    /// The NOTIFY request target (path and query).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The URL as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for CallbackUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Parses a SUBSCRIBE or UNSUBSCRIBE into what it asks for, applying UDA 2.0 §4.1's header
/// rules (SID with NT or CALLBACK is 400; a missing or wrong NT or CALLBACK is 412). The subnet
/// check of the callbacks needs the interface and is made when subscribing.
pub fn parse_request(method: &Method, headers: &HeaderMap) -> Result<GenaRequest, GenaError> {
    let subscribe = match method.as_str() {
        "SUBSCRIBE" => true,
        "UNSUBSCRIBE" => false,
        other => return Err(GenaError::Method(shorten(other, ECHO_LEN))),
    };
    let sid = single(headers, "sid", "SID")?;
    let nt = single(headers, "nt", "NT")?;
    let callback = single(headers, "callback", "CALLBACK")?;
    let timeout = single(headers, "timeout", "TIMEOUT")?;
    if sid.is_some() && (nt.is_some() || callback.is_some()) {
        return Err(GenaError::Incompatible);
    }
    if let Some(sid) = sid {
        let sid = parse_sid(sid)?;
        return Ok(if subscribe {
            GenaRequest::Renew {
                sid,
                timeout: parse_timeout(timeout)?,
            }
        } else {
            GenaRequest::Unsubscribe { sid }
        });
    }
    if !subscribe {
        return Err(GenaError::MissingSid);
    }
    let nt = nt.ok_or(GenaError::MissingNt)?;
    match short_text(nt) {
        Some("upnp:event") => {}
        _ => return Err(GenaError::BadNt(echo(nt))),
    }
    let callback = callback.ok_or(GenaError::MissingCallback)?;
    Ok(GenaRequest::Subscribe {
        callbacks: parse_callbacks(callback)?,
        timeout: parse_timeout(timeout)?,
    })
}

/// The one value of header `name`; more than one is a 400.
fn single<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
    shown: &'static str,
) -> Result<Option<&'a HeaderValue>, GenaError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(GenaError::Duplicate(shown));
    }
    Ok(first)
}

/// A short header's trimmed text, if it is short and ASCII.
fn short_text(value: &HeaderValue) -> Option<&str> {
    if value.len() > MAX_SHORT_HEADER_LEN {
        return None;
    }
    value.to_str().ok().map(str::trim)
}

/// A header value for a reason: lossy, shortened.
fn echo(value: &HeaderValue) -> String {
    let text = String::from_utf8_lossy(value.as_bytes());
    shorten(&text, ECHO_LEN)
}

fn parse_sid(value: &HeaderValue) -> Result<Sid, GenaError> {
    short_text(value)
        .and_then(Sid::parse)
        .ok_or_else(|| GenaError::UnknownSid(echo(value)))
}

fn parse_timeout(value: Option<&HeaderValue>) -> Result<RequestedTimeout, GenaError> {
    let Some(value) = value else {
        return Ok(RequestedTimeout::Unspecified);
    };
    let bad = || GenaError::BadTimeout(echo(value));
    let text = short_text(value).ok_or_else(bad)?;
    let rest = text
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("Second-"))
        .map(|_| &text[7..])
        .ok_or_else(bad)?;
    if rest.eq_ignore_ascii_case("infinite") {
        return Ok(RequestedTimeout::Infinite);
    }
    if rest.is_empty() || rest.len() > 12 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    rest.parse()
        .map(RequestedTimeout::Seconds)
        .map_err(|_| bad())
}

fn parse_callbacks(value: &HeaderValue) -> Result<Vec<CallbackUrl>, GenaError> {
    if value.len() > MAX_CALLBACK_HEADER_LEN {
        return Err(GenaError::BadCallbackList("is too long"));
    }
    let text = value
        .to_str()
        .map_err(|_| GenaError::BadCallbackList("has characters other than ASCII"))?;
    let mut rest = text.trim();
    let mut urls = Vec::new();
    while !rest.is_empty() {
        let inner = rest
            .strip_prefix('<')
            .ok_or(GenaError::BadCallbackList("must be a list of <url>"))?;
        let (url, after) = inner
            .split_once('>')
            .ok_or(GenaError::BadCallbackList("has a < without its >"))?;
        if urls.len() == MAX_CALLBACKS {
            return Err(GenaError::BadCallbackList("lists more than 4 URLs"));
        }
        let parsed = CallbackUrl::parse(url).map_err(|why| GenaError::BadCallback {
            url: shorten(url, ECHO_LEN),
            why,
        })?;
        urls.push(parsed);
        rest = after.trim_start();
    }
    if urls.is_empty() {
        return Err(GenaError::BadCallbackList("lists no URL"));
    }
    Ok(urls)
}

#[cfg(test)]
#[path = "headers_tests.rs"]
mod tests;
