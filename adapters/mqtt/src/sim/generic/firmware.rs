//! The simulated controller's firmware: a staging area filled by chunks into the standby bank,
//! two banks, test boots that fail for a bad image, and a test image that reverts unless it
//! is confirmed within a window. Pure: the device task passes `now` and carries out restarts.
//!
//! A simulated image starts with the ASCII header `SIMFW:<version>\n` (as the Modbus
//! simulator's), or `SIMFW:<version>;unhealthy\n` for an image that boots but reports a
//! `filter_pressure` outside the profile's health range while it runs; anything else fails its
//! test boot.

use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::codec::generic::hex;

/// A refusal in the device's words: `{"error": {"code", "message"}}`.
pub(super) type Refused = (&'static str, String);

/// What the device does after answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum After {
    /// Nothing.
    Stay,
    /// Restart, then boot what [`Firmware::boot`] says.
    Restart,
}

#[derive(Debug)]
struct Staging {
    size: u64,
    sha256: [u8; 32],
    version: String,
    bytes: Vec<u8>,
}

/// A boot the next restart carries out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NextBoot {
    /// The active bank again.
    Same,
    /// The standby bank, on test or for good.
    Standby { test: bool },
    /// Back to the other bank (revert), confirmed.
    Revert,
}

/// The two banks and the staging area.
#[derive(Debug)]
pub(super) struct Firmware {
    banks: [Option<String>; 2],
    /// Whether each bank's image is healthy (a `;unhealthy` header makes it not).
    healthy: [bool; 2],
    /// The image bytes of each bank (to boot them).
    images: [Option<Vec<u8>>; 2],
    active: usize,
    confirmed: bool,
    staging: Option<Staging>,
    next_boot: NextBoot,
    probation_until: Option<Instant>,
    max_image_size: u64,
    /// Corrupt the next chunk received (fault for tests).
    pub(super) corrupt_next_chunk: bool,
    /// Answer firmware requests with `busy` (fault for tests).
    pub(super) busy: bool,
}

impl Firmware {
    pub(super) fn new(version: &str, max_image_size: u64) -> Self {
        Self {
            banks: [Some(version.to_owned()), None],
            healthy: [true, true],
            images: [Some(format!("SIMFW:{version}\n").into_bytes()), None],
            active: 0,
            confirmed: true,
            staging: None,
            next_boot: NextBoot::Same,
            probation_until: None,
            max_image_size,
            corrupt_next_chunk: false,
            busy: false,
        }
    }

    /// The running version.
    pub(super) fn running(&self) -> String {
        self.banks[self.active].clone().unwrap_or_default()
    }

    /// Whether the running image is one whose header says `;unhealthy`.
    pub(super) fn running_unhealthy(&self) -> bool {
        !self.healthy[self.active]
    }

    /// When an unconfirmed test image reverts, if one runs.
    pub(super) fn probation_until(&self) -> Option<Instant> {
        self.probation_until
    }

    fn standby(&self) -> usize {
        1 - self.active
    }

    /// A JSON firmware operation.
    pub(super) fn operation(&mut self, request: &Json) -> Result<(Json, After), Refused> {
        if self.busy {
            return Err((
                "busy",
                "another firmware operation is in progress; try again later".into(),
            ));
        }
        let op = request.get("op").and_then(Json::as_str).unwrap_or_default();
        match op {
            "begin" => self
                .begin(request)
                .map(|offset| (json!({ "offset": offset }), After::Stay)),
            "verify" => self
                .verify()
                .map(|hash| (json!({ "sha256": hash }), After::Stay)),
            "activate" => {
                let test = match request.get("mode").and_then(Json::as_str) {
                    Some("test") => true,
                    Some("permanent") => false,
                    other => {
                        return Err((
                            "bad_request",
                            format!("`mode` must be \"test\" or \"permanent\", got {other:?}"),
                        ));
                    }
                };
                self.activate(test)?;
                Ok((json!({}), After::Restart))
            }
            "confirm" => {
                self.confirmed = true;
                self.probation_until = None;
                Ok((json!({}), After::Stay))
            }
            "revert" => {
                let standby = self.standby();
                if self.banks[standby].is_none() {
                    return Err(("no_image", "the other bank holds no image".into()));
                }
                // After a failed test boot the other bank holds bytes that do not boot.
                if self.images[standby]
                    .as_deref()
                    .and_then(parse_header)
                    .is_none()
                {
                    return Err((
                        "no_image",
                        format!(
                            "the other bank holds no bootable image; still running {}",
                            self.running()
                        ),
                    ));
                }
                self.next_boot = NextBoot::Revert;
                Ok((json!({}), After::Restart))
            }
            "banks" => Ok((self.banks_json(), After::Stay)),
            other => Err((
                "bad_request",
                format!("unknown firmware operation {other:?}"),
            )),
        }
    }

