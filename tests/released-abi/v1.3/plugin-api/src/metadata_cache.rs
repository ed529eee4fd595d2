//! [`MetadataCache`]: resource metadata parsed once for the samples that share it.

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
/// the cache, so an address is never mistaken for another text's.
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
    /// By the address of the shared text, which the entry keeps alive.
    parsed: HashMap<usize, (Text, Value), BuildHasherDefault<AddressHasher>>,
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
static NULL: Value = Value::Null;

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
        let text = sample.resource_metadata_text();
        if text.is_empty() {
            return &NULL;
        }
        let key = text.as_ptr() as usize;
        if self.parsed.len() >= CAPACITY && !self.parsed.contains_key(&key) {
            self.parsed.clear();
        }
        &self
            .parsed
            .entry(key)
            .or_insert_with(|| {
                let value = serde_json::from_str(text).unwrap_or(Value::Null);
                (text.clone(), value)
            })
            .1
    }
}

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
}
