use super::*;
use crate::diagnostics::record::{Category, Event, Severity, Source};

fn event(severity: Severity, message: &str) -> Event {
    Event::gateway(severity, Category::Operational, message)
}

fn seqs(page: &Page) -> Vec<u64> {
    page.records.iter().map(|r| r.seq).collect()
}

#[test]
fn a_full_ring_should_keep_the_newest_records_and_count_the_overwritten() {
    let one = LogRecord::new(0, 0, event(Severity::Notice, "record 000")).cost();
    let mut ring = Ring::new(one * 10, &[]);
    for i in 0..25 {
        ring.push(i, event(Severity::Notice, &format!("record {i:03}")));
    }
    let stats = ring.stats();
    assert_eq!(stats.records, 10);
    assert_eq!(stats.overwritten, 15);
    assert!(stats.bytes <= stats.capacity);
    let page = ring.read(0, &Filter::all(100));
    assert_eq!(seqs(&page), (16..=25).collect::<Vec<_>>());
    assert_eq!(page.records[0].message, "record 015");
    assert_eq!(
        page.missed, 15,
        "a reader from the start is told what it missed"
    );
}

#[test]
fn a_bigger_record_should_overwrite_as_many_small_ones_as_it_needs() {
    let small = LogRecord::new(0, 0, event(Severity::Notice, "s")).cost();
    let mut ring = Ring::new(small * 4, &[]);
    for i in 0..4 {
        ring.push(i, event(Severity::Notice, "s"));
    }
    ring.push(9, event(Severity::Notice, &"b".repeat(small * 2)));
    let stats = ring.stats();
    assert!(stats.bytes <= stats.capacity);
    assert_eq!(stats.overwritten, 3);
    assert_eq!(seqs(&ring.read(0, &Filter::all(10))), vec![4, 5]);
}

#[test]
fn the_severity_filter_should_keep_records_at_least_as_severe() {
    let mut ring = Ring::new(64 * 1024, &[]);
    for severity in [
        Severity::Debug,
        Severity::Error,
        Severity::Warning,
        Severity::Critical,
        Severity::Informational,
    ] {
        ring.push(1, event(severity, "x"));
    }
    let filter = Filter {
        min_severity: Some(Severity::Warning),
        ..Filter::all(10)
    };
    let page = ring.read(0, &filter);
    let kept: Vec<Severity> = page.records.iter().map(|r| r.severity).collect();
    assert_eq!(
        kept,
        vec![Severity::Error, Severity::Warning, Severity::Critical]
    );
    assert_eq!(
        page.next, 5,
        "the cursor moves past the records filtered out"
    );
    assert!(!page.more);
}

#[test]
fn the_time_filter_should_take_start_inclusive_and_end_exclusive() {
    let mut ring = Ring::new(64 * 1024, &[]);
    for at in [100, 200, 300, 400] {
        ring.push(at, event(Severity::Notice, "x"));
    }
    let filter = Filter {
        start_ms: Some(200),
        end_ms: Some(400),
        ..Filter::all(10)
    };
    let times: Vec<u64> = ring
        .read(0, &filter)
        .records
        .iter()
        .map(|r| r.at_ms)
        .collect();
    assert_eq!(times, vec![200, 300]);
}

#[test]
fn a_full_page_should_continue_after_its_last_record() {
    let mut ring = Ring::new(64 * 1024, &[]);
    for i in 0..7 {
        ring.push(i, event(Severity::Notice, "x"));
    }
    let first = ring.read(0, &Filter::all(3));
    assert_eq!(seqs(&first), vec![1, 2, 3]);
    assert!(first.more);
    let second = ring.read(first.next, &Filter::all(3));
    assert_eq!(seqs(&second), vec![4, 5, 6]);
    let third = ring.read(second.next, &Filter::all(3));
    assert_eq!(seqs(&third), vec![7]);
    assert!(!third.more);
    assert_eq!(third.next, 7);
    assert!(ring.read(third.next, &Filter::all(3)).records.is_empty());
}

