//! A sample's message id, kept inline when it is short (a UUID always is).

use std::cell::Cell;

use crate::Text;

/// Ids of up to this many bytes (a hyphenated UUID is 36) need no allocation.
pub(crate) const INLINE: usize = 36;
/// `len` value meaning "the id is in `text`".
const IN_TEXT: u8 = u8::MAX;

/// The id itself: inline bytes for a short id, shared text for a longer one. A
/// [`Sample`](crate::Sample) holds these three fields directly (not this struct, whose
/// padding would make a sample 136 bytes instead of 128, the size the compiler still
/// moves without calling `memcpy`).
#[derive(Clone)]
pub(crate) struct MessageId {
    pub(crate) text: Text,
    pub(crate) inline: [u8; INLINE],
    pub(crate) len: u8,
}

impl MessageId {
    /// A fresh time-ordered (version 7) UUID: ids made one after the other sort one
    /// after the other, so a store's unique index on them grows at its end instead of
    /// being written all over (random ids made a large store's load rate fall
    /// sevenfold).
    ///
    /// Its time is `timestamp_us` (the sample's: reading the clock again per id cost
    /// more than the rest of a transformer step); ids made in one thread within one
    /// millisecond count up in the 12 bits after it, so they sort in the order made.
    pub(crate) fn new_v7(timestamp_us: i64) -> MessageId {
        let mut id = MessageId {
            len: INLINE as u8,
            inline: [0; INLINE],
            text: Text::new(),
        };
        write_v7(timestamp_us, &mut id.inline);
        id
    }

    pub(crate) fn from_str(s: &str) -> MessageId {
        let mut id = MessageId {
            len: IN_TEXT,
            inline: [0; INLINE],
            text: Text::new(),
        };
        if s.len() <= INLINE {
            id.inline[..s.len()].copy_from_slice(s.as_bytes());
            id.len = s.len() as u8;
        } else {
            id.text = Text::from(s);
        }
        id
    }

