//! [`MetadataCache`] and [`MetadataMemo`]: what is read from resource metadata, kept
//! for the samples that share it.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde_json::Value;

use crate::{Sample, Text};

/// Parsed resource metadata, kept for as long as samples carry the *same shared*
/// metadata text ([`Text::ptr_eq`]): the samples of one resource from one notification,
/// or from every poll of a poller that keeps a resource's metadata while it is
/// unchanged. A transformer that reads metadata for every sample (a `cpu_util` scale
/// reading `resource_metadata.cpu_number`) then parses it once per resource instead of
/// once per sample. Holds up to 16 384 texts (then starts again), each kept alive by
/// the cache, so an address is never mistaken for another text's. When a plugin reads
/// the same few values every time, [`MetadataMemo`] keeps only those, which is faster.
///
/// ```
/// use ceilo_plugin_api::{MetadataCache, Sample, SampleType};
/// use serde_json::json;
///
/// let vm = Sample::new("cpu", SampleType::Cumulative, "ns", 1.0, "vm-1")
///     .with_resource_metadata(json!({"cpu_number": 4, "flavor": {"vcpus": 4}}));
/// let mut later = vm.clone(); // shares the metadata text
/// later.set_volume(2.0);
///
/// let mut cache = MetadataCache::default();
/// assert_eq!(cache.value(&vm, "flavor.vcpus"), Some(&json!(4)));
/// assert_eq!(cache.value(&later, "cpu_number"), Some(&json!(4))); // not parsed again
/// assert_eq!(cache.value(&later, "missing"), None);
/// ```
#[derive(Debug, Default)]
pub struct MetadataCache {
    parsed: MetadataMemo<Value>,
}

impl MetadataCache {
    /// One metadata value of `sample` by dotted path, as
    /// [`Sample::metadata_value`] but borrowed from the cache.
    pub fn value(&mut self, sample: &Sample, path: &str) -> Option<&Value> {
        path.split('.')
            .try_fold(self.parse(sample), |v, key| v.get(key))
    }

    /// [`value`](Self::value) with the path already split into keys.
    ///
    /// ```
    /// use ceilo_plugin_api::{MetadataCache, Sample, SampleType};
    /// let s = Sample::new("cpu", SampleType::Cumulative, "ns", 1.0, "vm-1")
    ///     .with_resource_metadata(serde_json::json!({"flavor": {"vcpus": 2}}));
    /// let mut cache = MetadataCache::default();
    /// assert_eq!(cache.value_at(&s, &["flavor", "vcpus"]), Some(&serde_json::json!(2)));
    /// ```
    pub fn value_at<K: AsRef<str>>(&mut self, sample: &Sample, keys: &[K]) -> Option<&Value> {
        keys.iter()
            .try_fold(self.parse(sample), |v, key| v.get(key.as_ref()))
    }

    fn parse(&mut self, sample: &Sample) -> &Value {
        self.parsed.get_or_derive(sample, |v| v)
    }
}

/// What a plugin derives from a sample's resource metadata — a number at a fixed path,
/// a class computed from the flavor — derived once per *shared* metadata text
/// ([`Text::ptr_eq`]) and then looked up by the text's address alone, without reading
/// the text or walking parsed JSON: for a `cpu_util` scale over many resources this is
/// one small table entry per sample. Holds up to 16 384 texts (then starts again),
/// each kept alive by the memo so that an address is never mistaken for another
/// text's. `derive` must depend on the metadata alone: it runs once per text (and once
/// for all samples without metadata, with `Value::Null`).
///
/// ```
/// use ceilo_plugin_api::{MetadataMemo, Sample, SampleType};
/// use serde_json::json;
///
/// let vm = Sample::new("cpu", SampleType::Cumulative, "ns", 1.0, "vm-1")
///     .with_resource_metadata(json!({"cpu_number": 4}));
/// let later = vm.clone(); // shares the metadata text
///
/// let cpus = |m: serde_json::Value| m["cpu_number"].as_f64();
/// let mut memo = MetadataMemo::default();
/// assert_eq!(*memo.get_or_derive(&vm, cpus), Some(4.0));
/// // Not derived again: the closure here is never called.
/// assert_eq!(*memo.get_or_derive(&later, |_| unreachable!()), Some(4.0));
///
/// let bare = Sample::new("cpu", SampleType::Cumulative, "ns", 1.0, "vm-2");
/// assert_eq!(*memo.get_or_derive(&bare, cpus), None);
/// ```
#[derive(Debug)]
pub struct MetadataMemo<T> {
    /// What was derived, in the order the texts were first seen. Samples come in
    /// the same order poll after poll, so a sample's text is most often the one after
    /// the last sample's: found without hashing, and the entries are read in order
    /// (by address in a hash table, each was a random read, a cache miss per sample at
    /// 10 000 resources). Each entry keeps its text alive.
    entries: Vec<(Text, T)>,
    /// A text's address → its place in `entries`, for samples out of that order.
    by_text: HashMap<usize, usize, BuildHasherDefault<AddressHasher>>,
    /// Where the next sample's text is expected in `entries`.
    next: usize,
    /// For samples without metadata.
    empty: Option<T>,
}

