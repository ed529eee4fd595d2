//! The [`Sample`]: one measurement, as it flows through pipelines and crosses the ABI.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use abi_stable::StableAbi;
use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::message_id::{MessageId, INLINE};
use crate::text::{OptText, Text, TextHeader};

/// The kind of a meter, after Ceilometer.
///
/// ```
/// use ceilo_plugin_api::SampleType;
/// assert_eq!("cumulative".parse::<SampleType>(), Ok(SampleType::Cumulative));
/// assert_eq!(SampleType::Gauge.as_str(), "gauge");
/// ```
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleType {
    /// A value at a point in time (memory in use, load average).
    Gauge = 0,
    /// A change since the previous sample.
    Delta = 1,
    /// A counter that only grows, except when it is reset.
    Cumulative = 2,
}

impl SampleType {
    /// The name used on the wire and in `pipeline.yaml`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SampleType::Gauge => "gauge",
            SampleType::Delta => "delta",
            SampleType::Cumulative => "cumulative",
        }
    }
}

impl fmt::Display for SampleType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`SampleType`] from text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSampleType(pub String);

impl fmt::Display for UnknownSampleType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown sample type `{}` (expected gauge, delta or cumulative)",
            self.0
        )
    }
}

impl std::error::Error for UnknownSampleType {}

impl FromStr for SampleType {
    type Err = UnknownSampleType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gauge" => Ok(SampleType::Gauge),
            "delta" => Ok(SampleType::Delta),
            "cumulative" => Ok(SampleType::Cumulative),
            other => Err(UnknownSampleType(other.to_owned())),
        }
    }
}

impl Serialize for SampleType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SampleType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Read in place: no string allocated per sample.
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = SampleType;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("gauge, delta or cumulative")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SampleType, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor)
    }
}

/// One measurement of one meter for one resource.
///
/// Its fields are those of a Ceilometer sample. The layout is frozen (it crosses the
/// plugin ABI), so fields are reached through methods; `resource_metadata` is kept as
/// JSON text so a whole batch crosses the boundary without one call per field.
///
/// ```
/// use ceilo_plugin_api::{Sample, SampleType};
/// use serde_json::json;
///
/// let s = Sample::new("cpu", SampleType::Cumulative, "ns", 1.5e9, "host-1")
///     .with_project_id("p1")
///     .with_resource_metadata(json!({"cpu_number": 4}));
/// assert_eq!(s.name(), "cpu");
/// assert_eq!(s.project_id(), Some("p1"));
/// assert_eq!(s.metadata_value("cpu_number"), Some(json!(4)));
/// assert_eq!(s.source(), "ceilo");
///
/// // On the wire a sample is JSON with Ceilometer's field names.
/// let wire = serde_json::to_value(&s).unwrap();
/// assert_eq!(wire["type"], "cumulative");
/// let back: Sample = serde_json::from_value(wire).unwrap();
/// assert_eq!(back, s);
/// ```
#[repr(C)]
#[derive(StableAbi, Clone)]
pub struct Sample {
    name: Text,
    unit: Text,
    resource_id: Text,
    source: Text,
    /// A JSON object, as text; empty for `{}` (no allocation).
    resource_metadata: Text,
    user_id: OptText,
    project_id: OptText,
    volume: f64,
    /// Microseconds since the Unix epoch, UTC.
    timestamp_us: i64,
    /// NaN when there is none (saves a tag word; NaN is no time anyway).
    monotonic_time: f64,
    // The message id (see `MessageId`), then the type in what would be padding.
    message_id_text: Text,
    message_id_inline: [u8; INLINE],
    message_id_len: u8,
    sample_type: SampleType,
}

