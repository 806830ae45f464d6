//! The image as file records: cutting it into registers and requests that stay inside one
//! file, and checking the device's copy (read-back, CRC-32, SHA-256).

use iotmc_adapter::{FirmwareImage, LinkError};

use super::{FileRecordFirmware, READ_BACK_REGISTERS};
use crate::frame::{FileRecordRef, Request, Response, Table};
use crate::link::ops::describe_range;
use crate::profile::{FirmwareMap, Verify};

impl FileRecordFirmware {
    /// Checks the device's copy by the profile's `verify`.
    pub(super) async fn verify(
        &self,
        map: &FirmwareMap,
        image: &FirmwareImage,
    ) -> Result<(), LinkError> {
        match map.verify {
            Verify::None => Ok(()),
            Verify::ReadBack => self.read_back(map, image).await,
            Verify::Crc32 => {
                let words = self.read_digest(map, 2, "CRC-32").await?;
                let expected = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&image.bytes);
                let got = words_to_bytes(&words);
                if got == expected.to_be_bytes() {
                    Ok(())
                } else {
                    Err(LinkError::Malformed(format!(
                        "the device's CRC-32 of the image is {}, expected {expected:08x}: the copy on the device is damaged; stage it again from 0",
                        hex(&got)
                    )))
                }
            }
            Verify::Sha256 => {
                let words = self.read_digest(map, 16, "SHA-256").await?;
                let got = words_to_bytes(&words);
                if got == image.sha256 {
                    Ok(())
                } else {
                    Err(LinkError::Malformed(format!(
                        "the device's SHA-256 of the image is {}, expected {}: the copy on the device is damaged; stage it again from 0",
                        hex(&got),
                        hex(&image.sha256)
                    )))
                }
            }
        }
    }

    async fn read_digest(
        &self,
        map: &FirmwareMap,
        count: u16,
        name: &str,
    ) -> Result<Vec<u16>, LinkError> {
        let point = map.digest.as_ref().ok_or_else(|| LinkError::Unsupported {
            operation: format!("{name} verification"),
            reason: "the profile declares no `digest` point".to_owned(),
        })?;
        let table = Table::from(point.table);
        let what = format!(
            "reading the device's {name} of the image from {table} {}",
            describe_range(point.address, count)
        );
        match self
            .call_patiently(table.read(point.address, count), &what)
            .await?
        {
            Response::ReadHoldingRegisters(w) | Response::ReadInputRegisters(w)
                if w.len() == usize::from(count) =>
            {
                Ok(w)
            }
            other => Err(LinkError::Malformed(format!(
                "{what}: unexpected answer {other:?}"
            ))),
        }
    }

    /// Reads every record back and compares.
    async fn read_back(&self, map: &FirmwareMap, image: &FirmwareImage) -> Result<(), LinkError> {
        let registers = registers_for(image.bytes.len() as u64);
        for chunk in file_chunks(map, 0, registers, READ_BACK_REGISTERS) {
            let what = format!("reading back firmware {}", chunk.describe());
            let request = Request::ReadFileRecord(vec![FileRecordRef {
                file: chunk.file,
                record: chunk.record,
                count: chunk.count,
            }]);
            let got = match self.call_patiently(request, &what).await? {
                Response::ReadFileRecord(mut groups) if groups.len() == 1 => groups.remove(0),
                other => {
                    return Err(LinkError::Malformed(format!(
                        "{what}: unexpected answer {other:?}"
                    )));
                }
            };
            let expected = image_words(&image.bytes, chunk.first, chunk.count);
            if let Some(i) = first_difference(&expected, &got) {
                let record = u32::from(chunk.record) + i as u32;
                return Err(LinkError::Malformed(format!(
                    "read-back of the image differs at file {} record {record} (byte offset {}): the device holds {}, expected {}; stage again from offset {}",
                    chunk.file,
                    (chunk.first + i as u64) * 2,
                    got.get(i)
                        .map_or("nothing".to_owned(), |w| format!("0x{w:04X}")),
                    expected
                        .get(i)
                        .map_or("nothing".to_owned(), |w| format!("0x{w:04X}")),
                    (chunk.first + i as u64) * 2,
                )));
            }
        }
        Ok(())
    }
}

/// One request's worth of image registers, inside one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Chunk {
    /// Global index of the first register (= global record number).
    pub(super) first: u64,
    /// File number.
    pub(super) file: u16,
    /// Record number in the file.
    pub(super) record: u16,
    /// Registers.
    pub(super) count: u16,
}

impl Chunk {
    /// `file 3 record 1200..1322`, for errors.
    pub(super) fn describe(&self) -> String {
        format!(
            "file {} record {}..{}",
            self.file,
            self.record,
            u32::from(self.record) + u32::from(self.count)
        )
    }
}

/// Registers an image of `bytes` bytes takes.
pub(super) fn registers_for(bytes: u64) -> u64 {
    bytes.div_ceil(2)
}

/// Bytes the file space from `first_file` on can hold.
pub(super) fn capacity_bytes(map: &FirmwareMap) -> u64 {
    let files = 0x1_0000 - u64::from(map.first_file);
    files * u64::from(map.records_per_file) * 2
}