impl<T> Default for MetadataMemo<T> {
    fn default() -> Self {
        MetadataMemo {
            entries: Vec::new(),
            by_text: HashMap::default(),
            next: 0,
            empty: None,
        }
    }
}

impl<T> MetadataMemo<T> {
    /// What `derive` makes of `sample`'s parsed metadata (`Value::Null` when it has
    /// none or it is not JSON), derived the first time this shared text is seen.
    pub fn get_or_derive(&mut self, sample: &Sample, derive: impl FnOnce(Value) -> T) -> &T {
        let text = sample.resource_metadata_text();
        let key = text.addr();
        if key == 0 {
            return self.empty.get_or_insert_with(|| derive(Value::Null));
        }
        let at = match self.entries.get(self.next) {
            Some((expected, _)) if expected.addr() == key => self.next,
            _ => match self.by_text.get(&key) {
                Some(&at) => at,
                None => {
                    if self.entries.len() >= CAPACITY {
                        self.entries.clear();
                        self.by_text.clear();
                    }
                    let value = serde_json::from_str(text).unwrap_or(Value::Null);
                    self.by_text.insert(key, self.entries.len());
                    self.entries.push((text.clone(), derive(value)));
                    self.entries.len() - 1
                }
            },
        };
        self.next = at + 1;
        &self.entries[at].1
    }
}

/// Addresses need no SipHash: a multiply spreads them well enough (Fibonacci hashing),
/// and this runs once per sample.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_usize(&mut self, n: usize) {
        // The high half folded down too: the table indexes by the low bits, which a
        // multiply leaves as poor as an aligned address's.
        let x = (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = x ^ (x >> 32);
    }
}

const CAPACITY: usize = 16_384;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SampleType;
    use serde_json::json;

    #[test]
    fn other_metadata_is_parsed_anew() {
        let a = Sample::new("m", SampleType::Gauge, "", 0.0, "a")
            .with_resource_metadata(json!({"n": 1}));
        let b = Sample::new("m", SampleType::Gauge, "", 0.0, "b")
            .with_resource_metadata(json!({"n": 2}));
        let none = Sample::new("m", SampleType::Gauge, "", 0.0, "c");
        let mut cache = MetadataCache::default();
        assert_eq!(cache.value(&a, "n"), Some(&json!(1)));
        assert_eq!(cache.value(&b, "n"), Some(&json!(2)));
        assert_eq!(cache.value(&none, "n"), None);
        assert_eq!(cache.value(&a, "n"), Some(&json!(1)));
    }

    #[test]
    fn a_memo_finds_texts_in_the_order_seen_and_in_any_other() {
        let polled: Vec<Sample> = (0..5)
            .map(|n| {
                Sample::new("m", SampleType::Gauge, "", 0.0, format!("r{n}"))
                    .with_resource_metadata(json!({ "n": n }))
            })
            .collect();
        let mut memo = MetadataMemo::default();
        for (n, s) in polled.iter().enumerate() {
            assert_eq!(*memo.get_or_derive(s, |m| m["n"].as_u64()), Some(n as u64));
        }
        // The next polls share the texts: in the same order, shuffled, one repeated.
        for order in [[0, 1, 2, 3, 4], [3, 1, 4, 0, 2], [2, 2, 0, 4, 4]] {
            for n in order {
                let found = memo.get_or_derive(&polled[n].clone(), |_| unreachable!());
                assert_eq!(*found, Some(n as u64), "{order:?}");
            }
        }
        assert_eq!(memo.entries.len(), 5);
    }

    #[test]
    fn a_memo_derives_once_per_text_and_starts_again_when_full() {
        let sample = |n: usize| {
            Sample::new("m", SampleType::Gauge, "", 0.0, "r")
                .with_resource_metadata(json!({ "n": n }))
        };
        let n_of = |m: Value| m["n"].as_u64();
        let mut memo = MetadataMemo::default();
        let first = sample(0);
        assert_eq!(*memo.get_or_derive(&first, n_of), Some(0));
        let mut derived = 0;
        // Equal but not shared text: derived anew, as the address differs.
        assert_eq!(
            *memo.get_or_derive(&sample(0), |m| {
                derived += 1;
                n_of(m)
            }),
            Some(0)
        );
        assert_eq!(derived, 1);
        // Past the capacity the table starts again; every answer stays right, and the
        // text of an evicted entry is still the caller's.
        let many: Vec<Sample> = (0..CAPACITY + 10).map(sample).collect();
        for (i, s) in many.iter().enumerate() {
            assert_eq!(*memo.get_or_derive(s, n_of), Some(i as u64));
        }
        for (i, s) in many.iter().enumerate().rev().take(20) {
            assert_eq!(*memo.get_or_derive(s, n_of), Some(i as u64));
        }
        assert!(memo.entries.len() <= CAPACITY && memo.by_text.len() <= CAPACITY);
        assert_eq!(*memo.get_or_derive(&first, n_of), Some(0));
        // Without metadata: `Value::Null`.
        let bare = Sample::new("m", SampleType::Gauge, "", 0.0, "r");
        assert_eq!(*memo.get_or_derive(&bare, n_of), None);
    }
}