/// A deterministic interleaving of writers and a paging reader: every record is read exactly
/// once, in order, whatever the page size and however records arrive between pages.
#[test]
fn cursors_should_never_skip_or_repeat_a_record_while_new_ones_arrive() {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut random = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    for round in 0..50 {
        let mut ring = Ring::new(1024 * 1024, &[]);
        let severities = [
            Severity::Error,
            Severity::Warning,
            Severity::Notice,
            Severity::Debug,
        ];
        let filter = Filter {
            min_severity: [None, Some(Severity::Warning)][round % 2],
            ..Filter::all(1 + random(5) as usize)
        };
        let mut written = Vec::new();
        let mut read = Vec::new();
        let mut cursor = 0;
        for step in 0..300 {
            for _ in 0..random(4) {
                let severity = severities[random(4) as usize];
                let seq = ring.push(step, event(severity, "x"));
                if filter.min_severity.is_none_or(|min| severity <= min) {
                    written.push(seq);
                }
            }
            if random(3) == 0 {
                let page = ring.read(cursor, &filter);
                assert_eq!(page.missed, 0);
                read.extend(seqs(&page));
                cursor = page.next;
            }
        }
        loop {
            let page = ring.read(cursor, &filter);
            read.extend(seqs(&page));
            cursor = page.next;
            if !page.more {
                break;
            }
        }
        assert_eq!(read, written, "round {round}");
    }
}

#[test]
fn a_reader_overtaken_by_the_ring_should_be_told_how_many_it_missed() {
    let one = LogRecord::new(0, 0, event(Severity::Notice, "x")).cost();
    let mut ring = Ring::new(one * 5, &[]);
    for i in 0..3 {
        ring.push(i, event(Severity::Notice, "x"));
    }
    let page = ring.read(0, &Filter::all(2));
    assert_eq!(page.next, 2);
    for i in 0..10 {
        ring.push(i, event(Severity::Notice, "x"));
    }
    let page = ring.read(2, &Filter::all(100));
    assert_eq!(seqs(&page), vec![9, 10, 11, 12, 13]);
    assert_eq!(
        page.missed, 6,
        "records 3 to 8 were overwritten before this reader saw them"
    );
}

#[test]
fn clearing_up_to_a_cursor_should_keep_what_arrived_after_it() {
    let mut ring = Ring::new(64 * 1024, &[]);
    for i in 0..5 {
        ring.push(i, event(Severity::Error, "before"));
    }
    let page = ring.read(0, &Filter::all(100));
    for i in 0..3 {
        ring.push(10 + i, event(Severity::Error, "after"));
    }
    assert_eq!(ring.clear_through(page.next), Ok(5));
    let rest = ring.read(0, &Filter::all(100));
    assert_eq!(seqs(&rest), vec![6, 7, 8]);
    assert!(rest.records.iter().all(|r| r.message == "after"));
    assert_eq!(rest.missed, 5);
    assert_eq!(ring.stats().cleared, 5);
    assert_eq!(
        ring.clear_through(page.next),
        Ok(0),
        "clearing twice is harmless"
    );
}

#[test]
fn clearing_past_the_newest_record_should_be_refused_and_change_nothing() {
    let mut ring = Ring::new(64 * 1024, &[]);
    ring.push(1, event(Severity::Error, "kept"));
    assert_eq!(ring.clear_through(2), Err(ClearRefused { last: 1 }));
    assert_eq!(ring.read(0, &Filter::all(10)).records.len(), 1);
}

#[test]
fn records_overwritten_before_export_should_be_counted_per_sink() {
    let one = LogRecord::new(0, 0, event(Severity::Notice, "x")).cost();
    let mut ring = Ring::new(one * 4, &[0, 1]);
    for i in 0..4 {
        ring.push(i, event(Severity::Notice, "x"));
    }
    // Sink 0 keeps up; sink 1 is stuck (its collector is down).
    let batch = ring.export_batch(0, 100);
    assert_eq!(batch.records.len(), 4);
    ring.mark_exported(0, 4);
    for i in 0..3 {
        ring.push(10 + i, event(Severity::Notice, "x"));
    }
    let up_to_date = ring.export_batch(0, 100);
    assert_eq!(up_to_date.newly_lost, 0);
    assert_eq!(up_to_date.records.len(), 3);
    let stuck = ring.export_batch(1, 100);
    assert_eq!(
        stuck.newly_lost, 3,
        "records 1 to 3 were overwritten before sink 1 wrote them"
    );
    assert_eq!(stuck.records.first().map(|r| r.seq), Some(4));
    assert_eq!(
        ring.export_batch(1, 100).newly_lost,
        0,
        "each loss is reported once"
    );
    let stats = ring.stats();
    assert_eq!(stats.exports[0].lost, 0);
    assert_eq!(stats.exports[1].lost, 3);
    assert!(ring.unexported(1) > 0);
    assert!(
        ring.export_batch(7, 100).records.is_empty(),
        "not a sink of this ring"
    );
}

fn device_event(message: &str) -> Event {
    Event {
        source: Source::Device,
        ..event(Severity::Informational, message)
    }
}

