//! The firmware checks.

use std::sync::{Arc, PoisonError, RwLock};

use super::{Conformance, Outcome, bounded};
use crate::{ActivationMode, BankInfo, ErrorKind, FirmwareImage, FirmwareTarget, StageProgress};

impl Conformance<'_> {
    pub(super) async fn firmware(&mut self) {
        let link = Arc::clone(&self.link);
        let Some(target) = link.firmware() else {
            self.report
                .record("firmware", Outcome::Skipped("no firmware target".into()));
            return;
        };
        let Some(fixture) = self.firmware.clone() else {
            self.report.check(
                "firmware fixture given",
                Err("the link has a firmware target but the test gave no FirmwareFixture".into()),
            );
            return;
        };
        let capabilities = target.capabilities();
        self.report.check(
            "firmware: capabilities agree with the profile",
            if capabilities.dual_bank != self.profile.firmware.dual_bank {
                Err(format!(
                    "target says dual_bank = {}, profile says {}",
                    capabilities.dual_bank, self.profile.firmware.dual_bank
                ))
            } else if capabilities.max_image_size > self.profile.firmware.max_image_size {
                Err("target accepts larger images than the profile's max_image_size".into())
            } else {
                Ok(())
            },
        );
        let result = match bounded(target.banks()).await {
            Ok(banks) if banks.iter().filter(|b| b.active).count() == 1 => Ok(()),
            Ok(banks) => Err(format!("expected exactly one active bank, got {banks:?}")),
            Err(e) => Err(format!("banks failed: {e}")),
        };
        self.report
            .check("firmware: exactly one bank is active", result);

        let staged = stage_checked(target, &fixture.first, 0).await;
        let staged_ok = staged.is_ok();
        self.report.check(
            "firmware: stage reports monotonic progress to the end",
            staged,
        );
        if !staged_ok {
            return;
        }
        if capabilities.resumable {
            let half = fixture.first.bytes.len() as u64 / 2;
            self.report.check(
                "firmware: stage resumes from an acknowledged offset",
                stage_checked(target, &fixture.first, half).await,
            );
        }

        if capabilities.dual_bank {
            self.dual_bank(target, &fixture.first, &fixture.second)
                .await;
        } else {
            let result = match bounded(target.activate(ActivationMode::Permanent)).await {
                Ok(()) => active_is(target, &fixture.first.version, true).await,
                Err(e) => Err(format!("activate failed: {e}")),
            };
            self.report.check(
                "firmware: permanent activation runs the new version",
                result,
            );
            let result = bounded(target.revert()).await;
            self.report.check(
                "firmware: revert on a single-bank target is Unsupported",
                super::expect_kind(result, ErrorKind::Unsupported),
            );
        }
    }

    async fn dual_bank(
        &mut self,
        target: &dyn FirmwareTarget,
        first: &FirmwareImage,
        second: &FirmwareImage,
    ) {
        let result = match bounded(target.activate(ActivationMode::Test)).await {
            Ok(()) => active_is(target, &first.version, false).await,
            Err(e) => Err(format!("activate(Test) failed: {e}")),
        };
        self.report.check(
            "firmware: test activation runs the new version unconfirmed",
            result,
        );
        let result = match bounded(target.confirm()).await {
            Ok(()) => active_is(target, &first.version, true).await,
            Err(e) => Err(format!("confirm failed: {e}")),
        };
        self.report
            .check("firmware: confirm keeps the new version", result);

        let result = async {
            stage_checked(target, second, 0).await?;
            bounded(target.activate(ActivationMode::Test))
                .await
                .map_err(|e| format!("activate(Test) failed: {e}"))?;
            active_is(target, &second.version, false).await?;
            bounded(target.revert())
                .await
                .map_err(|e| format!("revert failed: {e}"))?;
            active_is(target, &first.version, true).await
        }
        .await;
        self.report
            .check("firmware: revert returns to the confirmed version", result);
    }
}

async fn stage_checked(
    target: &dyn FirmwareTarget,
    image: &FirmwareImage,
    from: u64,
) -> Result<(), String> {
    let seen: RwLock<Vec<StageProgress>> = RwLock::new(Vec::new());
    let progress = |p: StageProgress| seen.write().unwrap_or_else(PoisonError::into_inner).push(p);
    let outcome = bounded(target.stage(image, from, &progress))
        .await
        .map_err(|e| format!("stage from {from} failed: {e}"))?;
    let total = image.bytes.len() as u64;
    let seen = seen.into_inner().unwrap_or_else(PoisonError::into_inner);
    if outcome.transferred != total - from {
        return Err(format!(
            "transferred {} bytes from offset {from}, expected {}",
            outcome.transferred,
            total - from
        ));
    }
    if seen
        .windows(2)
        .any(|w| w[1].acknowledged < w[0].acknowledged)
    {
        return Err("progress went backwards".into());
    }
    match seen.last() {
        Some(last) if last.acknowledged == total && last.total == total => Ok(()),
        Some(last) => Err(format!(
            "last progress was {last:?}, expected {total} of {total}"
        )),
        None => Err("no progress was reported".into()),
    }
}

async fn active_is(
    target: &dyn FirmwareTarget,
    version: &str,
    confirmed: bool,
) -> Result<(), String> {
    let banks: Vec<BankInfo> = bounded(target.banks())
        .await
        .map_err(|e| format!("banks failed: {e}"))?;
    match banks.iter().find(|b| b.active) {
        Some(bank) if bank.version.as_deref() == Some(version) && bank.confirmed == confirmed => {
            Ok(())
        }
        Some(bank) => Err(format!(
            "active bank runs {:?} (confirmed: {}), expected {version:?} (confirmed: {confirmed})",
            bank.version, bank.confirmed
        )),
        None => Err("no active bank".into()),
    }
}
