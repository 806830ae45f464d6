//! One export sink's task: drains the rings of the sink's devices into its writer, reports
//! records lost before export, and backs off while the writer fails.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::ExportError;
use super::file::RotatingFile;
use super::syslog::SyslogSender;
use crate::config::{FileExport, SinkKind, SinkSpec};
use crate::diagnostics::engine::DiagnosticsEngine;
use crate::diagnostics::record::{Category, Event, LogRecord, Severity};
use crate::utc::unix_ms;

/// The exporter's pace.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timing {
    /// Longest wait between rounds when no records arrive.
    pub(super) tick: Duration,
    /// First wait after a failure; doubles at each further failure.
    pub(super) backoff_first: Duration,
    /// Longest wait after a failure.
    pub(super) backoff_max: Duration,
    /// Most records of one device written per batch.
    pub(super) batch: usize,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(1),
            backoff_first: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            batch: 256,
        }
    }
}

/// Where a sink writes.
#[derive(Debug)]
pub(super) enum Writer {
    /// Rotating files; `None` while the file is with the blocking writer (or was lost with it).
    File {
        file: Option<RotatingFile>,
        limits: FileExport,
        scope: String,
    },
    /// A syslog collector.
    Syslog(SyslogSender),
}

impl Writer {
    pub(super) fn new(spec: &SinkSpec, hostname: &str) -> Self {
        match &spec.kind {
            SinkKind::File(limits) => Self::File {
                file: Some(RotatingFile::new(limits, spec.scope.name())),
                limits: limits.clone(),
                scope: spec.scope.name().to_owned(),
            },
            SinkKind::Syslog(export) => Self::Syslog(SyslogSender::new(export, hostname)),
        }
    }

    /// What to check when records are lost, for the warning.
    fn what_to_check(spec: &SinkSpec) -> String {
        match &spec.kind {
            SinkKind::File(f) => format!("the file system of {}", f.directory.display()),
            SinkKind::Syslog(s) => format!("the collector {}", s.collector),
        }
    }

    /// Writes `records` of `device`, in order.
    async fn write(&mut self, device: &str, records: &[LogRecord]) -> Result<(), ExportError> {
        match self {
            Self::Syslog(sender) => Ok(sender.send(device, records).await?),
            Self::File { .. } => {
                let lines: Vec<String> = records.iter().map(|r| r.json_line(device)).collect();
                self.with_file(move |file, now| file.write_lines(&lines, now))
                    .await
            }
        }
    }

    /// Rotates an idle file that got old.
    async fn maintain(&mut self) -> Result<(), ExportError> {
        match self {
            Self::File { file: Some(f), .. } if f.is_old(SystemTime::now()) => {
                self.with_file(|file, now| file.rotate_if_old(now)).await
            }
            _ => Ok(()),
        }
    }

    /// Runs `work` on the file in a blocking thread (file systems on SD cards and USB sticks
    /// can stall).
    async fn with_file(
        &mut self,
        work: impl FnOnce(&mut RotatingFile, SystemTime) -> Result<(), super::file::FileError>
        + Send
        + 'static,
    ) -> Result<(), ExportError> {
        let Self::File {
            file,
            limits,
            scope,
        } = self
        else {
            return Ok(());
        };
        let mut taken = file
            .take()
            .unwrap_or_else(|| RotatingFile::new(limits, scope));
        let done = tokio::task::spawn_blocking(move || {
            let result = work(&mut taken, SystemTime::now());
            (taken, result)
        })
        .await;
        match done {
            Ok((back, result)) => {
                *file = Some(back);
                Ok(result?)
            }
            Err(e) => Err(ExportError::WriterStopped(e.to_string())),
        }
    }
}

/// Records lost to the sink that it has not been told about yet.
#[derive(Debug, Default)]
struct Lost {
    /// How many.
    count: u64,
    /// Whether the ring already holds a warning about them.
    warned: bool,
}

/// What one round did.
#[derive(Debug, Default)]
struct Round {
    /// Something was written.
    wrote: bool,
    /// A device had more records than one batch.
    more: bool,
}

/// One sink's exporter.
#[derive(Debug)]
pub(super) struct Exporter {
    engine: DiagnosticsEngine,
    sink: usize,
    label: String,
    what_to_check: String,
    writer: Writer,
    timing: Timing,
    lost: BTreeMap<String, Lost>,
}