    /// Keeps a long id's text as it is (shared), copies a short one inline.
    pub(crate) fn from_text(t: Text) -> MessageId {
        if t.len() <= INLINE {
            return MessageId::from_str(&t);
        }
        MessageId {
            len: IN_TEXT,
            inline: [0; INLINE],
            text: t,
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        as_str(&self.text, &self.inline, self.len)
    }
}

/// The id held in these fields (see [`MessageId`]).
pub(crate) fn as_str<'a>(text: &'a Text, inline: &'a [u8; INLINE], len: u8) -> &'a str {
    match inline.get(..usize::from(len)) {
        // SAFETY: inline bytes are only ever copied whole from a `str` or written by the
        // UUID encoder (ASCII), `len` bytes of them.
        Some(bytes) => unsafe { std::str::from_utf8_unchecked(bytes) },
        None => text.as_str(),
    }
}

/// Writes a fresh version 7 id (see [`MessageId::new_v7`]) into `out`, where a sample
/// keeps it: no id value is built and moved on the way.
pub(crate) fn write_v7(timestamp_us: i64, out: &mut [u8; INLINE]) {
    thread_local! {
        /// (millisecond of the last id, its counter, random state).
        static STATE: Cell<(i64, u16, u64)> = Cell::new((i64::MIN, 0, seed()));
    }
    let ms = timestamp_us.div_euclid(1000);
    let (counter, random) = STATE.with(|state| {
        let (prev, n, rng) = state.get();
        let n = if prev == ms {
            n.wrapping_add(1) & 0x0fff
        } else {
            0
        };
        let rng = rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set((ms, n, rng));
        (n, splitmix64(rng))
    });
    // Before 1970 is not a time a UUID v7 can carry: such ids start at the epoch.
    let millis = u64::try_from(ms).unwrap_or(0);
    let (high, low) = v7_words(millis, counter, random);
    encode_hyphenated(high, low, out);
}

/// A version 7 UUID (RFC 9562) as its big-endian high and low halves: 48 bits of
/// milliseconds, the version, 12 bits of counter, the variant and 62 random bits — the
/// layout of `uuid::Builder::from_unix_timestamp_millis` with the counter in its first
/// bytes, built here without the `Uuid` on the way (the tests check both agree).
fn v7_words(millis: u64, counter: u16, random: u64) -> (u64, u64) {
    let high = (millis & 0xffff_ffff_ffff) << 16 | 0x7000 | u64::from(counter & 0x0fff);
    let low = (random & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    (high, low)
}

/// The UUID with halves `high` and `low` as `Uuid::as_hyphenated` writes it. Three ids
/// are made per sample in a two-step chain: with a table of digit pairs an id cost ~160
/// instructions in all, with the 32 digits computed at once in SSE2's registers
/// (every x86-64 has them) ~100 (callgrind).
fn encode_hyphenated(high: u64, low: u64, out: &mut [u8; INLINE]) {
    let d = hex_digits(high, low);
    out[..8].copy_from_slice(&d[..8]);
    out[8] = b'-';
    out[9..13].copy_from_slice(&d[8..12]);
    out[13] = b'-';
    out[14..18].copy_from_slice(&d[12..16]);
    out[18] = b'-';
    out[19..23].copy_from_slice(&d[16..20]);
    out[23] = b'-';
    out[24..].copy_from_slice(&d[20..]);
}

/// The 32 lowercase hex digits of the 16 bytes `high`, `low` (big-endian).
#[cfg(target_arch = "x86_64")]
fn hex_digits(high: u64, low: u64) -> [u8; 32] {
    use std::arch::x86_64::*;
    let mut digits = [0u8; 32];
    let bytes = (u128::from(high) << 64 | u128::from(low)).to_be_bytes();
    // SAFETY: SSE2 is part of x86-64 itself; the load and stores are unaligned ones
    // of 16 bytes within `bytes` and `digits`.
    unsafe {
        let v = _mm_loadu_si128(bytes.as_ptr().cast());
        let nibble = _mm_set1_epi8(0x0f);
        let high_nibbles = _mm_and_si128(_mm_srli_epi16::<4>(v), nibble);
        let low_nibbles = _mm_and_si128(v, nibble);
        // Each byte's high digit, then its low one.
        let first = _mm_unpacklo_epi8(high_nibbles, low_nibbles);
        let second = _mm_unpackhi_epi8(high_nibbles, low_nibbles);
        let ascii = |n: __m128i| {
            let letter = _mm_cmpgt_epi8(n, _mm_set1_epi8(9));
            let offset = _mm_and_si128(letter, _mm_set1_epi8((b'a' - b'0' - 10) as i8));
            _mm_add_epi8(_mm_add_epi8(n, _mm_set1_epi8(b'0' as i8)), offset)
        };
        _mm_storeu_si128(digits.as_mut_ptr().cast(), ascii(first));
        _mm_storeu_si128(digits.as_mut_ptr().add(16).cast(), ascii(second));
    }
    digits
}

/// The 32 lowercase hex digits of the 16 bytes `high`, `low` (big-endian).
#[cfg(not(target_arch = "x86_64"))]
fn hex_digits(high: u64, low: u64) -> [u8; 32] {
    hex_digits_portable(high, low)
}

/// As `hex_digits`, on any machine: eight digits at a time in one register, each
/// nibble spread to a byte of its own, then made a digit. (Tested on x86-64 too.)
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn hex_digits_portable(high: u64, low: u64) -> [u8; 32] {
    fn eight(x: u32) -> [u8; 8] {
        let mut v = u64::from(x);
        v = (v | v << 16) & 0x0000_ffff_0000_ffff;
        v = (v | v << 8) & 0x00ff_00ff_00ff_00ff;
        v = (v | v << 4) & 0x0f0f_0f0f_0f0f_0f0f;
        // 1 in each byte whose nibble is 10 or more: its digit is a letter.
        let letters = ((v + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
        (v + 0x3030_3030_3030_3030 + letters * u64::from(b'a' - b'0' - 10)).to_be_bytes()
    }
    let mut digits = [0u8; 32];
    for (i, word) in [high >> 32, high, low >> 32, low].into_iter().enumerate() {
        digits[i * 8..i * 8 + 8].copy_from_slice(&eight(word as u32));
    }
    digits
}

/// Each thread's random stream starts from the system's randomness (through `uuid`).
fn seed() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0
}

/// SplitMix64's output function: 62 well-mixed bits per id from a counter, far cheaper
/// than a cryptographic generator. Uniqueness, not secrecy, is what ids need; the time
/// and per-thread counter in front of it keep one thread's ids apart.
fn splitmix64(x: u64) -> u64 {
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl std::fmt::Debug for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for MessageId {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_inline_long_ids_shared() {
        for s in ["", "a", "5460acce-4fd6-480d-ab18-9735ec7b1996", "é-ü"] {
            let id = MessageId::from_str(s);
            assert_ne!(id.len, IN_TEXT);
            assert_eq!(id.as_str(), s);
        }
        let long = "x".repeat(37);
        let id = MessageId::from_str(&long);
        assert_eq!(id.len, IN_TEXT);
        assert_eq!(id.clone().as_str(), long);
        let v7 = MessageId::new_v7(1_700_000_000_123_456);
        assert_eq!(v7.as_str().len(), 36);
        assert_eq!(&v7.as_str()[14..15], "7");
        let u = uuid::Uuid::parse_str(v7.as_str()).unwrap();
        let (secs, nanos) = u.get_timestamp().unwrap().to_unix();
        assert_eq!((secs, nanos / 1_000_000), (1_700_000_000, 123));
    }

    #[test]
    fn ids_of_one_millisecond_sort_in_the_order_made() {
        let ids: Vec<String> = (0..1000)
            .map(|_| MessageId::new_v7(1_700_000_000_000_000).as_str().to_owned())
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert!(MessageId::new_v7(-5)
            .as_str()
            .starts_with("00000000-0000-7"));
        let many: std::collections::HashSet<String> = (0..100_000)
            .map(|_| MessageId::new_v7(0).as_str().to_owned())
            .collect();
        assert_eq!(many.len(), 100_000, "no two ids alike");
    }

    #[test]
    fn each_threads_first_id_is_seeded_apart() {
        // Same time, same counter (0): only the thread's random stream tells them apart.
        let first = || {
            std::thread::spawn(|| MessageId::new_v7(1_700_000_000_000_000).as_str().to_owned())
                .join()
                .unwrap()
        };
        let ids: std::collections::HashSet<String> = (0..8).map(|_| first()).collect();
        assert_eq!(ids.len(), 8, "{ids:?}");
    }

    #[test]
    fn ids_are_what_the_uuid_crate_builds_and_writes() {
        let mut rng = 0x1234_5678_u64;
        let edges = [
            (0, 0, 0),
            (u64::MAX, u16::MAX, u64::MAX),
            (1 << 47, 0x0800, 1 << 63),
        ];
        let random = (0..10_000).map(|_| {
            rng = rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let r = splitmix64(rng);
            (r >> 16, r as u16, splitmix64(r))
        });
        for (millis, counter, bits) in edges.into_iter().chain(random) {
            let mut counter_random = [0u8; 10];
            counter_random[..2].copy_from_slice(&counter.to_be_bytes());
            counter_random[2..].copy_from_slice(&bits.to_be_bytes());
            let expected =
                uuid::Builder::from_unix_timestamp_millis(millis, &counter_random).into_uuid();
            let (high, low) = v7_words(millis, counter, bits);
            let bytes = (u128::from(high) << 64 | u128::from(low)).to_be_bytes();
            assert_eq!(bytes, *expected.as_bytes(), "{millis} {counter} {bits}");
            let mut text = [0u8; INLINE];
            encode_hyphenated(high, low, &mut text);
            assert_eq!(hex_digits_portable(high, low), hex_digits(high, low));
            assert_eq!(
                std::str::from_utf8(&text).unwrap(),
                expected.as_hyphenated().to_string()
            );
        }
    }
}