impl fmt::Debug for Sample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // By what the fields mean, not how they are stored (the id's inline bytes).
        f.debug_struct("Sample")
            .field("name", &self.name())
            .field("sample_type", &self.sample_type)
            .field("unit", &self.unit())
            .field("volume", &self.volume)
            .field("user_id", &self.user_id())
            .field("project_id", &self.project_id())
            .field("resource_id", &self.resource_id())
            .field("timestamp_us", &self.timestamp_us)
            .field("resource_metadata", &self.resource_metadata_json())
            .field("source", &self.source())
            .field("message_id", &self.message_id())
            .field("monotonic_time", &self.monotonic_time())
            .finish()
    }
}

impl PartialEq for Sample {
    fn eq(&self, o: &Sample) -> bool {
        self.name == o.name
            && self.sample_type == o.sample_type
            && self.unit == o.unit
            && self.volume == o.volume
            && self.user_id == o.user_id
            && self.project_id == o.project_id
            && self.resource_id == o.resource_id
            && self.timestamp_us == o.timestamp_us
            && self.resource_metadata == o.resource_metadata
            && self.source == o.source
            && self.message_id() == o.message_id()
            && self.monotonic_time() == o.monotonic_time()
    }
}

static DEFAULT_SOURCE_TEXT: TextHeader = TextHeader::immortal(DEFAULT_SOURCE);

/// The source a sample gets unless it is given one.
pub const DEFAULT_SOURCE: &str = "ceilo";

impl Sample {
    /// A new sample taken now, with a fresh `message_id`, source `"ceilo"` and empty
    /// metadata.
    ///
    /// Every text argument takes `&str`, `String` or a [`Text`]; pass a `Text` you keep
    /// (cloned) to share it instead of copying it into each sample.
    pub fn new(
        name: impl Into<Text>,
        sample_type: SampleType,
        unit: impl Into<Text>,
        volume: f64,
        resource_id: impl Into<Text>,
    ) -> Self {
        Sample::new_at(name, sample_type, unit, volume, resource_id, Utc::now())
    }

    /// [`Sample::new`] taken at `timestamp`: for a poller that reads the clock once for
    /// a whole poll instead of once per sample.
    ///
    /// ```
    /// use ceilo_plugin_api::{Sample, SampleType};
    /// let now = chrono::Utc::now();
    /// let batch: Vec<Sample> = ["eth0", "eth1"]
    ///     .into_iter()
    ///     .map(|nic| Sample::new_at("network.incoming.bytes", SampleType::Cumulative, "B", 0.0, nic, now))
    ///     .collect();
    /// assert_eq!(batch[0].timestamp(), batch[1].timestamp());
    /// assert_ne!(batch[0].message_id(), batch[1].message_id());
    /// ```
    pub fn new_at(
        name: impl Into<Text>,
        sample_type: SampleType,
        unit: impl Into<Text>,
        volume: f64,
        resource_id: impl Into<Text>,
        timestamp: DateTime<Utc>,
    ) -> Self {
        let timestamp_us = timestamp.timestamp_micros();
        let id = MessageId::new_v7(timestamp_us);
        Sample {
            name: name.into(),
            sample_type,
            unit: unit.into(),
            volume,
            user_id: OptText::NONE,
            project_id: OptText::NONE,
            resource_id: resource_id.into(),
            timestamp_us,
            resource_metadata: Text::new(),
            source: Text::from_static(&DEFAULT_SOURCE_TEXT),
            message_id_text: id.text,
            message_id_inline: id.inline,
            message_id_len: id.len,
            monotonic_time: f64::NAN,
        }
    }

