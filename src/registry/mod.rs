//! The persistent registry: devices, their lifecycle state with history, group membership and
//! configuration version, in a redb database under the state directory.
//!
//! Every change is one write transaction, committed with redb's default immediate durability
//! (fsync before `commit` returns): once a method returns `Ok`, the change survives a crash or a
//! `kill -9`.

mod record;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use redb::{
    Database, DatabaseError, ReadOnlyDatabase, ReadTransaction, ReadableDatabase, ReadableTable,
    TableDefinition,
};

pub use record::{
    DeviceRecord, LifecycleEntry, device_udn, from_unix_ms, gateway_namespace, gateway_udn, unix_ms,
};

use crate::lifecycle::{LifecycleState, TransitionError};

/// The schema this build reads and writes.
pub const SCHEMA_VERSION: u64 = 1;

/// File name of the database inside the state directory.
pub const FILE_NAME: &str = "registry.redb";

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const DEVICES: TableDefinition<&str, &[u8]> = TableDefinition::new("devices");
const HISTORY: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("lifecycle_history");
/// The firmware update of each device (its last one, JSON), by device id.
const FIRMWARE_JOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("firmware_jobs");
/// Firmware campaigns (JSON), by campaign id.
const CAMPAIGNS: TableDefinition<&str, &[u8]> = TableDefinition::new("firmware_campaigns");

/// Each virtual device's identity certificate (JSON), by device id.
const IDENTITIES: TableDefinition<&str, &[u8]> = TableDefinition::new("identities");
/// Revoked identity certificates (JSON), by serial (hex).
const REVOCATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("revocations");
/// Finished batch configurations (JSON), by batch id.
const BATCHES: TableDefinition<&str, &[u8]> = TableDefinition::new("batches");
/// What is kept of decommissioned devices (JSON), by device id.
const AUDIT: TableDefinition<&str, &[u8]> = TableDefinition::new("audit");

/// A table of JSON records kept in the registry database by key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordTable {
    /// Each device's last firmware update, by device id.
    Jobs,
    /// Firmware campaigns, by id.
    Campaigns,
    /// Each virtual device's identity certificate and enrollment, by device id.
    Identities,
    /// Revoked identity certificates, by serial.
    Revocations,
    /// Finished batch configurations, by batch id.
    Batches,
    /// Audit records of decommissioned devices, by device id.
    Audit,
}

impl RecordTable {
    fn definition(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        match self {
            Self::Jobs => FIRMWARE_JOBS,
            Self::Campaigns => CAMPAIGNS,
            Self::Identities => IDENTITIES,
            Self::Revocations => REVOCATIONS,
            Self::Batches => BATCHES,
            Self::Audit => AUDIT,
        }
    }
}

/// A registry failure, saying which file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Another process holds the database.
    #[error("the registry {} is held by a running iotmc-gateway; {}", path.display(), if *read_only {
        "it can be read from the command line only while the gateway is stopped (e.g. `systemctl stop iotmc-gateway`)"
    } else {
        "stop that gateway first (e.g. `systemctl stop iotmc-gateway`); two gateways cannot share a state directory"
    })]
    InUse {
        /// The database file.
        path: PathBuf,
        /// Whether the refused open was read-only.
        read_only: bool,
    },
    /// The database was written with a schema this build does not know.
    #[error("the registry {} has schema version {found}, but this iotmc-gateway understands only version {supported}; {hint}", path.display())]
    IncompatibleSchema {
        /// The database file.
        path: PathBuf,
        /// Version in the file.
        found: u64,
        /// Version of this build.
        supported: u64,
        /// What to do.
        hint: &'static str,
    },
    /// The file is not a registry this build can open at all.
    #[error("cannot open the registry {}: {source}; if the file is damaged, restore it from a backup or move it aside to start empty", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What redb said.
        source: DatabaseError,
    },
    /// The read-only registry does not exist yet.
    #[error("no registry at {}: the gateway has not run with this state directory yet", path.display())]
    Missing {
        /// The database file.
        path: PathBuf,
    },
    /// Reading or writing failed.
    #[error("registry storage failure: {0}")]
    Storage(String),
    /// A write was attempted through a read-only handle.
    #[error("the registry was opened read-only")]
    ReadOnly,
    /// No such device.
    #[error("device `{id}` is not in the registry")]
    UnknownDevice {
        /// The id asked for.
        id: String,
    },
    /// A device with this id already exists.
    #[error("device `{id}` is already in the registry")]
    DuplicateDevice {
        /// The id.
        id: String,
    },
    /// The lifecycle move is not allowed.
    #[error("device `{id}`: {source}")]
    Transition {
        /// The device.
        id: String,
        /// Why not.
        source: TransitionError,
    },
    /// A stored record cannot be decoded.
    #[error(
        "the registry record of `{id}` cannot be decoded ({detail}); restore the registry from a backup"
    )]
    Corrupt {
        /// The device.
        id: String,
        /// What failed.
        detail: String,
    },
}

