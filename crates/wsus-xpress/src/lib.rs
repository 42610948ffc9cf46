//! `Content-Encoding: xpress`, as WSUS sends SOAP responses to clients that accept it.
//!
//! The body is a series of blocks, each an 8-byte header (little-endian original size,
//! then compressed size) followed by the block compressed with the MS-XCA "plain LZ77"
//! algorithm; a block that does not shrink is stored raw (compressed size = original
//! size), as the real server does. Blocks hold [`BLOCK`] original bytes, like Windows
//! Server 2025's.

/// Original bytes per block (Windows Server 2025 uses 16,352; the format allows 65,535).
pub const BLOCK: usize = 16_352;
/// The longest distance back a match may reach (13 bits of offset).
const WINDOW: usize = 8192;
const MIN_MATCH: usize = 3;
/// How many earlier positions with the same 3-byte prefix the matcher tries.
const CHAIN: usize = 24;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XpressError {
    #[error("truncated input")]
    Truncated,
    #[error("a match reaches before the start of the output")]
    BadOffset,
    #[error("a block decodes to a size other than its header says")]
    SizeMismatch,
    #[error("output larger than the limit")]
    TooLarge,
}

/// Compresses `data` into framed blocks.
pub fn compress(data: &[u8]) -> Vec<u8> {
    compress_with(data, compress_block)
}

/// Compresses `data` into framed blocks, each block by `pack` (which must give what
/// [`compress_block`] gives: a caller may hand back a block compressed before). Blocks
/// are compressed independently, so the same [`BLOCK`] bytes always pack the same.
pub fn compress_with<P: AsRef<[u8]>>(data: &[u8], mut pack: impl FnMut(&[u8]) -> P) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 3 + 64);
    for block in data.chunks(BLOCK) {
        let packed = pack(block);
        let packed = packed.as_ref();
        out.extend_from_slice(&(block.len() as u32).to_le_bytes());
        if packed.len() < block.len() {
            out.extend_from_slice(&(packed.len() as u32).to_le_bytes());
            out.extend_from_slice(packed);
        } else {
            out.extend_from_slice(&(block.len() as u32).to_le_bytes());
            out.extend_from_slice(block);
        }
    }
    out
}

/// Decompresses framed blocks; refuses to produce more than `limit` bytes.
pub fn decompress(mut data: &[u8], limit: usize) -> Result<Vec<u8>, XpressError> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.len() < 8 {
            return Err(XpressError::Truncated);
        }
        let original = u32::from_le_bytes(data[0..4].try_into().expect("4 bytes")) as usize;
        let packed = u32::from_le_bytes(data[4..8].try_into().expect("4 bytes")) as usize;
        data = &data[8..];
        if data.len() < packed {
            return Err(XpressError::Truncated);
        }
        if out.len() + original > limit {
            return Err(XpressError::TooLarge);
        }
        let (block, rest) = data.split_at(packed);
        if packed == original {
            out.extend_from_slice(block);
        } else {
            let start = out.len();
            decompress_block(block, &mut out, start + original)?;
            if out.len() != start + original {
                return Err(XpressError::SizeMismatch);
            }
        }
        data = rest;
    }
    Ok(out)
}

fn hash3(b: &[u8]) -> usize {
    ((b[0] as usize) << 8 ^ (b[1] as usize) << 4 ^ b[2] as usize) & 0xFFF
}

/// MS-XCA 2.3 plain LZ77 compression of one block.
pub fn compress_block(input: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(input.len() + input.len() / 8 + 8);
    out.extend_from_slice(&[0; 4]);
    let mut flag_pos = 0usize;
    let (mut flags, mut flag_count) = (0u32, 0u32);
    let mut last_half_byte: Option<usize> = None;
    let mut head = vec![usize::MAX; 4096];
    let mut prev = vec![usize::MAX; input.len()];
    let mut i = 0usize;
    let insert = |pos: usize, head: &mut Vec<usize>, prev: &mut Vec<usize>| {
        if pos + MIN_MATCH <= input.len() {
            let h = hash3(&input[pos..]);
            prev[pos] = head[h];
            head[h] = pos;
        }
    };
    while i < input.len() {
        // Longest match within the window, along the hash chain.
        let (mut best_len, mut best_off) = (0usize, 0usize);
        if i + MIN_MATCH <= input.len() {
            let mut candidate = head[hash3(&input[i..])];
            let mut tries = 0;
            while candidate != usize::MAX && i - candidate <= WINDOW && tries < CHAIN {
                let max = input.len() - i;
                let mut l = 0;
                while l < max && input[candidate + l] == input[i + l] {
                    l += 1;
                }
                if l > best_len {
                    best_len = l;
                    best_off = i - candidate;
                    if l == max {
                        break;
                    }
                }
                candidate = prev[candidate];
                tries += 1;
            }
        }
        if best_len >= MIN_MATCH {
            let mut length = best_len - MIN_MATCH;
            let offset = ((best_off - 1) as u16) << 3;
            if length < 7 {
                out.extend_from_slice(&(offset | length as u16).to_le_bytes());
            } else {
                out.extend_from_slice(&(offset | 7).to_le_bytes());
                length -= 7;
                let nibble = length.min(15) as u8;
                match last_half_byte.take() {
                    None => {
                        last_half_byte = Some(out.len());
                        out.push(nibble);
                    }
                    Some(at) => out[at] |= nibble << 4,
                }
                if length >= 15 {
                    length -= 15;
                    if length < 255 {
                        out.push(length as u8);
                    } else {
                        out.push(255);
                        let total = length + 15 + 7;
                        if total < 1 << 16 {
                            out.extend_from_slice(&(total as u16).to_le_bytes());
                        } else {
                            out.extend_from_slice(&0u16.to_le_bytes());
                            out.extend_from_slice(&(total as u32).to_le_bytes());
                        }
                    }
                }
            }
            flags = (flags << 1) | 1;
            for p in i..i + best_len {
                insert(p, &mut head, &mut prev);
            }
            i += best_len;
        } else {
            out.push(input[i]);
            flags <<= 1;
            insert(i, &mut head, &mut prev);
            i += 1;
        }
        flag_count += 1;
        if flag_count == 32 {
            out[flag_pos..flag_pos + 4].copy_from_slice(&flags.to_le_bytes());
            flag_count = 0;
            flags = 0;
            flag_pos = out.len();
            out.extend_from_slice(&[0; 4]);
        }
    }
    // Fill the remaining flag bits with ones: the end marker.
    let remaining = 32 - flag_count;
    let last = if remaining == 32 { u32::MAX } else { (flags << remaining) | ((1u32 << remaining) - 1) };
    out[flag_pos..flag_pos + 4].copy_from_slice(&last.to_le_bytes());
    out
}