    /// Meter name, e.g. `cpu`.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The meter name as shared [`Text`]: clone it to give other samples the same
    /// name without a copy.
    ///
    /// ```
    /// use ceilo_plugin_api::{Sample, SampleType, Text};
    /// let first = Sample::new("cpu", SampleType::Cumulative, "ns", 1.0, "vm-1");
    /// let second = Sample::new(first.name_text().clone(), SampleType::Cumulative, "ns", 2.0, "vm-2");
    /// assert!(Text::ptr_eq(first.name_text(), second.name_text()));
    /// ```
    pub fn name_text(&self) -> &Text {
        &self.name
    }
    /// The unit as shared [`Text`].
    pub fn unit_text(&self) -> &Text {
        &self.unit
    }
    /// The resource id as shared [`Text`].
    pub fn resource_id_text(&self) -> &Text {
        &self.resource_id
    }
    /// gauge, delta or cumulative.
    pub fn sample_type(&self) -> SampleType {
        self.sample_type
    }
    /// Unit, e.g. `ns` or `%`.
    pub fn unit(&self) -> &str {
        &self.unit
    }
    /// The measured value.
    pub fn volume(&self) -> f64 {
        self.volume
    }
    /// The user the resource belongs to, if any.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.get().map(Text::as_str)
    }
    /// The project the resource belongs to, if any.
    pub fn project_id(&self) -> Option<&str> {
        self.project_id.get().map(Text::as_str)
    }
    /// The measured resource, e.g. an instance id or `host:eth0`.
    pub fn resource_id(&self) -> &str {
        &self.resource_id
    }
    /// When the measurement was taken (UTC, microsecond precision).
    pub fn timestamp(&self) -> DateTime<Utc> {
        Utc.timestamp_micros(self.timestamp_us)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
    /// The timestamp as microseconds since the Unix epoch.
    pub fn timestamp_micros(&self) -> i64 {
        self.timestamp_us
    }
    /// The resource metadata as JSON text (always an object).
    pub fn resource_metadata_json(&self) -> &str {
        match self.resource_metadata.as_str() {
            "" => "{}",
            json => json,
        }
    }
    /// The resource metadata's JSON text as shared [`Text`] (empty for `{}`): clone it
    /// to give another sample the same metadata without a copy, or compare it with
    /// [`Text::ptr_eq`] to reuse what was parsed from the previous sample's.
    pub fn resource_metadata_text(&self) -> &Text {
        &self.resource_metadata
    }
    /// The resource metadata, parsed.
    pub fn resource_metadata(&self) -> Map<String, Value> {
        serde_json::from_str(self.resource_metadata_json()).unwrap_or_default()
    }
    /// One metadata value by dotted path (`"flavor.vcpus"`), if present.
    pub fn metadata_value(&self, path: &str) -> Option<Value> {
        if self.resource_metadata.is_empty() {
            return None;
        }
        let root: Value = serde_json::from_str(&self.resource_metadata).ok()?;
        path.split('.')
            .try_fold(&root, |v, key| v.get(key))
            .cloned()
    }
    /// Where the sample comes from (default `"ceilo"`).
    pub fn source(&self) -> &str {
        &self.source
    }
    /// The sample's unique id: a UUID, time-ordered (version 7) when ceilo made it
    /// (samples from elsewhere keep theirs, whatever they are).
    ///
    /// ```
    /// use ceilo_plugin_api::{Sample, SampleType};
    /// let a = Sample::new("cpu", SampleType::Cumulative, "ns", 1.0, "vm-1");
    /// let b = Sample::new("cpu", SampleType::Cumulative, "ns", 2.0, "vm-1");
    /// assert!(a.message_id() < b.message_id(), "made later, sorts later");
    /// assert_eq!(&a.message_id()[14..15], "7");
    /// ```
    pub fn message_id(&self) -> &str {
        crate::message_id::as_str(
            &self.message_id_text,
            &self.message_id_inline,
            self.message_id_len,
        )
    }
    /// Seconds on a monotonic clock when taken, for rate computation.
    pub fn monotonic_time(&self) -> Option<f64> {
        (!self.monotonic_time.is_nan()).then_some(self.monotonic_time)
    }

    /// Sets the meter name.
    pub fn set_name(&mut self, name: impl Into<Text>) {
        self.name = name.into();
    }
    /// Sets the sample type.
    pub fn set_sample_type(&mut self, t: SampleType) {
        self.sample_type = t;
    }
    /// Sets the unit.
    pub fn set_unit(&mut self, unit: impl Into<Text>) {
        self.unit = unit.into();
    }
    /// Sets the volume.
    pub fn set_volume(&mut self, volume: f64) {
        self.volume = volume;
    }
    /// Sets or clears the user id.
    pub fn set_user_id(&mut self, id: Option<String>) {
        self.user_id = id.map(Text::from).into();
    }
    /// Sets or clears the project id.
    pub fn set_project_id(&mut self, id: Option<String>) {
        self.project_id = id.map(Text::from).into();
    }
    /// Sets the resource id.
    pub fn set_resource_id(&mut self, id: impl Into<Text>) {
        self.resource_id = id.into();
    }
    /// Sets the timestamp (kept to the microsecond).
    pub fn set_timestamp(&mut self, t: DateTime<Utc>) {
        self.timestamp_us = t.timestamp_micros();
    }
    /// Replaces the resource metadata.
    pub fn set_resource_metadata(&mut self, metadata: Map<String, Value>) {
        self.resource_metadata = if metadata.is_empty() {
            Text::new()
        } else {
            Text::from(Value::Object(metadata).to_string())
        };
    }
    /// Replaces the resource metadata with JSON text that is already an object, without
    /// building a map: the cheap way to copy metadata from another sample's
    /// [`resource_metadata_json`](Self::resource_metadata_json). Text that is not a
    /// JSON object is refused and the metadata left as it was.
    ///
    /// ```
    /// use ceilo_plugin_api::{Sample, SampleType};
    /// let mut s = Sample::new("cpu", SampleType::Cumulative, "ns", 1.0, "vm-1");
    /// s.set_resource_metadata_json(r#"{"cpu_number": 2}"#).unwrap();
    /// assert_eq!(s.metadata_value("cpu_number"), Some(serde_json::json!(2)));
    /// assert!(s.set_resource_metadata_json("[1, 2]").is_err());
    /// ```
    pub fn set_resource_metadata_json(&mut self, json: &str) -> Result<(), crate::PluginError> {
        check_metadata_object(json)?;
        self.resource_metadata = metadata_text(json);
        Ok(())
    }
    /// Sets the source.
    pub fn set_source(&mut self, source: impl Into<Text>) {
        self.source = source.into();
    }
    /// Sets the message id (normally assigned at creation).
    pub fn set_message_id(&mut self, id: impl Into<Text>) {
        self.set_id(MessageId::from_text(id.into()));
    }
    /// Gives the sample a fresh message id, as a transformer does for a derived sample
    /// (a version 7 UUID carrying the sample's timestamp).
    pub fn renew_message_id(&mut self) {
        if self.message_id_len > INLINE as u8 {
            self.message_id_text = Text::new(); // a long id's shared text, released
        }
        self.message_id_len = INLINE as u8;
        crate::message_id::write_v7(self.timestamp_us, &mut self.message_id_inline);
    }

    fn set_id(&mut self, id: MessageId) {
        self.message_id_text = id.text;
        self.message_id_inline = id.inline;
        self.message_id_len = id.len;
    }
    /// Sets or clears the monotonic time.
    pub fn set_monotonic_time(&mut self, t: Option<f64>) {
        self.monotonic_time = t.unwrap_or(f64::NAN);
    }

    /// Builder form of [`Sample::set_user_id`].
    pub fn with_user_id(mut self, id: impl Into<Text>) -> Self {
        self.user_id = OptText::some(id.into());
        self
    }
    /// Builder form of [`Sample::set_project_id`].
    pub fn with_project_id(mut self, id: impl Into<Text>) -> Self {
        self.project_id = OptText::some(id.into());
        self
    }
    /// Builder form of [`Sample::set_timestamp`].
    pub fn with_timestamp(mut self, t: DateTime<Utc>) -> Self {
        self.set_timestamp(t);
        self
    }
    /// Builder form of [`Sample::set_resource_metadata`]; a value that is not an
    /// object is stored under the key `"value"`.
    pub fn with_resource_metadata(mut self, metadata: Value) -> Self {
        let map = match metadata {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            other => Map::from_iter([("value".to_owned(), other)]),
        };
        self.set_resource_metadata(map);
        self
    }
    /// Builder form of [`Sample::set_source`].
    pub fn with_source(mut self, source: impl Into<Text>) -> Self {
        self.set_source(source);
        self
    }
    /// Builder form of [`Sample::set_monotonic_time`].
    pub fn with_monotonic_time(mut self, t: f64) -> Self {
        self.set_monotonic_time(Some(t));
        self
    }
}