fn storage(e: impl Into<redb::Error>) -> RegistryError {
    RegistryError::Storage(e.into().to_string())
}

enum Handle {
    ReadWrite(Database),
    ReadOnly(ReadOnlyDatabase),
}

/// The registry database.
pub struct Registry {
    handle: Handle,
    path: PathBuf,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// What [`Registry::reconcile`] changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// Devices added to the registry.
    pub added: Vec<String>,
    /// Devices whose profile, address, group or name changed.
    pub updated: Vec<String>,
    /// Devices in the registry that the config no longer declares.
    pub orphaned: Vec<String>,
    /// Devices the config declares that were decommissioned: left untouched, never attached.
    pub decommissioned: Vec<String>,
}

impl Registry {
    /// Opens (creating if needed) the registry in `state_dir`, for reading and writing.
    pub fn open(state_dir: &Path) -> Result<Self, RegistryError> {
        std::fs::create_dir_all(state_dir).map_err(|e| {
            RegistryError::Storage(format!(
                "cannot create the state directory {}: {e}",
                state_dir.display()
            ))
        })?;
        let path = state_dir.join(FILE_NAME);
        let db = Database::create(&path).map_err(|e| open_error(&path, e, false))?;
        let registry = Self {
            handle: Handle::ReadWrite(db),
            path,
        };
        registry.check_schema(true)?;
        Ok(registry)
    }