    fn begin(&mut self, request: &Json) -> Result<u64, Refused> {
        if !self.confirmed {
            return Err((
                "busy",
                "a test image runs unconfirmed; confirm or revert it first".into(),
            ));
        }
        let size = request.get("size").and_then(Json::as_u64).ok_or((
            "bad_request",
            "`size` must be the image size in bytes".to_owned(),
        ))?;
        if size == 0 || size > self.max_image_size {
            return Err((
                "too_large",
                format!(
                    "the image is {size} bytes; this device takes 1 to {} bytes",
                    self.max_image_size
                ),
            ));
        }
        let sha256 = request
            .get("sha256")
            .and_then(Json::as_str)
            .and_then(|h| crate::codec::generic::sha256("", &json!({ "sha256": h })).ok())
            .ok_or(("bad_request", "`sha256` must be 64 hex digits".to_owned()))?;
        let version = request
            .get("version")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_owned();
        let wanted = request.get("offset").and_then(Json::as_u64).unwrap_or(0);
        let same = self
            .staging
            .as_ref()
            .is_some_and(|s| s.sha256 == sha256 && s.size == size);
        if !same {
            self.staging = Some(Staging {
                size,
                sha256,
                version,
                bytes: Vec::new(),
            });
            return Ok(0);
        }
        let Some(staging) = self.staging.as_mut() else {
            return Ok(0);
        };
        let offset = wanted.min(staging.bytes.len() as u64);
        staging
            .bytes
            .truncate(usize::try_from(offset).unwrap_or(usize::MAX));
        Ok(offset)
    }

    /// A binary chunk at `offset`; answers how many bytes the device holds.
    pub(super) fn chunk(
        &mut self,
        offset: u64,
        length: Option<u64>,
        data: &[u8],
    ) -> Result<u64, Refused> {
        if self.busy {
            return Err((
                "busy",
                "another firmware operation is in progress; try again later".into(),
            ));
        }
        let corrupt = std::mem::take(&mut self.corrupt_next_chunk);
        let Some(staging) = self.staging.as_mut() else {
            return Err(("no_transfer", "send `begin` before the chunks".into()));
        };
        if length.is_some_and(|l| l != data.len() as u64) {
            return Err((
                "bad_chunk",
                format!(
                    "the `length` property says {:?} bytes, the payload has {}",
                    length,
                    data.len()
                ),
            ));
        }
        let held = staging.bytes.len() as u64;
        if offset > held {
            // A gap: say what we hold so the sender goes back.
            return Ok(held);
        }
        if offset + data.len() as u64 > staging.size {
            return Err((
                "too_large",
                format!(
                    "the chunk ends at {}, past the {}-byte image",
                    offset + data.len() as u64,
                    staging.size
                ),
            ));
        }
        staging
            .bytes
            .truncate(usize::try_from(offset).unwrap_or(usize::MAX));
        staging.bytes.extend_from_slice(data);
        if corrupt && let Some(last) = staging.bytes.last_mut() {
            *last ^= 0x5a;
        }
        Ok(staging.bytes.len() as u64)
    }

    fn verify(&self) -> Result<String, Refused> {
        let Some(staging) = &self.staging else {
            return Err(("no_transfer", "no image has been sent".into()));
        };
        if (staging.bytes.len() as u64) < staging.size {
            return Err((
                "incomplete",
                format!("holding {} of {} bytes", staging.bytes.len(), staging.size),
            ));
        }
        Ok(hex(&Sha256::digest(&staging.bytes)))
    }

