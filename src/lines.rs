//! Finding where lines end: the CR and LF bytes of a chunk, fast.
//!
//! Most of a decoder's time goes into finding line endings, and lines are short (tens of
//! bytes), so a vectorised search per line (`memchr2`) spends as long setting up as searching,
//! and mispredicts a branch at each match. [`LineEnds`] instead takes the chunk a window at a
//! time: one SIMD comparison per 64 bytes gives a bitmask of its CR and LF bytes, whose
//! positions are written out to a list with no branch for up to four per block; the decoder
//! reads line endings off the list.
//!
//! On x86-64 with AVX2, detected at run time, the comparison takes 32 bytes at a time through
//! `pulp`'s safe wrappers; elsewhere `wide` gives 16 (SSE2, NEON, wasm simd128) or a portable
//! fallback. Both produce the same bitmask.
//!
//! The scan also notes whether a window holds a CR at all: most streams end lines with LF
//! only, and the decoder then need not look at the byte after each line ending for the LF of
//! a CRLF.

use wide::u8x16;

/// The bytes compared at once: one bit each in a `u64`.
const BLOCK: usize = 64;

/// The bytes scanned ahead of the line being read: their line endings are listed in a buffer
/// of offsets.
const WINDOW: usize = 4096;

/// Line endings listed per block without a branch. Most 64-byte blocks of a stream hold four
/// or fewer; writing more slots slows streams of long lines, fewer mispredicts on short ones
/// (on the inputs of `benches/codec.rs`, 8 was about 15% slower on large events and 2 about
/// 8% slower on small ones).
const UNROLL: usize = 4;

/// The instruction set to compare with, detected once per decoder.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Simd {
    #[cfg(target_arch = "x86_64")]
    avx2: Option<pulp::x86::V3>,
}

impl Default for Simd {
    fn default() -> Simd {
        Simd {
            #[cfg(target_arch = "x86_64")]
            avx2: pulp::x86::V3::try_new(),
        }
    }
}

impl Simd {
    /// Lists the offsets of the CR and LF bytes of `window` (at most [`WINDOW`] bytes) in
    /// `ends` and returns how many there are, and whether any is a CR. `ends` must hold
    /// `window.len()` rounded up to a multiple of [`BLOCK`].
    fn scan(self, window: &[u8], ends: &mut [u32]) -> (usize, bool) {
        #[cfg(target_arch = "x86_64")]
        if let Some(v3) = self.avx2 {
            // The intrinsics must be written inside the closure `vectorize` compiles for AVX2
            // (a helper function would be compiled without it, and call each intrinsic).
            return v3.vectorize(|| {
                use std::arch::x86_64::__m256i;
                let (avx, avx2) = (v3.avx, v3.avx2);
                let (cr, lf) = (
                    avx._mm256_set1_epi8(b'\r' as i8),
                    avx._mm256_set1_epi8(b'\n' as i8),
                );
                // The movemask's bits, reinterpreted as unsigned.
                let bits = |hits| u64::from(avx2._mm256_movemask_epi8(hits) as u32);
                let half = |lanes: [u8; 32]| {
                    let lanes: __m256i = pulp::bytemuck::cast(lanes);
                    let crs = avx2._mm256_cmpeq_epi8(lanes, cr);
                    let hits = avx2._mm256_or_si256(crs, avx2._mm256_cmpeq_epi8(lanes, lf));
                    (bits(hits), bits(crs))
                };
                scan_with(window, ends, |block| {
                    let [low, high]: [[u8; 32]; 2] = pulp::bytemuck::cast(block);
                    let ((low, low_crs), (high, high_crs)) = (half(low), half(high));
                    (low | high << 32, low_crs | high_crs)
                })
            });
        }
        scan_with(window, ends, mask_portable)
    }
}

/// The line endings of one chunk, in order.
pub(crate) struct LineEnds<'c> {
    chunk: &'c [u8],
    simd: Simd,
    /// Where the window starts in the chunk.
    base: usize,
    /// The window's line endings as offsets from `base`: `ends[next..count]` are not yet
    /// returned.
    ends: Vec<u32>,
    next: usize,
    count: usize,
    /// The window holds a CR.
    crs: bool,
}

