//! Adapters from each frozen ABI version to the host's version-independent instance
//! interfaces. Adding an ABI minor means: a new `entries_vX_Y`, adapters for the
//! vtables that changed, and defaults for entry points older versions lack.

use abi_stable::std_types::{RResult, RSlice, RStr, RString};
use ceilo_plugin_api::abi::{v1_0, v1_1};
use ceilo_plugin_api::{Counter, PluginError, Sample, SampleBatch};

use super::instance::{
    NotificationAbi, PollLimits, PollOutput, PollerAbi, PublisherAbi, RawTransformOutput,
    TransformerAbi,
};
use super::PluginKind;

type CreateFn<H> = extern "C" fn(RStr<'_>, RStr<'_>) -> RResult<H, PluginError>;

/// A plugin's factory, tagged with the ABI its handle follows.
#[derive(Clone, Copy)]
pub(crate) enum Factory {
    Poller(CreateFn<v1_0::PollerHandle>),
    Notification(CreateFn<v1_0::NotificationHandle>),
    Transformer(CreateFn<v1_0::TransformerHandle>),
    PublisherV1_0(CreateFn<v1_0::PublisherHandle>),
    PublisherV1_1(CreateFn<v1_1::PublisherHandle>),
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

/// Pollers, notification handlers and transformers are unchanged since 1.0.
fn common_entries(
    pollers: &[v1_0::PollerDescriptor],
    notifications: &[v1_0::NotificationDescriptor],
    transformers: &[v1_0::TransformerDescriptor],
) -> Vec<Entry> {
    let p = pollers
        .iter()
        .map(|d| entry(PluginKind::Poller, &d.info, Factory::Poller(d.create)));
    let n = notifications.iter().map(|d| {
        entry(
            PluginKind::Notification,
            &d.info,
            Factory::Notification(d.create),
        )
    });
    let t = transformers.iter().map(|d| {
        entry(
            PluginKind::Transformer,
            &d.info,
            Factory::Transformer(d.create),
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
        Factory::Poller(f) => Ok(Box::new(FfiPoller(call(f, params, ctx)?))),
        _ => Err(PluginError::new("not a poller")),
    }
}

pub(crate) fn create_notification(
    f: Factory,
    params: &str,
    ctx: &str,
) -> Result<Box<dyn NotificationAbi>, PluginError> {
    match f {
        Factory::Notification(f) => Ok(Box::new(FfiNotification(call(f, params, ctx)?))),
        _ => Err(PluginError::new("not a notification handler")),
    }
}

pub(crate) fn create_transformer(
    f: Factory,
    params: &str,
    ctx: &str,
) -> Result<Box<dyn TransformerAbi>, PluginError> {
    match f {
        Factory::Transformer(f) => Ok(Box::new(FfiTransformer(call(f, params, ctx)?))),
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
        _ => Err(PluginError::new("not a publisher")),
    }
}

fn strings(
    r: RResult<abi_stable::std_types::RVec<RString>, PluginError>,
) -> Result<Vec<String>, PluginError> {
    r.into_result()
        .map(|v| v.into_iter().map(|s| s.into_string()).collect())
}

fn raw_output(o: v1_0::BatchOutput) -> RawTransformOutput {
    RawTransformOutput {
        samples: o.samples,
        failed: o.failed,
        first_error: o.first_error.into_option(),
    }
}

// Handles hold a raw pointer, so they are not `Send` by themselves. Plugin types are
// required to be `Send` (the `Plugin` trait's bound), and the host never calls one
// instance from two threads at once (`&mut self` everywhere), so moving a handle to
// another thread is sound.

struct FfiPoller(v1_0::PollerHandle);
// SAFETY: see above.
unsafe impl Send for FfiPoller {}

impl PollerAbi for FfiPoller {
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
        let batch: SampleBatch =
            unsafe { (self.0.vtable.poll())(self.0.obj, RSlice::from_slice(&resources)) }
                .into_result()?;
        Ok(PollOutput::capped(batch, limits.max_samples))
    }
}

impl Drop for FfiPoller {
    fn drop(&mut self) {
        // SAFETY: the instance is dropped once, here, and never used again.
        unsafe { (self.0.vtable.drop())(self.0.obj) }
    }
}

struct FfiNotification(v1_0::NotificationHandle);
// SAFETY: see above.
unsafe impl Send for FfiNotification {}

impl NotificationAbi for FfiNotification {
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
    }
}

impl Drop for FfiNotification {
    fn drop(&mut self) {
        // SAFETY: dropped once, never used again.
        unsafe { (self.0.vtable.drop())(self.0.obj) }
    }
}

struct FfiTransformer(v1_0::TransformerHandle);
// SAFETY: see above.
unsafe impl Send for FfiTransformer {}

impl TransformerAbi for FfiTransformer {
    fn handle(&mut self, batch: SampleBatch) -> RawTransformOutput {
        // SAFETY: `obj` is the live instance its own vtable was made for.
        raw_output(unsafe { (self.0.vtable.handle())(self.0.obj, batch) })
    }
    fn flush(&mut self) -> RawTransformOutput {
        // SAFETY: as above.
        raw_output(unsafe { (self.0.vtable.flush())(self.0.obj) })
    }
}

impl Drop for FfiTransformer {
    fn drop(&mut self) {
        // SAFETY: dropped once, never used again.
        unsafe { (self.0.vtable.drop())(self.0.obj) }
    }
}

struct FfiPublisherV1_0(v1_0::PublisherHandle);
// SAFETY: see above.
unsafe impl Send for FfiPublisherV1_0 {}

impl PublisherAbi for FfiPublisherV1_0 {
    fn publish(&mut self, batch: &[Sample]) -> Result<(), PluginError> {
        // SAFETY: `obj` is the live instance its own vtable was made for.
        unsafe { (self.0.vtable.publish())(self.0.obj, RSlice::from_slice(batch)) }.into_result()
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
        unsafe { (self.0.vtable.publish())(self.0.obj, RSlice::from_slice(batch)) }.into_result()
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
