//! Plugin ABI 1.0 — FROZEN. Nothing in this file may change: libraries built for 1.0
//! are checked against these exact layouts. Grow the ABI in a new module.
//!
//! Only the types remain here: plugins are built for the current ABI
//! ([`super::current`]); the host loads 1.0 libraries through these types. (With 1.2
//! the glue moved out and the imports name the frozen 1.0 sample, `crate::Sample`
//! being 1.2's; no type changed, as the layout snapshot shows.)

use std::ffi::c_void;

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{ROption, RResult, RSlice, RStr, RString, RVec};
use abi_stable::StableAbi;

use super::AbiVersion;
use crate::PluginError;

// The samples 1.0 and 1.1 libraries pass (the crate's `Sample` changed in 1.2).
pub use super::v1_0_sample::{Sample, SampleBatch};

/// This module's ABI version.
pub const VERSION: AbiVersion = AbiVersion::new(1, 0);

/// The root module of a 1.0 library: one entry point listing its plugins.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginLibraryRef)))]
#[sabi(missing_field(panic))]
pub struct PluginLibrary {
    /// Lists the library's plugins with their factories.
    #[sabi(last_prefix_field)]
    pub plugins: extern "C" fn() -> RResult<PluginList, PluginError>,
}

impl RootModule for PluginLibraryRef {
    abi_stable::declare_root_module_statics! {PluginLibraryRef}
    const BASE_NAME: &'static str = "ceilo_plugin";
    const NAME: &'static str = "ceilo plugin library";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("1.0.0");
}

/// The plugins of one library, by kind.
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

/// What `ceilo plugins` shows of a plugin.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct PluginInfo {
    /// Name used by `pipeline.yaml`.
    pub name: RString,
    /// The plugin's own version (its crate's).
    pub version: RString,
    /// One line.
    pub description: RString,
}

/// A plugin instance, opaque to the host: only its vtable's functions touch it.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy)]
pub struct PluginObject(pub *mut c_void);

/// A poller plugin and its factory.
#[repr(C)]
#[derive(StableAbi)]
pub struct PollerDescriptor {
    /// Name, version, description.
    pub info: PluginInfo,
    /// Builds an instance.
    pub create: extern "C" fn(RStr<'_>, RStr<'_>) -> RResult<PollerHandle, PluginError>,
}

/// A poller instance.
#[repr(C)]
#[derive(StableAbi)]
pub struct PollerHandle {
    /// The instance.
    pub obj: PluginObject,
    /// Its functions.
    pub vtable: PollerVTableRef,
}

/// A poller's entry points.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PollerVTableRef)))]
#[sabi(missing_field(panic))]
pub struct PollerVTable {
    /// Frees the instance.
    pub drop: unsafe extern "C" fn(PluginObject),
    /// [`Poller::meters`](crate::Poller::meters).
    pub meters: unsafe extern "C" fn(PluginObject) -> RResult<RVec<RString>, PluginError>,
    /// [`Poller::poll`](crate::Poller::poll).
    #[sabi(last_prefix_field)]
    pub poll: unsafe extern "C" fn(
        PluginObject,
        RSlice<'_, RString>,
    ) -> RResult<SampleBatch, PluginError>,
}

/// A notification handler plugin and its factory.
#[repr(C)]
#[derive(StableAbi)]
pub struct NotificationDescriptor {
    /// Name, version, description.
    pub info: PluginInfo,
    /// Builds an instance.
    pub create: extern "C" fn(RStr<'_>, RStr<'_>) -> RResult<NotificationHandle, PluginError>,
}

/// A notification handler instance.
#[repr(C)]
#[derive(StableAbi)]
pub struct NotificationHandle {
    /// The instance.
    pub obj: PluginObject,
    /// Its functions.
    pub vtable: NotificationVTableRef,
}

/// A notification handler's entry points.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = NotificationVTableRef)))]
#[sabi(missing_field(panic))]
pub struct NotificationVTable {
    /// Frees the instance.
    pub drop: unsafe extern "C" fn(PluginObject),
    /// [`NotificationHandler::event_types`](crate::NotificationHandler::event_types).
    pub event_types: unsafe extern "C" fn(PluginObject) -> RResult<RVec<RString>, PluginError>,
    /// [`NotificationHandler::meters`](crate::NotificationHandler::meters).
    pub meters: unsafe extern "C" fn(PluginObject) -> RResult<RVec<RString>, PluginError>,
    /// [`NotificationHandler::handle`](crate::NotificationHandler::handle), given the notification as JSON text.
    #[sabi(last_prefix_field)]
    pub handle: unsafe extern "C" fn(PluginObject, RStr<'_>) -> RResult<SampleBatch, PluginError>,
}

/// A transformer plugin and its factory.
#[repr(C)]
#[derive(StableAbi)]
pub struct TransformerDescriptor {
    /// Name, version, description.
    pub info: PluginInfo,
    /// Builds an instance.
    pub create: extern "C" fn(RStr<'_>, RStr<'_>) -> RResult<TransformerHandle, PluginError>,
}

/// A transformer instance.
#[repr(C)]
#[derive(StableAbi)]
pub struct TransformerHandle {
    /// The instance.
    pub obj: PluginObject,
    /// Its functions.
    pub vtable: TransformerVTableRef,
}

/// What a transformer call gives back: the samples out, and how many inputs failed
/// (with the first error), so one bad sample does not lose the batch.
#[repr(C)]
#[derive(StableAbi, Debug, Default)]
pub struct BatchOutput {
    /// Samples produced.
    pub samples: SampleBatch,
    /// Inputs that failed.
    pub failed: u64,
    /// The first failure; a panic, which cuts the batch short, takes precedence.
    pub first_error: ROption<PluginError>,
}

/// A transformer's entry points.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = TransformerVTableRef)))]
#[sabi(missing_field(panic))]
pub struct TransformerVTable {
    /// Frees the instance.
    pub drop: unsafe extern "C" fn(PluginObject),
    /// [`Transformer::handle`](crate::Transformer::handle) over a whole batch.
    pub handle: unsafe extern "C" fn(PluginObject, SampleBatch) -> BatchOutput,
    /// [`Transformer::flush`](crate::Transformer::flush).
    #[sabi(last_prefix_field)]
    pub flush: unsafe extern "C" fn(PluginObject) -> BatchOutput,
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

/// A publisher's entry points in ABI 1.0.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PublisherVTableRef)))]
#[sabi(missing_field(panic))]
pub struct PublisherVTable {
    /// Frees the instance.
    pub drop: unsafe extern "C" fn(PluginObject),
    /// [`Publisher::publish`](crate::Publisher::publish).
    pub publish: unsafe extern "C" fn(PluginObject, RSlice<'_, Sample>) -> RResult<(), PluginError>,
    /// [`Publisher::flush`](crate::Publisher::flush).
    #[sabi(last_prefix_field)]
    pub flush: unsafe extern "C" fn(PluginObject) -> RResult<(), PluginError>,
}