impl<'c> LineEnds<'c> {
    /// Starts on `chunk`, with `ends` as the buffer (kept by the decoder between chunks, so
    /// that it is allocated once).
    pub(crate) fn new(chunk: &'c [u8], simd: Simd, ends: Vec<u32>) -> LineEnds<'c> {
        let mut line_ends = LineEnds {
            chunk,
            simd,
            base: 0,
            ends,
            next: 0,
            count: 0,
            crs: false,
        };
        line_ends.scan();
        line_ends
    }

    /// The buffer, for the next chunk.
    pub(crate) fn into_buffer(self) -> Vec<u32> {
        self.ends
    }

    /// Whether the line ending [`find`](LineEnds::find) returned last may be a CR; when not, it
    /// is an LF.
    #[inline]
    pub(crate) fn maybe_cr(&self) -> bool {
        self.crs
    }

    /// The first CR or LF at or after `from`, which is never before one already returned.
    #[inline]
    pub(crate) fn find(&mut self, from: usize) -> Option<usize> {
        loop {
            while self.next < self.count {
                let at = self.base + self.ends[self.next] as usize;
                self.next += 1;
                // Skips the LF of a CRLF, taken with its CR.
                if at >= from {
                    return Some(at);
                }
            }
            if self.base + WINDOW >= self.chunk.len() {
                return None;
            }
            self.base += WINDOW;
            self.scan();
        }
    }

    /// Lists the line endings of the window at `base`.
    fn scan(&mut self) {
        let window = self.chunk.get(self.base..).unwrap_or_default();
        let window = window.get(..WINDOW).unwrap_or(window);
        let room = window.len().next_multiple_of(BLOCK).max(BLOCK);
        if self.ends.len() < room {
            self.ends.resize(room, 0);
        }
        (self.count, self.crs) = self.simd.scan(window, &mut self.ends);
        self.next = 0;
    }
}

/// Lists the offsets of the line endings `mask` finds in `window`, a block at a time, and
/// tells whether any is a CR. `mask` gives a block's line endings and its CRs.
#[inline(always)]
fn scan_with(
    window: &[u8],
    ends: &mut [u32],
    mask: impl Fn([u8; BLOCK]) -> (u64, u64),
) -> (usize, bool) {
    let mut crs = 0;
    let mut count = 0;
    let mut base = 0;
    for block in window.chunks(BLOCK) {
        let block = match <[u8; BLOCK]>::try_from(block) {
            Ok(block) => block,
            Err(_) => {
                // The last, short block: padded with zeros, which are not line endings.
                let mut padded = [0; BLOCK];
                padded[..block.len()].copy_from_slice(block);
                padded
            }
        };
        // One call site, so that the mask is inlined once.
        let (mut bits, block_crs) = mask(block);
        crs |= block_crs;
        let found = bits.count_ones() as usize;
        // Four slots are written whether or not there are as many line endings, so a block
        // of a few lines costs no branch per line ending. There is room: at most `base` line
        // endings came before this block. Slots past `found` are garbage, never read.
        for slot in &mut ends[count..count + UNROLL] {
            *slot = base + bits.trailing_zeros();
            bits &= bits.wrapping_sub(1);
        }
        if found > UNROLL {
            for slot in &mut ends[count + UNROLL..count + found] {
                *slot = base + bits.trailing_zeros();
                bits &= bits.wrapping_sub(1);
            }
        }
        count += found;
        base += BLOCK as u32;
    }
    (count, crs != 0)
}

/// The CR and LF bytes of `block` and its CRs, one bit each, 16 bytes at a time.
#[inline(always)]
fn mask_portable(block: [u8; BLOCK]) -> (u64, u64) {
    let (cr, lf) = (u8x16::splat(b'\r'), u8x16::splat(b'\n'));
    let (mut ends, mut crs) = (0, 0);
    for (i, lanes) in block.as_chunks::<16>().0.iter().enumerate() {
        let lanes = u8x16::from(*lanes);
        let block_crs = lanes.simd_eq(cr);
        let hits = block_crs | lanes.simd_eq(lf);
        ends |= u64::from(hits.to_bitmask()) << (16 * i);
        crs |= u64::from(block_crs.to_bitmask()) << (16 * i);
    }
    (ends, crs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a plain search finds.
    fn expected(chunk: &[u8]) -> Vec<usize> {
        memchr::memchr2_iter(b'\r', b'\n', chunk).collect()
    }

    fn found(chunk: &[u8], simd: Simd) -> Vec<usize> {
        let mut line_ends = LineEnds::new(chunk, simd, Vec::new());
        std::iter::from_fn(|| line_ends.find(0)).collect()
    }

    /// The portable comparison, whatever this machine has.
    fn portable() -> Simd {
        Simd {
            #[cfg(target_arch = "x86_64")]
            avx2: None,
        }
    }

    /// Every length around the block and window sizes, line endings dense and sparse, with
    /// each instruction set this machine has.
    #[test]
    fn finds_every_cr_and_lf() {
        for simd in [Simd::default(), portable()] {
            for len in (0..200)
                .chain(WINDOW - 70..WINDOW + 70)
                .chain([3 * WINDOW + 5])
            {
                for every in [1, 2, 7, 63, 64, 65, 1000] {
                    let chunk: Vec<u8> = (0..len)
                        .map(|i| match i % every {
                            0 if i % 3 == 0 => b'\r',
                            0 => b'\n',
                            _ => b'a' + (i % 26) as u8,
                        })
                        .collect();
                    assert_eq!(found(&chunk, simd), expected(&chunk), "{len} {every}");
                }
            }
        }
    }

    #[test]
    fn notes_whether_the_window_holds_a_cr() {
        for simd in [Simd::default(), portable()] {
            let mut chunk = vec![b'\n'; 2 * WINDOW];
            chunk[WINDOW + 70] = b'\r';
            let mut line_ends = LineEnds::new(&chunk, simd, Vec::new());
            assert_eq!(line_ends.find(0), Some(0));
            assert!(!line_ends.maybe_cr(), "the first window has no CR");
            assert_eq!(line_ends.find(WINDOW), Some(WINDOW));
            assert!(line_ends.maybe_cr(), "the second window has one");
        }
    }

    #[test]
    fn find_skips_what_is_before_from() {
        let chunk = b"a\r\nb\n\nc\r";
        let mut line_ends = LineEnds::new(chunk, Simd::default(), Vec::new());
        assert_eq!(line_ends.find(0), Some(1));
        assert_eq!(line_ends.find(3), Some(4)); // the LF of the CRLF is skipped
        assert_eq!(line_ends.find(5), Some(5));
        assert_eq!(line_ends.find(6), Some(7));
        assert_eq!(line_ends.find(8), None);
    }
}
