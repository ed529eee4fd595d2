//! Plugin ABI 1.1 — FROZEN once released. Adds to 1.0: the host hands each library
//! its logger ([`log`](crate::log)), and publishers report counters
//! ([`Publisher::stats`](crate::Publisher::stats)). Pollers, notification handlers and
//! transformers are 1.0's, unchanged.
//!
//! Only the types remain here: plugins are built for the current ABI
//! ([`super::current`]); the host loads 1.1 libraries through these types. (With 1.2
//! the glue moved out and the imports name the frozen 1.0 sample; no type changed, as
//! the layout snapshot shows.)

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RSlice, RStr, RString, RVec};
use abi_stable::StableAbi;

use super::AbiVersion;
use crate::log::HostLogger;
use crate::PluginError;

pub use super::v1_0::{Sample, SampleBatch};

pub use super::v1_0::{
    BatchOutput, NotificationDescriptor, NotificationHandle, NotificationVTable,
    NotificationVTableRef, PluginInfo, PluginObject, PollerDescriptor, PollerHandle, PollerVTable,
    PollerVTableRef, TransformerDescriptor, TransformerHandle, TransformerVTable,
    TransformerVTableRef,
};

/// This module's ABI version.
pub const VERSION: AbiVersion = AbiVersion::new(1, 1);

/// The root module of a 1.1 library.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginLibraryRef)))]
#[sabi(missing_field(panic))]
pub struct PluginLibrary {
    /// Called once by the host before anything else: its logger.
    pub init: extern "C" fn(HostLogger),
    /// Lists the library's plugins with their factories.
    #[sabi(last_prefix_field)]
    pub plugins: extern "C" fn() -> RResult<PluginList, PluginError>,
}

impl RootModule for PluginLibraryRef {
    abi_stable::declare_root_module_statics! {PluginLibraryRef}
    const BASE_NAME: &'static str = "ceilo_plugin";
    const NAME: &'static str = "ceilo plugin library";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("1.1.0");
}

/// The plugins of one library, by kind (1.1: publishers have the 1.1 vtable).
#[repr(C)]
#[derive(StableAbi)]
pub struct PluginList {
    /// Pollers.
    pub pollers: RVec<PollerDescriptor>,
    /// Notification handlers.
    pub notification_handlers: RVec<NotificationDescriptor>,
    /// Transformers.
    pub transformers: RVec<TransformerDescriptor>,
    /// Publishers.
    pub publishers: RVec<PublisherDescriptor>,
}

/// A named counter reported by a plugin (see [`Publisher::stats`](crate::Publisher::stats)).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    name: RString,
    value: u64,
}

impl Counter {
    /// A counter.
    pub fn new(name: impl Into<String>, value: u64) -> Self {
        Counter {
            name: RString::from(name.into()),
            value,
        }
    }
    /// Its name, e.g. `dropped`.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Its value.
    pub fn value(&self) -> u64 {
        self.value
    }
}

/// A publisher plugin and its factory.
#[repr(C)]
#[derive(StableAbi)]
pub struct PublisherDescriptor {
    /// Name (the URL scheme), version, description.
    pub info: PluginInfo,
    /// Builds an instance.
    pub create: extern "C" fn(RStr<'_>, RStr<'_>) -> RResult<PublisherHandle, PluginError>,
}

/// A publisher instance.
#[repr(C)]
#[derive(StableAbi)]
pub struct PublisherHandle {
    /// The instance.
    pub obj: PluginObject,
    /// Its functions.
    pub vtable: PublisherVTableRef,
}

/// A publisher's entry points in ABI 1.1: 1.0's as the prefix, then `stats`.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PublisherVTableRef)))]
#[sabi(missing_field(option))]
pub struct PublisherVTable {
    /// Frees the instance.
    pub drop: unsafe extern "C" fn(PluginObject),
    /// [`Publisher::publish`](crate::Publisher::publish).
    pub publish: unsafe extern "C" fn(PluginObject, RSlice<'_, Sample>) -> RResult<(), PluginError>,
    /// [`Publisher::flush`](crate::Publisher::flush).
    #[sabi(last_prefix_field)]
    pub flush: unsafe extern "C" fn(PluginObject) -> RResult<(), PluginError>,
    /// [`Publisher::stats`](crate::Publisher::stats) (new in 1.1).
    pub stats: unsafe extern "C" fn(PluginObject) -> RResult<RVec<Counter>, PluginError>,
}
