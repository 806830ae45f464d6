//! Loading profiles from files and directories.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use iotmc_adapter::{LocatedError, Profile};

use crate::adapters::{AdapterSet, KNOWN_PROTOCOLS};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The profile cannot be used.
    Error,
    /// The profile loads, but something could not be checked.
    Warning,
}

/// One thing the catalog found about a file.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// Where and what.
    pub error: LocatedError,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{label}: {}", self.error)?;
        if let (Some(line), Some(snippet)) = (self.error.line, &self.error.snippet) {
            write!(f, "\n  {line:>4} | {snippet}")?;
            if let Some(column) = self.error.column {
                write!(f, "\n       | {}^", " ".repeat(column.saturating_sub(1)))?;
            }
        }
        Ok(())
    }
}

/// Profiles by id.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    profiles: BTreeMap<String, Arc<Profile>>,
    /// Profiles that parsed but failed a later check, by id, with their file.
    rejected: BTreeMap<String, PathBuf>,
}

impl Catalog {
    /// Loads every `*.toml` under `paths` (files, or directories searched recursively, in name
    /// order). Profiles with errors are left out; every finding is returned.
    pub fn load(paths: &[PathBuf], adapters: &AdapterSet) -> (Self, Vec<Finding>) {
        let mut catalog = Self::default();
        let mut findings = Vec::new();
        let mut files = Vec::new();
        for path in paths {
            collect_toml_files(path, &mut files, &mut findings);
        }

        let mut origin: BTreeMap<String, PathBuf> = BTreeMap::new();
        for file in files {
            let profile = match Profile::load(&file) {
                Ok(profile) => profile,
                Err(errors) => {
                    findings.extend(errors.into_iter().map(|error| Finding {
                        severity: Severity::Error,
                        error,
                    }));
                    continue;
                }
            };
            let before = findings.len();
            check_with_adapter(&profile, adapters, &mut findings);
            if findings[before..]
                .iter()
                .any(|f| f.severity == Severity::Error)
            {
                catalog.rejected.insert(profile.id.clone(), file);
                continue;
            }
            if let Some(first) = origin.get(&profile.id) {
                findings.push(Finding {
                    severity: Severity::Error,
                    error: profile.source().error_at(
                        "id",
                        format!(
                            "profile id `{}` is already used by {}",
                            profile.id,
                            first.display()
                        ),
                    ),
                });
                continue;
            }
            origin.insert(profile.id.clone(), file);
            catalog
                .profiles
                .insert(profile.id.clone(), Arc::new(profile));
        }
        (catalog, findings)
    }

    /// The profile with this id.
    pub fn get(&self, id: &str) -> Option<&Arc<Profile>> {
        self.profiles.get(id)
    }

    /// The file of a profile that was found but left out because of its errors.
    pub fn rejected(&self, id: &str) -> Option<&Path> {
        self.rejected.get(id).map(PathBuf::as_path)
    }

    /// Every profile, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Profile>> {
        self.profiles.values()
    }

    /// How many profiles are loaded.
    pub fn len(&self) -> usize {
        self.profiles.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }
}

fn check_with_adapter(profile: &Profile, adapters: &AdapterSet, findings: &mut Vec<Finding>) {
    match adapters.get(&profile.protocol) {
        Some(adapter) => {
            if let Err(errors) = adapter.validate_profile(profile) {
                findings.extend(errors.into_iter().map(|error| Finding {
                    severity: Severity::Error,
                    error,
                }));
            }
        }
        None if KNOWN_PROTOCOLS.contains(&profile.protocol.as_str()) => findings.push(Finding {
            severity: Severity::Warning,
            error: profile.source().error_at(
                "protocol",
                format!(
                    "the `[{}]` section was not checked: {}",
                    profile.protocol,
                    adapters.missing(&profile.protocol)
                ),
            ),
        }),
        None => findings.push(Finding {
            severity: Severity::Error,
            error: profile
                .source()
                .error_at("protocol", adapters.missing(&profile.protocol)),
        }),
    }
}

/// Adds the `*.toml` files at or under `path` to `files`, in name order, following symbolic
/// links. An entry that cannot be read becomes a finding; the walk goes on.
fn collect_toml_files(path: &Path, files: &mut Vec<PathBuf>, findings: &mut Vec<Finding>) {
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(e) => return unreadable(findings, path, e),
    };
    if metadata.is_file() {
        files.push(path.to_owned());
        return;
    }
    let entries = match std::fs::read_dir(path).and_then(|dir| dir.collect::<Result<Vec<_>, _>>()) {
        Ok(entries) => entries,
        Err(e) => return unreadable(findings, path, e),
    };
    let mut children: Vec<PathBuf> = entries.into_iter().map(|e| e.path()).collect();
    children.sort();
    for child in children {
        match std::fs::metadata(&child) {
            Ok(m) if m.is_dir() => collect_toml_files(&child, files, findings),
            Ok(_) if child.extension().is_some_and(|e| e == "toml") => files.push(child),
            Ok(_) => {}
            Err(e) => unreadable(findings, &child, e),
        }
    }
}

fn unreadable(findings: &mut Vec<Finding>, path: &Path, e: std::io::Error) {
    findings.push(Finding {
        severity: Severity::Error,
        error: LocatedError::in_file(path, format!("cannot read: {e}")),
    });
}
