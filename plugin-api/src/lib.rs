//! # ceilo plugin API
//!
//! The only crate a [ceilo](https://example.invalid/ceilo) plugin depends on. A plugin
//! library is a `cdylib` that implements one or more of the five plugin kinds and calls
//! [`export_plugins!`] once:
//!
//! | kind | trait | called |
//! |---|---|---|
//! | poller | [`Poller`] | every `interval` of each source that selects its meters |
//! | notification handler | [`NotificationHandler`] | for each notification whose `event_type` matches |
//! | transformer | [`Transformer`] | for each sample reaching its sink; `flush` at the end of each cycle |
//! | publisher | [`Publisher`] | with each batch leaving its sink; chosen by URL scheme |
//! | trait plugin (ABI 1.3) | [`TraitPlugin`] | for each notification an event definition naming it converts |
//!
//! Every trait's documentation shows a complete minimal plugin of that kind.
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! ceilo-plugin-api = "1"
//! ```
//!
//! ```
//! use ceilo_plugin_api::*;
//!
//! pub struct Hostname;
//!
//! impl Plugin for Hostname {
//!     const NAME: &'static str = "hostname_length";
//!     const DESCRIPTION: &'static str = "length of this machine's host name";
//!     fn create(_: &Parameters, _: &Context) -> Result<Self, PluginError> { Ok(Hostname) }
//! }
//!
//! impl Poller for Hostname {
//!     fn meters(&self) -> Vec<String> { vec!["hostname.length".into()] }
//!     fn poll(&mut self, _: &[String]) -> Result<SampleBatch, PluginError> {
//!         let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
//!             .map_err(|e| PluginError::unavailable(e.to_string()))?;
//!         let name = name.trim();
//!         Ok(vec![Sample::new("hostname.length", SampleType::Gauge, "B", name.len() as f64, name)].into())
//!     }
//! }
//!
//! export_plugins! { pollers: [Hostname] }
//! ```
//!
//! Build it with `cargo build --release`, copy `target/release/lib<name>.so` into the
//! host's plugin directory, and `ceilo plugins` lists it.
//!
//! ## What crosses the boundary
//! Data crosses in batches ([`SampleBatch`]), never one call per field. Parameters and
//! the host [`Context`] cross as JSON text. Panics never cross: every entry point
//! catches them and returns a [`PluginError`]. No async runtime crosses either: a
//! plugin that needs one owns it (for example a tokio runtime on its own thread).
//!
//! ## Compatibility
//! See the crate README: a plugin built against ABI 1.x loads in every host of ABI
//! 1.y with y ≥ x. [`abi::CURRENT`] is the ABI this version builds plugins for.
#![deny(missing_docs)]

pub mod abi;
mod batch;
pub mod compat;
mod context;
mod error;
mod export;
pub mod log;
mod message_id;
mod metadata_cache;
mod notification;
mod params;
mod plugin;
mod sample;
#[cfg(feature = "signing")]
pub mod signing;
mod text;
pub mod topology;
mod trait_plugin;

pub use batch::SampleBatch;
pub use context::Context;
pub use error::{ErrorKind, PluginError};
pub use metadata_cache::{MetadataCache, MetadataMemo};
pub use notification::Notification;
pub use params::Parameters;
pub use plugin::{Counter, NotificationHandler, Plugin, Poller, Publisher, Transformer};
pub use sample::{
    format_timestamp, parse_timestamp, Sample, SampleParts, SampleType, UnknownSampleType,
    DEFAULT_SOURCE,
};
pub use text::{Text, TextHeader};
pub use trait_plugin::{TraitMatch, TraitPlugin};

/// Re-exports for [`export_plugins!`]; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use abi_stable;
}
