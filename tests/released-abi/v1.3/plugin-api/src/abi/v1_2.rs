//! Plugin ABI 1.2 — FROZEN once released. Samples are made of shared [`Text`]
//! (reference-counted strings) with the message id inline, instead of 1.0's separately
//! owned strings: every vtable that passes samples is new, with 1.1's entry points.
//! The listing types without samples (`PluginInfo`, `PluginObject`, `Counter`) are
//! 1.0's and 1.1's, unchanged.
//!
//! [`Text`]: crate::Text

use std::marker::PhantomData;

use abi_stable::library::RootModule;
use abi_stable::prefix_type::{PrefixTypeTrait, WithMetadata};
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{ROption, RResult, RSlice, RStr, RString, RVec};
use abi_stable::StableAbi;

use super::{guard, AbiVersion};
use crate::log::HostLogger;
use crate::{
    Context, Notification, NotificationHandler, Parameters, Plugin, PluginError, Poller, Publisher,
    Sample, SampleBatch, Transformer,
};

pub use super::v1_0::{PluginInfo, PluginObject};
pub use super::v1_1::Counter;

/// This module's ABI version.
pub const VERSION: AbiVersion = AbiVersion::new(1, 2);

/// The root module of a 1.2 library (1.1's entry points).
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
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("1.2.0");
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
    /// [`Poller::meters`].
    pub meters: unsafe extern "C" fn(PluginObject) -> RResult<RVec<RString>, PluginError>,
    /// [`Poller::poll`].
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
    /// [`NotificationHandler::event_types`].
    pub event_types: unsafe extern "C" fn(PluginObject) -> RResult<RVec<RString>, PluginError>,
    /// [`NotificationHandler::meters`].
    pub meters: unsafe extern "C" fn(PluginObject) -> RResult<RVec<RString>, PluginError>,
    /// [`NotificationHandler::handle`], given the notification as JSON text.
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
    /// [`Transformer::handle`] over a whole batch.
    pub handle: unsafe extern "C" fn(PluginObject, SampleBatch) -> BatchOutput,
    /// [`Transformer::flush`].
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

/// A publisher's entry points in ABI 1.2.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PublisherVTableRef)))]
#[sabi(missing_field(panic))]
pub struct PublisherVTable {
    /// Frees the instance.
    pub drop: unsafe extern "C" fn(PluginObject),
    /// [`Publisher::publish`].
    pub publish: unsafe extern "C" fn(PluginObject, RSlice<'_, Sample>) -> RResult<(), PluginError>,
    /// [`Publisher::flush`].
    pub flush: unsafe extern "C" fn(PluginObject) -> RResult<(), PluginError>,
    /// [`Publisher::stats`].
    #[sabi(last_prefix_field)]
    pub stats: unsafe extern "C" fn(PluginObject) -> RResult<RVec<Counter>, PluginError>,
}

// ---------------------------------------------------------------------------------
// Plugin-side glue: generic entry points for a type `T`, used by `export_plugins!`.
// ---------------------------------------------------------------------------------

/// Glue used by [`export_plugins!`](crate::export_plugins); not for direct use.
#[doc(hidden)]
pub mod glue {
    use super::*;

    /// Collects a library's plugins for ABI 1.2.
    pub struct ListBuilder {
        list: PluginList,
    }