/// MS-XCA 2.4 plain LZ77 decompression of one block, appending to `out` up to `limit`.
pub fn decompress_block(input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), XpressError> {
    let start = out.len();
    let (mut flags, mut flag_count) = (0u32, 0u32);
    let mut pos = 0usize;
    let mut last_half_byte: Option<usize> = None;
    let byte = |p: usize| input.get(p).copied().ok_or(XpressError::Truncated);
    loop {
        if flag_count == 0 {
            if pos + 4 > input.len() {
                return Err(XpressError::Truncated);
            }
            flags = u32::from_le_bytes(input[pos..pos + 4].try_into().expect("4 bytes"));
            pos += 4;
            flag_count = 32;
        }
        flag_count -= 1;
        if flags & (1 << flag_count) == 0 {
            if out.len() >= limit {
                return Err(XpressError::TooLarge);
            }
            out.push(byte(pos)?);
            pos += 1;
        } else {
            if pos == input.len() {
                return Ok(());
            }
            let word = u16::from_le_bytes([byte(pos)?, byte(pos + 1)?]) as usize;
            pos += 2;
            let offset = (word >> 3) + 1;
            let mut length = word & 7;
            if length == 7 {
                length = match last_half_byte.take() {
                    None => {
                        last_half_byte = Some(pos);
                        let l = byte(pos)? as usize & 15;
                        pos += 1;
                        l
                    }
                    Some(at) => byte(at)? as usize >> 4,
                };
                if length == 15 {
                    length = byte(pos)? as usize;
                    pos += 1;
                    if length == 255 {
                        length = u16::from_le_bytes([byte(pos)?, byte(pos + 1)?]) as usize;
                        pos += 2;
                        if length == 0 {
                            length = u32::from_le_bytes([byte(pos)?, byte(pos + 1)?, byte(pos + 2)?, byte(pos + 3)?])
                                as usize;
                            pos += 4;
                        }
                        length = length.checked_sub(15 + 7).ok_or(XpressError::Truncated)?;
                    }
                    length += 15;
                }
                length += 7;
            }
            length += 3;
            if offset > out.len() - start {
                return Err(XpressError::BadOffset);
            }
            if out.len() + length > limit {
                return Err(XpressError::TooLarge);
            }
            for _ in 0..length {
                let b = out[out.len() - offset];
                out.push(b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(data: &[u8]) -> Vec<u8> {
        let packed = compress(data);
        assert_eq!(decompress(&packed, usize::MAX).unwrap(), data);
        packed
    }

    #[test]
    fn round_trips() {
        round_trip(b"");
        round_trip(b"a");
        round_trip(b"abcabcabcabcabcabcabcabc");
        round_trip(&[7u8; 100_000]);
        let xml: String = (0..3000)
            .map(|i| format!("<UpdateInfo><ID>{}</ID><IsLeaf>true</IsLeaf></UpdateInfo>", 100_000 + i))
            .collect();
        let packed = round_trip(xml.as_bytes());
        assert!(packed.len() * 4 < xml.len(), "XML shrinks a lot: {} -> {}", xml.len(), packed.len());
        // Long matches of every length encoding.
        for n in [3usize, 9, 10, 24, 25, 280, 281, 300, 70_000] {
            let mut d = b"xyz".to_vec();
            d.extend(std::iter::repeat_n(b'q', n));
            d.extend_from_slice(b"end");
            round_trip(&d);
        }
    }

    #[test]
    fn incompressible_blocks_are_stored_raw() {
        let noise = wsus_testdata::noise(40_000);
        let packed = round_trip(&noise);
        // Three blocks, each header saying compressed == original.
        assert_eq!(packed.len(), noise.len() + 3 * 8);
        assert_eq!(&packed[0..8], &[&(BLOCK as u32).to_le_bytes()[..], &(BLOCK as u32).to_le_bytes()[..]].concat()[..]);
    }

    #[test]
    fn hostile_input_is_refused() {
        assert_eq!(decompress(&[1, 0, 0], 100), Err(XpressError::Truncated));
        // A block claiming a huge size.
        assert_eq!(decompress(&[0xFF, 0xFF, 0xFF, 0x7F, 4, 0, 0, 0, 0, 0, 0, 0], 1000), Err(XpressError::TooLarge));
        // A match before the start.
        let bad = [10, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 128, 0xF8, 0xFF];
        assert!(decompress(&bad, 100).is_err());
    }
}
