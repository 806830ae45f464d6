//! What a campaign reports: the evented `FirmwareCampaignStatus` value and the document
//! GetFirmwareCampaignStatus returns.

use std::fmt::Write as _;

use super::{Campaign, CampaignState, Slot};
use crate::upnp::xml_text::escape;

impl Campaign {
    /// The evented `FirmwareCampaignStatus`:
    /// `<id>,<State>,pending=<n>,running=<n>,succeeded=<n>,failed=<n>,cancelled=<n>`.
    pub fn status_value(&self) -> String {
        let c = self.counts();
        format!(
            "{},{},pending={},running={},succeeded={},failed={},cancelled={}",
            self.id,
            self.state.as_str(),
            c.pending,
            c.running,
            c.succeeded,
            c.failed,
            c.cancelled
        )
    }

    /// The answer of GetFirmwareCampaignStatus: the campaign and one `Device` per device, in
    /// campaign order.
    ///
    /// ```xml
    /// <?xml version="1.0" encoding="UTF-8"?><Campaign id="c1" state="Paused" image="<sha256>"
    ///   maxConcurrent="2" failureThreshold="1" reason="paused: …"><Device id="pump-1"
    ///   status="RolledBack" updateId="u7" resultCode="12" detail=""/>…</Campaign>
    /// ```
    ///
    /// `status` is Pending, Started, Refused, Skipped, or the terminal phase (Confirmed,
    /// RolledBack, Failed, Cancelled); `resultCode` is the update's result code once it ended
    /// and 0 before (and for devices whose update never existed); `updateId` is empty when there
    /// is no update; `detail` says why a device was refused or skipped. `reason` is empty
    /// unless the campaign is paused.
    pub fn status_xml(&self) -> String {
        let reason = match &self.state {
            CampaignState::Paused { reason } => reason.as_str(),
            CampaignState::Running | CampaignState::Aborted | CampaignState::Completed => "",
        };
        let mut xml = String::from(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        let _ = write!(
            xml,
            r#"<Campaign id="{}" state="{}" image="{}" maxConcurrent="{}" failureThreshold="{}" reason="{}">"#,
            escape(&self.id),
            self.state.as_str(),
            escape(&self.image),
            self.max_concurrent,
            self.failure_threshold,
            escape(reason)
        );
        for (device, slot) in &self.devices {
            let (status, update_id, code, detail) = match slot {
                Slot::Pending => ("Pending", "", 0, ""),
                Slot::Started { update_id } => ("Started", update_id.as_str(), 0, ""),
                Slot::Ended {
                    update_id,
                    phase,
                    result,
                } => (phase.as_str(), update_id.as_str(), result.code(), ""),
                Slot::Refused { reason } => ("Refused", "", 0, reason.as_str()),
                Slot::Skipped => ("Skipped", "", 0, "not started: the campaign was aborted"),
            };
            let _ = write!(
                xml,
                r#"<Device id="{}" status="{status}" updateId="{}" resultCode="{code}" detail="{}"/>"#,
                escape(device),
                escape(update_id),
                escape(detail)
            );
        }
        xml.push_str("</Campaign>");
        xml
    }
}