    /// Opens an existing registry read-only (for `devices list` and other inspections).
    pub fn open_read_only(state_dir: &Path) -> Result<Self, RegistryError> {
        let path = state_dir.join(FILE_NAME);
        if !path.exists() {
            return Err(RegistryError::Missing { path });
        }
        let db = ReadOnlyDatabase::open(&path).map_err(|e| open_error(&path, e, true))?;
        let registry = Self {
            handle: Handle::ReadOnly(db),
            path,
        };
        registry.check_schema(false)?;
        Ok(registry)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check_schema(&self, may_initialise: bool) -> Result<(), RegistryError> {
        let found = {
            let txn = self.read()?;
            match txn.open_table(META) {
                Ok(table) => table
                    .get("schema_version")
                    .map_err(storage)?
                    .map(|v| v.value()),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(storage(e)),
            }
        };
        match found {
            Some(SCHEMA_VERSION) => Ok(()),
            Some(found) if found > SCHEMA_VERSION => Err(RegistryError::IncompatibleSchema {
                path: self.path.clone(),
                found,
                supported: SCHEMA_VERSION,
                hint: "it was written by a newer iotmc-gateway; run that version, or restore a backup taken before the upgrade",
            }),
            Some(found) => Err(RegistryError::IncompatibleSchema {
                path: self.path.clone(),
                found,
                supported: SCHEMA_VERSION,
                hint: "no migration from that version exists; restore a backup or move the file aside to start empty",
            }),
            None if may_initialise => self.write(|txn| {
                txn.open_table(META)
                    .map_err(storage)?
                    .insert("schema_version", SCHEMA_VERSION)
                    .map_err(storage)?;
                txn.open_table(DEVICES).map_err(storage)?;
                txn.open_table(HISTORY).map_err(storage)?;
                Ok(())
            }),
            None => Err(RegistryError::IncompatibleSchema {
                path: self.path.clone(),
                found: 0,
                supported: SCHEMA_VERSION,
                hint: "the file holds no schema version; it is not an iotmc-gateway registry",
            }),
        }
    }

    fn read(&self) -> Result<ReadTransaction, RegistryError> {
        match &self.handle {
            Handle::ReadWrite(db) => db.begin_read(),
            Handle::ReadOnly(db) => db.begin_read(),
        }
        .map_err(storage)
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let Handle::ReadWrite(db) = &self.handle else {
            return Err(RegistryError::ReadOnly);
        };
        let txn = db.begin_write().map_err(storage)?;
        let value = f(&txn)?;
        txn.commit().map_err(storage)?;
        Ok(value)
    }

    /// Reads the schema version back: a cheap proof that the database still answers (used by
    /// the systemd watchdog).
    pub fn check_readable(&self) -> Result<(), RegistryError> {
        let txn = self.read()?;
        let meta = txn.open_table(META).map_err(storage)?;
        meta.get("schema_version").map_err(storage)?;
        Ok(())
    }

    /// Every device, by id.
    pub fn devices(&self) -> Result<Vec<DeviceRecord>, RegistryError> {
        let txn = self.read()?;
        let table = txn.open_table(DEVICES).map_err(storage)?;
        table
            .iter()
            .map_err(storage)?
            .map(|entry| {
                let (id, bytes) = entry.map_err(storage)?;
                decode(id.value(), bytes.value())
            })
            .collect()
    }

    /// One device.
    pub fn device(&self, id: &str) -> Result<Option<DeviceRecord>, RegistryError> {
        let txn = self.read()?;
        let table = txn.open_table(DEVICES).map_err(storage)?;
        let record = table.get(id).map_err(storage)?;
        record.map(|bytes| decode(id, bytes.value())).transpose()
    }

    /// A device's lifecycle history, oldest first.
    pub fn history(&self, id: &str) -> Result<Vec<LifecycleEntry>, RegistryError> {
        let txn = self.read()?;
        let table = txn.open_table(HISTORY).map_err(storage)?;
        table
            .range((id, 0)..=(id, u64::MAX))
            .map_err(storage)?
            .map(|entry| {
                let (_, bytes) = entry.map_err(storage)?;
                serde_json::from_slice(bytes.value()).map_err(|e| RegistryError::Corrupt {
                    id: id.to_owned(),
                    detail: e.to_string(),
                })
            })
            .collect()
    }

    /// Adds a device, recording its initial lifecycle state with `cause`.
    pub fn insert_device(
        &self,
        record: &DeviceRecord,
        cause: &str,
        at: SystemTime,
    ) -> Result<(), RegistryError> {
        self.write(|txn| {
            let mut devices = txn.open_table(DEVICES).map_err(storage)?;
            if devices.get(record.id.as_str()).map_err(storage)?.is_some() {
                return Err(RegistryError::DuplicateDevice {
                    id: record.id.clone(),
                });
            }
            put(&mut devices, record)?;
            let mut history = txn.open_table(HISTORY).map_err(storage)?;
            append_history(&mut history, &record.id, None, record.lifecycle, cause, at)?;
            Ok(())
        })
    }

    /// Moves a device to another lifecycle state, if the move is allowed.
    pub fn transition(
        &self,
        id: &str,
        to: LifecycleState,
        cause: &str,
        at: SystemTime,
    ) -> Result<LifecycleEntry, RegistryError> {
        self.write(|txn| {
            let mut devices = txn.open_table(DEVICES).map_err(storage)?;
            let mut record = get(&devices, id)?;
            record
                .lifecycle
                .check_transition(to)
                .map_err(|source| RegistryError::Transition {
                    id: id.to_owned(),
                    source,
                })?;
            let from = record.lifecycle;
            record.lifecycle = to;
            record.lifecycle_since_ms = unix_ms(at);
            put(&mut devices, &record)?;
            let mut history = txn.open_table(HISTORY).map_err(storage)?;
            append_history(&mut history, id, Some(from), to, cause, at)
        })
    }

    /// Changes a device's record with `change` (not its lifecycle: that is [`Self::transition`])
    /// and returns the new record.
    pub fn update_device(
        &self,
        id: &str,
        change: impl FnOnce(&mut DeviceRecord),
    ) -> Result<DeviceRecord, RegistryError> {
        self.write(|txn| {
            let mut devices = txn.open_table(DEVICES).map_err(storage)?;
            let mut record = get(&devices, id)?;
            let lifecycle = (record.lifecycle, record.lifecycle_since_ms);
            change(&mut record);
            (record.lifecycle, record.lifecycle_since_ms) = lifecycle;
            put(&mut devices, &record)?;
            Ok(record)
        })
    }

    /// Decommissions a device in one transaction: it moves to Decommissioned (if allowed), its
    /// certificate's `revocation` (serial, record) is stored, its lifecycle history, firmware
    /// record and identity record are deleted, and `audit` is kept in the audit table. What stays of the device itself is its record in state
    /// Decommissioned, so that the config cannot bring it back under the same id.
    pub fn decommission(
        &self,
        id: &str,
        cause: &str,
        at: SystemTime,
        audit: &impl serde::Serialize,
        revocation: Option<(&str, &impl serde::Serialize)>,
    ) -> Result<DeviceRecord, RegistryError> {
        let audit = serde_json::to_vec(audit).map_err(|e| RegistryError::Storage(e.to_string()))?;
        let revocation = revocation
            .map(|(serial, record)| {
                serde_json::to_vec(record)
                    .map(|bytes| (serial, bytes))
                    .map_err(|e| RegistryError::Storage(e.to_string()))
            })
            .transpose()?;
        self.write(|txn| {
            if let Some((serial, bytes)) = &revocation {
                txn.open_table(REVOCATIONS)
                    .map_err(storage)?
                    .insert(*serial, bytes.as_slice())
                    .map_err(storage)?;
            }
            let mut devices = txn.open_table(DEVICES).map_err(storage)?;
            let mut record = get(&devices, id)?;
            record
                .lifecycle
                .check_transition(LifecycleState::Decommissioned)
                .map_err(|source| RegistryError::Transition {
                    id: id.to_owned(),
                    source,
                })?;
            record.lifecycle = LifecycleState::Decommissioned;
            record.lifecycle_since_ms = unix_ms(at);
            record.config_version = 0;
            put(&mut devices, &record)?;
            let mut history = txn.open_table(HISTORY).map_err(storage)?;
            let seqs: Vec<u64> = history
                .range((id, 0)..=(id, u64::MAX))
                .map_err(storage)?
                .map(|entry| entry.map(|(key, _)| key.value().1).map_err(storage))
                .collect::<Result<_, _>>()?;
            for seq in seqs {
                history.remove((id, seq)).map_err(storage)?;
            }
            append_history(
                &mut history,
                id,
                None,
                LifecycleState::Decommissioned,
                cause,
                at,
            )?;
            for table in [RecordTable::Jobs, RecordTable::Identities] {
                txn.open_table(table.definition())
                    .map_err(storage)?
                    .remove(id)
                    .map_err(storage)?;
            }
            txn.open_table(AUDIT)
                .map_err(storage)?
                .insert(id, audit.as_slice())
                .map_err(storage)?;
            Ok(record)
        })
    }

    /// The next value of the persisted counter `name` (1, 2, ...): numbers that only grow,
    /// whatever the clock does (CRL numbers).
    pub fn next_counter(&self, name: &str) -> Result<u64, RegistryError> {
        let key = format!("counter:{name}");
        self.write(|txn| {
            let mut meta = txn.open_table(META).map_err(storage)?;
            let next = meta
                .get(key.as_str())
                .map_err(storage)?
                .map_or(0, |v| v.value())
                + 1;
            meta.insert(key.as_str(), next).map_err(storage)?;
            Ok(next)
        })
    }

    /// Counts this start as one more boot and returns the new BOOTID.UPNP.ORG (UDA 2.0 §1.2:
    /// increases with every boot, persisted so that it survives restarts; 31 bits, wraps to 1).
    pub fn next_boot_id(&self) -> Result<u32, RegistryError> {
        self.write(|txn| {
            let mut meta = txn.open_table(META).map_err(storage)?;
            let previous = meta.get("boot_id").map_err(storage)?.map(|v| v.value());
            let next = match previous {
                Some(n) if n < u64::from(i32::MAX as u32) => n + 1,
                _ => 1,
            };
            meta.insert("boot_id", next).map_err(storage)?;
            Ok(u32::try_from(next).unwrap_or(1))
        })
    }

    /// The CONFIGID.UPNP.ORG for the descriptions whose digest is `digest`: unchanged while the
    /// digest is, one more when it changes (persisted; 24 bits, as UDA 2.0 reserves the rest).
    pub fn config_id_for(&self, digest: u64) -> Result<u32, RegistryError> {
        self.write(|txn| {
            let mut meta = txn.open_table(META).map_err(storage)?;
            let known = meta
                .get("description_digest")
                .map_err(storage)?
                .map(|v| v.value());
            let current = meta.get("config_id").map_err(storage)?.map(|v| v.value());
            let id = match (known, current) {
                (Some(d), Some(id)) if d == digest => id,
                (_, Some(id)) => (id + 1) % (1 << 24),
                (_, None) => 1,
            };
            meta.insert("description_digest", digest).map_err(storage)?;
            meta.insert("config_id", id).map_err(storage)?;
            Ok(u32::try_from(id).unwrap_or(1))
        })
    }

    /// Stores a record (one transaction, durable when this returns).
    pub fn put_record(
        &self,
        table: RecordTable,
        key: &str,
        value: &impl serde::Serialize,
    ) -> Result<(), RegistryError> {
        let bytes = serde_json::to_vec(value).map_err(|e| RegistryError::Storage(e.to_string()))?;
        self.write(|txn| {
            txn.open_table(table.definition())
                .map_err(storage)?
                .insert(key, bytes.as_slice())
                .map_err(storage)?;
            Ok(())
        })
    }

    /// One record of a table, if there is one under `key`.
    pub fn get_record<T: serde::de::DeserializeOwned>(
        &self,
        table: RecordTable,
        key: &str,
    ) -> Result<Option<T>, RegistryError> {
        let txn = self.read()?;
        let table = match txn.open_table(table.definition()) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(storage(e)),
        };
        let Some(bytes) = table.get(key).map_err(storage)? else {
            return Ok(None);
        };
        serde_json::from_slice(bytes.value())
            .map(Some)
            .map_err(|e| RegistryError::Corrupt {
                id: key.to_owned(),
                detail: e.to_string(),
            })
    }

