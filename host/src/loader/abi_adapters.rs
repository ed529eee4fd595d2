//! Adapters from each frozen ABI version to the host's version-independent instance
//! interfaces. Adding an ABI minor means: a new `entries_vX_Y`, adapters for the
//! vtables that changed, and defaults for entry points older versions lack.

use abi_stable::std_types::{RResult, RSlice, RStr, RString};
use ceilo_plugin_api::abi::{v1_0, v1_1, v1_2, v1_3};
use ceilo_plugin_api::{Counter, PluginError, Sample, SampleBatch};

use super::instance::{
    NotificationAbi, PollLimits, PollOutput, PollerAbi, PublisherAbi, RawTransformOutput, TraitAbi,
    TransformerAbi,
};
use super::PluginKind;

type CreateFn<H> = extern "C" fn(RStr<'_>, RStr<'_>) -> RResult<H, PluginError>;

/// A plugin's factory, tagged with the ABI its handle follows.
#[derive(Clone, Copy)]
pub(crate) enum Factory {
    PollerV1_0(CreateFn<v1_0::PollerHandle>),
    PollerV1_2(CreateFn<v1_2::PollerHandle>),
    NotificationV1_0(CreateFn<v1_0::NotificationHandle>),
    NotificationV1_2(CreateFn<v1_2::NotificationHandle>),
    TransformerV1_0(CreateFn<v1_0::TransformerHandle>),
    TransformerV1_2(CreateFn<v1_2::TransformerHandle>),
    PublisherV1_0(CreateFn<v1_0::PublisherHandle>),
    PublisherV1_1(CreateFn<v1_1::PublisherHandle>),
    PublisherV1_2(CreateFn<v1_2::PublisherHandle>),
    TraitV1_3(CreateFn<v1_3::TraitPluginHandle>),
}

/// One plugin as listed by its library.
#[derive(Clone)]
pub(crate) struct Entry {
    pub kind: PluginKind,
    pub name: String,
    pub version: String,
    pub description: String,
    pub factory: Factory,
}

fn entry(kind: PluginKind, info: &v1_0::PluginInfo, factory: Factory) -> Entry {
    Entry {
        kind,
        name: info.name.to_string(),
        version: info.version.to_string(),
        description: info.description.to_string(),
        factory,
    }
}

/// The plugins of a 1.0 library.
pub(crate) fn entries_v1_0(list: v1_0::PluginList) -> Vec<Entry> {
    let mut out = common_entries(
        &list.pollers,
        &list.notification_handlers,
        &list.transformers,
    );
    out.extend(list.publishers.iter().map(|d| {
        entry(
            PluginKind::Publisher,
            &d.info,
            Factory::PublisherV1_0(d.create),
        )
    }));
    out
}

/// The plugins of a 1.1 library.
pub(crate) fn entries_v1_1(list: v1_1::PluginList) -> Vec<Entry> {
    let mut out = common_entries(
        &list.pollers,
        &list.notification_handlers,
        &list.transformers,
    );
    out.extend(list.publishers.iter().map(|d| {
        entry(
            PluginKind::Publisher,
            &d.info,
            Factory::PublisherV1_1(d.create),
        )
    }));
    out
}

/// The plugins of a 1.2 library.
pub(crate) fn entries_v1_2(list: v1_2::PluginList) -> Vec<Entry> {
    let p = list
        .pollers
        .iter()
        .map(|d| entry(PluginKind::Poller, &d.info, Factory::PollerV1_2(d.create)));
    let n = list.notification_handlers.iter().map(|d| {
        entry(
            PluginKind::Notification,
            &d.info,
            Factory::NotificationV1_2(d.create),
        )
    });
    let t = list.transformers.iter().map(|d| {
        entry(
            PluginKind::Transformer,
            &d.info,
            Factory::TransformerV1_2(d.create),
        )
    });
    let u = list.publishers.iter().map(|d| {
        entry(
            PluginKind::Publisher,
            &d.info,
            Factory::PublisherV1_2(d.create),
        )
    });
    p.chain(n).chain(t).chain(u).collect()
}

/// The plugins of a 1.3 library: 1.2's kinds and its trait plugins.
pub(crate) fn entries_v1_3(
    list: v1_2::PluginList,
    traits: abi_stable::std_types::RVec<v1_3::TraitPluginDescriptor>,
) -> Vec<Entry> {
    let mut out = entries_v1_2(list);
    out.extend(
        traits
            .iter()
            .map(|d| entry(PluginKind::Trait, &d.info, Factory::TraitV1_3(d.create))),
    );
    out
}

