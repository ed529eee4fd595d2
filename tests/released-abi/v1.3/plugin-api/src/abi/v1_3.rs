//! Plugin ABI 1.3 — FROZEN once released. Adds a fifth kind, trait plugins (a trait
//! definition's `plugin:` in `event_definitions.yaml`), as a second list beside 1.2's:
//! the root module is 1.2's entry points followed by `trait_plugins`. Every 1.2 type
//! (samples, the four kinds' descriptors and vtables) is reused unchanged.

use std::marker::PhantomData;

use abi_stable::library::RootModule;
use abi_stable::prefix_type::{PrefixTypeTrait, WithMetadata};
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RStr, RString, RVec};
use abi_stable::StableAbi;

use super::{guard, AbiVersion};
use crate::log::HostLogger;
use crate::{PluginError, TraitMatch, TraitPlugin};

pub use super::v1_2::{
    BatchOutput, Counter, NotificationDescriptor, NotificationHandle, NotificationVTable,
    NotificationVTableRef, PluginInfo, PluginList, PluginObject, PollerDescriptor, PollerHandle,
    PollerVTable, PollerVTableRef, PublisherDescriptor, PublisherHandle, PublisherVTable,
    PublisherVTableRef, TransformerDescriptor, TransformerHandle, TransformerVTable,
    TransformerVTableRef,
};

/// This module's ABI version.
pub const VERSION: AbiVersion = AbiVersion::new(1, 3);

/// The root module of a 1.3 library: 1.2's entry points, then the trait plugins.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginLibraryRef)))]
#[sabi(missing_field(panic))]
pub struct PluginLibrary {
    /// Called once by the host before anything else: its logger.
    pub init: extern "C" fn(HostLogger),
    /// Lists the library's plugins of the four 1.2 kinds.
    pub plugins: extern "C" fn() -> RResult<PluginList, PluginError>,
    /// Lists the library's trait plugins.
    #[sabi(last_prefix_field)]
    pub trait_plugins: extern "C" fn() -> RResult<RVec<TraitPluginDescriptor>, PluginError>,
}

impl RootModule for PluginLibraryRef {
    abi_stable::declare_root_module_statics! {PluginLibraryRef}
    const BASE_NAME: &'static str = "ceilo_plugin";
    const NAME: &'static str = "ceilo plugin library";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("1.3.0");
}

/// A trait plugin and its factory.
#[repr(C)]
#[derive(StableAbi)]
pub struct TraitPluginDescriptor {
    /// Name (what `plugin: {name: …}` names), version, description.
    pub info: PluginInfo,
    /// Builds an instance from the definition's `parameters` (JSON) and the context.
    pub create: extern "C" fn(RStr<'_>, RStr<'_>) -> RResult<TraitPluginHandle, PluginError>,
}

/// A trait plugin instance.
#[repr(C)]
#[derive(StableAbi)]
pub struct TraitPluginHandle {
    /// The instance.
    pub obj: PluginObject,
    /// Its functions.
    pub vtable: TraitPluginVTableRef,
}

/// A trait plugin's entry points.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = TraitPluginVTableRef)))]
#[sabi(missing_field(panic))]
pub struct TraitPluginVTable {
    /// Frees the instance.
    pub drop: unsafe extern "C" fn(PluginObject),
    /// [`TraitPlugin::trait_values`]: the matches as JSON `[[path, value], …]` in,
    /// the values as a JSON list out.
    #[sabi(last_prefix_field)]
    pub trait_values: unsafe extern "C" fn(PluginObject, RStr<'_>) -> RResult<RString, PluginError>,
}

/// Glue used by [`export_plugins!`](crate::export_plugins); not for direct use.
#[doc(hidden)]
pub mod glue {
    use super::*;
    use crate::abi::v1_2::glue as g12;
    use crate::{NotificationHandler, Poller, Publisher, Transformer};

    /// The 1.2 transformer glue, unchanged in 1.3 (for benchmarks of the boundary).
    pub use crate::abi::v1_2::glue::transform_batch;

