//! The services every virtual device and the gateway's own root device offer (DESIGN.md §4),
//! as data. Actions whose engines land with later work are declared, and answer UPnPError 602
//! naming what is missing.

use std::time::Duration;

use crate::upnp::scpd::{
    Access, Action, DataType, ServiceSpec, StateVariable, input as i, output as o,
};

const READ: Access = Access::ReadOnly;
const CHANGE: Access = Access::StateChanging;

/// Lifecycle states as Lifecycle:1 reports them.
pub const LIFECYCLE_STATES: &[&str] = &[
    "Manufactured",
    "Provisioned",
    "PendingApproval",
    "Commissioned",
    "Maintenance",
    "Decommissioned",
];

/// Availability values.
pub const AVAILABILITY: &[&str] = &["Online", "Offline", "Unknown"];

/// `urn:schemas-upnp-org:service:BasicManagement:2` (the subset we serve).
pub static BASIC_MANAGEMENT: ServiceSpec = ServiceSpec {
    name: "BasicManagement",
    version: 2,
    standard: true,
    path: "BasicManagement",
    actions: &[
        Action {
            name: "GetDeviceStatus",
            arguments: &[o("DeviceStatus", "DeviceStatus")],
            access: READ,
            missing: None,
        },
        Action {
            name: "Reboot",
            arguments: &[],
            access: CHANGE,
            missing: None,
        },
        Action {
            name: "BaselineReset",
            arguments: &[],
            access: CHANGE,
            missing: None,
        },
        Action {
            name: "GetLogURIs",
            arguments: &[o("LogURIs", "A_ARG_TYPE_String")],
            access: READ,
            missing: None,
        },
        Action {
            name: "GetLogInfo",
            arguments: &[o("LogInfo", "A_ARG_TYPE_String")],
            access: READ,
            missing: None,
        },
    ],
    variables: &[
        StateVariable::evented("DeviceStatus", DataType::String),
        StateVariable::arg("A_ARG_TYPE_String", DataType::String),
    ],
};

/// `urn:schemas-upnp-org:service:ConfigurationManagement:2` (the subset we serve).
pub static CONFIGURATION_MANAGEMENT: ServiceSpec = ServiceSpec {
    name: "ConfigurationManagement",
    version: 2,
    standard: true,
    path: "ConfigurationManagement",
    actions: &[
        Action {
            name: "GetSupportedDataModels",
            arguments: &[o("SupportedDataModels", "SupportedDataModels")],
            access: READ,
            missing: None,
        },
        Action {
            name: "GetSupportedParameters",
            arguments: &[
                i("StartingNode", "A_ARG_TYPE_StructurePath"),
                i("SearchDepth", "A_ARG_TYPE_SearchDepth"),
                o("Result", "A_ARG_TYPE_StructurePathList"),
            ],
            access: READ,
            missing: None,
        },
        Action {
            name: "GetValues",
            arguments: &[
                i("Parameters", "A_ARG_TYPE_ContentPathList"),
                o("ParameterValueList", "A_ARG_TYPE_ParameterValueList"),
            ],
            access: READ,
            missing: None,
        },
        Action {
            name: "SetValues",
            arguments: &[
                i("ParameterValueList", "A_ARG_TYPE_ParameterValueList"),
                o("Status", "A_ARG_TYPE_Status"),
            ],
            access: CHANGE,
            missing: None,
        },
        Action {
            name: "GetCurrentConfigurationVersion",
            arguments: &[o(
                "CurrentConfigurationVersion",
                "CurrentConfigurationVersion",
            )],
            access: READ,
            missing: None,
        },
        Action {
            name: "GetConfigurationUpdate",
            arguments: &[o("StateVariableValue", "ConfigurationUpdate")],
            access: READ,
            missing: None,
        },
    ],
    variables: &[
        StateVariable::arg("SupportedDataModels", DataType::String),
        StateVariable::evented("ConfigurationUpdate", DataType::String),
        StateVariable::arg("CurrentConfigurationVersion", DataType::Ui4),
        StateVariable::arg("A_ARG_TYPE_StructurePath", DataType::String),
        StateVariable::arg("A_ARG_TYPE_SearchDepth", DataType::Ui4),
        StateVariable::arg("A_ARG_TYPE_StructurePathList", DataType::String),
        StateVariable::arg("A_ARG_TYPE_ContentPathList", DataType::String),
        StateVariable::arg("A_ARG_TYPE_ParameterValueList", DataType::String),
        StateVariable::arg("A_ARG_TYPE_Status", DataType::String)
            .allowing(&["ChangesApplied", "ChangesPending"]),
    ],
};