/// Pollers, notification handlers and transformers are unchanged from 1.0 to 1.1.
fn common_entries(
    pollers: &[v1_0::PollerDescriptor],
    notifications: &[v1_0::NotificationDescriptor],
    transformers: &[v1_0::TransformerDescriptor],
) -> Vec<Entry> {
    let p = pollers
        .iter()
        .map(|d| entry(PluginKind::Poller, &d.info, Factory::PollerV1_0(d.create)));
    let n = notifications.iter().map(|d| {
        entry(
            PluginKind::Notification,
            &d.info,
            Factory::NotificationV1_0(d.create),
        )
    });
    let t = transformers.iter().map(|d| {
        entry(
            PluginKind::Transformer,
            &d.info,
            Factory::TransformerV1_0(d.create),
        )
    });
    p.chain(n).chain(t).collect()
}

fn call<H>(f: CreateFn<H>, params: &str, ctx: &str) -> Result<H, PluginError> {
    f(RStr::from_str(params), RStr::from_str(ctx)).into_result()
}

pub(crate) fn create_poller(
    f: Factory,
    params: &str,
    ctx: &str,
) -> Result<Box<dyn PollerAbi>, PluginError> {
    match f {
        Factory::PollerV1_0(f) => Ok(Box::new(FfiPollerV1_0(call(f, params, ctx)?))),
        Factory::PollerV1_2(f) => Ok(Box::new(FfiPollerV1_2(call(f, params, ctx)?))),
        _ => Err(PluginError::new("not a poller")),
    }
}

pub(crate) fn create_notification(
    f: Factory,
    params: &str,
    ctx: &str,
) -> Result<Box<dyn NotificationAbi>, PluginError> {
    match f {
        Factory::NotificationV1_0(f) => Ok(Box::new(FfiNotificationV1_0(call(f, params, ctx)?))),
        Factory::NotificationV1_2(f) => Ok(Box::new(FfiNotificationV1_2(call(f, params, ctx)?))),
        _ => Err(PluginError::new("not a notification handler")),
    }
}

pub(crate) fn create_transformer(
    f: Factory,
    params: &str,
    ctx: &str,
) -> Result<Box<dyn TransformerAbi>, PluginError> {
    match f {
        Factory::TransformerV1_0(f) => Ok(Box::new(FfiTransformerV1_0(call(f, params, ctx)?))),
        Factory::TransformerV1_2(f) => Ok(Box::new(FfiTransformerV1_2(call(f, params, ctx)?))),
        _ => Err(PluginError::new("not a transformer")),
    }
}

pub(crate) fn create_publisher(
    f: Factory,
    params: &str,
    ctx: &str,
) -> Result<Box<dyn PublisherAbi>, PluginError> {
    match f {
        Factory::PublisherV1_0(f) => Ok(Box::new(FfiPublisherV1_0(call(f, params, ctx)?))),
        Factory::PublisherV1_1(f) => Ok(Box::new(FfiPublisherV1_1(call(f, params, ctx)?))),
        Factory::PublisherV1_2(f) => Ok(Box::new(FfiPublisherV1_2(call(f, params, ctx)?))),
        _ => Err(PluginError::new("not a publisher")),
    }
}

pub(crate) fn create_trait(
    f: Factory,
    params: &str,
    ctx: &str,
) -> Result<Box<dyn TraitAbi>, PluginError> {
    match f {
        Factory::TraitV1_3(f) => Ok(Box::new(FfiTraitV1_3(call(f, params, ctx)?))),
        _ => Err(PluginError::new("not a trait plugin")),
    }
}

/// A trait plugin of a 1.3 library.
struct FfiTraitV1_3(v1_3::TraitPluginHandle);

// SAFETY: plugin types are `Send` (the trait requires it); the host calls one
// instance from one thread at a time.
unsafe impl Send for FfiTraitV1_3 {}

impl TraitAbi for FfiTraitV1_3 {
    fn trait_values(&mut self, matches_json: &str) -> Result<String, PluginError> {
        let h = &self.0;
        // SAFETY: `obj` is this handle's live instance, used by one caller at a time.
        unsafe { (h.vtable.trait_values())(h.obj, RStr::from_str(matches_json)) }
            .into_result()
            .map(RString::into_string)
    }
}

impl Drop for FfiTraitV1_3 {
    fn drop(&mut self) {
        // SAFETY: the instance is dropped once, here, and not used again.
        unsafe { (self.0.vtable.drop())(self.0.obj) }
    }
}