    /// Collects a library's plugins for ABI 1.3: the 1.2 kinds into 1.2's list (when
    /// listing those), trait plugins into their own.
    pub struct ListBuilder<'a> {
        inner: Option<&'a mut g12::ListBuilder>,
        traits: RVec<TraitPluginDescriptor>,
    }

    impl ListBuilder<'_> {
        /// Adds a poller.
        pub fn pollers<T: Poller>(&mut self, version: &str) {
            if let Some(b) = self.inner.as_mut() {
                b.pollers::<T>(version);
            }
        }
        /// Adds a notification handler.
        pub fn notification_handlers<T: NotificationHandler>(&mut self, version: &str) {
            if let Some(b) = self.inner.as_mut() {
                b.notification_handlers::<T>(version);
            }
        }
        /// Adds a transformer.
        pub fn transformers<T: Transformer>(&mut self, version: &str) {
            if let Some(b) = self.inner.as_mut() {
                b.transformers::<T>(version);
            }
        }
        /// Adds a publisher.
        pub fn publishers<T: Publisher>(&mut self, version: &str) {
            if let Some(b) = self.inner.as_mut() {
                b.publishers::<T>(version);
            }
        }
        /// Adds a trait plugin.
        pub fn trait_plugins<T: TraitPlugin>(&mut self, version: &str) {
            self.traits.push(TraitPluginDescriptor {
                info: g12::info::<T>(version),
                create: create_trait::<T>,
            });
        }
    }

    /// The four 1.2 kinds, as the macro-written `fill` lists them.
    pub fn plugin_list(fill: fn(&mut ListBuilder<'_>)) -> RResult<PluginList, PluginError> {
        g12::plugin_list(|b| {
            fill(&mut ListBuilder {
                inner: Some(b),
                traits: RVec::new(),
            })
        })
    }

    /// The trait plugins, as the macro-written `fill` lists them.
    pub fn trait_list(
        fill: fn(&mut ListBuilder<'_>),
    ) -> RResult<RVec<TraitPluginDescriptor>, PluginError> {
        guard("listing trait plugins", || {
            let mut b = ListBuilder {
                inner: None,
                traits: RVec::new(),
            };
            fill(&mut b);
            Ok(b.traits)
        })
        .into()
    }

    /// The root module for ABI 1.3.
    pub fn root_module(
        plugins: extern "C" fn() -> RResult<PluginList, PluginError>,
        trait_plugins: extern "C" fn() -> RResult<RVec<TraitPluginDescriptor>, PluginError>,
    ) -> PluginLibraryRef {
        PluginLibrary {
            init: init_library,
            plugins,
            trait_plugins,
        }
        .leak_into_prefix()
    }

    extern "C" fn init_library(logger: HostLogger) {
        crate::log::set_host_logger(logger);
    }

    struct TraitVT<T>(PhantomData<T>);
    impl<T: TraitPlugin> TraitVT<T> {
        const VTABLE: &'static WithMetadata<TraitPluginVTable> =
            &WithMetadata::new(TraitPluginVTable {
                drop: g12::drop_obj::<T>,
                trait_values: trait_values::<T>,
            });
    }

    extern "C" fn create_trait<T: TraitPlugin>(
        params: RStr<'_>,
        ctx: RStr<'_>,
    ) -> RResult<TraitPluginHandle, PluginError> {
        g12::create::<T>(params, ctx)
            .map(|obj| TraitPluginHandle {
                obj,
                vtable: TraitPluginVTableRef(TraitVT::<T>::VTABLE.static_as_prefix()),
            })
            .into()
    }

    unsafe extern "C" fn trait_values<T: TraitPlugin>(
        obj: PluginObject,
        matches: RStr<'_>,
    ) -> RResult<RString, PluginError> {
        guard("trait_values", || {
            let matches = TraitMatch::list_from_json(matches.as_str())?;
            // SAFETY: the host passes an instance `create_trait::<T>` made, one call
            // at a time.
            let t = unsafe { &mut *obj.0.cast::<T>() };
            let values = t.trait_values(&matches)?;
            Ok(RString::from(serde_json::Value::Array(values).to_string()))
        })
        .into()
    }
}