impl Exporter {
    pub(super) fn new(
        engine: &DiagnosticsEngine,
        sink: usize,
        spec: &SinkSpec,
        writer: Writer,
        timing: Timing,
    ) -> Self {
        Self {
            engine: engine.clone(),
            sink,
            label: spec.label(),
            what_to_check: Writer::what_to_check(spec),
            writer,
            timing,
            lost: BTreeMap::new(),
        }
    }

    /// Exports until aborted, or until the engine closes: then it writes what it holds (while
    /// the sink works) and ends.
    pub(super) async fn run(mut self) {
        let devices = self.engine.sink_devices(self.sink);
        let mut closing = self.engine.closing();
        let mut failing = false;
        let mut backoff = self.timing.backoff_first;
        loop {
            let last_round = *closing.borrow_and_update();
            let result = self.round(&devices).await;
            if last_round && !matches!(&result, Ok(Round { more: true, .. })) {
                return;
            }
            match result {
                Ok(round) => {
                    if failing && round.wrote {
                        tracing::info!(sink = %self.label, "diagnostics export works again");
                        failing = false;
                        backoff = self.timing.backoff_first;
                    }
                    if round.more {
                        tokio::task::yield_now().await;
                        continue;
                    }
                    // `arrived` wakes only tasks already waiting: the tick catches records that
                    // arrived while this round ran.
                    tokio::select! {
                        () = self.engine.arrived() => {}
                        () = tokio::time::sleep(self.timing.tick) => {}
                        _ = closing.changed() => {}
                    }
                }
                Err(e) => {
                    if failing {
                        tracing::debug!(sink = %self.label, error = %e, "diagnostics export still failing");
                    } else {
                        tracing::warn!(
                            sink = %self.label,
                            error = %e,
                            "diagnostics export failing; records stay in the ring and are retried (backoff up to {})",
                            humantime::format_duration(self.timing.backoff_max)
                        );
                        failing = true;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        // The sink is failing: nothing more to try at the stop.
                        _ = closing.changed() => return,
                    }
                    backoff = (backoff * 2).min(self.timing.backoff_max);
                }
            }
        }
    }

    async fn round(&mut self, devices: &[String]) -> Result<Round, ExportError> {
        self.writer.maintain().await?;
        let mut round = Round::default();
        for device in devices {
            let batch = self
                .engine
                .export_batch(device, self.sink, self.timing.batch);
            let lost = self.lost.entry(device.clone()).or_default();
            lost.count += batch.newly_lost;
            let (lost_count, warned) = (lost.count, lost.warned);
            if batch.records.is_empty() && lost_count == 0 {
                continue;
            }
            let mut records = Vec::with_capacity(batch.records.len() + 1);
            if lost_count > 0 {
                records.push(self.gap_notice(device, lost_count));
            }
            let last = batch.records.last().map(|r| r.seq);
            records.extend(batch.records.iter().cloned());
            round.more |= batch.records.len() >= self.timing.batch;
            let written = self.writer.write(device, &records).await;
            match (&written, last) {
                (Ok(()), Some(last)) => self.engine.mark_exported(device, self.sink, last),
                (Err(_), _) => self.engine.export_failed(device, self.sink),
                (Ok(()), None) => {}
            }
            if lost_count > 0 && !warned {
                // After the mark: in a full ring the warning overwrites the oldest record,
                // which must not be one just written but not yet marked (it would count as
                // lost). After the write: a reader that sees the warning knows the first
                // attempt is over.
                self.engine.record(device, self.lost_warning(lost_count));
                if let Some(lost) = self.lost.get_mut(device) {
                    lost.warned = true;
                }
            }
            written?;
            self.lost.remove(device);
            round.wrote = true;
        }
        Ok(round)
    }

    /// The record-shaped line written to the sink in place of lost records: sequence number 0,
    /// which no ring record has.
    fn gap_notice(&self, device: &str, lost: u64) -> LogRecord {
        LogRecord::new(
            0,
            unix_ms(SystemTime::now()),
            Event::gateway(
                Severity::Warning,
                Category::Error,
                format!(
                    "{lost} records of {device} were overwritten or cleared in the gateway's ring before they were exported"
                ),
            )
            .with("sink", &self.label)
            .with("lost", lost),
        )
    }

    fn lost_warning(&self, lost: u64) -> Event {
        Event::gateway(
            Severity::Warning,
            Category::Error,
            format!(
                "{lost} records were overwritten or cleared in the ring before export to {}; raise [diagnostics] ring_size or check {}",
                self.label, self.what_to_check
            ),
        )
        .with("sink", &self.label)
        .with("lost", lost)
    }
}