    fn activate(&mut self, test: bool) -> Result<(), Refused> {
        let Some(staging) = &self.staging else {
            return Err(("no_image", "no image has been staged".into()));
        };
        let hash: [u8; 32] = Sha256::digest(&staging.bytes).into();
        if (staging.bytes.len() as u64) < staging.size || hash != staging.sha256 {
            return Err((
                "not_verified",
                "the staged image is incomplete or does not match its SHA-256; stage it again"
                    .into(),
            ));
        }
        self.next_boot = NextBoot::Standby { test };
        Ok(())
    }

    /// Carries out the boot the last operation asked for (at a restart). Returns a log line
    /// and its severity (3 error, 6 informational).
    pub(super) fn boot(
        &mut self,
        now: Instant,
        confirm_window: std::time::Duration,
    ) -> (u8, String) {
        let next = std::mem::replace(&mut self.next_boot, NextBoot::Same);
        match next {
            NextBoot::Same => {
                if !self.confirmed {
                    // A restart during probation goes back to the confirmed image.
                    return self.revert_now("restarted before the test image was confirmed");
                }
                (6, format!("booted firmware {}", self.running()))
            }
            NextBoot::Revert => self.revert_now("revert requested"),
            NextBoot::Standby { test } => {
                let Some(staging) = self.staging.take() else {
                    return (6, format!("booted firmware {}", self.running()));
                };
                let standby = self.standby();
                self.banks[standby] = Some(staging.version.clone());
                let header = parse_header(&staging.bytes);
                self.images[standby] = Some(staging.bytes);
                match header {
                    Some(Header { version, healthy }) => {
                        self.banks[standby] = Some(version.clone());
                        self.healthy[standby] = healthy;
                        self.active = standby;
                        self.confirmed = !test;
                        // A window too long for the clock never runs out.
                        self.probation_until =
                            test.then(|| now.checked_add(confirm_window)).flatten();
                        let how = if test { "on test" } else { "for good" };
                        (
                            6,
                            format!("booted firmware {version} from bank {standby} {how}"),
                        )
                    }
                    None => (
                        3,
                        format!(
                            "test boot of bank {standby} failed (no valid image header); still running {}",
                            self.running()
                        ),
                    ),
                }
            }
        }
    }

    fn revert_now(&mut self, why: &str) -> (u8, String) {
        let standby = self.standby();
        if self.banks[standby].is_some() {
            self.active = standby;
        }
        self.confirmed = true;
        self.probation_until = None;
        (4, format!("{why}: reverted to firmware {}", self.running()))
    }

    /// The probation window ran out: revert at the next restart (which the device starts).
    pub(super) fn probation_expired(&mut self) {
        self.probation_until = None;
        self.next_boot = NextBoot::Revert;
    }

    fn banks_json(&self) -> Json {
        Json::Array(
            (0..2)
                .map(|slot| {
                    let pending = match self.next_boot {
                        NextBoot::Standby { .. } | NextBoot::Revert => slot == self.standby(),
                        NextBoot::Same => false,
                    };
                    json!({
                        "slot": slot,
                        "version": self.banks[slot],
                        "active": slot == self.active,
                        "confirmed": slot == self.active && self.confirmed
                            || slot != self.active && self.banks[slot].is_some() && !self.confirmed,
                        "pending": pending,
                    })
                })
                .collect(),
        )
    }
}

/// What an image's header says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    version: String,
    /// False for `;unhealthy`.
    healthy: bool,
}

/// The header `SIMFW:<version>[;<flag>...]\n`; the flag `unhealthy` marks an unhealthy image,
/// other flags are ignored.
fn parse_header(bytes: &[u8]) -> Option<Header> {
    let rest = bytes.strip_prefix(b"SIMFW:")?;
    let end = rest.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&rest[..end]).ok()?;
    let mut parts = line.split(';');
    let version = parts.next()?.trim();
    let healthy = !parts.any(|flag| flag.trim() == "unhealthy");
    (!version.is_empty() && version.len() <= 32).then(|| Header {
        version: version.to_owned(),
        healthy,
    })
}

#[cfg(test)]
mod tests;