/// Every field of a [`Sample`], public: for building a sample from a format of one's
/// own in one step (one allocation per field, no fresh id or clock reading that is then
/// overwritten), and for taking one apart.
///
/// ```
/// use ceilo_plugin_api::{Sample, SampleParts, SampleType};
///
/// let parts = SampleParts {
///     name: "cpu".into(),
///     sample_type: SampleType::Cumulative,
///     unit: "ns".into(),
///     volume: 1.5e9,
///     user_id: None,
///     project_id: Some("p1".into()),
///     resource_id: "vm-1".into(),
///     timestamp_micros: 1_700_000_000_000_000,
///     resource_metadata_json: r#"{"cpu_number": 2}"#.into(),
///     source: "openstack".into(),
///     message_id: "5460acce-4fd6-480d-ab18-9735ec7b1996".into(),
///     monotonic_time: None,
/// };
/// let s = Sample::from_parts(parts.clone()).unwrap();
/// assert_eq!(s.project_id(), Some("p1"));
/// assert_eq!(s.timestamp_micros(), 1_700_000_000_000_000);
/// assert_eq!(s.into_parts(), parts);
///
/// // Metadata must be a JSON object, as everywhere else.
/// let bad = SampleParts { resource_metadata_json: "[1]".into(), ..parts };
/// assert!(Sample::from_parts(bad).is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SampleParts {
    /// Meter name.
    pub name: String,
    /// gauge, delta or cumulative.
    pub sample_type: SampleType,
    /// Unit.
    pub unit: String,
    /// The measured value.
    pub volume: f64,
    /// The user the resource belongs to.
    pub user_id: Option<String>,
    /// The project the resource belongs to.
    pub project_id: Option<String>,
    /// The measured resource.
    pub resource_id: String,
    /// When taken: microseconds since the Unix epoch, UTC.
    pub timestamp_micros: i64,
    /// The resource metadata: JSON text of an object.
    pub resource_metadata_json: String,
    /// Where the sample comes from.
    pub source: String,
    /// The sample's unique id.
    pub message_id: String,
    /// Seconds on a monotonic clock when taken.
    pub monotonic_time: Option<f64>,
}

