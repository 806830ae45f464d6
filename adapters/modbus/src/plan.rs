//! Coalesced reads: the fewest requests that cover a set of points, within the protocol's and
//! the device's limits.

use crate::frame::Table;

/// One point to read: its table, first address and span (registers or bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The data table.
    pub table: Table,
    /// First register or bit.
    pub address: u16,
    /// Registers or bits.
    pub count: u16,
}

/// One read request of a plan, and which of the wanted spans it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// What to read.
    pub span: Span,
    /// Indexes into the spans given to [`plan_reads`] that lie inside this block.
    pub members: Vec<usize>,
}

/// Limits a plan keeps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest run of unwanted registers or bits a block may include to join two spans.
    pub max_gap: u16,
    /// Most registers per block (at most 125).
    pub max_registers: u16,
    /// Most bits per block (at most 2000).
    pub max_bits: u16,
}

/// The blocks that read every span in `spans`: spans of the same table are sorted and merged
/// when the gap between them is at most `max_gap` and the merged block stays within the
/// table's limit. Overlapping and duplicate spans share a block. A span that alone exceeds the
/// limit gets a block of its own (validation refuses such profiles; the driver then reports
/// the device's answer). Blocks come out ordered by table, then address.
pub fn plan_reads(spans: &[Span], limits: Limits) -> Vec<Block> {
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by_key(|i| {
        let s = spans[*i];
        (s.table, s.address, s.count)
    });
    let mut blocks: Vec<Block> = Vec::new();
    // The block being built: its table, first item and end (exclusive), in u32 so that a span
    // ending at 65535 cannot overflow.
    let mut open: Option<(Table, u32, u32, Vec<usize>)> = None;
    for i in order {
        let span = spans[i];
        let start = u32::from(span.address);
        // A zero-count span still needs its first item read.
        let end = start + u32::from(span.count.max(1));
        let limit = u32::from(limit_for(span.table, limits));
        if let Some((table, first, last, members)) = &mut open
            && *table == span.table
            && start <= *last + u32::from(limits.max_gap)
            && end.max(*last) - *first <= limit
        {
            *last = end.max(*last);
            members.push(i);
            continue;
        }
        if let Some(done) = open.take() {
            blocks.push(close(done));
        }
        open = Some((span.table, start, end, vec![i]));
    }
    blocks.extend(open.map(close));
    blocks
}

/// The most items one block of `table` may hold: the device's limit, never above the
/// protocol's and never below one.
fn limit_for(table: Table, limits: Limits) -> u16 {
    let wanted = if table.is_bits() {
        limits.max_bits
    } else {
        limits.max_registers
    };
    wanted.clamp(1, table.max_read())
}

