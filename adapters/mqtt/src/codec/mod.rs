//! Payload decoding, pure and bounded: no IO, no tokio, never panics on what came off the wire.
//!
//! - [`json`]: JSON payloads with a size bound, JSON pointers, and conversion to and from the
//!   profile's value types.
//! - [`tasmota`], [`homie`], [`generic`]: each dialect's messages.
//! - [`discovery`]: Tasmota last wills and Homie 5 states, for discovery.
//! - [`proof`]: identity proofs of generic devices: the signed challenge and its check.

pub mod discovery;
pub mod generic;
pub mod homie;
pub mod json;
pub mod proof;
pub mod tasmota;

/// Why a payload could not be used. Carries the topic so the error names where it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Larger than the bound for its kind.
    #[error("payload on `{topic}` is {size} bytes; at most {limit} are accepted")]
    TooLarge {
        /// Topic it came on.
        topic: String,
        /// Its size.
        size: usize,
        /// The bound.
        limit: usize,
    },
    /// Not UTF-8 where text was expected.
    #[error("payload on `{topic}` is not UTF-8 text")]
    NotText {
        /// Topic it came on.
        topic: String,
    },
    /// Not JSON where JSON was expected.
    #[error("payload on `{topic}` is not JSON: {reason}")]
    NotJson {
        /// Topic it came on.
        topic: String,
        /// The parser's words.
        reason: String,
    },
    /// JSON, but not of the expected shape or type.
    #[error("payload on `{topic}`: {reason}")]
    Unexpected {
        /// Topic it came on.
        topic: String,
        /// What was expected and what was found.
        reason: String,
    },
}