impl Sample {
    /// A sample made of exactly these fields. Refused (nothing built) when the metadata
    /// is not the JSON text of an object.
    pub fn from_parts(parts: SampleParts) -> Result<Sample, crate::PluginError> {
        check_metadata_object(&parts.resource_metadata_json)?;
        Ok(Sample::from_parts_trusted(parts))
    }

    /// [`from_parts`](Self::from_parts) for metadata already known to be an object.
    pub(crate) fn from_parts_trusted(parts: SampleParts) -> Sample {
        let id = MessageId::from_str(&parts.message_id);
        Sample {
            name: parts.name.into(),
            sample_type: parts.sample_type,
            unit: parts.unit.into(),
            volume: parts.volume,
            user_id: parts.user_id.map(Text::from).into(),
            project_id: parts.project_id.map(Text::from).into(),
            resource_id: parts.resource_id.into(),
            timestamp_us: parts.timestamp_micros,
            resource_metadata: metadata_text(&parts.resource_metadata_json),
            source: parts.source.into(),
            message_id_text: id.text,
            message_id_inline: id.inline,
            message_id_len: id.len,
            monotonic_time: parts.monotonic_time.unwrap_or(f64::NAN),
        }
    }

    /// The sample's fields, taken apart.
    pub fn into_parts(self) -> SampleParts {
        let resource_metadata_json = self.resource_metadata_json().to_owned();
        let monotonic_time = self.monotonic_time();
        let message_id = self.message_id().to_owned();
        SampleParts {
            name: self.name.into(),
            sample_type: self.sample_type,
            unit: self.unit.into(),
            volume: self.volume,
            user_id: self.user_id.into_option().map(String::from),
            project_id: self.project_id.into_option().map(String::from),
            resource_metadata_json,
            resource_id: self.resource_id.into(),
            timestamp_micros: self.timestamp_us,
            source: self.source.into(),
            message_id,
            monotonic_time,
        }
    }
}