    /// Removes a record.
    pub fn remove_record(&self, table: RecordTable, key: &str) -> Result<(), RegistryError> {
        self.write(|txn| {
            txn.open_table(table.definition())
                .map_err(storage)?
                .remove(key)
                .map_err(storage)?;
            Ok(())
        })
    }

    /// Every record of a table, by key. A record that does not decode is an error
    /// naming it.
    pub fn records<T: serde::de::DeserializeOwned>(
        &self,
        table: RecordTable,
    ) -> Result<Vec<(String, T)>, RegistryError> {
        let txn = self.read()?;
        let table = match txn.open_table(table.definition()) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(storage(e)),
        };
        table
            .iter()
            .map_err(storage)?
            .map(|entry| {
                let (key, bytes) = entry.map_err(storage)?;
                let key = key.value().to_owned();
                let value =
                    serde_json::from_slice(bytes.value()).map_err(|e| RegistryError::Corrupt {
                        id: key.clone(),
                        detail: e.to_string(),
                    })?;
                Ok((key, value))
            })
            .collect()
    }

    /// Increments a device's configuration version and returns the new one.
    pub fn bump_config_version(&self, id: &str) -> Result<u64, RegistryError> {
        self.write(|txn| {
            let mut devices = txn.open_table(DEVICES).map_err(storage)?;
            let mut record = get(&devices, id)?;
            record.config_version += 1;
            put(&mut devices, &record)?;
            Ok(record.config_version)
        })
    }

    /// Brings the registry in line with the devices the config declares, in one transaction:
    /// new devices are added as Provisioned; changed ones are updated, keeping their lifecycle
    /// and configuration version unless their protocol address changed (then they are back to
    /// Provisioned: another physical device must enroll again); decommissioned ones are left
    /// alone; and devices no longer declared are marked as such (never deleted: removing a
    /// device is decommissioning, an explicit act).
    pub fn reconcile(
        &self,
        declared: &[DeviceRecord],
        cause: &str,
        at: SystemTime,
    ) -> Result<Reconciled, RegistryError> {
        self.write(|txn| {
            let mut devices = txn.open_table(DEVICES).map_err(storage)?;
            let mut history = txn.open_table(HISTORY).map_err(storage)?;
            let mut report = Reconciled::default();
            let existing: Vec<DeviceRecord> = devices
                .iter()
                .map_err(storage)?
                .map(|entry| {
                    let (id, bytes) = entry.map_err(storage)?;
                    decode(id.value(), bytes.value())
                })
                .collect::<Result<_, _>>()?;
            for wanted in declared {
                match existing.iter().find(|r| r.id == wanted.id) {
                    None => {
                        put(&mut devices, wanted)?;
                        append_history(
                            &mut history,
                            &wanted.id,
                            None,
                            wanted.lifecycle,
                            cause,
                            at,
                        )?;
                        report.added.push(wanted.id.clone());
                    }
                    Some(old) if old.lifecycle == LifecycleState::Decommissioned => {
                        report.decommissioned.push(wanted.id.clone());
                    }
                    Some(old) => {
                        let mut updated = DeviceRecord {
                            lifecycle: old.lifecycle,
                            lifecycle_since_ms: old.lifecycle_since_ms,
                            config_version: old.config_version,
                            group: if old.group_assigned {
                                old.group.clone()
                            } else {
                                wanted.group.clone()
                            },
                            group_assigned: old.group_assigned,
                            ..wanted.clone()
                        };
                        // A new protocol address is a different physical device: whatever was
                        // approved for the old one does not carry over.
                        if old.udn != wanted.udn && old.lifecycle.check_transition(LifecycleState::Provisioned).is_ok() {
                            updated.lifecycle = LifecycleState::Provisioned;
                            updated.lifecycle_since_ms = unix_ms(at);
                            let cause = format!(
                                "{cause}: address changed from {} {} to {} {}; the device must enroll again",
                                old.protocol, old.address, wanted.protocol, wanted.address
                            );
                            append_history(&mut history, &wanted.id, Some(old.lifecycle), LifecycleState::Provisioned, &cause, at)?;
                        }
                        if &updated != old {
                            put(&mut devices, &updated)?;
                            report.updated.push(wanted.id.clone());
                        }
                    }
                }
            }
            for old in existing
                .iter()
                .filter(|r| r.in_config && !declared.iter().any(|d| d.id == r.id))
            {
                put(
                    &mut devices,
                    &DeviceRecord {
                        in_config: false,
                        ..old.clone()
                    },
                )?;
                report.orphaned.push(old.id.clone());
            }
            Ok(report)
        })
    }
}

