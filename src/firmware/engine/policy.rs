//! The engine's policy decisions that need no IO: which image a device is offered, how a failed
//! update is undone, how long probation lasts, whether an update waits for a window.

use std::time::Duration;

use iotmc_adapter::{FirmwareCapabilities, Profile};

use super::super::machine::{ImageRef, Strategy};
use super::super::store::StoredImage;
use super::super::window::WindowSpec;
use crate::config::{FirmwarePolicy, GroupConfig, SchedulePolicy};

/// Compares two versions the way people number firmware: dot- or dash-separated parts, numeric
/// parts as numbers (`1.10` after `1.9`), other parts as text.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |s: &str| -> Vec<String> {
        s.trim_start_matches(['v', 'V'])
            .split(['.', '-', '+', '_'])
            .map(str::to_owned)
            .collect()
    };
    let (pa, pb) = (parts(a), parts(b));
    for (x, y) in pa.iter().zip(pb.iter()) {
        let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => x.cmp(y),
        };
        if ord.is_ne() {
            return ord;
        }
    }
    pa.len().cmp(&pb.len())
}

/// The image on offer for a device of `profile` running `running`: the newest image for its
/// profile (by release date, then version) whose version differs from the running one.
pub fn offered<'a>(
    images: &'a [StoredImage],
    profile: &str,
    running: Option<&str>,
) -> Option<&'a StoredImage> {
    images
        .iter()
        .filter(|i| i.targets(profile) && Some(i.manifest.version.as_str()) != running)
        .max_by(|a, b| {
            a.manifest
                .release_date
                .cmp(&b.manifest.release_date)
                .then_with(|| compare_versions(&a.manifest.version, &b.manifest.version))
                .then_with(|| a.imported_at.cmp(&b.imported_at))
        })
}

/// The stored image of the version a device runs, if the store has one for its profile.
pub fn running_image<'a>(
    images: &'a [StoredImage],
    profile: &str,
    running: &str,
) -> Option<&'a StoredImage> {
    images
        .iter()
        .filter(|i| i.targets(profile) && i.manifest.version == running)
        .max_by_key(|i| i.imported_at)
}

/// The machine's reference to a stored image.
pub fn image_ref(image: &StoredImage) -> ImageRef {
    ImageRef {
        sha256: image.sha256_hex(),
        version: image.manifest.version.clone(),
        size: image.manifest.size,
    }
}

/// How a failed update of a device with these capabilities is undone.
pub fn strategy(capabilities: &FirmwareCapabilities) -> Strategy {
    if capabilities.dual_bank {
        Strategy::NativeTest
    } else {
        Strategy::Emulated
    }
}

/// The probation of an update: the group's (or the default policy's) ordinary or emergency
/// period, never below the floors.
pub fn probation(
    group: Option<&GroupConfig>,
    emergency: bool,
    floors: (Duration, Duration),
) -> Duration {
    let default = FirmwarePolicy::default();
    let policy = group.map_or(&default, |g| &g.firmware);
    if emergency {
        policy.emergency_probation.max(floors.1)
    } else {
        policy.probation.max(floors.0)
    }
}

/// The window an update of a device in `group` waits for, when the group's policy says so.
pub fn window(group: Option<&GroupConfig>) -> Option<WindowSpec> {
    let group = group?;
    if group.firmware.schedule != SchedulePolicy::MaintenanceWindow {
        return None;
    }
    group
        .maintenance_window
        .as_ref()
        .and_then(WindowSpec::from_config)
}

/// How long a device may stay unreachable during probation: the profile's `offline_after`, or
/// three poll intervals, and at least two health checks.
pub fn offline_grace(profile: &Profile, check_every: Duration) -> Duration {
    profile
        .health
        .offline_after
        .unwrap_or(profile.poll.interval * 3)
        .max(check_every * 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn versions_should_compare_numerically_part_by_part() {
        assert_eq!(compare_versions("1.10.0", "1.9.3"), Ordering::Greater);
        assert_eq!(compare_versions("v2.0", "2.0"), Ordering::Equal);
        assert_eq!(compare_versions("2.0", "2.0.1"), Ordering::Less);
        assert_eq!(compare_versions("13.2.0", "13.2.0-rc1"), Ordering::Less);
    }

    #[test]
    fn emergency_probation_should_never_go_below_its_floor() {
        let floors = (Duration::from_secs(86_400), Duration::from_secs(3600));
        assert_eq!(probation(None, false, floors), Duration::from_secs(86_400));
        assert_eq!(probation(None, true, floors), Duration::from_secs(4 * 3600));
        let test_floors = (Duration::from_secs(1), Duration::from_secs(1));
        assert_eq!(
            probation(None, false, test_floors),
            Duration::from_secs(86_400),
            "the default policy stays at 24h whatever the floor"
        );
    }
}