/// Metadata text as stored: empty for an empty object, so that the common case
/// allocates nothing.
fn metadata_text(json: &str) -> Text {
    if json.trim() == "{}" {
        Text::new()
    } else {
        Text::from(json)
    }
}

/// Metadata crosses as text: it must be the JSON text of an object.
fn check_metadata_object(json: &str) -> Result<(), crate::PluginError> {
    let is_object = json.trim_start().starts_with('{')
        && serde_json::from_str::<serde::de::IgnoredAny>(json).is_ok();
    if is_object {
        Ok(())
    } else {
        Err(crate::PluginError::invalid_input(
            "resource metadata must be a JSON object",
        ))
    }
}

/// Formats a timestamp the way ceilo writes it on the wire: RFC 3339, UTC,
/// microseconds (`2026-11-27T06:54:50.123456Z`).
pub fn format_timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses a wire timestamp: RFC 3339 with any offset, or Ceilometer's naive ISO form
/// (`2012-05-08 20:23:48.028195`, taken as UTC).
pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(t.and_utc());
        }
    }
    Err(format!(
        "invalid timestamp `{text}` (expected RFC 3339, e.g. 2026-01-31T12:00:00.000000Z)"
    ))
}

/// The wire form read: Ceilometer's field names, timestamps as text, metadata as an
/// object. Text is read straight into the sample's [`Text`] (one copy); the timestamp
/// and id are borrowed where the input allows.
#[derive(Deserialize)]
struct WireSample<'a> {
    name: Text,
    #[serde(rename = "type")]
    sample_type: SampleType,
    unit: Text,
    volume: f64,
    #[serde(default)]
    user_id: Option<Text>,
    #[serde(default)]
    project_id: Option<Text>,
    resource_id: Text,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(default)]
    resource_metadata: Option<Map<String, Value>>,
    #[serde(default = "default_source")]
    source: Text,
    #[serde(borrow)]
    message_id: Cow<'a, str>,
    #[serde(default)]
    monotonic_time: Option<f64>,
}

fn default_source() -> Text {
    Text::from_static(&DEFAULT_SOURCE_TEXT)
}

/// The wire form written, borrowing the sample's text.
#[derive(Serialize)]
struct WireSampleOut<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    sample_type: SampleType,
    unit: &'a str,
    volume: f64,
    user_id: Option<&'a str>,
    project_id: Option<&'a str>,
    resource_id: &'a str,
    timestamp: String,
    resource_metadata: Map<String, Value>,
    source: &'a str,
    message_id: &'a str,
    monotonic_time: Option<f64>,
}

