//! `iotmc-gateway firmware keygen|sign|inspect|import` as an integrator and a vendor use them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step is a failed test

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

const TARGET: &str = "iotmc-demo-controller";
/// `firmware.max_image_size` of the demo controller's profile.
const TARGET_LIMIT: usize = 1_048_576;

fn gateway(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iotmc-gateway"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A vendor with a key, and a gateway config trusting it.
struct Bench {
    dir: tempfile::TempDir,
}

impl Bench {
    fn new() -> Self {
        let bench = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        let output = gateway(&["firmware", "keygen", "--dir", s(&bench.keys()), "vendor"]);
        assert!(output.status.success(), "{}", stderr(&output));
        let trust = bench.path("trust");
        std::fs::create_dir(&trust).unwrap();
        std::fs::copy(bench.keys().join("vendor.pub"), trust.join("vendor.pub")).unwrap();
        let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("device-profiles");
        std::fs::write(
            bench.config(),
            format!(
                "[gateway]\nid = \"gw\"\nname = \"Gateway\"\nstate_dir = \"state\"\nprofile_dirs = [{profiles:?}]\n\n[trust]\nfirmware_keys = \"trust\"\n"
            ),
        )
        .unwrap();
        bench
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn keys(&self) -> PathBuf {
        self.path("vendor-keys")
    }

    fn config(&self) -> PathBuf {
        self.path("gateway.toml")
    }

    fn images(&self) -> PathBuf {
        self.path("state/firmware/images")
    }

    /// The names in the store (none when it does not exist yet).
    fn stored(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.images())
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Writes an image of `len` bytes.
    fn image(&self, name: &str, len: usize) -> PathBuf {
        let path = self.path(name);
        let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Signs `image` for `target` with `key`; the envelope goes next to the image.
    fn sign_with(&self, key: &Path, image: &Path, target: &str) {
        let output = gateway(&[
            "firmware",
            "sign",
            "--key",
            s(key),
            "--target",
            target,
            "--version",
            "1.2.0",
            "--release-date",
            "2026-03-01",
            s(image),
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
    }

    fn sign(&self, image: &Path) {
        self.sign_with(&self.keys().join("vendor.key"), image, TARGET);
    }

    fn import(&self, image: &Path) -> Output {
        gateway(&[
            "firmware",
            "import",
            "--config",
            s(&self.config()),
            s(image),
        ])
    }

    /// Imports `image`, expecting a refusal that says `expected` and leaves the store as it was.
    fn refused(&self, image: &Path, expected: &str) {
        let before = self.stored();
        let output = self.import(image);
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{text}");
        assert!(
            text.starts_with(&format!("error: {}: refused: ", image.display())),
            "{text}"
        );
        assert!(text.contains(expected), "{text:?} lacks {expected:?}");
        assert_eq!(text.lines().count(), 1, "one line: {text}");
        assert_eq!(self.stored(), before, "the refusal changed the store");
    }
}

fn envelope_of(image: &Path) -> PathBuf {
    let mut name = image.as_os_str().to_owned();
    name.push(".dsse.json");
    PathBuf::from(name)
}

/// Edits the envelope next to `image` as JSON.
fn edit_envelope(image: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = envelope_of(image);
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut json);
    std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
}

#[test]
fn keygen_sign_inspect_and_import_should_take_an_image_into_the_store() {
    let bench = Bench::new();
    let key = bench.keys().join("vendor.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let image = bench.image("fw-1.2.0.bin", 5000);
    bench.sign(&image);
    let envelope = envelope_of(&image);
    assert!(envelope.exists());

    let output = gateway(&[
        "firmware",
        "inspect",
        "--trust",
        s(&bench.path("trust")),
        s(&image),
    ]);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    assert!(text.contains("version         1.2.0"), "{text}");
    assert!(
        text.contains(&format!("targets         {TARGET}")),
        "{text}"
    );
    assert!(
        text.contains("signature       ok: signed by `vendor`"),
        "{text}"
    );
    assert!(text.contains("image bytes     ok: 5000 bytes"), "{text}");

    let output = gateway(&[
        "firmware",
        "inspect",
        "--config",
        s(&bench.config()),
        "--json",
        s(&image),
    ]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["ok"], true, "{json}");
    assert_eq!(json["checks"]["signature"]["ok"], true, "{json}");
    assert_eq!(json["manifest"]["size"], 5000);
    let sha256 = json["manifest"]["sha256"].as_str().unwrap().to_owned();

    let output = bench.import(&image);
    let text = stdout(&output);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        text.starts_with(&format!(
            "imported firmware 1.2.0 (2026-03-01) for {TARGET}"
        )),
        "{text}"
    );
    assert!(text.contains(&format!("sha256     {sha256}")), "{text}");
    assert!(
        text.contains("within 5s ([firmware] scan_interval)"),
        "{text}"
    );
    assert_eq!(
        bench.stored(),
        [format!("{sha256}.bin"), format!("{sha256}.dsse.json")]
    );
    assert_eq!(
        std::fs::read(bench.images().join(format!("{sha256}.bin"))).unwrap(),
        std::fs::read(&image).unwrap()
    );

    // Importing it again is not an error, and adds nothing.
    let output = gateway(&[
        "firmware",
        "import",
        "--config",
        s(&bench.config()),
        "--json",
        s(&image),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["sha256"], sha256.as_str());
    assert_eq!(json["key_id"], "vendor");
    assert_eq!(bench.stored().len(), 2);
}

#[test]
fn keygen_should_say_where_each_key_goes_and_never_overwrite_one() {
    let bench = Bench::new();
    let output = gateway(&["firmware", "keygen", "--dir", s(&bench.keys()), "second"]);
    let text = stdout(&output);
    assert!(text.contains("second.key"), "{text}");
    assert!(
        text.contains("copy second.pub into the gateway's `[trust] firmware_keys` directory; keep second.key offline"),
        "{text}"
    );
    let before = std::fs::read(bench.keys().join("vendor.key")).unwrap();
    let output = gateway(&["firmware", "keygen", "--dir", s(&bench.keys()), "vendor"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("vendor.key already exists"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        std::fs::read(bench.keys().join("vendor.key")).unwrap(),
        before
    );
}

#[test]
fn sign_should_refuse_to_overwrite_an_envelope_unless_forced() {
    let bench = Bench::new();
    let image = bench.image("fw.bin", 100);
    bench.sign(&image);
    let key = bench.keys().join("vendor.key");
    let args = |force: bool| {
        let mut args = vec![
            "firmware",
            "sign",
            "--key",
            s(&key),
            "--target",
            TARGET,
            "--version",
            "1.3.0",
            "--release-date",
            "2026-04-01",
            "--emergency",
        ];
        if force {
            args.push("--force");
        }
        args.push(s(&image));
        args
    };
    let output = gateway(&args(false));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("fw.bin.dsse.json already exists; pass --force"),
        "{}",
        stderr(&output)
    );
    let output = gateway(&args(true));
    assert!(output.status.success(), "{}", stderr(&output));
    let output = gateway(&["firmware", "inspect", "--json", s(&image)]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["manifest"]["version"], "1.3.0");
    assert_eq!(json["manifest"]["emergency"], true);
    assert_eq!(json["checks"]["signature"]["ok"], serde_json::Value::Null);
}

#[test]
fn sign_should_refuse_a_key_its_group_can_read() {
    let bench = Bench::new();
    let key = bench.keys().join("vendor.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let image = bench.image("fw.bin", 100);
    let output = gateway(&[
        "firmware",
        "sign",
        "--key",
        s(&key),
        "--target",
        TARGET,
        "--version",
        "1",
        "--release-date",
        "2026-04-01",
        s(&image),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(&format!("run `chmod 600 {}`", key.display())),
        "{}",
        stderr(&output)
    );
    assert!(!envelope_of(&image).exists());
}

#[test]
fn import_should_refuse_an_unsigned_image() {
    let bench = Bench::new();
    let image = bench.image("fw.bin", 100);
    bench.refused(&image, "no manifest at");

    bench.sign(&image);
    edit_envelope(&image, |json| json["signatures"] = serde_json::json!([]));
    bench.refused(&image, "the image is unsigned");
}

#[test]
fn import_should_refuse_an_image_signed_by_an_untrusted_key() {
    let bench = Bench::new();
    let output = gateway(&["firmware", "keygen", "--dir", s(&bench.keys()), "stranger"]);
    assert!(output.status.success());
    let image = bench.image("fw.bin", 100);
    bench.sign_with(&bench.keys().join("stranger.key"), &image, TARGET);
    bench.refused(
        &image,
        "signed by `stranger`, which is not a trusted firmware key (trusted: `vendor`)",
    );
}

#[test]
fn import_should_refuse_a_mis_signed_image() {
    let bench = Bench::new();
    let image = bench.image("fw.bin", 100);
    bench.sign(&image);
    edit_envelope(&image, |json| {
        let payload = STANDARD.decode(json["payload"].as_str().unwrap()).unwrap();
        let mut manifest: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        manifest["version"] = "9.9.9".into();
        json["payload"] = STANDARD
            .encode(serde_json::to_vec(&manifest).unwrap())
            .into();
    });
    bench.refused(
        &image,
        "the signature by key `vendor` does not match the manifest",
    );

    let output = gateway(&[
        "firmware",
        "inspect",
        "--trust",
        s(&bench.path("trust")),
        s(&image),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("signature       FAILED: refused: the signature by key `vendor`"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn import_should_refuse_an_image_for_a_profile_without_firmware_support() {
    let bench = Bench::new();
    let image = bench.image("fw.bin", 100);
    bench.sign_with(&bench.keys().join("vendor.key"), &image, "eastron-sdm120");
    bench.refused(
        &image,
        "the image is for `eastron-sdm120`, and none of these is a profile with firmware support on this gateway (known: ",
    );
}

#[test]
fn import_should_refuse_an_image_larger_than_its_profile_allows() {
    let bench = Bench::new();
    let image = bench.image("fw.bin", TARGET_LIMIT + 1);
    bench.sign(&image);
    bench.refused(
        &image,
        &format!(
            "the image is too large: {} bytes, but `firmware.max_image_size` of the profile `{TARGET}` allows at most {TARGET_LIMIT}",
            TARGET_LIMIT + 1
        ),
    );
}

#[test]
fn import_should_refuse_a_corrupted_image() {
    let bench = Bench::new();
    let image = bench.image("fw.bin", 1000);
    bench.sign(&image);
    let mut bytes = std::fs::read(&image).unwrap();
    bytes[500] ^= 0x55;
    std::fs::write(&image, &bytes).unwrap();
    bench.refused(
        &image,
        "the image is corrupted: it is 1000 bytes with SHA-256 ",
    );

    let output = gateway(&["firmware", "inspect", s(&image)]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("image bytes     FAILED: the image is 1000 bytes"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn import_should_not_disturb_images_already_in_the_store() {
    let bench = Bench::new();
    let good = bench.image("good.bin", 100);
    bench.sign(&good);
    assert!(bench.import(&good).status.success());
    assert_eq!(bench.stored().len(), 2);

    let bad = bench.image("bad.bin", 200);
    bench.sign(&bad);
    std::fs::write(&bad, b"something else").unwrap();
    bench.refused(&bad, "the image is corrupted");
}

#[test]
fn import_without_trusted_keys_configured_should_name_the_missing_setting() {
    let bench = Bench::new();
    let config = std::fs::read_to_string(bench.config()).unwrap();
    std::fs::write(
        bench.config(),
        config.replace("[trust]\nfirmware_keys = \"trust\"\n", ""),
    )
    .unwrap();
    let image = bench.image("fw.bin", 100);
    bench.sign(&image);
    let output = bench.import(&image);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("gateway.toml: `[trust] firmware_keys` is not set"),
        "{}",
        stderr(&output)
    );
    assert!(bench.stored().is_empty());
}

#[test]
fn import_with_a_broken_config_should_list_its_errors() {
    let bench = Bench::new();
    std::fs::write(
        bench.config(),
        "[gateway]\nid = \"gw\"\nname = \"G\"\nstate_dir = \"s\"\ncolour = 1\n",
    )
    .unwrap();
    let image = bench.image("fw.bin", 100);
    let output = bench.import(&image);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output)
            .contains("gateway.toml:5:1: field `gateway.colour`: unknown field `colour`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_missing_image_should_be_named_not_reported_as_unsigned() {
    let bench = Bench::new();
    let missing = bench.path("typo.bin");
    for args in [
        vec![
            "firmware",
            "import",
            "--config",
            s(&bench.config()),
            s(&missing),
        ],
        vec!["firmware", "inspect", s(&missing)],
    ] {
        let output = gateway(&args);
        assert_eq!(output.status.code(), Some(1));
        assert!(
            stderr(&output).starts_with(&format!(
                "error: cannot read the image {}: No such file or directory",
                missing.display()
            )),
            "{}",
            stderr(&output)
        );
    }
    assert!(bench.stored().is_empty());
}
