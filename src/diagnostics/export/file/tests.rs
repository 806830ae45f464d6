use std::time::{Duration, UNIX_EPOCH};

use super::*;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn limits(directory: &Path, max_size: u64, keep: u32) -> FileExport {
    FileExport {
        directory: directory.to_owned(),
        max_size,
        max_age: DAY,
        keep,
    }
}

/// 2026-11-24T00:00:00Z
fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_478_400)
}

/// A line of `len` bytes (plus its newline when written) that says which it is.
fn line(tag: &str, len: usize) -> String {
    format!("{tag:-<len$}")
}

fn lines_of(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim_end_matches('-').to_owned())
        .collect()
}

#[test]
fn the_rotation_decision_should_follow_size_then_age() {
    let l = limits(Path::new("/x"), 100, 3);
    // Exactly at max_size is allowed; one byte more is not.
    assert_eq!(rotation_due(60, t0(), 40, t0(), &l), None);
    assert_eq!(rotation_due(60, t0(), 41, t0(), &l), Some(Rotation::Size));
    // An empty file takes any line, however long.
    assert_eq!(rotation_due(0, t0(), 500, t0(), &l), None);
    // Age: due at max_age, not a millisecond before.
    let almost = t0() + DAY - Duration::from_millis(1);
    assert_eq!(rotation_due(10, t0(), 1, almost, &l), None);
    assert_eq!(
        rotation_due(10, t0(), 1, t0() + DAY, &l),
        Some(Rotation::Age)
    );
    // A clock that went back counts as no time passed.
    assert_eq!(rotation_due(10, t0(), 1, t0() - DAY * 3, &l), None);
}

#[test]
fn a_line_that_would_pass_max_size_should_go_to_a_fresh_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut file = RotatingFile::new(&limits(dir.path(), 100, 3), "hvac");
    // Three lines of 30 bytes and a newline: 93 bytes, within 100.
    let batch: Vec<_> = ["a", "b", "c"].iter().map(|t| line(t, 30)).collect();
    file.write_lines(&batch, t0()).unwrap();
    assert_eq!(lines_of(file.path()), ["a", "b", "c"]);
    assert!(!file.rotated_path(1).exists());
    // The fourth would make 124.
    file.write_lines(&[line("d", 30)], t0()).unwrap();
    assert_eq!(file.path(), dir.path().join("hvac.jsonl"));
    assert_eq!(lines_of(file.path()), ["d"]);
    assert_eq!(lines_of(&dir.path().join("hvac.jsonl.1")), ["a", "b", "c"]);
}

#[test]
fn a_file_started_max_age_ago_should_be_rotated_before_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut file = RotatingFile::new(&limits(dir.path(), 1 << 20, 3), "gateway");
    file.write_lines(&[line("first", 10)], t0()).unwrap();
    let almost = t0() + DAY - Duration::from_secs(1);
    assert!(!file.is_old(almost));
    file.write_lines(&[line("second", 10)], almost).unwrap();
    assert_eq!(lines_of(file.path()), ["first", "second"]);
    assert!(file.is_old(t0() + DAY));
    file.write_lines(&[line("third", 10)], t0() + DAY).unwrap();
    assert_eq!(lines_of(file.path()), ["third"]);
    assert_eq!(lines_of(&file.rotated_path(1)), ["first", "second"]);
    // The new file's age counts from its start.
    assert!(!file.is_old(t0() + DAY + DAY / 2));
}

#[test]
fn an_idle_old_file_should_be_rotated_without_a_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut file = RotatingFile::new(&limits(dir.path(), 1 << 20, 3), "gateway");
    // Nothing written yet: nothing to rotate, nothing created.
    file.rotate_if_old(t0() + DAY * 2).unwrap();
    assert!(!file.path().exists());
    file.write_lines(&[line("old", 10)], t0()).unwrap();
    file.rotate_if_old(t0() + DAY).unwrap();
    assert_eq!(lines_of(&file.rotated_path(1)), ["old"]);
    assert_eq!(fs::metadata(file.path()).unwrap().len(), 0);
    // An empty file past its age restarts its clock instead of being rotated.
    assert!(!file.is_old(t0() + DAY * 3));
    file.write_lines(&[line("new", 10)], t0() + DAY * 3)
        .unwrap();
    assert_eq!(lines_of(file.path()), ["new"]);
    assert!(!file.rotated_path(2).exists());
    assert!(!file.is_old(t0() + DAY * 3 + DAY / 2));
}

