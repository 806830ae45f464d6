//! The four data tables of a simulated device, sparse: an address is *mapped* when the device
//! model put something there.

use std::collections::BTreeMap;

use iotmc_adapter::profile::Parameter;
use iotmc_adapter::{LinkError, Value};

use crate::encoding::Codec;
use crate::frame::{ExceptionCode, Table};
use crate::profile::{ModbusSection, Point};

#[derive(Debug, Clone, Default)]
pub(super) struct Tables {
    words: BTreeMap<(Table, u16), u16>,
    bits: BTreeMap<(Table, u16), bool>,
}

/// The addresses `address .. address + count`, cut at the end of the address space.
fn range(address: u16, count: u16) -> impl Iterator<Item = u16> {
    (u32::from(address)..u32::from(address) + u32::from(count))
        .filter_map(|a| u16::try_from(a).ok())
}

impl Tables {
    /// Marks `count` items from `address` as mapped (zero / off unless already set).
    pub(super) fn map(&mut self, table: Table, address: u16, count: u16) {
        for a in range(address, count) {
            if table.is_bits() {
                self.bits.entry((table, a)).or_insert(false);
            } else {
                self.words.entry((table, a)).or_insert(0);
            }
        }
    }

    fn any_mapped(&self, table: Table, address: u16, count: u16) -> bool {
        let last =
            u16::try_from(u32::from(address) + u32::from(count.max(1)) - 1).unwrap_or(u16::MAX);
        if table.is_bits() {
            self.bits
                .range((table, address)..=(table, last))
                .next()
                .is_some()
        } else {
            self.words
                .range((table, address)..=(table, last))
                .next()
                .is_some()
        }
    }

    /// A master's read: exception 02 when the range leaves the address space or holds no
    /// mapped item; unmapped items inside a mapped range read as 0.
    pub(super) fn read_words(
        &self,
        table: Table,
        address: u16,
        count: u16,
    ) -> Result<Vec<u16>, ExceptionCode> {
        if u32::from(address) + u32::from(count) > 65536 || !self.any_mapped(table, address, count)
        {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        Ok(self.words(table, address, count))
    }

    /// A master's read of bits, as [`Self::read_words`].
    pub(super) fn read_bits(
        &self,
        table: Table,
        address: u16,
        count: u16,
    ) -> Result<Vec<bool>, ExceptionCode> {
        if u32::from(address) + u32::from(count) > 65536 || !self.any_mapped(table, address, count)
        {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        Ok(range(address, count)
            .map(|a| self.bits.get(&(table, a)).copied().unwrap_or(false))
            .collect())
    }

    pub(super) fn words(&self, table: Table, address: u16, count: u16) -> Vec<u16> {
        range(address, count)
            .map(|a| self.words.get(&(table, a)).copied().unwrap_or(0))
            .collect()
    }

    pub(super) fn bit(&self, table: Table, address: u16) -> bool {
        self.bits.get(&(table, address)).copied().unwrap_or(false)
    }

    pub(super) fn put_words(&mut self, table: Table, address: u16, words: &[u16]) {
        for (a, w) in range(address, u16::try_from(words.len()).unwrap_or(u16::MAX)).zip(words) {
            self.words.insert((table, a), *w);
        }
    }

    pub(super) fn put_bit(&mut self, table: Table, address: u16, bit: bool) {
        self.bits.insert((table, address), bit);
    }

    /// The value at `point`, decoded as `parameter`.
    pub(super) fn get_value(
        &self,
        section: &ModbusSection,
        point: &Point,
        parameter: &Parameter,
    ) -> Result<Value, LinkError> {
        let codec = Codec::new(section, point);
        if codec.table().is_bits() {
            codec.decode_bits(parameter, &[self.bit(codec.table(), point.address)])
        } else {
            codec.decode_registers(
                parameter,
                &self.words(codec.table(), point.address, codec.span()),
            )
        }
    }

    /// Stores `value` at `point`, encoded as `parameter` (bits outside a mask kept).
    pub(super) fn put_value(
        &mut self,
        section: &ModbusSection,
        point: &Point,
        parameter: &Parameter,
        value: &Value,
    ) -> Result<(), LinkError> {
        let codec = Codec::new(section, point);
        let table = codec.table();
        if table.is_bits() {
            let bit = codec.encode_bit(parameter, value)?;
            self.put_bit(table, point.address, bit);
        } else {
            let current = self.words(table, point.address, 1).first().copied();
            let words = codec.encode_registers(parameter, value, current)?;
            self.put_words(table, point.address, &words);
        }
        Ok(())
    }
}
