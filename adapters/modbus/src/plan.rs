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
    let _ = (spans, limits);
    todo!("plan: plan_reads")
}