#[test]
fn rotation_should_keep_only_keep_files_and_delete_older_ones() {
    let dir = tempfile::tempdir().unwrap();
    // A leftover of a larger `keep`, and an unrelated file that must stay.
    fs::write(dir.path().join("g.jsonl.7"), "stale\n").unwrap();
    fs::write(dir.path().join("g.jsonl.notes"), "mine\n").unwrap();
    let mut file = RotatingFile::new(&limits(dir.path(), 20, 2), "g");
    // Each 15-byte line fills a file: every write after the first rotates.
    for tag in ["1", "2", "3", "4", "5"] {
        file.write_lines(&[line(tag, 15)], t0()).unwrap();
    }
    assert_eq!(lines_of(file.path()), ["5"]);
    assert_eq!(lines_of(&file.rotated_path(1)), ["4"]);
    assert_eq!(lines_of(&file.rotated_path(2)), ["3"]);
    assert!(!file.rotated_path(3).exists());
    assert!(!dir.path().join("g.jsonl.7").exists());
    assert!(dir.path().join("g.jsonl.notes").exists());
}

#[test]
fn the_age_should_survive_a_restart_through_the_started_file() {
    let dir = tempfile::tempdir().unwrap();
    let l = limits(dir.path(), 1 << 20, 3);
    let mut file = RotatingFile::new(&l, "gateway");
    file.write_lines(&[line("before", 10)], t0()).unwrap();
    assert_eq!(
        fs::read_to_string(dir.path().join("gateway.jsonl.started")).unwrap(),
        "2026-11-24T00:00:00.000Z\n"
    );
    drop(file);
    // A new run, half a day later: same file, same start.
    let mut file = RotatingFile::new(&l, "gateway");
    file.write_lines(&[line("after", 10)], t0() + DAY / 2)
        .unwrap();
    assert_eq!(lines_of(file.path()), ["before", "after"]);
    assert!(!file.is_old(t0() + DAY - Duration::from_secs(1)));
    assert!(file.is_old(t0() + DAY));
}

#[test]
fn without_a_started_file_the_age_should_count_from_the_modification_time() {
    let dir = tempfile::tempdir().unwrap();
    let l = limits(dir.path(), 1 << 20, 3);
    fs::write(dir.path().join("gateway.jsonl"), "{}\n").unwrap();
    let modified = fs::metadata(dir.path().join("gateway.jsonl"))
        .unwrap()
        .modified()
        .unwrap();
    let mut file = RotatingFile::new(&l, "gateway");
    file.write_lines(&[line("x", 5)], modified).unwrap();
    assert!(!file.is_old(modified + DAY - Duration::from_secs(1)));
    assert!(file.is_old(modified + DAY));
    // A garbled `.started` file is treated the same way.
    drop(file);
    fs::write(dir.path().join("gateway.jsonl.started"), "yesterday\n").unwrap();
    let mut file = RotatingFile::new(&l, "gateway");
    file.write_lines(&[line("y", 5)], modified).unwrap();
    assert!(file.is_old(modified + DAY + Duration::from_secs(5)));
}

#[test]
fn a_missing_directory_should_be_created_with_mode_0750() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("export/logs");
    let mut file = RotatingFile::new(&limits(&nested, 1 << 20, 3), "gateway");
    file.write_lines(&[line("x", 5)], t0()).unwrap();
    let mode = fs::metadata(&nested).unwrap().permissions().mode() & 0o777;
    // The umask may take bits away, never add them.
    assert_eq!(mode & !0o750, 0, "{mode:o}");
    let file_mode = fs::metadata(file.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(file_mode & !0o640, 0, "{file_mode:o}");
}

#[test]
fn an_unusable_directory_should_be_named_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file where the directory should be.
    let blocked = dir.path().join("blocked");
    fs::write(&blocked, "").unwrap();
    let mut file = RotatingFile::new(&limits(&blocked.join("logs"), 1 << 20, 3), "gateway");
    let error = file.write_lines(&[line("x", 5)], t0()).unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, FileError::Directory { .. }), "{text}");
    assert!(
        text.contains(&*blocked.join("logs").to_string_lossy()),
        "{text}"
    );
    assert!(text.contains("file.directory"), "{text}");
    // Once the obstacle is gone, the next write works.
    fs::remove_file(&blocked).unwrap();
    file.write_lines(&[line("x", 5)], t0()).unwrap();
    assert_eq!(lines_of(file.path()), ["x"]);
}
