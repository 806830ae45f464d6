//! A BatchSetValues request, checked and normalised, with no IO: the batch id, the targets as
//! written, the parameter values, the concurrency limit, and the digest that tells a retry from
//! a different request under the same id.

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};

use crate::upnp::services::errors;
use crate::upnp::soap::UpnpError;
use crate::upnp::xml_list;
use crate::upnp::xml_text::escape_into;

/// Longest BatchId.
pub(super) const MAX_ID_LEN: usize = 128;
/// Devices written at once when MaxConcurrent is 0.
pub(super) const DEFAULT_CONCURRENCY: usize = 8;
/// Most devices written at once, whatever MaxConcurrent asks.
pub(super) const MAX_CONCURRENCY: usize = 64;

/// Why a BatchSetValues call is refused before anything runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum RequestError {
    /// BatchId is empty, too long or holds other characters.
    #[error(
        "BatchId {shown:?} {why}; give 1 to {MAX_ID_LEN} characters of A-Z a-z 0-9 . _ : - \
         (e.g. a UUID), the same for every retry of one request"
    )]
    BadId {
        /// The id as given, cut to 64 characters.
        shown: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// MaxConcurrent is not a number.
    #[error("MaxConcurrent {0:?} is not a number; give 1 to 64, or 0 for the default 8")]
    BadConcurrency(String),
    /// ParameterValueList is not a list of parameters.
    #[error("argument ParameterValueList is not a valid ParameterValueList document: {0}")]
    BadList(String),
    /// One path appears twice.
    #[error(
        "ParameterValueList sets `{0}` more than once; send each path once (the batch wrote nothing)"
    )]
    DuplicatePath(String),
}

impl RequestError {
    /// The UPnP error answered for it: 600 for the id and the limit, 701 or 706 for the list,
    /// as SetValues answers a bad list.
    pub(super) fn to_upnp(&self) -> UpnpError {
        let code = match self {
            Self::BadId { .. } | Self::BadConcurrency(_) => 600,
            Self::BadList(_) => errors::INVALID_XML_ARGUMENT,
            Self::DuplicatePath(_) => errors::MULTIPLE_SET,
        };
        UpnpError::new(code, format!("BatchSetValues: {self}"))
    }
}

/// A checked BatchSetValues request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BatchRequest {
    /// The batch id.
    pub(super) id: String,
    /// Targets items, trimmed (`group:<name>` or a device id), blank ones and repeats dropped.
    pub(super) targets: Vec<String>,
    /// `(ParameterPath, Value)`, trimmed, sorted by path: the order of a list does not change
    /// what SetValues writes.
    pub(super) values: Vec<(String, String)>,
    /// Devices written at once.
    pub(super) max_concurrent: usize,
}

impl BatchRequest {
    /// Checks the four in arguments. The list is checked as a document here (so that a bad
    /// one is refused as a call, not as every device's failure); each device's profile checks
    /// the paths and values when the batch runs.
    pub(super) fn parse(
        id: &str,
        targets: &str,
        list: &str,
        max_concurrent: &str,
    ) -> Result<Self, RequestError> {
        Ok(Self {
            id: parse_id(id)?,
            targets: normalise_targets(targets),
            values: parse_values(list)?,
            max_concurrent: parse_concurrency(max_concurrent)?,
        })
    }

    /// Targets as `parse_targets` reads them.
    pub(super) fn targets_spec(&self) -> String {
        self.targets.join(",")
    }

    /// The normalised values as the ParameterValueList each device's SetValues takes.
    pub(super) fn list_xml(&self) -> String {
        let mut xml = String::from(
            r#"<?xml version="1.0" encoding="UTF-8"?><cms:ParameterValueList xmlns:cms="urn:schemas-upnp-org:dm:cms">"#,
        );
        for (path, value) in &self.values {
            xml.push_str("<Parameter><ParameterPath>");
            escape_into(path, &mut xml);
            xml.push_str("</ParameterPath><Value>");
            escape_into(value, &mut xml);
            xml.push_str("</Value></Parameter>");
        }
        xml.push_str("</cms:ParameterValueList>");
        xml
    }

    /// SHA-256 (hex) of the normalised request: targets and values, not the concurrency
    /// limit (a retry may ask for another pace and still be the same batch).
    pub(super) fn digest(&self) -> String {
        let mut hash = Sha256::new();
        let mut field = |bytes: &[u8]| {
            hash.update((bytes.len() as u64).to_be_bytes());
            hash.update(bytes);
        };
        field(b"iotmc BatchSetValues 1");
        field(&(self.targets.len() as u64).to_be_bytes());
        for target in &self.targets {
            field(target.as_bytes());
        }
        field(&(self.values.len() as u64).to_be_bytes());
        for (path, value) in &self.values {
            field(path.as_bytes());
            field(value.as_bytes());
        }
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn parse_id(id: &str) -> Result<String, RequestError> {
    let trimmed = id.trim();
    let bad = |why| RequestError::BadId {
        shown: trimmed.chars().take(64).collect(),
        why,
    };
    if trimmed.is_empty() {
        return Err(bad("is empty"));
    }
    if trimmed.chars().count() > MAX_ID_LEN {
        return Err(bad("is too long"));
    }
    if !trimmed
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
    {
        return Err(bad("holds a character that is not allowed"));
    }
    Ok(trimmed.to_owned())
}

fn normalise_targets(targets: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in targets.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let item = match item.strip_prefix("group:") {
            Some(group) => format!("group:{}", group.trim()),
            None => item.to_owned(),
        };
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

fn parse_values(list: &str) -> Result<Vec<(String, String)>, RequestError> {
    let items = xml_list::parse(list, "ParameterValueList").map_err(RequestError::BadList)?;
    if items.is_empty() {
        return Err(RequestError::BadList("it holds no Parameter".into()));
    }
    let mut values = BTreeMap::new();
    for item in &items {
        let (Some(path), Some(value)) = (item.field("ParameterPath"), item.field("Value")) else {
            return Err(RequestError::BadList(
                "every Parameter needs a ParameterPath and a Value".into(),
            ));
        };
        let path = path.trim();
        if values
            .insert(path.to_owned(), value.trim().to_owned())
            .is_some()
        {
            return Err(RequestError::DuplicatePath(
                path.chars().take(128).collect(),
            ));
        }
    }
    Ok(values.into_iter().collect())
}

fn parse_concurrency(text: &str) -> Result<usize, RequestError> {
    let text = text.trim();
    match text.parse::<u64>() {
        Ok(0) => Ok(DEFAULT_CONCURRENCY),
        Ok(n) => Ok(usize::try_from(n).map_or(MAX_CONCURRENCY, |n| n.min(MAX_CONCURRENCY))),
        Err(_) => Err(RequestError::BadConcurrency(
            text.chars().take(32).collect(),
        )),
    }
}