/// Vendor `FirmwareUpdate:1`.
///
/// Evented values:
/// - `FirmwareAvailable`: `<version>,<sha256>,<size>,<release date>[,emergency]` of the image
///   on offer for the device, or empty when there is none.
/// - `FirmwareUpdateStatus`: `<Status>,<UpdateId>,<ResultCode>,<bytes acknowledged>/<bytes
///   total>`, or `Idle` before the first update. Every phase change is evented; progress at most
///   once a second.
pub static FIRMWARE_UPDATE: ServiceSpec = ServiceSpec {
    name: "FirmwareUpdate",
    version: 1,
    standard: false,
    path: "FirmwareUpdate",
    actions: &[
        Action {
            name: "GetFirmwareInfo",
            arguments: &[
                o("RunningVersion", "A_ARG_TYPE_String"),
                o("RunningSize", "A_ARG_TYPE_Size"),
                o("RunningSha256", "A_ARG_TYPE_String"),
                o("RunningReleaseDate", "A_ARG_TYPE_String"),
                o("OfferedVersion", "A_ARG_TYPE_String"),
                o("OfferedSize", "A_ARG_TYPE_Size"),
                o("OfferedSha256", "A_ARG_TYPE_String"),
                o("OfferedReleaseDate", "A_ARG_TYPE_String"),
                o("OfferedEmergency", "A_ARG_TYPE_Boolean"),
            ],
            access: READ,
            missing: None,
        },
        Action {
            name: "ScheduleFirmwareUpdate",
            arguments: &[
                i("StartTime", "A_ARG_TYPE_DateTime"),
                i("ImageSha256", "A_ARG_TYPE_String"),
                o("UpdateId", "A_ARG_TYPE_String"),
            ],
            access: CHANGE,
            missing: None,
        },
        Action {
            name: "CancelFirmwareUpdate",
            arguments: &[i("UpdateId", "A_ARG_TYPE_String")],
            access: CHANGE,
            missing: None,
        },
        Action {
            name: "GetFirmwareUpdateStatus",
            arguments: &[
                o("UpdateId", "A_ARG_TYPE_String"),
                o("Status", "A_ARG_TYPE_Status"),
                o("ResultCode", "A_ARG_TYPE_ResultCode"),
                o("BytesAcknowledged", "A_ARG_TYPE_Size"),
                o("BytesTotal", "A_ARG_TYPE_Size"),
                o("ProbationEnds", "A_ARG_TYPE_String"),
                o("Detail", "A_ARG_TYPE_String"),
            ],
            access: READ,
            missing: None,
        },
    ],
    variables: &[
        StateVariable::evented("FirmwareAvailable", DataType::String),
        StateVariable::evented("FirmwareUpdateStatus", DataType::String),
        StateVariable::arg("A_ARG_TYPE_String", DataType::String),
        StateVariable::arg("A_ARG_TYPE_Size", DataType::Ui4),
        StateVariable::arg("A_ARG_TYPE_Boolean", DataType::Boolean),
        StateVariable::arg("A_ARG_TYPE_DateTime", DataType::DateTime),
        StateVariable::arg("A_ARG_TYPE_Status", DataType::String).allowing(FIRMWARE_STATUSES),
        StateVariable::arg("A_ARG_TYPE_ResultCode", DataType::I4),
    ],
};

/// `GetFirmwareUpdateStatus` statuses: `Idle` before any update, then the phases of
/// [`crate::firmware::machine::Phase`].
pub const FIRMWARE_STATUSES: &[&str] = &[
    "Idle",
    "Scheduled",
    "WaitingForWindow",
    "Downloading",
    "Verified",
    "Transferring",
    "Staged",
    "Rebooting",
    "Probation",
    "Confirmed",
    "RolledBack",
    "Failed",
    "Cancelled",
];

/// Vendor `Diagnostics:1`.
pub static DIAGNOSTICS: ServiceSpec = ServiceSpec {
    name: "Diagnostics",
    version: 1,
    standard: false,
    path: "Diagnostics",
    actions: &[
        Action {
            name: "GetDiagnosticsLog",
            arguments: &[
                i("MinimumSeverity", "A_ARG_TYPE_Severity"),
                i("StartTime", "A_ARG_TYPE_String"),
                i("EndTime", "A_ARG_TYPE_String"),
                i("MaximumRecords", "A_ARG_TYPE_Count"),
                i("Cursor", "A_ARG_TYPE_String"),
                o("Log", "A_ARG_TYPE_String"),
                o("NextCursor", "A_ARG_TYPE_String"),
            ],
            access: READ,
            missing: None,
        },
        Action {
            name: "ClearDiagnosticsLog",
            arguments: &[i("UpToCursor", "A_ARG_TYPE_String")],
            access: CHANGE,
            missing: None,
        },
    ],
    variables: &[
        StateVariable::evented("LastError", DataType::String).at_most_every(Duration::from_secs(1)),
        StateVariable::arg("A_ARG_TYPE_Severity", DataType::String).allowing(&[
            "emergency",
            "alert",
            "critical",
            "error",
            "warning",
            "notice",
            "informational",
            "debug",
        ]),
        StateVariable::arg("A_ARG_TYPE_String", DataType::String),
        StateVariable::arg("A_ARG_TYPE_Count", DataType::Ui4),
    ],
};

