//! Hashing and comparing label values: the [`Key`] a lookup compares first (a value's length and
//! two words of its bytes) and the per-family seeded [`LabelHasher`]; and the caller's values
//! read into lists of our own (`as_strs`, `cold_copy`).

use std::ptr;

/// What a lookup compares first: a label value's length and two words of its bytes. For a value
/// of at most [`SHORT`] bytes (label values almost always are), equal keys mean equal values: the
/// words are the first and last eight bytes (four for 4 to 7 bytes, the first, middle and last
/// byte for 1 to 3), which together cover every byte, and the length tells the overlap. Longer
/// values are compared in full after their keys matched.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Key {
    len: u64,
    a: u64,
    b: u64,
}

/// Values up to this many bytes are identified by their [`Key`] alone.
pub(super) const SHORT: usize = 16;

/// How many values' keys [`LabelHasher::hash_keys`] keeps.
pub(super) const KEPT: usize = 4;

impl Key {
    pub(super) const ZERO: Key = Key { len: 0, a: 0, b: 0 };

    #[inline(always)]
    pub(super) fn of(s: &[u8]) -> Key {
        let n = s.len();
        let p = s.as_ptr();
        // SAFETY: every read below lies within `s`: 8-byte reads at 0 and `n - 8` need `n >= 8`,
        // 4-byte reads at 0 and `n - 4` need `n >= 4`, byte reads need `n >= 1`; unaligned
        // reads of plain bytes.
        let (a, b) = unsafe {
            if n >= 8 {
                (
                    ptr::read_unaligned(p.cast::<u64>()),
                    ptr::read_unaligned(p.add(n - 8).cast::<u64>()),
                )
            } else if n >= 4 {
                (
                    u64::from(ptr::read_unaligned(p.cast::<u32>())),
                    u64::from(ptr::read_unaligned(p.add(n - 4).cast::<u32>())),
                )
            } else if n > 0 {
                (
                    u64::from(*p) | u64::from(*p.add(n / 2)) << 8 | u64::from(*p.add(n - 1)) << 16,
                    0,
                )
            } else {
                (0, 0)
            }
        };
        Key {
            len: n as u64,
            a,
            b,
        }
    }
}

/// The 64-bit product of `x` and `y` folded onto itself (high half xor low half): every input bit
/// reaches the low bits the table index uses. foldhash's and wyhash's mixing step.
#[inline(always)]
fn fold_mul(x: u64, y: u64) -> u64 {
    let p = u128::from(x) * u128::from(y);
    (p as u64) ^ ((p >> 64) as u64)
}

/// The label-value hash: per value one folded multiply of its [`Key`] with the family's random
/// seeds (plus one per further 16 bytes of a value longer than [`SHORT`]), and one to finish.
///
/// Why not a general-purpose hasher: ahash takes its fast path only with AES-NI, which the default
/// x86-64 target lacks, and foldhash, which does not need it, still spent about 28 instructions on
/// two short values through the `Hasher` interface (state set-up, a length dispatch per `write`,
/// `finish`). Label values are a few short strings whose [`Key`] the lookup computes anyway for
/// its comparison; hashing the key is one multiply per value. It is seeded per family at random
/// (as foldhash is), so which label values collide is not predictable from outside; and whatever
/// collides, the table stays correct (tags are compared, then keys, then long values in full)
/// and bounded (the cardinality cap).
#[derive(Clone, Copy)]
pub(super) struct LabelHasher {
    /// The hash's start, and what every multiply's second factor is mixed with.
    seeds: [u64; 2],
    /// Test support: every hash is the same, so every lookup compares its values with every
    /// series' (the comparisons are what the exactness tests must reach).
    #[cfg(test)]
    colliding: bool,
}

impl LabelHasher {
    /// Random seeds (fixed under loom, whose models must replay the same executions).
    pub(super) fn new() -> LabelHasher {
        #[cfg(not(agentcore_loom))]
        {
            use std::hash::BuildHasher as _;
            let state = std::collections::hash_map::RandomState::new();
            // Odd multipliers, so that no seed makes a multiply lose bits.
            LabelHasher {
                seeds: [0u64, 1].map(|i| state.hash_one(i) | 1),
                #[cfg(test)]
                colliding: false,
            }
        }
        #[cfg(agentcore_loom)]
        LabelHasher {
            seeds: [0x243F_6A88_85A3_08D3, 0xA409_3822_299F_31D1],
            #[cfg(test)]
            colliding: false,
        }
    }