fn open_error(path: &Path, e: DatabaseError, read_only: bool) -> RegistryError {
    match e {
        DatabaseError::DatabaseAlreadyOpen => RegistryError::InUse {
            path: path.to_owned(),
            read_only,
        },
        source => RegistryError::Open {
            path: path.to_owned(),
            source,
        },
    }
}

fn decode(id: &str, bytes: &[u8]) -> Result<DeviceRecord, RegistryError> {
    serde_json::from_slice(bytes).map_err(|e| RegistryError::Corrupt {
        id: id.to_owned(),
        detail: e.to_string(),
    })
}

fn get(devices: &redb::Table<'_, &str, &[u8]>, id: &str) -> Result<DeviceRecord, RegistryError> {
    let bytes = devices
        .get(id)
        .map_err(storage)?
        .ok_or_else(|| RegistryError::UnknownDevice { id: id.to_owned() })?;
    decode(id, bytes.value())
}

fn put(
    devices: &mut redb::Table<'_, &str, &[u8]>,
    record: &DeviceRecord,
) -> Result<(), RegistryError> {
    let bytes = serde_json::to_vec(record).map_err(|e| RegistryError::Storage(e.to_string()))?;
    devices
        .insert(record.id.as_str(), bytes.as_slice())
        .map_err(storage)?;
    Ok(())
}

fn append_history(
    history: &mut redb::Table<'_, (&str, u64), &[u8]>,
    id: &str,
    from: Option<LifecycleState>,
    to: LifecycleState,
    cause: &str,
    at: SystemTime,
) -> Result<LifecycleEntry, RegistryError> {
    let seq = history
        .range((id, 0)..=(id, u64::MAX))
        .map_err(storage)?
        .next_back()
        .transpose()
        .map_err(storage)?
        .map_or(0, |(key, _)| key.value().1 + 1);
    let entry = LifecycleEntry {
        seq,
        at_ms: unix_ms(at),
        from,
        to,
        cause: cause.to_owned(),
    };
    let bytes = serde_json::to_vec(&entry).map_err(|e| RegistryError::Storage(e.to_string()))?;
    history
        .insert((id, seq), bytes.as_slice())
        .map_err(storage)?;
    Ok(entry)
}

#[cfg(test)]
mod tests;