/// Registers `start..end` as requests of at most `max` registers that never cross a file.
/// Stops at the last file number (the size check keeps images inside it).
pub(super) fn file_chunks(map: &FirmwareMap, start: u64, end: u64, max: u16) -> Vec<Chunk> {
    let per_file = u64::from(map.records_per_file.max(1));
    let max = u64::from(max.max(1));
    let mut chunks = Vec::new();
    let mut at = start;
    while at < end {
        let Ok(file) = u16::try_from(u64::from(map.first_file) + at / per_file) else {
            break;
        };
        let record = at % per_file;
        let count = max.min(per_file - record).min(end - at);
        chunks.push(Chunk {
            first: at,
            file,
            // Both below records_per_file and max, which are u16.
            record: record as u16,
            count: count as u16,
        });
        at += count;
    }
    chunks
}

/// Registers `first..first + count` of the image: bytes `2i` (high) and `2i + 1` (low), padded
/// with 0x00.
pub(super) fn image_words(bytes: &[u8], first: u64, count: u16) -> Vec<u16> {
    (first..first + u64::from(count))
        .map(|i| {
            let at = usize::try_from(i * 2).unwrap_or(usize::MAX);
            let high = bytes.get(at).copied().unwrap_or(0);
            let low = bytes.get(at.saturating_add(1)).copied().unwrap_or(0);
            u16::from_be_bytes([high, low])
        })
        .collect()
}

fn words_to_bytes(words: &[u16]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_be_bytes()).collect()
}

fn first_difference(expected: &[u16], got: &[u16]) -> Option<usize> {
    expected
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .or_else(|| (got.len() < expected.len()).then_some(got.len()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Activate, TableName};

    fn map(first_file: u16, records_per_file: u16) -> FirmwareMap {
        FirmwareMap {
            first_file,
            records_per_file,
            chunk_registers: 122,
            size: None,
            verify: Verify::ReadBack,
            digest: None,
            running_version: None,
            activate: Activate {
                table: TableName::Holding,
                address: 0,
                test: None,
                permanent: 1,
            },
            banks: None,
        }
    }

    #[test]
    fn image_registers_are_big_endian_pairs_with_the_last_padded() {
        let bytes = [0x12, 0x34, 0x56, 0x78, 0x9A];
        assert_eq!(registers_for(5), 3);
        assert_eq!(image_words(&bytes, 0, 3), vec![0x1234, 0x5678, 0x9A00]);
        assert_eq!(image_words(&bytes, 2, 1), vec![0x9A00]);
    }

    #[test]
    fn chunks_never_cross_the_ten_thousand_record_boundary() {
        // 10050 registers from record 0 of file 1: 81 full chunks of 122 (9882), then 118 to
        // close file 1 at record 9999, then 50 in file 2 from record 0.
        let chunks = file_chunks(&map(1, 10_000), 0, 10_050, 122);
        assert_eq!(chunks.len(), 83);
        let last_of_file_1 = chunks[81];
        assert_eq!(
            last_of_file_1,
            Chunk {
                first: 9882,
                file: 1,
                record: 9882,
                count: 118
            }
        );
        assert_eq!(
            chunks[82],
            Chunk {
                first: 10_000,
                file: 2,
                record: 0,
                count: 50
            }
        );
        let covered: u64 = chunks.iter().map(|c| u64::from(c.count)).sum();
        assert_eq!(covered, 10_050);
    }

    #[test]
    fn resumed_chunks_start_at_the_resume_register_in_its_file() {
        let chunks = file_chunks(&map(3, 100), 250, 260, 122);
        assert_eq!(
            chunks,
            vec![Chunk {
                first: 250,
                file: 5,
                record: 50,
                count: 10
            }]
        );
    }

    #[test]
    fn small_files_split_every_chunk_at_their_end() {
        let chunks = file_chunks(&map(1, 5), 3, 12, 4);
        let shape: Vec<(u16, u16, u16)> =
            chunks.iter().map(|c| (c.file, c.record, c.count)).collect();
        assert_eq!(shape, vec![(1, 3, 2), (2, 0, 4), (2, 4, 1), (3, 0, 2)]);
    }

    #[test]
    fn chunks_stop_at_the_last_file_number() {
        let chunks = file_chunks(&map(0xFFFF, 10), 0, 25, 122);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].file, 0xFFFF);
        assert_eq!(capacity_bytes(&map(0xFFFF, 10)), 20);
    }

    #[test]
    fn first_difference_finds_a_changed_or_missing_register() {
        assert_eq!(first_difference(&[1, 2, 3], &[1, 2, 3]), None);
        assert_eq!(first_difference(&[1, 2, 3], &[1, 9, 3]), Some(1));
        assert_eq!(first_difference(&[1, 2, 3], &[1, 2]), Some(2));
    }

    #[test]
    fn digest_registers_read_as_big_endian_bytes() {
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(b"123456789");
        // The CRC-32/ISO-HDLC check value.
        assert_eq!(crc, 0xCBF4_3926);
        assert_eq!(words_to_bytes(&[0xCBF4, 0x3926]), crc.to_be_bytes());
    }
}
