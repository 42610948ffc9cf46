//! Xpress blocks compressed before. After a Patch Tuesday every machine alike is sent the
//! same SyncUpdates answer (megabytes of Core fragments on a Windows-sized catalog) but
//! for the cookie near its end, and the same GetExtendedUpdateInfo answers. Xpress
//! compresses fixed-size blocks independently (wsus-xpress), so the blocks before the
//! cookie pack the same for everyone: each is compressed once and then looked up.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

/// Bytes held at most (original and compressed): a few Windows-sized answers.
pub const DEFAULT_BOUND_BYTES: usize = 32 << 20;

struct Packed {
    block: Box<[u8]>,
    packed: Arc<[u8]>,
}

#[derive(Default)]
struct Entries {
    by_hash: HashMap<u64, Arc<Packed>>,
    /// Insertion order, for eviction.
    order: VecDeque<u64>,
    bytes: usize,
}

pub struct PackedBlocks {
    hasher: foldhash::quality::RandomState,
    bound: usize,
    entries: Mutex<Entries>,
}

impl PackedBlocks {
    pub fn new(bound: usize) -> Self {
        Self { hasher: Default::default(), bound, entries: Mutex::default() }
    }

    /// A block compressed as `wsus_xpress::compress_block` compresses it. Only full
    /// blocks are kept: a shorter one is the end of an answer, where the cookie is.
    pub fn pack(&self, block: &[u8]) -> Arc<[u8]> {
        if block.len() < wsus_xpress::BLOCK {
            return wsus_xpress::compress_block(block).into();
        }
        let hash = self.hasher.hash_one(block);
        if let Some(p) = self.entries.lock().expect("packed blocks").by_hash.get(&hash)
            && *p.block == *block
        {
            return p.packed.clone();
        }
        let packed: Arc<[u8]> = wsus_xpress::compress_block(block).into();
        let size = block.len() + packed.len();
        let mut entries = self.entries.lock().expect("packed blocks");
        while entries.bytes + size > self.bound {
            let Some(old) = entries.order.pop_front() else { break };
            if let Some(p) = entries.by_hash.remove(&old) {
                entries.bytes -= p.block.len() + p.packed.len();
            }
        }
        let entry = Arc::new(Packed { block: block.into(), packed: packed.clone() });
        // Another block of the same hash (or this one, packed meanwhile) gives way.
        if let Some(p) = entries.by_hash.insert(hash, entry) {
            entries.bytes -= p.block.len() + p.packed.len();
            entries.order.retain(|h| *h != hash);
        }
        entries.bytes += size;
        entries.order.push_back(hash);
        packed
    }

    pub fn bytes(&self) -> usize {
        self.entries.lock().expect("packed blocks").bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// XML-like bytes that differ with `seed`.
    fn answer(seed: u32, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        let mut n = seed;
        while out.len() < len {
            n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            out.extend_from_slice(
                format!("<UpdateInfo><ID>{}</ID><IsLeaf>true</IsLeaf></UpdateInfo>", n % 9973).as_bytes(),
            );
        }
        out.truncate(len);
        out
    }

    #[test]
    fn answers_pack_as_without_the_cache_and_shared_blocks_are_packed_once() {
        let blocks = PackedBlocks::new(1 << 20);
        let shared = answer(1, wsus_xpress::BLOCK * 3);
        let (mut a, mut b) = (shared.clone(), shared);
        a.extend_from_slice(b"<NewCookie>one</NewCookie>");
        b.extend_from_slice(b"<NewCookie>two</NewCookie>");
        for body in [&a, &b, &a] {
            assert_eq!(wsus_xpress::compress_with(body, |block| blocks.pack(block)), wsus_xpress::compress(body));
        }
        // Three full blocks kept; the short last ones not.
        let kept = blocks.bytes();
        assert!(kept > 3 * wsus_xpress::BLOCK && kept < 4 * wsus_xpress::BLOCK + 1, "{kept}");
    }

    #[test]
    fn the_oldest_go_past_the_bound() {
        let blocks = PackedBlocks::new(3 * wsus_xpress::BLOCK);
        for seed in 0..5 {
            let body = answer(seed, wsus_xpress::BLOCK);
            assert_eq!(wsus_xpress::compress_with(&body, |block| blocks.pack(block)), wsus_xpress::compress(&body));
        }
        assert!(blocks.bytes() <= 3 * wsus_xpress::BLOCK);
    }
}