    /// One value into the hash: `h` carries the first seed (it starts as it, and every multiply
    /// folds it in), so the first factor needs no seed of its own. The length is *added* to the
    /// last word, not xored: one `lea` instead of a copy and an `xor` (the multiply's operand
    /// must be a fresh register). Either way some keys of different lengths give the same
    /// factor whatever the seeds (a length and a last word that differ by the same amount, or
    /// in the same bits): such values only collide, and the exact comparison tells them apart.
    #[inline(always)]
    fn mix(&self, h: u64, key: Key) -> u64 {
        fold_mul(h ^ key.a, key.b.wrapping_add(key.len) ^ self.seeds[1])
    }

    /// A hasher that maps every label-value list to the same hash (tests of the comparisons).
    #[cfg(all(test, not(agentcore_loom)))]
    pub(super) fn colliding() -> LabelHasher {
        LabelHasher {
            colliding: true,
            ..LabelHasher::new()
        }
    }

    #[inline(always)]
    pub(super) fn hash<S: AsRef<str>>(&self, values: &[S]) -> u64 {
        self.hash_keys(values, &mut [Key::ZERO; KEPT])
    }

    /// [`LabelHasher::hash`], keeping the keys of the first [`KEPT`] values in `keys` (the
    /// lookup compares them with a cached series' without computing them again).
    #[inline(always)]
    pub(super) fn hash_keys<S: AsRef<str>>(&self, values: &[S], keys: &mut [Key; KEPT]) -> u64 {
        let mut h = self.seeds[0];
        for (i, v) in values.iter().enumerate() {
            let v = v.as_ref().as_bytes();
            let key = Key::of(v);
            // Right after `Key::of`, whose branches on the length this test joins (the compiler
            // tests it only where the value has 8 bytes or more).
            if v.len() > SHORT {
                h = self.mix_long(h, v);
            }
            if let Some(k) = keys.get_mut(i) {
                *k = key;
            }
            h = self.mix(h, key);
        }
        #[cfg(test)]
        if self.colliding {
            return 0x5EED;
        }
        // One more folded multiply, so that every bit of the hash depends on every bit of every
        // key. Without it, values that differ only in their last bytes (`agent-007`,
        // `worker-12`: the high bytes of the key's words) varied the low bits the lookup cache
        // takes its entry from through the high half of one product alone, and for about one
        // family seed in twenty, 50 such values crowded into a few entries: more than 14 of
        // them displaced from the entry they prefer (a random placement: practically never),
        // some sets holding more keys than ways, their lookups missing every time
        // (`lookup_cache::tests::label_values_spread_over_the_entries_whatever_the_seeds`).
        // Three instructions a lookup.
        fold_mul(h, self.seeds[1])
    }

    /// The bytes of a long value that its key does not cover: every 16-byte chunk.
    #[cold]
    #[inline(never)]
    fn mix_long(&self, mut h: u64, v: &[u8]) -> u64 {
        for chunk in v.chunks(SHORT) {
            h = self.mix(h, Key::of(chunk));
        }
        h
    }
}

/// The first [`KEPT`] values as `&str`, in an array of the lookup's own, for its cold paths
/// (a miss, a comparison in full). Handed the caller's slice instead, those calls took the
/// address of the caller's array of values, which then had to be in memory before every
/// lookup: its four words stored each time for two values, hit or not. With this copy, made
/// on the cold path, the caller's array stays in registers (a spill or two remains):
/// `labeled_inc` about 105.0 -> 103.9, `labeled_histogram_observe` 118.4 -> 117.0 (callgrind,
/// `breakdown.py`, release). Each value is read again (`as_ref`), as the cold paths always did.
#[cfg(not(agentcore_loom))]
#[inline(always)]
pub(super) fn cold_copy<S: AsRef<str>>(values: &[S]) -> [&str; KEPT] {
    let mut copy = [""; KEPT];
    for (c, v) in copy.iter_mut().zip(values) {
        *c = v.as_ref();
    }
    copy
}

/// The label values as `&str`, each `as_ref` called once, here. The writer paths call this
/// before they take the family's writer mutex and use only its result under it: the caller's
/// `as_ref` may run any code, including an insert or a removal in this very family, which takes
/// that mutex (under it, such an `as_ref` deadlocked its own thread). Off the hot path (inserts
/// and removals); four values inline.
pub(super) fn as_strs<S: AsRef<str>>(values: &[S]) -> smallvec::SmallVec<[&str; 4]> {
    values.iter().map(AsRef::as_ref).collect()
}
