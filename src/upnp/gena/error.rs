//! Why a SUBSCRIBE or UNSUBSCRIBE is refused, and the status UDA 2.0 §4.1 gives each reason.

use std::net::Ipv4Addr;

use hyper::StatusCode;

/// A refused SUBSCRIBE or UNSUBSCRIBE. [`GenaError::status`] is the HTTP status to answer with;
/// the `Display` text is the plain-text reason in the response body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenaError {
    /// Not SUBSCRIBE or UNSUBSCRIBE (405).
    #[error("method {0} is not SUBSCRIBE or UNSUBSCRIBE")]
    Method(String),
    /// A GENA header appears more than once (400).
    #[error("the {0} header appears more than once")]
    Duplicate(&'static str),
    /// SID together with NT or CALLBACK (400, UDA 2.0 §4.1.2 "incompatible header fields").
    #[error("SID cannot be combined with NT or CALLBACK")]
    Incompatible,
    /// TIMEOUT is not `Second-<n>` or `Second-infinite` (400).
    #[error("TIMEOUT {0:?} is not Second-<seconds> or Second-infinite")]
    BadTimeout(String),
    /// A new subscription without NT (412).
    #[error("a new subscription needs NT: upnp:event")]
    MissingNt,
    /// NT other than `upnp:event` (412).
    #[error("NT must be upnp:event, not {0:?}")]
    BadNt(String),
    /// A new subscription without CALLBACK (412).
    #[error("a new subscription needs a CALLBACK header")]
    MissingCallback,
    /// CALLBACK is not a list of `<url>` (412).
    #[error("CALLBACK {0}")]
    BadCallbackList(&'static str),
    /// One callback URL is refused (412); the whole subscription is refused with it.
    #[error("callback URL {url} refused: {why}")]
    BadCallback {
        /// The URL as sent (shortened if long).
        url: String,
        /// Why it is refused.
        why: CallbackRefusal,
    },
    /// A renewal or UNSUBSCRIBE without SID (412).
    #[error("SID header missing")]
    MissingSid,
    /// A SID that names no live subscription on this event URL (412).
    #[error(
        "no subscription {0} on this event URL (never made, expired, cancelled or dropped after failed deliveries)"
    )]
    UnknownSid(String),
    /// The event URL names no registered service (412).
    #[error("no such event URL")]
    NoSuchService,
    /// Subscription caps reached (503).
    #[error("too many subscriptions {0}; try again later")]
    TooMany(&'static str),
    /// Eventing has been shut down (503).
    #[error("eventing is shutting down")]
    ShuttingDown,
}

impl GenaError {
    /// The HTTP status UDA 2.0 gives this refusal.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Method(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Duplicate(_) | Self::Incompatible | Self::BadTimeout(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::MissingNt
            | Self::BadNt(_)
            | Self::MissingCallback
            | Self::BadCallbackList(_)
            | Self::BadCallback { .. }
            | Self::MissingSid
            | Self::UnknownSid(_)
            | Self::NoSuchService => StatusCode::PRECONDITION_FAILED,
            Self::TooMany(_) | Self::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Why a callback URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackRefusal {
    /// Longer than the bound.
    #[error("it is longer than {0} bytes")]
    TooLong(usize),
    /// Not `scheme://...`.
    #[error("it is not an absolute http:// URL")]
    NotAbsolute,
    /// `https://`: NOTIFY is plain HTTP (UDA 2.0 §4.3).
    #[error("NOTIFY is sent over plain http, not https")]
    Https,
    /// Any other scheme.
    #[error("only http:// callbacks are accepted")]
    NotHttp,
    /// `user@host`.
    #[error("it carries user information")]
    UserInfo,
    /// A host name: the gateway does not resolve callback hosts.
    #[error("the host must be an IPv4 address; the gateway does not resolve host names")]
    Hostname,
    /// An IPv6 literal.
    #[error("IPv6 callbacks are not supported")]
    Ipv6,
    /// Port not in 1..=65535.
    #[error("the port is not a number from 1 to 65535")]
    BadPort,
    /// Path with spaces, controls or non-ASCII.
    #[error("the path has characters a request line cannot carry")]
    BadPath,
    /// Unspecified, multicast or broadcast address.
    #[error("{0} is not a unicast address")]
    NotUnicast(Ipv4Addr),
    /// Not on the subnet the SUBSCRIBE arrived on (CallStranger, CVE-2020-12695).
    #[error(
        "{addr} is not on the subnet of interface {interface} ({local}/{prefix}) the SUBSCRIBE arrived on"
    )]
    OffSubnet {
        /// The callback address.
        addr: Ipv4Addr,
        /// The interface's name.
        interface: String,
        /// The interface's address.
        local: Ipv4Addr,
        /// The interface's prefix length.
        prefix: u32,
    },
}

/// `text`, cut to at most `max` bytes (on a character boundary) with `…` when cut, for echoing
/// request input in a reason.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
