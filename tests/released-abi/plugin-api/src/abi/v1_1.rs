//! Plugin ABI 1.1 — FROZEN once released. Adds to 1.0: the host hands each library
//! its logger ([`log`](crate::log)), and publishers report counters
//! ([`Publisher::stats`](crate::Publisher::stats)). Pollers, notification handlers and
//! transformers are 1.0's, unchanged.

use abi_stable::library::RootModule;
use abi_stable::prefix_type::{PrefixTypeTrait, WithMetadata};
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RSlice, RStr, RString, RVec};
use abi_stable::StableAbi;
use std::marker::PhantomData;

use super::{guard, AbiVersion};
use crate::log::HostLogger;
use crate::{PluginError, Publisher, Sample};

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
    /// [`Publisher::publish`].
    pub publish: unsafe extern "C" fn(PluginObject, RSlice<'_, Sample>) -> RResult<(), PluginError>,
    /// [`Publisher::flush`].
    #[sabi(last_prefix_field)]
    pub flush: unsafe extern "C" fn(PluginObject) -> RResult<(), PluginError>,
    /// [`Publisher::stats`] (new in 1.1).
    pub stats: unsafe extern "C" fn(PluginObject) -> RResult<RVec<Counter>, PluginError>,
}

/// Glue used by [`export_plugins!`](crate::export_plugins); not for direct use.
#[doc(hidden)]
pub mod glue {
    use super::*;
    use crate::abi::v1_0::glue as old;
    use crate::{NotificationHandler, Poller, Transformer};

    /// Collects a library's plugins for ABI 1.1.
    pub struct ListBuilder {
        list: PluginList,
    }

    impl ListBuilder {
        /// Adds a poller.
        pub fn pollers<T: Poller>(&mut self, version: &str) {
            self.list.pollers.push(old::poller::<T>(version));
        }
        /// Adds a notification handler.
        pub fn notification_handlers<T: NotificationHandler>(&mut self, version: &str) {
            self.list
                .notification_handlers
                .push(old::notification::<T>(version));
        }
        /// Adds a transformer.
        pub fn transformers<T: Transformer>(&mut self, version: &str) {
            self.list.transformers.push(old::transformer::<T>(version));
        }
        /// Adds a publisher.
        pub fn publishers<T: Publisher>(&mut self, version: &str) {
            self.list.publishers.push(PublisherDescriptor {
                info: old::info::<T>(version),
                create: create_publisher::<T>,
            });
        }
    }

    /// Runs the macro-written list function under the panic guard.
    pub fn plugin_list(fill: impl FnOnce(&mut ListBuilder)) -> RResult<PluginList, PluginError> {
        guard("listing plugins", || {
            let mut b = ListBuilder {
                list: PluginList {
                    pollers: RVec::new(),
                    notification_handlers: RVec::new(),
                    transformers: RVec::new(),
                    publishers: RVec::new(),
                },
            };
            fill(&mut b);
            Ok(b.list)
        })
        .into()
    }

    /// The root module for ABI 1.1.
    pub fn root_module(
        plugins: extern "C" fn() -> RResult<PluginList, PluginError>,
    ) -> PluginLibraryRef {
        PluginLibrary {
            init: init_library,
            plugins,
        }
        .leak_into_prefix()
    }

    extern "C" fn init_library(logger: HostLogger) {
        crate::log::set_host_logger(logger);
    }

    struct PublisherVT<T>(PhantomData<T>);
    impl<T: Publisher> PublisherVT<T> {
        const VTABLE: &'static WithMetadata<PublisherVTable> =
            &WithMetadata::new(PublisherVTable {
                drop: old::drop_obj::<T>,
                publish: old::publisher_publish::<T>,
                flush: old::publisher_flush::<T>,
                stats: publisher_stats::<T>,
            });
    }

    extern "C" fn create_publisher<T: Publisher>(
        p: abi_stable::std_types::RStr<'_>,
        c: abi_stable::std_types::RStr<'_>,
    ) -> RResult<PublisherHandle, PluginError> {
        old::create::<T>(p, c)
            .map(|obj| PublisherHandle {
                obj,
                vtable: PublisherVTableRef(PublisherVT::<T>::VTABLE.static_as_prefix()),
            })
            .into()
    }

    unsafe extern "C" fn publisher_stats<T: Publisher>(
        obj: PluginObject,
    ) -> RResult<RVec<Counter>, PluginError> {
        guard("stats", || {
            let t = unsafe { &*obj.0.cast::<T>() };
            Ok(RVec::from(t.stats()))
        })
        .into()
    }
}