#[test]
fn a_chatty_device_log_should_not_crowd_out_the_gateways_records() {
    let one = LogRecord::new(0, 0, event(Severity::Warning, "gw 00")).cost();
    let mut ring = Ring::new(one * 20, &[]);
    for i in 0..4 {
        ring.push(i, event(Severity::Warning, &format!("gw {i:02}")));
    }
    for i in 0..500 {
        ring.push(100 + i, device_event(&format!("dv {i:03}")));
    }
    let page = ring.read(0, &Filter::all(100));
    let gateway: Vec<&str> = page
        .records
        .iter()
        .filter(|r| r.source == Source::Gateway)
        .map(|r| r.message.as_str())
        .collect();
    assert_eq!(gateway, ["gw 00", "gw 01", "gw 02", "gw 03"]);
    let held = page.records.len() as u64;
    assert!(held >= 14, "the device keeps the rest: {held}");
    assert_eq!(ring.stats().overwritten, 504 - held);
    assert!(ring.stats().bytes <= ring.stats().capacity);
    assert_eq!(
        page.missed,
        504 - held,
        "a reader from the start is told what it missed, gaps in the middle included"
    );
}

#[test]
fn either_source_should_keep_its_newest_half_when_both_are_busy() {
    let one = LogRecord::new(0, 0, event(Severity::Warning, "gw 000")).cost();
    let mut ring = Ring::new(one * 20, &[]);
    for i in 0..300 {
        ring.push(i, event(Severity::Warning, &format!("gw {i:03}")));
        ring.push(i, device_event(&format!("dv {i:03}")));
    }
    let page = ring.read(0, &Filter::all(100));
    let count = |source| page.records.iter().filter(|r| r.source == source).count();
    assert_eq!(count(Source::Gateway), 10);
    assert_eq!(count(Source::Device), 10);
    assert_eq!(page.records.last().unwrap().message, "dv 299");
    assert!(
        page.records
            .iter()
            .filter(|r| r.source == Source::Gateway)
            .all(|r| r.message.as_str() >= "gw 290")
    );
}

#[test]
fn a_page_should_continue_across_gaps_left_by_overwriting() {
    let one = LogRecord::new(0, 0, event(Severity::Warning, "gw 00")).cost();
    let mut ring = Ring::new(one * 10, &[]);
    for i in 0..3 {
        ring.push(i, event(Severity::Warning, &format!("gw {i:02}")));
    }
    let first = ring.read(0, &Filter::all(1));
    assert_eq!(seqs(&first), vec![1]);
    for i in 0..40 {
        ring.push(i, device_event(&format!("dv {i:02}")));
    }
    let rest = ring.read(first.next, &Filter::all(100));
    assert_eq!(
        rest.records[0].seq, 2,
        "the gateway's records survived the flood"
    );
    assert!(rest.records.windows(2).all(|w| w[0].seq < w[1].seq));
    let held = rest.records.len() as u64;
    assert_eq!(rest.missed, 42 - held);
}

#[test]
fn records_overwritten_while_their_batch_is_written_should_not_count_as_lost() {
    let one = LogRecord::new(0, 0, event(Severity::Notice, "x")).cost();
    let mut ring = Ring::new(one * 4, &[0]);
    for i in 0..4 {
        ring.push(i, event(Severity::Notice, "x"));
    }
    let batch = ring.export_batch(0, 100);
    assert_eq!(batch.records.len(), 4);
    // While the sink writes records 1 to 4, two new ones overwrite 1 and 2.
    ring.push(10, event(Severity::Notice, "x"));
    ring.push(11, event(Severity::Notice, "x"));
    ring.mark_exported(0, 4);
    let next = ring.export_batch(0, 100);
    assert_eq!(next.newly_lost, 0, "1 and 2 were written");
    assert_eq!(
        next.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![5, 6]
    );
}

#[test]
fn records_overwritten_while_a_failing_batch_was_written_should_count_as_lost() {
    let one = LogRecord::new(0, 0, event(Severity::Notice, "x")).cost();
    let mut ring = Ring::new(one * 4, &[0]);
    for i in 0..4 {
        ring.push(i, event(Severity::Notice, "x"));
    }
    let _ = ring.export_batch(0, 100);
    ring.push(10, event(Severity::Notice, "x"));
    ring.push(11, event(Severity::Notice, "x"));
    ring.export_failed(0);
    let retry = ring.export_batch(0, 100);
    assert_eq!(retry.newly_lost, 2, "1 and 2 were neither written nor kept");
    assert_eq!(retry.records.first().map(|r| r.seq), Some(3));
    // Every record is either written or counted: 4 handed out again + 2 lost = 6 pushed.
    assert_eq!(retry.records.len() as u64 + retry.newly_lost, 6);
}