fn close((table, first, last, members): (Table, u32, u32, Vec<usize>)) -> Block {
    Block {
        span: Span {
            table,
            // `first` came from a u16; `last - first` is one span's count or at most the limit.
            address: u16::try_from(first).unwrap_or(u16::MAX),
            count: u16::try_from(last - first).unwrap_or(u16::MAX),
        },
        members,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_gap: 8,
        max_registers: 125,
        max_bits: 2000,
    };

    fn holding(address: u16, count: u16) -> Span {
        Span {
            table: Table::HoldingRegister,
            address,
            count,
        }
    }

    fn block(span: Span, members: &[usize]) -> Block {
        Block {
            span,
            members: members.to_vec(),
        }
    }

    #[test]
    fn adjacent_spans_should_merge_into_one_block() {
        let blocks = plan_reads(&[holding(2, 2), holding(0, 2)], LIMITS);
        assert_eq!(blocks, vec![block(holding(0, 4), &[1, 0])]);
    }

    #[test]
    fn spans_within_the_gap_should_merge() {
        let blocks = plan_reads(&[holding(0, 2), holding(10, 1)], LIMITS);
        assert_eq!(blocks, vec![block(holding(0, 11), &[0, 1])]);
    }

    #[test]
    fn gap_larger_than_allowed_should_split() {
        let blocks = plan_reads(&[holding(0, 2), holding(11, 1)], LIMITS);
        assert_eq!(
            blocks,
            vec![block(holding(0, 2), &[0]), block(holding(11, 1), &[1])]
        );
    }

    #[test]
    fn zero_gap_should_still_merge_adjacent_spans() {
        let limits = Limits {
            max_gap: 0,
            ..LIMITS
        };
        let blocks = plan_reads(&[holding(0, 2), holding(2, 2), holding(5, 1)], limits);
        assert_eq!(
            blocks,
            vec![block(holding(0, 4), &[0, 1]), block(holding(5, 1), &[2])]
        );
    }

    #[test]
    fn block_should_split_at_125_registers() {
        let spans: Vec<Span> = (0..70).map(|i| holding(i * 2, 2)).collect();
        let blocks = plan_reads(&spans, LIMITS);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].span, holding(0, 124));
        assert_eq!(blocks[0].members.len(), 62);
        assert_eq!(blocks[1].span, holding(124, 16));
    }

    #[test]
    fn device_limit_below_the_protocol_should_be_kept() {
        let limits = Limits {
            max_registers: 4,
            ..LIMITS
        };
        let blocks = plan_reads(&[holding(0, 2), holding(2, 2), holding(4, 2)], limits);
        assert_eq!(
            blocks,
            vec![block(holding(0, 4), &[0, 1]), block(holding(4, 2), &[2])]
        );
    }

    #[test]
    fn separate_tables_should_never_merge() {
        let input = Span {
            table: Table::InputRegister,
            address: 0,
            count: 2,
        };
        let blocks = plan_reads(&[holding(0, 2), input], LIMITS);
        assert_eq!(
            blocks,
            vec![block(input, &[1]), block(holding(0, 2), &[0])],
            "input registers sort before holding registers"
        );
    }

    #[test]
    fn bits_should_merge_up_to_2000() {
        let coil = |address, count| Span {
            table: Table::Coil,
            address,
            count,
        };
        let blocks = plan_reads(&[coil(0, 1), coil(1990, 10), coil(2000, 1)], LIMITS);
        assert_eq!(
            blocks,
            vec![block(coil(0, 1), &[0]), block(coil(1990, 11), &[1, 2])],
            "0..2000 would fit but the gap is too large; 1990..2001 fits"
        );
        let limits = Limits {
            max_gap: 2000,
            ..LIMITS
        };
        let blocks = plan_reads(&[coil(0, 1), coil(1999, 1), coil(2000, 1)], limits);
        assert_eq!(
            blocks,
            vec![block(coil(0, 2000), &[0, 1]), block(coil(2000, 1), &[2])]
        );
    }

    #[test]
    fn duplicate_and_overlapping_spans_should_share_a_block() {
        let blocks = plan_reads(&[holding(4, 2), holding(4, 2), holding(5, 4)], LIMITS);
        assert_eq!(blocks, vec![block(holding(4, 5), &[0, 1, 2])]);
    }

    #[test]
    fn span_larger_than_the_limit_should_get_a_block_of_its_own() {
        let blocks = plan_reads(&[holding(0, 1), holding(1, 200), holding(201, 1)], LIMITS);
        assert_eq!(
            blocks,
            vec![
                block(holding(0, 1), &[0]),
                block(holding(1, 200), &[1]),
                block(holding(201, 1), &[2]),
            ]
        );
    }

    #[test]
    fn spans_at_the_top_of_the_address_space_should_not_overflow() {
        let limits = Limits {
            max_gap: u16::MAX,
            ..LIMITS
        };
        let blocks = plan_reads(
            &[
                holding(65535, 1),
                holding(65534, 1),
                holding(65535, u16::MAX),
            ],
            limits,
        );
        assert_eq!(blocks[0], block(holding(65534, 2), &[1, 0]));
        assert_eq!(blocks[1], block(holding(65535, u16::MAX), &[2]));
    }

    #[test]
    fn no_spans_should_plan_no_blocks() {
        assert!(plan_reads(&[], LIMITS).is_empty());
    }

    /// A small deterministic generator (xorshift), so the property test needs no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u16 {
            u16::try_from(self.next() % n).unwrap()
        }
    }

    #[test]
    fn every_span_should_be_covered_by_exactly_the_block_listing_it() {
        let tables = [
            Table::Coil,
            Table::DiscreteInput,
            Table::InputRegister,
            Table::HoldingRegister,
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for round in 0..500 {
            let limits = Limits {
                max_gap: rng.below(20),
                max_registers: 1 + rng.below(125),
                max_bits: 1 + rng.below(2000),
            };
            let n = usize::from(rng.below(40));
            let spans: Vec<Span> = (0..n)
                .map(|_| {
                    let table = tables[usize::from(rng.below(4))];
                    let count = 1 + rng.below(if table.is_bits() { 40 } else { 8 });
                    let address = if rng.below(10) == 0 {
                        u16::MAX - rng.below(4)
                    } else {
                        rng.below(300)
                    };
                    Span {
                        table,
                        address,
                        count,
                    }
                })
                .collect();
            let blocks = plan_reads(&spans, limits);
            let mut listed = vec![0; n];
            for b in &blocks {
                let limit = u32::from(limit_for(b.span.table, limits));
                assert!(!b.members.is_empty(), "round {round}: empty block {b:?}");
                for &m in &b.members {
                    listed[m] += 1;
                    let s = spans[m];
                    assert_eq!(s.table, b.span.table, "round {round}");
                    assert!(s.address >= b.span.address, "round {round}: {s:?} in {b:?}");
                    assert!(
                        u32::from(s.address) + u32::from(s.count)
                            <= u32::from(b.span.address) + u32::from(b.span.count),
                        "round {round}: {s:?} not inside {b:?}"
                    );
                }
                let alone = b.members.len() == 1;
                assert!(
                    u32::from(b.span.count) <= limit || alone,
                    "round {round}: {b:?} exceeds {limit}"
                );
            }
            assert!(listed.iter().all(|c| *c == 1), "round {round}: {listed:?}");
            let keys: Vec<_> = blocks
                .iter()
                .map(|b| (b.span.table, b.span.address))
                .collect();
            assert!(
                keys.windows(2).all(|w| w[0] <= w[1]),
                "round {round}: order"
            );
        }
    }
}
