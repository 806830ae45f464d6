//! Devices that announce themselves on a broker, for discovery: a Tasmota device's last will
//! (`tele/<topic>/LWT`, `Online` or `Offline`) and a Homie 5 device's `$state`
//! (`homie/5/<id>/$state`: `init`, `ready`, `sleeping`, `disconnected`, `lost`). Pure and
//! bounded.

use super::PayloadError;

/// Filter of Tasmota last-will messages.
pub const TASMOTA_LWT: &str = "tele/+/LWT";
/// Filter of Homie 5 device states.
pub const HOMIE_STATE: &str = "homie/5/+/$state";

/// Longest announcement payload accepted, in bytes (the longest valid one is 12).
const MAX_PAYLOAD: usize = 64;

/// What an announcement says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announcement {
    /// The device with this name (Tasmota topic or Homie device id) is on the broker.
    Present(String),
    /// The device with this name said it is gone (or its retained state was cleared).
    Gone(String),
}

/// Reads an announcement. `Ok(None)` for a topic that is neither a Tasmota LWT nor a Homie 5
/// `$state`; an error for a payload that cannot be one.
pub fn announcement(topic: &str, payload: &[u8]) -> Result<Option<Announcement>, PayloadError> {
    let levels: Vec<&str> = topic.split('/').collect();
    let (device, homie) = match levels.as_slice() {
        ["tele", device, "LWT"] => (*device, false),
        ["homie", "5", device, "$state"] => (*device, true),
        _ => return Ok(None),
    };
    if device.is_empty() {
        return Ok(None);
    }
    if payload.len() > MAX_PAYLOAD {
        return Err(PayloadError::TooLarge {
            topic: topic.to_owned(),
            size: payload.len(),
            limit: MAX_PAYLOAD,
        });
    }
    let text = std::str::from_utf8(payload)
        .map_err(|_| PayloadError::NotText {
            topic: topic.to_owned(),
        })?
        .trim();
    let device = device.to_owned();
    // An empty retained payload clears the announcement.
    if text.is_empty() {
        return Ok(Some(Announcement::Gone(device)));
    }
    if homie {
        Ok(Some(match text {
            "lost" | "disconnected" => Announcement::Gone(device),
            _ => Announcement::Present(device),
        }))
    } else if text.eq_ignore_ascii_case("online") {
        Ok(Some(Announcement::Present(device)))
    } else if text.eq_ignore_ascii_case("offline") {
        Ok(Some(Announcement::Gone(device)))
    } else {
        Err(PayloadError::Unexpected {
            topic: topic.to_owned(),
            reason: format!("expected `Online` or `Offline` (a Tasmota last will), got {text:?}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn present(device: &str) -> Option<Announcement> {
        Some(Announcement::Present(device.to_owned()))
    }

    fn gone(device: &str) -> Option<Announcement> {
        Some(Announcement::Gone(device.to_owned()))
    }

    #[test]
    fn a_tasmota_last_will_should_say_whether_the_device_is_online() {
        assert_eq!(
            announcement("tele/tasmota_5C2F1A/LWT", b"Online"),
            Ok(present("tasmota_5C2F1A"))
        );
        assert_eq!(
            announcement("tele/tasmota_5C2F1A/LWT", b"Offline"),
            Ok(gone("tasmota_5C2F1A"))
        );
    }

    #[test]
    fn a_homie_state_other_than_lost_or_disconnected_should_mean_present() {
        for state in ["init", "ready", "sleeping"] {
            assert_eq!(
                announcement("homie/5/thermostat-3/$state", state.as_bytes()),
                Ok(present("thermostat-3")),
                "{state}"
            );
        }
        for state in ["lost", "disconnected"] {
            assert_eq!(
                announcement("homie/5/thermostat-3/$state", state.as_bytes()),
                Ok(gone("thermostat-3")),
                "{state}"
            );
        }
    }

    #[test]
    fn a_cleared_retained_announcement_should_mean_gone() {
        assert_eq!(announcement("homie/5/t/$state", b""), Ok(gone("t")));
        assert_eq!(announcement("tele/plug/LWT", b""), Ok(gone("plug")));
    }

    #[test]
    fn other_topics_should_not_be_announcements() {
        for topic in [
            "tele/plug/STATE",
            "tele/a/b/LWT",
            "tele//LWT",
            "homie/4/t/$state",
            "homie/5/t/temperature",
            "homie/5//$state",
        ] {
            assert_eq!(announcement(topic, b"Online"), Ok(None), "{topic}");
        }
    }

    #[test]
    fn bad_payloads_should_be_errors_that_name_the_topic() {
        let err = announcement("tele/plug/LWT", b"Maybe").unwrap_err();
        assert!(err.to_string().contains("tele/plug/LWT"), "{err}");
        assert!(err.to_string().contains("Online"), "{err}");
        let err = announcement("homie/5/t/$state", &[0xff, 0xfe]).unwrap_err();
        assert_eq!(
            err,
            PayloadError::NotText {
                topic: "homie/5/t/$state".into()
            }
        );
        let err = announcement("homie/5/t/$state", &[b'x'; 65]).unwrap_err();
        assert!(
            matches!(err, PayloadError::TooLarge { size: 65, .. }),
            "{err}"
        );
    }
}
