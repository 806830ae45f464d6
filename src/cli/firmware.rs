//! `iotmc-gateway firmware ...`: vendor keys, signing, inspecting and importing images.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Subcommand;

use crate::firmware::manifest::{Envelope, EnvelopeError, Manifest, envelope_path_for};
use crate::firmware::signing::{self, TrustedKeys};
use crate::firmware::store::{ImageStore, ImportCheck, ImportError, hash_file, hex};
use crate::profile::Catalog;

/// `firmware` subcommands.
#[derive(Debug, Subcommand)]
pub enum FirmwareCommand {
    /// Make a vendor signing key pair: DIR/NAME.key (private, mode 0600) and DIR/NAME.pub.
    Keygen {
        /// Where to write the two files.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The key id (the files' stem): letters, digits, `.`, `_` and `-`.
        name: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Sign an image: writes its manifest (size, SHA-256, targets, version), signed, to
    /// IMAGE.dsse.json.
    #[command(disable_version_flag = true)]
    Sign {
        /// The vendor's private key (made by `keygen`; mode 0600).
        #[arg(long)]
        key: PathBuf,
        /// A profile id the image is for; repeat for several.
        #[arg(long = "target", required = true)]
        targets: Vec<String>,
        /// The version the image installs, as the device reports it.
        #[arg(long)]
        version: String,
        /// Release date, YYYY-MM-DD.
        #[arg(long)]
        release_date: String,
        /// A security fix: may use the shorter emergency probation.
        #[arg(long)]
        emergency: bool,
        /// Lowest hardware revision the image runs on.
        #[arg(long)]
        min_hardware: Option<String>,
        /// Lowest bootloader version the image needs.
        #[arg(long)]
        min_bootloader: Option<String>,
        /// Write the envelope here instead of IMAGE.dsse.json.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace an existing envelope file.
        #[arg(long)]
        force: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// The image file.
        image: PathBuf,
    },
    /// Show an image's manifest and check it, its signature (with --trust or --config) and the
    /// image's bytes; exit 1 if anything does not hold.
    Inspect {
        /// The envelope (default: IMAGE.dsse.json).
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// Check the signature against the public keys (*.pub) in this directory.
        #[arg(long, conflicts_with = "config")]
        trust: Option<PathBuf>,
        /// Check the signature against this gateway config's `[trust] firmware_keys`.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// The image file.
        image: PathBuf,
    },
    /// Check an image and add it to a gateway's image store. Works while the gateway runs: it
    /// offers the image within `[firmware] scan_interval`.
    Import {
        /// The gateway config file (state directory, trusted keys, profiles, size limit).
        #[arg(long, short, default_value = "/etc/iotmc-gateway/gateway.toml")]
        config: PathBuf,
        /// The envelope (default: IMAGE.dsse.json).
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// The image file.
        image: PathBuf,
    },
}

pub(super) fn run(command: FirmwareCommand) -> anyhow::Result<ExitCode> {
    match command {
        FirmwareCommand::Keygen { dir, name, json } => keygen(&dir, &name, json),
        FirmwareCommand::Sign {
            key,
            targets,
            version,
            release_date,
            emergency,
            min_hardware,
            min_bootloader,
            out,
            force,
            json,
            image,
        } => {
            let (size, sha256) = hash_file(&image)
                .with_context(|| format!("cannot read the image {}", image.display()))?;
            let manifest = Manifest {
                targets,
                version,
                release_date,
                size,
                sha256: hex(&sha256),
                emergency,
                min_hardware,
                min_bootloader,
            };
            let out = out.unwrap_or_else(|| envelope_path_for(&image));
            sign(&key, &manifest, &image, &out, force, json)
        }
        FirmwareCommand::Inspect {
            manifest,
            trust,
            config,
            json,
            image,
        } => {
            let trust = match (trust, config) {
                (Some(dir), _) => Some((TrustedKeys::load_dir_typed(&dir).map_err(said)?, dir)),
                (None, Some(config)) => {
                    let dir = trust_dir(&config, &super::load_config(&config)?)?;
                    Some((TrustedKeys::load_dir_typed(&dir).map_err(said)?, dir))
                }
                (None, None) => None,
            };
            let manifest = manifest.unwrap_or_else(|| envelope_path_for(&image));
            image_exists(&image)?;
            inspect(&image, &manifest, trust.as_ref(), json)
        }
        FirmwareCommand::Import {
            config,
            manifest,
            json,
            image,
        } => {
            let manifest = manifest.unwrap_or_else(|| envelope_path_for(&image));
            image_exists(&image)?;
            import(&config, &image, &manifest, json)
        }
    }
}

fn keygen(dir: &Path, name: &str, json: bool) -> anyhow::Result<ExitCode> {
    let (private, public) = signing::generate(dir, name).map_err(said)?;
    if json {
        let out = serde_json::json!({
            "key_id": name,
            "private_key": private,
            "public_key": public,
        });
        println!("{out:#}");
    } else {
        println!("private key: {}", private.display());
        println!("public key:  {}", public.display());
        println!(
            "copy {name}.pub into the gateway's `[trust] firmware_keys` directory; keep {name}.key offline (it signs firmware every gateway trusting {name}.pub installs)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn sign(
    key: &Path,
    manifest: &Manifest,
    image: &Path,
    out: &Path,
    force: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let envelope = signing::sign(key, manifest).map_err(said)?;
    let text = format!("{}\n", envelope.to_json_pretty());
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let written = options
        .open(out)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()));
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => bail!(
            "{} already exists; pass --force to replace it, or --out FILE to write elsewhere",
            out.display()
        ),
        Err(e) => bail!("cannot write {}: {e}", out.display()),
    }
    let key_id = envelope.key_ids().join(", ");
    if json {
        let out = serde_json::json!({
            "image": image,
            "envelope": out,
            "key_id": key_id,
            "manifest": manifest,
        });
        println!("{out:#}");
    } else {
        println!(
            "signed {} ({} bytes, SHA-256 {}) as version {} for {} with key `{key_id}`",
            image.display(),
            manifest.size,
            manifest.sha256,
            manifest.version,
            manifest.targets.join(", ")
        );
        println!("wrote {}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The outcome of one `inspect` check.
#[derive(Debug)]
enum Finding {
    Holds(String),
    Fails(String),
    NotChecked(String),
}

impl Finding {
    fn json(&self) -> serde_json::Value {
        match self {
            Self::Holds(text) => serde_json::json!({ "ok": true, "detail": text }),
            Self::Fails(text) => serde_json::json!({ "ok": false, "detail": text }),
            Self::NotChecked(text) => serde_json::json!({ "ok": null, "detail": text }),
        }
    }

    fn text(&self) -> String {
        match self {
            Self::Holds(text) => format!("ok: {text}"),
            Self::Fails(text) => format!("FAILED: {text}"),
            Self::NotChecked(text) => format!("not checked: {text}"),
        }
    }
}

fn inspect(
    image: &Path,
    manifest_path: &Path,
    trust: Option<&(TrustedKeys, PathBuf)>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let envelope = read_envelope(image, manifest_path)?;
    let manifest = envelope
        .unverified_manifest()
        .with_context(|| format!("{}", manifest_path.display()))?;

    let manifest_check = match manifest.check() {
        Ok(()) => Finding::Holds("the manifest's fields make sense".into()),
        Err(e) => Finding::Fails(format!("the manifest is not acceptable: {e}")),
    };
    let signature = match trust {
        None => Finding::NotChecked("give --trust DIR or --config gateway.toml".into()),
        Some((keys, dir)) => match keys.verify(&envelope) {
            Ok((_, key_id)) => Finding::Holds(format!(
                "signed by `{key_id}`, trusted in {}",
                dir.display()
            )),
            // A manifest that verifies but fails its check is reported by `manifest_check`.
            Err(ImportError::Manifest(_)) => {
                Finding::Holds(format!("signed by a key trusted in {}", dir.display()))
            }
            Err(e) => Finding::Fails(e.to_string()),
        },
    };
    let (size, sha256) =
        hash_file(image).with_context(|| format!("cannot read the image {}", image.display()))?;
    let sha256 = hex(&sha256);
    let bytes = if size == manifest.size && sha256 == manifest.sha256 {
        Finding::Holds(format!(
            "{size} bytes with SHA-256 {sha256}, as the manifest says"
        ))
    } else {
        Finding::Fails(format!(
            "the image is {size} bytes with SHA-256 {sha256}, but the manifest says {} bytes with SHA-256 {}",
            manifest.size, manifest.sha256
        ))
    };
    let failed = [&manifest_check, &signature, &bytes]
        .iter()
        .any(|f| matches!(f, Finding::Fails(_)));

    if json {
        let out = serde_json::json!({
            "image": image,
            "envelope": manifest_path,
            "manifest": manifest,
            "key_ids": envelope.key_ids(),
            "checks": {
                "manifest": manifest_check.json(),
                "signature": signature.json(),
                "image": bytes.json(),
            },
            "ok": !failed,
        });
        println!("{out:#}");
    } else {
        println!("image           {}", image.display());
        println!("envelope        {}", manifest_path.display());
        println!("version         {}", manifest.version);
        println!("release date    {}", manifest.release_date);
        println!("targets         {}", manifest.targets.join(", "));
        println!("size            {}", manifest.size);
        println!("sha256          {}", manifest.sha256);
        println!(
            "emergency       {}",
            if manifest.emergency { "yes" } else { "no" }
        );
        if let Some(v) = &manifest.min_hardware {
            println!("min hardware    {v}");
        }
        if let Some(v) = &manifest.min_bootloader {
            println!("min bootloader  {v}");
        }
        println!("key ids         {}", envelope.key_ids().join(", "));
        println!("manifest        {}", manifest_check.text());
        println!("signature       {}", signature.text());
        println!("image bytes     {}", bytes.text());
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// An error as its own message only: the firmware errors already name their cause, which
/// `error: {e:#}` would print a second time.
fn said(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// Reads the envelope of `image`; a missing one is an unsigned image.
fn read_envelope(image: &Path, path: &Path) -> anyhow::Result<Envelope> {
    match Envelope::read_file(path) {
        Ok(envelope) => Ok(envelope),
        Err(EnvelopeError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "{}: refused: no manifest at {}: the image is unsigned, or its manifest lies elsewhere (give --manifest FILE); sign it with `iotmc-gateway firmware sign`",
                image.display(),
                path.display()
            )
        }
        Err(e) => bail!(
            "{}: refused: the manifest {} cannot be read: {e}",
            image.display(),
            path.display()
        ),
    }
}

/// Fails naming the image when it cannot be read (before its envelope is looked for, so a
/// mistyped image name is not reported as a missing manifest).
fn image_exists(image: &Path) -> anyhow::Result<()> {
    std::fs::File::open(image)
        .map(drop)
        .with_context(|| format!("cannot read the image {}", image.display()))
}

/// The `[trust] firmware_keys` directory of a config.
fn trust_dir(path: &Path, config: &crate::config::Config) -> anyhow::Result<PathBuf> {
    match &config.trust.firmware_keys {
        Some(dir) => Ok(dir.clone()),
        None => bail!(
            "{}: `[trust] firmware_keys` is not set; set it to a directory holding the vendors' public keys (<key id>.pub, made by `iotmc-gateway firmware keygen`)",
            path.display()
        ),
    }
}

fn import(
    config_path: &Path,
    image: &Path,
    manifest_path: &Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let trust = TrustedKeys::load_dir_typed(&trust_dir(config_path, &config)?).map_err(said)?;
    let adapters = super::adapters_for(&config)?;
    let (catalog, _findings) = Catalog::load(&config.gateway.profile_dirs, &adapters);
    let check = ImportCheck::for_catalog(config.firmware.max_image_size, &catalog);
    let envelope = read_envelope(image, manifest_path)?;
    let store = ImageStore::open(&config.gateway.state_dir).map_err(said)?;
    let stored = match store.import_file(image, &envelope, &trust, &check) {
        Ok(stored) => stored,
        Err(e @ ImportError::ReadImage { .. }) => bail!("{e}"),
        Err(e) => {
            let mut message = format!("{}: {e}", image.display());
            if let ImportError::WrongTarget { targets, .. } = &e {
                for target in targets {
                    if let Some(file) = catalog.rejected(target) {
                        message.push_str(&format!(
                            "; the profile `{target}` in {} is left out because of errors: run `iotmc-gateway config check {}`",
                            file.display(),
                            config_path.display()
                        ));
                    }
                }
            }
            bail!(message);
        }
    };
    let unknown: Vec<&String> = stored
        .manifest
        .targets
        .iter()
        .filter(|t| !check.profiles.contains_key(*t))
        .collect();
    let scan = humantime::format_duration(config.firmware.scan_interval).to_string();
    let stored_at = store.dir().join(format!("{}.bin", stored.sha256_hex()));
    if json {
        let out = serde_json::json!({
            "sha256": stored.sha256_hex(),
            "version": stored.manifest.version,
            "release_date": stored.manifest.release_date,
            "targets": stored.manifest.targets,
            "size": stored.manifest.size,
            "emergency": stored.manifest.emergency,
            "key_id": stored.key_id,
            "stored": stored_at,
            "scan_interval": scan,
        });
        println!("{out:#}");
    } else {
        let m = &stored.manifest;
        println!(
            "imported firmware {} ({}) for {}",
            m.version,
            m.release_date,
            m.targets.join(", ")
        );
        println!("  sha256     {}", stored.sha256_hex());
        println!("  size       {} bytes", m.size);
        println!("  signed by  {}", stored.key_id);
        println!("  stored as  {}", stored_at.display());
        for target in unknown {
            println!(
                "  note: `{target}` is not a profile with firmware support on this gateway; its devices are not offered the image here"
            );
        }
        println!(
            "a running gateway offers it to the matching devices within {scan} ([firmware] scan_interval)"
        );
    }
    Ok(ExitCode::SUCCESS)
}