/// Vendor `Lifecycle:1`.
pub static LIFECYCLE: ServiceSpec = ServiceSpec {
    name: "Lifecycle",
    version: 1,
    standard: false,
    path: "Lifecycle",
    actions: &[Action {
        name: "GetLifecycleState",
        arguments: &[
            o("LifecycleState", "LifecycleState"),
            o("Since", "A_ARG_TYPE_DateTime"),
            o("Availability", "Availability"),
        ],
        access: READ,
        missing: None,
    }],
    variables: &[
        StateVariable::evented("LifecycleState", DataType::String).allowing(LIFECYCLE_STATES),
        StateVariable::evented("Availability", DataType::String).allowing(AVAILABILITY),
        StateVariable::arg("A_ARG_TYPE_DateTime", DataType::DateTime),
    ],
};

/// Vendor `ManagementController:1` on the gateway's own root device.
pub static MANAGEMENT_CONTROLLER: ServiceSpec = ServiceSpec {
    name: "ManagementController",
    version: 1,
    standard: false,
    path: "ManagementController",
    actions: &[
        Action {
            name: "GetInventory",
            arguments: &[o("Inventory", "A_ARG_TYPE_String")],
            access: READ,
            missing: None,
        },
        Action {
            name: "Enroll",
            arguments: &[
                i("DeviceDescriptionURL", "A_ARG_TYPE_String"),
                o("EnrollmentState", "A_ARG_TYPE_String"),
                o("DeviceUDN", "A_ARG_TYPE_String"),
                o("Detail", "A_ARG_TYPE_String"),
            ],
            access: READ,
            missing: None,
        },
        Action {
            name: "ApproveEnrollment",
            arguments: &[
                i("DeviceUDN", "A_ARG_TYPE_String"),
                i("Group", "A_ARG_TYPE_String"),
                o("LifecycleState", "A_ARG_TYPE_String"),
            ],
            access: CHANGE,
            missing: None,
        },
        Action {
            name: "RejectEnrollment",
            arguments: &[
                i("DeviceUDN", "A_ARG_TYPE_String"),
                i("Reason", "A_ARG_TYPE_String"),
            ],
            access: CHANGE,
            missing: None,
        },
        Action {
            name: "AssignGroup",
            arguments: &[
                i("DeviceUDN", "A_ARG_TYPE_String"),
                i("Group", "A_ARG_TYPE_String"),
            ],
            access: CHANGE,
            missing: None,
        },
        Action {
            name: "DecommissionDevice",
            arguments: &[
                i("DeviceUDN", "A_ARG_TYPE_String"),
                i("Reason", "A_ARG_TYPE_String"),
                o("Result", "A_ARG_TYPE_String"),
            ],
            access: CHANGE,
            missing: None,
        },
        Action {
            name: "BatchSetValues",
            arguments: &[
                i("BatchId", "A_ARG_TYPE_String"),
                i("Targets", "A_ARG_TYPE_String"),
                i("ParameterValueList", "A_ARG_TYPE_String"),
                i("MaxConcurrent", "A_ARG_TYPE_Count"),
                o("Results", "A_ARG_TYPE_String"),
            ],
            access: CHANGE,
            missing: None,
        },
        Action {
            name: "StartFirmwareCampaign",
            arguments: &[
                i("Targets", "A_ARG_TYPE_String"),
                i("ImageSha256", "A_ARG_TYPE_String"),
                i("StartTime", "A_ARG_TYPE_DateTime"),
                i("MaxConcurrent", "A_ARG_TYPE_Count"),
                i("FailureThreshold", "A_ARG_TYPE_Count"),
                o("CampaignId", "A_ARG_TYPE_String"),
            ],
            access: CHANGE,
            missing: None,
        },
        Action {
            name: "PauseFirmwareCampaign",
            arguments: &[i("CampaignId", "A_ARG_TYPE_String")],
            access: CHANGE,
            missing: None,
        },
        Action {
            name: "ResumeFirmwareCampaign",
            arguments: &[i("CampaignId", "A_ARG_TYPE_String")],
            access: CHANGE,
            missing: None,
        },
        Action {
            name: "AbortFirmwareCampaign",
            arguments: &[i("CampaignId", "A_ARG_TYPE_String")],
            access: CHANGE,
            missing: None,
        },
        Action {
            name: "GetFirmwareCampaignStatus",
            arguments: &[
                i("CampaignId", "A_ARG_TYPE_String"),
                o("Status", "A_ARG_TYPE_String"),
            ],
            access: READ,
            missing: None,
        },
    ],
    variables: &[
        StateVariable::evented("InventoryVersion", DataType::Ui4),
        StateVariable::evented("FirmwareCampaignStatus", DataType::String),
        StateVariable::evented("EnrollmentUpdate", DataType::String),
        StateVariable::arg("A_ARG_TYPE_String", DataType::String),
        StateVariable::arg("A_ARG_TYPE_DateTime", DataType::DateTime),
        StateVariable::arg("A_ARG_TYPE_Count", DataType::Ui4),
    ],
};

