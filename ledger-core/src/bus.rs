//! The body of one ingest message on the bus (`docs/FORMATS.md` §12): a batch of entries, as a
//! CBOR array of byte strings, each the exact bytes of one entry (SPEC §2).
//!
//! Decoding is strict, like the entries themselves: one definite-length array of 1 to
//! [`MAX_BATCH_ENTRIES`] definite-length byte strings, every head in its shortest form, nothing
//! after the array, at most [`MAX_BATCH_BYTES`] of entries. So a body has exactly one encoding,
//! and every process that applies the stream refuses exactly the same bodies. The entries come
//! back as slices of the body (no copy).

use bytes::Bytes;

/// Most entries in one batch.
pub const MAX_BATCH_ENTRIES: usize = 1000;

/// Most entry bytes in one batch (the stream's messages are at most 8 MiB).
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// Why a body is not a batch, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Not a batch's encoding at `at` (byte offset).
    #[error("batch body at byte {at}: {why}")]
    Malformed {
        /// Byte offset into the body.
        at: usize,
        /// What was wrong there.
        why: &'static str,
    },
    /// No entries.
    #[error("batch body: an empty batch")]
    Empty,
    /// Too many entries or bytes.
    #[error("batch body: {0}")]
    TooLarge(String),
}

/// The body carrying `entries`.
pub fn encode_batch<E: AsRef<[u8]>>(entries: &[E]) -> Vec<u8> {
    let total: usize = entries.iter().map(|e| e.as_ref().len() + 9).sum();
    let mut out = Vec::with_capacity(9 + total);
    head(&mut out, 4, entries.len() as u64);
    for e in entries {
        let e = e.as_ref();
        head(&mut out, 2, e.len() as u64);
        out.extend_from_slice(e);
    }
    out
}

fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// Reads the head at `*at` of major type `major`: its argument, in shortest form only.
fn read_head(body: &[u8], at: &mut usize, major: u8, what: &'static str) -> Result<u64, BatchError> {
    let start = *at;
    let malformed = |why| BatchError::Malformed { at: start, why };
    let b = *body.get(start).ok_or(malformed("the body ends early"))?;
    if b >> 5 != major {
        return Err(malformed(what));
    }
    let info = b & 0x1f;
    let (n, len) = match info {
        0..=23 => (u64::from(info), 0),
        24..=27 => {
            let len = 1usize << (info - 24);
            let bytes = body.get(start + 1..start + 1 + len).ok_or(malformed("the body ends early"))?;
            (bytes.iter().fold(0u64, |n, b| n << 8 | u64::from(*b)), len)
        }
        31 => return Err(malformed("an indefinite length (only definite lengths are allowed)")),
        _ => return Err(malformed("a reserved length encoding")),
    };
    let shortest = match len {
        0 => true,
        1 => n >= 24,
        2 => n > 0xff,
        4 => n > 0xffff,
        _ => n > 0xffff_ffff,
    };
    if !shortest {
        return Err(malformed("a length not in its shortest form"));
    }
    *at = start + 1 + len;
    Ok(n)
}

/// The entries of a batch body, as slices of it.
pub fn decode_batch(body: &Bytes) -> Result<Vec<Bytes>, BatchError> {
    let mut at = 0;
    let n = read_head(body, &mut at, 4, "not an array of entries")?;
    if n == 0 {
        return Err(BatchError::Empty);
    }
    if n > MAX_BATCH_ENTRIES as u64 {
        return Err(BatchError::TooLarge(format!("{n} entries, at most {MAX_BATCH_ENTRIES}")));
    }
    let mut entries = Vec::with_capacity(n as usize);
    let mut total = 0usize;
    for _ in 0..n {
        let start = at;
        let len = read_head(body, &mut at, 2, "an item that is not a byte string")?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        total = total.saturating_add(len);
        if total > MAX_BATCH_BYTES {
            return Err(BatchError::TooLarge(format!("more than {MAX_BATCH_BYTES} bytes of entries")));
        }
        let end = at.checked_add(len).filter(|&e| e <= body.len());
        let Some(end) = end else {
            return Err(BatchError::Malformed { at: start, why: "the body ends early" });
        };
        entries.push(body.slice(at..end));
        at = end;
    }
    if at != body.len() {
        return Err(BatchError::Malformed { at, why: "bytes after the batch" });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_round_trips_as_slices_of_its_body() {
        let entries: Vec<Vec<u8>> = vec![vec![1; 3], vec![2; 24], vec![3; 300], vec![4; 70_000]];
        let body = Bytes::from(encode_batch(&entries));
        assert_eq!(&body[..3], &[0x84, 0x43, 1]);
        let back = decode_batch(&body).unwrap();
        assert_eq!(back, entries);
        assert_eq!(back[3].as_ptr(), body[body.len() - 70_000..].as_ptr(), "not copied");
    }

    #[test]
    fn every_other_encoding_is_refused_naming_the_byte() {
        let cases: &[(&[u8], &str)] = &[
            (&[], "batch body at byte 0: the body ends early"),
            (&[0x80], "batch body: an empty batch"),
            (&[0xa1, 0x41, 0, 0x41, 0], "batch body at byte 0: not an array of entries"),
            (&[0x9f, 0x41, 0, 0xff], "batch body at byte 0: an indefinite length (only definite lengths are allowed)"),
            (&[0x98, 0x01, 0x41, 0], "batch body at byte 0: a length not in its shortest form"),
            (&[0x81, 0x61, b'a'], "batch body at byte 1: an item that is not a byte string"),
            (&[0x81, 0x58, 0x01, 0], "batch body at byte 1: a length not in its shortest form"),
            (
                &[0x81, 0x5f, 0x41, 0, 0xff],
                "batch body at byte 1: an indefinite length (only definite lengths are allowed)",
            ),
            (&[0x82, 0x41, 0], "batch body at byte 3: the body ends early"),
            (&[0x81, 0x45, 0, 0], "batch body at byte 1: the body ends early"),
            (&[0x81, 0x41, 0, 0], "batch body at byte 3: bytes after the batch"),
            (&[0x81, 0x5c], "batch body at byte 1: a reserved length encoding"),
            (&[0x99, 0x03, 0xe9], "batch body: 1001 entries, at most 1000"),
        ];
        for (body, want) in cases {
            let got = decode_batch(&Bytes::copy_from_slice(body)).unwrap_err().to_string();
            assert_eq!(&got, want, "{body:02x?}");
        }
        let big = vec![vec![0u8; 1 << 20]; 5];
        let e = decode_batch(&Bytes::from(encode_batch(&big))).unwrap_err();
        assert_eq!(e.to_string(), "batch body: more than 4194304 bytes of entries");
    }
}