impl Serialize for Sample {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let metadata: Map<String, Value> = serde_json::from_str(self.resource_metadata_json())
            .map_err(|e| serde::ser::Error::custom(format!("resource_metadata: {e}")))?;
        WireSampleOut {
            name: &self.name,
            sample_type: self.sample_type,
            unit: &self.unit,
            volume: self.volume,
            user_id: self.user_id(),
            project_id: self.project_id(),
            resource_id: &self.resource_id,
            timestamp: format_timestamp(self.timestamp()),
            resource_metadata: metadata,
            source: &self.source,
            message_id: self.message_id(),
            monotonic_time: self.monotonic_time(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Sample {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = WireSample::deserialize(d)?;
        let timestamp = parse_timestamp(&w.timestamp).map_err(serde::de::Error::custom)?;
        let id = MessageId::from_str(&w.message_id);
        Ok(Sample {
            name: w.name,
            sample_type: w.sample_type,
            unit: w.unit,
            volume: w.volume,
            user_id: w.user_id.into(),
            project_id: w.project_id.into(),
            resource_id: w.resource_id,
            timestamp_us: timestamp.timestamp_micros(),
            resource_metadata: match w.resource_metadata {
                Some(m) if !m.is_empty() => Text::from(Value::Object(m).to_string()),
                _ => Text::new(),
            },
            source: w.source,
            message_id_text: id.text,
            message_id_inline: id.inline,
            message_id_len: id.len,
            monotonic_time: w.monotonic_time.unwrap_or(f64::NAN),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn debug_shows_what_the_fields_mean() {
        let s = Sample::new("cpu", SampleType::Gauge, "%", 1.0, "vm");
        let text = format!("{s:?}");
        assert!(
            text.contains(&format!("message_id: {:?}", s.message_id())),
            "{text}"
        );
        assert!(text.contains("monotonic_time: None"), "{text}");
    }

    #[test]
    fn a_sample_is_two_cache_lines() {
        // Larger, and every move of one is a call to `memcpy` (it was 312 bytes in 1.0).
        assert_eq!(std::mem::size_of::<Sample>(), 128);
    }

    #[test]
    fn wire_form_uses_ceilometer_names_and_microsecond_timestamps() {
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
            + chrono::Duration::microseconds(123_456);
        let s = Sample::new("memory.usage", SampleType::Gauge, "MB", 512.0, "h1")
            .with_timestamp(t)
            .with_user_id("u");
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["timestamp"], "2026-01-02T03:04:05.123456Z");
        assert_eq!(v["type"], "gauge");
        assert_eq!(v["user_id"], "u");
        assert_eq!(v["project_id"], Value::Null);
        assert_eq!(v["resource_metadata"], json!({}));
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 12, "{keys:?}");
    }

    #[test]
    fn naive_ceilometer_timestamps_are_utc() {
        let t = parse_timestamp("2012-05-08 20:23:48.028195").unwrap();
        assert_eq!(format_timestamp(t), "2012-05-08T20:23:48.028195Z");
        let t = parse_timestamp("2012-05-08T22:23:48+02:00").unwrap();
        assert_eq!(format_timestamp(t), "2012-05-08T20:23:48.000000Z");
        assert!(parse_timestamp("yesterday").is_err());
    }

    #[test]
    fn bad_wire_samples_are_refused_with_the_reason() {
        let err = serde_json::from_value::<Sample>(json!({"name": "x"})).unwrap_err();
        assert!(err.to_string().contains("missing field"), "{err}");
        let mut v =
            serde_json::to_value(Sample::new("a", SampleType::Gauge, "u", 1.0, "r")).unwrap();
        v["type"] = json!("rate");
        let err = serde_json::from_value::<Sample>(v).unwrap_err();
        assert!(
            err.to_string().contains("unknown sample type `rate`"),
            "{err}"
        );
    }

    #[test]
    fn metadata_paths_and_non_object_metadata() {
        let s = Sample::new("a", SampleType::Gauge, "u", 1.0, "r")
            .with_resource_metadata(json!({"flavor": {"vcpus": 2}}));
        assert_eq!(s.metadata_value("flavor.vcpus"), Some(json!(2)));
        assert_eq!(s.metadata_value("flavor.ram"), None);
        let s = s.with_resource_metadata(json!(7));
        assert_eq!(s.resource_metadata()["value"], json!(7));
    }
}