fn strings(
    r: RResult<abi_stable::std_types::RVec<RString>, PluginError>,
) -> Result<Vec<String>, PluginError> {
    r.into_result()
        .map(|v| v.into_iter().map(|s| s.into_string()).collect())
}

// Handles hold a raw pointer, so they are not `Send` by themselves. Plugin types are
// required to be `Send` (the `Plugin` trait's bound), and the host never calls one
// instance from two threads at once (`&mut self` everywhere), so moving a handle to
// another thread is sound.

/// Adapters for the poller, notification and transformer handles of one ABI, given
/// how its batches become the host's and back: 1.0's samples are converted at the
/// boundary (every string copied), 1.2's pass as they are.
macro_rules! sample_kind_adapters {
    ($abi:ident, $poller:ident, $notification:ident, $transformer:ident,
     to_host: $to_host:expr, to_plugin: $to_plugin:expr) => {
        struct $poller($abi::PollerHandle);
        // SAFETY: see above.
        unsafe impl Send for $poller {}

        impl PollerAbi for $poller {
            fn meters(&mut self) -> Result<Vec<String>, PluginError> {
                // SAFETY: `obj` is the live instance its own vtable was made for.
                strings(unsafe { (self.0.vtable.meters())(self.0.obj) })
            }
            fn poll(
                &mut self,
                resources: &[String],
                limits: &PollLimits,
            ) -> Result<PollOutput, PluginError> {
                let resources: Vec<RString> = resources
                    .iter()
                    .map(|r| RString::from(r.as_str()))
                    .collect();
                // SAFETY: as above; the slice outlives the call.
                let batch =
                    unsafe { (self.0.vtable.poll())(self.0.obj, RSlice::from_slice(&resources)) }
                        .into_result()?;
                Ok(PollOutput::capped($to_host(batch), limits.max_samples))
            }
        }

        impl Drop for $poller {
            fn drop(&mut self) {
                // SAFETY: the instance is dropped once, here, and never used again.
                unsafe { (self.0.vtable.drop())(self.0.obj) }
            }
        }

        struct $notification($abi::NotificationHandle);
        // SAFETY: see above.
        unsafe impl Send for $notification {}

        impl NotificationAbi for $notification {
            fn event_types(&mut self) -> Result<Vec<String>, PluginError> {
                // SAFETY: `obj` is the live instance its own vtable was made for.
                strings(unsafe { (self.0.vtable.event_types())(self.0.obj) })
            }
            fn meters(&mut self) -> Result<Vec<String>, PluginError> {
                // SAFETY: `obj` is the live instance its own vtable was made for.
                strings(unsafe { (self.0.vtable.meters())(self.0.obj) })
            }
            fn handle(&mut self, notification_json: &str) -> Result<SampleBatch, PluginError> {
                // SAFETY: as above; the text outlives the call.
                unsafe { (self.0.vtable.handle())(self.0.obj, RStr::from_str(notification_json)) }
                    .into_result()
                    .map($to_host)
            }
        }

        impl Drop for $notification {
            fn drop(&mut self) {
                // SAFETY: dropped once, never used again.
                unsafe { (self.0.vtable.drop())(self.0.obj) }
            }
        }

        struct $transformer($abi::TransformerHandle);
        // SAFETY: see above.
        unsafe impl Send for $transformer {}

        impl $transformer {
            fn output(o: $abi::BatchOutput) -> RawTransformOutput {
                RawTransformOutput {
                    samples: $to_host(o.samples),
                    failed: o.failed,
                    first_error: o.first_error.into_option(),
                }
            }
        }

        impl TransformerAbi for $transformer {
            fn handle(&mut self, batch: SampleBatch) -> RawTransformOutput {
                // SAFETY: `obj` is the live instance its own vtable was made for.
                Self::output(unsafe { (self.0.vtable.handle())(self.0.obj, $to_plugin(batch)) })
            }
            fn flush(&mut self) -> RawTransformOutput {
                // SAFETY: as above.
                Self::output(unsafe { (self.0.vtable.flush())(self.0.obj) })
            }
        }

        impl Drop for $transformer {
            fn drop(&mut self) {
                // SAFETY: dropped once, never used again.
                unsafe { (self.0.vtable.drop())(self.0.obj) }
            }
        }
    };
}