/// The services of every virtual device, in description order.
pub static DEVICE_SERVICES: [&ServiceSpec; 5] = [
    &BASIC_MANAGEMENT,
    &CONFIGURATION_MANAGEMENT,
    &FIRMWARE_UPDATE,
    &DIAGNOSTICS,
    &LIFECYCLE,
];

/// The services of the gateway's root device.
pub static GATEWAY_SERVICES: [&ServiceSpec; 1] = [&MANAGEMENT_CONTROLLER];

/// The actions declared but not served yet, as `Service#Action: what is missing` lines.
pub fn missing_actions() -> Vec<String> {
    DEVICE_SERVICES
        .iter()
        .chain(GATEWAY_SERVICES.iter())
        .flat_map(|s| {
            s.actions
                .iter()
                .filter_map(move |a| a.missing.map(|m| format!("{}#{}: {m}", s.name, a.name)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upnp::scpd::Direction;

    #[test]
    fn every_argument_should_refer_to_a_declared_variable() {
        for spec in DEVICE_SERVICES.iter().chain(GATEWAY_SERVICES.iter()) {
            for action in spec.actions {
                for arg in action.arguments {
                    assert!(
                        spec.variable(arg.related).is_some(),
                        "{}#{} {} -> {}",
                        spec.name,
                        action.name,
                        arg.name,
                        arg.related
                    );
                }
            }
            for var in spec.variables {
                let used = var.evented
                    || spec
                        .actions
                        .iter()
                        .any(|a| a.arguments.iter().any(|arg| arg.related == var.name));
                assert!(used, "{}: {} is never used", spec.name, var.name);
            }
        }
    }

    #[test]
    fn the_readme_should_list_every_action_that_answers_602() {
        let readme = include_str!("../../../README.md");
        let table = &readme[readme.find("### Services").unwrap_or(0)..];
        for line in missing_actions() {
            let (service_action, _) = line.split_once(':').unwrap_or((&line, ""));
            let (service, action) = service_action
                .split_once('#')
                .unwrap_or(("", service_action));
            let row = table
                .lines()
                .find(|l| l.contains(&format!("`{service}:")))
                .unwrap_or_else(|| panic!("README's services table has no row for {service}"));
            assert!(
                row.contains(action) && row.contains("602"),
                "README's {service} row does not mark {action} as 602: {row}"
            );
        }
    }

    #[test]
    fn every_state_changing_action_should_be_marked_so() {
        let changing = [
            "Reboot",
            "BaselineReset",
            "SetValues",
            "ScheduleFirmwareUpdate",
            "CancelFirmwareUpdate",
            "ClearDiagnosticsLog",
            "ApproveEnrollment",
            "RejectEnrollment",
            "AssignGroup",
            "DecommissionDevice",
            "BatchSetValues",
            "StartFirmwareCampaign",
            "PauseFirmwareCampaign",
            "ResumeFirmwareCampaign",
            "AbortFirmwareCampaign",
        ];
        for spec in DEVICE_SERVICES.iter().chain(GATEWAY_SERVICES.iter()) {
            for action in spec.actions {
                assert_eq!(
                    action.access == Access::StateChanging,
                    changing.contains(&action.name),
                    "{}#{}",
                    spec.name,
                    action.name
                );
                assert!(
                    action
                        .arguments
                        .iter()
                        .filter(|a| a.direction == Direction::Out)
                        .count()
                        <= 9
                );
            }
        }
    }
}
