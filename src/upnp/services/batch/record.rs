//! What a finished batch leaves: per-device results, who ran it and when, kept in the registry
//! (JSON) under its batch id, and the `Results` XML answered for it, first time or replayed.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::upnp::xml_text::escape_into;

/// A finished batch, as the registry keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct BatchRecord {
    /// The batch id.
    pub(super) batch_id: String,
    /// Digest of the normalised request ([`super::request::BatchRequest::digest`]).
    pub(super) digest: String,
    /// Targets as normalised.
    pub(super) targets: String,
    /// `(ParameterPath, Value)` written, sorted by path.
    pub(super) values: Vec<(String, String)>,
    /// The operator certificate's subject, if the caller had one.
    pub(super) operator: Option<String>,
    /// When it started, milliseconds since the Unix epoch.
    pub(super) started_ms: u64,
    /// When the last device was done.
    pub(super) finished_ms: u64,
    /// One result per target device, in the order of Targets.
    pub(super) results: Vec<DeviceResult>,
}

/// What became of one device of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct DeviceResult {
    /// Device id.
    pub(super) id: String,
    /// Its UDN.
    pub(super) udn: Uuid,
    /// Applied or failed.
    pub(super) outcome: Outcome,
    /// Its configuration version after the write (or the failed attempt).
    pub(super) config_version: u64,
}

/// Applied, or the UPnP error SetValues would have answered for this device alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status")]
pub(super) enum Outcome {
    /// Every value was written.
    ChangesApplied,
    /// Nothing was written (SetValues writes all or nothing), or the device did not confirm.
    Failed {
        /// The UPnP error code.
        code: u16,
        /// The error description.
        description: String,
    },
}

impl BatchRecord {
    /// Devices whose values were applied.
    pub(super) fn succeeded(&self) -> usize {
        self.results
            .iter()
            .filter(|r| r.outcome == Outcome::ChangesApplied)
            .count()
    }

    /// The `Results` out argument: `replayed` when this call wrote nothing and answers a batch
    /// run earlier (or by a concurrent call with the same id).
    pub(super) fn results_xml(&self, replayed: bool) -> String {
        let succeeded = self.succeeded();
        let mut xml =
            String::from(r#"<?xml version="1.0" encoding="UTF-8"?><BatchResults BatchId=""#);
        escape_into(&self.batch_id, &mut xml);
        xml.push_str(&format!(
            r#"" Devices="{}" Succeeded="{succeeded}" Failed="{}" Replayed="{}" Started="{}" Finished="{}">"#,
            self.results.len(),
            self.results.len() - succeeded,
            u8::from(replayed),
            crate::utc::format_ms(self.started_ms),
            crate::utc::format_ms(self.finished_ms),
        ));
        for result in &self.results {
            xml.push_str("<Device><Id>");
            escape_into(&result.id, &mut xml);
            xml.push_str(&format!("</Id><UDN>uuid:{}</UDN>", result.udn));
            match &result.outcome {
                Outcome::ChangesApplied => xml.push_str("<Status>ChangesApplied</Status>"),
                Outcome::Failed { code, description } => {
                    xml.push_str(&format!(
                        "<Status>Failed</Status><ErrorCode>{code}</ErrorCode><ErrorDescription>"
                    ));
                    escape_into(description, &mut xml);
                    xml.push_str("</ErrorDescription>");
                }
            }
            xml.push_str(&format!(
                "<ConfigurationVersion>{}</ConfigurationVersion></Device>",
                result.config_version.min(u64::from(u32::MAX))
            ));
        }
        xml.push_str("</BatchResults>");
        xml
    }
}
