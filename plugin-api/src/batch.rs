//! [`SampleBatch`]: a growable list of samples that crosses the ABI without copying.

use std::ops::{Deref, DerefMut};

use abi_stable::std_types::RVec;
use abi_stable::StableAbi;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Sample;

/// A list of samples. Use it like a `Vec<Sample>`: it derefs to `[Sample]`, can be
/// pushed to, collected into and iterated by value.
///
/// Batches are what cross the plugin boundary: a poll returns one, a transformer
/// receives and fills them, a publisher is handed one. Moving a batch across costs
/// nothing per sample.
///
/// ```
/// use ceilo_plugin_api::{Sample, SampleBatch, SampleType};
///
/// let mut batch = SampleBatch::new();
/// batch.push(Sample::new("load.1", SampleType::Gauge, "", 0.5, "host"));
/// let more: SampleBatch = vec![Sample::new("load.5", SampleType::Gauge, "", 0.7, "host")].into();
/// batch.extend(more);
/// assert_eq!(batch.len(), 2);
/// assert_eq!(batch.iter().map(|s| s.volume()).sum::<f64>(), 1.2);
/// ```
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Default, PartialEq)]
pub struct SampleBatch(RVec<Sample>);

impl SampleBatch {
    /// An empty batch.
    pub fn new() -> Self {
        SampleBatch(RVec::new())
    }
    /// An empty batch with room for `n` samples.
    pub fn with_capacity(n: usize) -> Self {
        SampleBatch(RVec::with_capacity(n))
    }
    /// Appends a sample.
    pub fn push(&mut self, sample: Sample) {
        self.0.push(sample);
    }
    /// Removes all samples, keeping the allocation.
    pub fn clear(&mut self) {
        self.0.clear();
    }
    /// Keeps the first `len` samples and drops the rest.
    ///
    /// ```
    /// use ceilo_plugin_api::{Sample, SampleBatch, SampleType};
    /// let mut b: SampleBatch = (0..5)
    ///     .map(|i| Sample::new("m", SampleType::Gauge, "", i as f64, "r"))
    ///     .collect();
    /// b.truncate(2);
    /// assert_eq!(b.len(), 2);
    /// ```
    pub fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }
    /// Keeps only the samples `keep` accepts, in order, in place: no second batch is
    /// built (a host filters every poll's samples this way).
    ///
    /// ```
    /// use ceilo_plugin_api::{Sample, SampleBatch, SampleType};
    /// let mut b: SampleBatch = ["cpu", "memory", "cpu"]
    ///     .into_iter()
    ///     .map(|m| Sample::new(m, SampleType::Gauge, "", 1.0, "r"))
    ///     .collect();
    /// b.retain(|s| s.name() == "cpu");
    /// assert_eq!(b.len(), 2);
    /// ```
    pub fn retain(&mut self, keep: impl FnMut(&Sample) -> bool) {
        self.0.retain(keep);
    }
    /// Takes every sample out, leaving this batch empty.
    pub fn take(&mut self) -> SampleBatch {
        std::mem::take(self)
    }
    /// Converts into a `Vec` (moves the samples).
    pub fn into_vec(self) -> Vec<Sample> {
        self.0.into_vec()
    }
}

impl Deref for SampleBatch {
    type Target = [Sample];
    fn deref(&self) -> &[Sample] {
        &self.0
    }
}

impl DerefMut for SampleBatch {
    fn deref_mut(&mut self) -> &mut [Sample] {
        &mut self.0
    }
}

impl From<Vec<Sample>> for SampleBatch {
    fn from(v: Vec<Sample>) -> Self {
        SampleBatch(RVec::from(v))
    }
}

impl FromIterator<Sample> for SampleBatch {
    fn from_iter<I: IntoIterator<Item = Sample>>(iter: I) -> Self {
        SampleBatch(iter.into_iter().collect())
    }
}

impl Extend<Sample> for SampleBatch {
    fn extend<I: IntoIterator<Item = Sample>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl IntoIterator for SampleBatch {
    type Item = Sample;
    type IntoIter = abi_stable::std_types::vec::IntoIter<Sample>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a SampleBatch {
    type Item = &'a Sample;
    type IntoIter = std::slice::Iter<'a, Sample>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl Serialize for SampleBatch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter())
    }
}

impl<'de> Deserialize<'de> for SampleBatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<Sample>::deserialize(d).map(SampleBatch::from)
    }
}