    impl ListBuilder {
        /// Adds a poller.
        pub fn pollers<T: Poller>(&mut self, version: &str) {
            self.list.pollers.push(poller_descriptor::<T>(version));
        }
        /// Adds a notification handler.
        pub fn notification_handlers<T: NotificationHandler>(&mut self, version: &str) {
            self.list
                .notification_handlers
                .push(notification_descriptor::<T>(version));
        }
        /// Adds a transformer.
        pub fn transformers<T: Transformer>(&mut self, version: &str) {
            self.list
                .transformers
                .push(transformer_descriptor::<T>(version));
        }
        /// Adds a publisher.
        pub fn publishers<T: Publisher>(&mut self, version: &str) {
            self.list.publishers.push(PublisherDescriptor {
                info: info::<T>(version),
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

    /// The root module for ABI 1.2.
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

    /// A plugin's listing entry.
    pub fn info<T: Plugin>(version: &str) -> PluginInfo {
        PluginInfo {
            name: T::NAME.into(),
            version: version.into(),
            description: T::DESCRIPTION.into(),
        }
    }

    /// Builds `T` from the JSON the host sent, under the panic guard.
    pub fn create<T: Plugin>(params: RStr<'_>, ctx: RStr<'_>) -> Result<PluginObject, PluginError> {
        guard("create", || {
            let p = Parameters::from_json(params.as_str())?;
            let c = Context::from_json(ctx.as_str())?;
            let t = T::create(&p, &c)?;
            Ok(PluginObject(Box::into_raw(Box::new(t)).cast()))
        })
    }

    /// # Safety
    /// `obj` must come from [`create::<T>`] and not be used again.
    pub unsafe extern "C" fn drop_obj<T: Plugin>(obj: PluginObject) {
        // A panicking destructor is ignored: the instance is gone either way.
        let _ = guard("drop", || {
            drop(unsafe { Box::from_raw(obj.0.cast::<T>()) });
            Ok(())
        });
    }

    /// # Safety
    /// `obj` must come from [`create::<T>`] and be alive and not in use elsewhere.
    unsafe fn this<'a, T>(obj: PluginObject) -> &'a mut T {
        unsafe { &mut *obj.0.cast::<T>() }
    }

    fn strings(v: Vec<String>) -> RVec<RString> {
        v.into_iter().map(RString::from).collect()
    }

    // --- pollers ---

    struct PollerVT<T>(PhantomData<T>);
    impl<T: Poller> PollerVT<T> {
        const VTABLE: &'static WithMetadata<PollerVTable> = &WithMetadata::new(PollerVTable {
            drop: drop_obj::<T>,
            meters: poller_meters::<T>,
            poll: poller_poll::<T>,
        });
    }

    fn poller_descriptor<T: Poller>(version: &str) -> PollerDescriptor {
        PollerDescriptor {
            info: info::<T>(version),
            create: create_poller::<T>,
        }
    }

    extern "C" fn create_poller<T: Poller>(
        p: RStr<'_>,
        c: RStr<'_>,
    ) -> RResult<PollerHandle, PluginError> {
        create::<T>(p, c)
            .map(|obj| PollerHandle {
                obj,
                vtable: PollerVTableRef(PollerVT::<T>::VTABLE.static_as_prefix()),
            })
            .into()
    }

    unsafe extern "C" fn poller_meters<T: Poller>(
        obj: PluginObject,
    ) -> RResult<RVec<RString>, PluginError> {
        guard("meters", || Ok(strings(unsafe { this::<T>(obj) }.meters()))).into()
    }

    unsafe extern "C" fn poller_poll<T: Poller>(
        obj: PluginObject,
        resources: RSlice<'_, RString>,
    ) -> RResult<SampleBatch, PluginError> {
        guard("poll", || {
            let resources: Vec<String> = resources.iter().map(|r| r.to_string()).collect();
            unsafe { this::<T>(obj) }.poll(&resources)
        })
        .into()
    }

    // --- notification handlers ---

    struct NotificationVT<T>(PhantomData<T>);
    impl<T: NotificationHandler> NotificationVT<T> {
        const VTABLE: &'static WithMetadata<NotificationVTable> =
            &WithMetadata::new(NotificationVTable {
                drop: drop_obj::<T>,
                event_types: notification_event_types::<T>,
                meters: notification_meters::<T>,
                handle: notification_handle::<T>,
            });
    }

    fn notification_descriptor<T: NotificationHandler>(version: &str) -> NotificationDescriptor {
        NotificationDescriptor {
            info: info::<T>(version),
            create: create_notification::<T>,
        }
    }

    extern "C" fn create_notification<T: NotificationHandler>(
        p: RStr<'_>,
        c: RStr<'_>,
    ) -> RResult<NotificationHandle, PluginError> {
        create::<T>(p, c)
            .map(|obj| NotificationHandle {
                obj,
                vtable: NotificationVTableRef(NotificationVT::<T>::VTABLE.static_as_prefix()),
            })
            .into()
    }

    unsafe extern "C" fn notification_event_types<T: NotificationHandler>(
        obj: PluginObject,
    ) -> RResult<RVec<RString>, PluginError> {
        guard("event_types", || {
            Ok(strings(unsafe { this::<T>(obj) }.event_types()))
        })
        .into()
    }

    unsafe extern "C" fn notification_meters<T: NotificationHandler>(
        obj: PluginObject,
    ) -> RResult<RVec<RString>, PluginError> {
        guard("meters", || Ok(strings(unsafe { this::<T>(obj) }.meters()))).into()
    }

    unsafe extern "C" fn notification_handle<T: NotificationHandler>(
        obj: PluginObject,
        body: RStr<'_>,
    ) -> RResult<SampleBatch, PluginError> {
        guard("handle", || {
            let n = Notification::from_json(body.as_str())?;
            unsafe { this::<T>(obj) }.handle(&n)
        })
        .into()
    }

    // --- transformers ---

    struct TransformerVT<T>(PhantomData<T>);
    impl<T: Transformer> TransformerVT<T> {
        const VTABLE: &'static WithMetadata<TransformerVTable> =
            &WithMetadata::new(TransformerVTable {
                drop: drop_obj::<T>,
                handle: transformer_handle::<T>,
                flush: transformer_flush::<T>,
            });
    }

    fn transformer_descriptor<T: Transformer>(version: &str) -> TransformerDescriptor {
        TransformerDescriptor {
            info: info::<T>(version),
            create: create_transformer::<T>,
        }
    }

    extern "C" fn create_transformer<T: Transformer>(
        p: RStr<'_>,
        c: RStr<'_>,
    ) -> RResult<TransformerHandle, PluginError> {
        create::<T>(p, c)
            .map(|obj| TransformerHandle {
                obj,
                vtable: TransformerVTableRef(TransformerVT::<T>::VTABLE.static_as_prefix()),
            })
            .into()
    }

    /// Runs a transformer over a batch: a failing sample is counted and skipped; a
    /// panic ends the batch (the instance may be inconsistent) and is reported.
    pub fn transform_batch<T: Transformer>(t: &mut T, batch: SampleBatch) -> BatchOutput {
        let mut out = BatchOutput {
            samples: SampleBatch::with_capacity(batch.len()),
            ..BatchOutput::default()
        };
        let total = batch.len() as u64;
        let mut done = 0u64;
        let result = guard("handle", || {
            for sample in batch {
                done += 1;
                if let Err(e) = t.handle(sample, &mut out.samples) {
                    record(&mut out, e);
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            // The panicking sample and every one after it are lost to this transformer.
            out.failed += total - done + 1;
            out.first_error = ROption::RSome(e);
        }
        out
    }

    fn record(out: &mut BatchOutput, e: PluginError) {
        out.failed += 1;
        if out.first_error.is_none() {
            out.first_error = ROption::RSome(e);
        }
    }

    unsafe extern "C" fn transformer_handle<T: Transformer>(
        obj: PluginObject,
        batch: SampleBatch,
    ) -> BatchOutput {
        transform_batch(unsafe { this::<T>(obj) }, batch)
    }

    unsafe extern "C" fn transformer_flush<T: Transformer>(obj: PluginObject) -> BatchOutput {
        let mut out = BatchOutput::default();
        let t = unsafe { this::<T>(obj) };
        if let Err(e) = guard("flush", || t.flush(&mut out.samples)) {
            record(&mut out, e);
        }
        out
    }

    // --- publishers ---

    struct PublisherVT<T>(PhantomData<T>);
    impl<T: Publisher> PublisherVT<T> {
        const VTABLE: &'static WithMetadata<PublisherVTable> =
            &WithMetadata::new(PublisherVTable {
                drop: drop_obj::<T>,
                publish: publisher_publish::<T>,
                flush: publisher_flush::<T>,
                stats: publisher_stats::<T>,
            });
    }

    extern "C" fn create_publisher<T: Publisher>(
        p: RStr<'_>,
        c: RStr<'_>,
    ) -> RResult<PublisherHandle, PluginError> {
        create::<T>(p, c)
            .map(|obj| PublisherHandle {
                obj,
                vtable: PublisherVTableRef(PublisherVT::<T>::VTABLE.static_as_prefix()),
            })
            .into()
    }

    unsafe extern "C" fn publisher_publish<T: Publisher>(
        obj: PluginObject,
        batch: RSlice<'_, Sample>,
    ) -> RResult<(), PluginError> {
        guard("publish", || {
            unsafe { this::<T>(obj) }.publish(batch.as_slice())
        })
        .into()
    }

    unsafe extern "C" fn publisher_flush<T: Publisher>(
        obj: PluginObject,
    ) -> RResult<(), PluginError> {
        guard("flush", || unsafe { this::<T>(obj) }.flush()).into()
    }

    unsafe extern "C" fn publisher_stats<T: Publisher>(
        obj: PluginObject,
    ) -> RResult<RVec<Counter>, PluginError> {
        guard("stats", || {
            Ok(RVec::from(unsafe { this::<T>(obj) }.stats()))
        })
        .into()
    }
}