sample_kind_adapters!(
    v1_0,
    FfiPollerV1_0,
    FfiNotificationV1_0,
    FfiTransformerV1_0,
    to_host: SampleBatch::from,
    to_plugin: v1_0::SampleBatch::from
);
sample_kind_adapters!(
    v1_2,
    FfiPollerV1_2,
    FfiNotificationV1_2,
    FfiTransformerV1_2,
    to_host: std::convert::identity,
    to_plugin: std::convert::identity
);

/// Publishers of 1.0 and 1.1 get the batch converted to the 1.0 sample.
fn publish_v1_0(
    batch: &[Sample],
    publish: impl FnOnce(RSlice<'_, v1_0::Sample>) -> RResult<(), PluginError>,
) -> Result<(), PluginError> {
    let old = v1_0::SampleBatch::from(batch);
    publish(RSlice::from_slice(&old.0)).into_result()
}

struct FfiPublisherV1_0(v1_0::PublisherHandle);
// SAFETY: see above.
unsafe impl Send for FfiPublisherV1_0 {}

impl PublisherAbi for FfiPublisherV1_0 {
    fn publish(&mut self, batch: &[Sample]) -> Result<(), PluginError> {
        // SAFETY: `obj` is the live instance its own vtable was made for.
        publish_v1_0(batch, |b| unsafe {
            (self.0.vtable.publish())(self.0.obj, b)
        })
    }
    fn flush(&mut self) -> Result<(), PluginError> {
        // SAFETY: as above.
        unsafe { (self.0.vtable.flush())(self.0.obj) }.into_result()
    }
    fn has_stats(&self) -> bool {
        false
    }
    fn stats(&mut self) -> Result<Vec<Counter>, PluginError> {
        // ABI 1.0 has no stats entry point: a 1.0 publisher reports no counters.
        Ok(Vec::new())
    }
}

impl Drop for FfiPublisherV1_0 {
    fn drop(&mut self) {
        // SAFETY: dropped once, never used again.
        unsafe { (self.0.vtable.drop())(self.0.obj) }
    }
}

struct FfiPublisherV1_1(v1_1::PublisherHandle);
// SAFETY: see above.
unsafe impl Send for FfiPublisherV1_1 {}

impl PublisherAbi for FfiPublisherV1_1 {
    fn publish(&mut self, batch: &[Sample]) -> Result<(), PluginError> {
        // SAFETY: `obj` is the live instance its own vtable was made for.
        publish_v1_0(batch, |b| unsafe {
            (self.0.vtable.publish())(self.0.obj, b)
        })
    }
    fn flush(&mut self) -> Result<(), PluginError> {
        // SAFETY: as above.
        unsafe { (self.0.vtable.flush())(self.0.obj) }.into_result()
    }
    fn has_stats(&self) -> bool {
        self.0.vtable.stats().is_some()
    }
    fn stats(&mut self) -> Result<Vec<Counter>, PluginError> {
        match self.0.vtable.stats() {
            // SAFETY: as above.
            Some(f) => unsafe { f(self.0.obj) }.into_result().map(|v| v.into_vec()),
            None => Ok(Vec::new()),
        }
    }
}

impl Drop for FfiPublisherV1_1 {
    fn drop(&mut self) {
        // SAFETY: dropped once, never used again.
        unsafe { (self.0.vtable.drop())(self.0.obj) }
    }
}

struct FfiPublisherV1_2(v1_2::PublisherHandle);
// SAFETY: see above.
unsafe impl Send for FfiPublisherV1_2 {}

impl PublisherAbi for FfiPublisherV1_2 {
    fn publish(&mut self, batch: &[Sample]) -> Result<(), PluginError> {
        // SAFETY: `obj` is the live instance its own vtable was made for.
        unsafe { (self.0.vtable.publish())(self.0.obj, RSlice::from_slice(batch)) }.into_result()
    }
    fn flush(&mut self) -> Result<(), PluginError> {
        // SAFETY: as above.
        unsafe { (self.0.vtable.flush())(self.0.obj) }.into_result()
    }
    fn has_stats(&self) -> bool {
        true
    }
    fn stats(&mut self) -> Result<Vec<Counter>, PluginError> {
        // SAFETY: as above.
        unsafe { (self.0.vtable.stats())(self.0.obj) }
            .into_result()
            .map(|v| v.into_vec())
    }
}

impl Drop for FfiPublisherV1_2 {
    fn drop(&mut self) {
        // SAFETY: dropped once, never used again.
        unsafe { (self.0.vtable.drop())(self.0.obj) }
    }
}
