//! The polling agent: one schedule per distinct interval; each cycle polls every
//! poller its sources select (off the async threads, so a slow plugin stalls nothing
//! else), sends the samples through the sources' sinks, and flushes those sinks.
//! A poll still running when the next is due is skipped, never queued; a poller that
//! keeps failing is backed off (interval doubled per failure, capped, restored on the
//! first success); shutdown flushes every sink.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ceilo_plugin_api::SampleBatch;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use crate::pipeline::{Runtime, Sink, SourceRuntime};

/// The longest a failing poller is backed off, unless its interval is longer.
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// Backoff state of one poller in one source.
#[derive(Debug, Default, Clone)]
struct Backoff {
    failures: u32,
    next_allowed: Option<Instant>,
}

struct Slot {
    source: usize,
    poller: usize,
    backoff: Backoff,
}

/// Runs the agent until `shutdown` turns true, then flushes every sink.
pub async fn run(runtime: Runtime, mut shutdown: watch::Receiver<bool>) {
    let Runtime { sources, sinks } = runtime;
    let mut groups: BTreeMap<Duration, Vec<SourceRuntime>> = BTreeMap::new();
    for s in sources {
        groups.entry(s.interval).or_default().push(s);
    }
    let mut tasks = Vec::new();
    for (interval, group) in groups {
        let rx = shutdown.clone();
        tasks.push(tokio::spawn(run_group(interval, group, rx)));
    }
    let _ = shutdown.wait_for(|stop| *stop).await;
    for t in tasks {
        let _ = t.await;
    }
    tracing::info!(target: "ceilo::agent", "shutting down: flushing transformers and publishers");
    let _ = tokio::task::spawn_blocking(move || {
        for sink in &sinks {
            flush_sink(sink);
        }
    })
    .await;
}

async fn run_group(
    interval: Duration,
    sources: Vec<SourceRuntime>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut slots: Vec<Slot> = sources
        .iter()
        .enumerate()
        .flat_map(|(si, s)| {
            (0..s.pollers.len()).map(move |pi| Slot {
                source: si,
                poller: pi,
                backoff: Backoff::default(),
            })
        })
        .collect();
    loop {
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            _ = ticker.tick() => run_cycle(interval, &sources, &mut slots).await,
            changed = shutdown.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// One cycle of an interval group. Each poll's samples go to the sinks as soon as
/// that poll returns, so a slow poller delays nobody else; polls still running at the
/// end of the interval are abandoned for this cycle. The group's sinks are flushed
/// last.
async fn run_cycle(interval: Duration, sources: &[SourceRuntime], slots: &mut [Slot]) {
    let started = Instant::now();
    let deadline = started + interval;
    let mut polls = tokio::task::JoinSet::new();
    let mut pending = Vec::new();
    for (i, slot) in slots.iter().enumerate() {
        if slot.backoff.next_allowed.is_some_and(|t| started < t) {
            continue;
        }
        let source = &sources[slot.source];
        let poller = source.pollers[slot.poller].instance.clone();
        let resources = source.resources.clone();
        polls.spawn_blocking(move || {
            // A poll from an earlier cycle still holding the instance: skip this one.
            let result = poller.try_lock().ok().map(|mut p| p.poll(&resources));
            (i, result)
        });
        pending.push(i);
    }

    loop {
        let next = match tokio::time::timeout_at(deadline, polls.join_next()).await {
            Err(_) => break,   // the interval is over
            Ok(None) => break, // every poll returned
            Ok(Some(Err(join))) => {
                tracing::error!(target: "ceilo::agent", "a poll task failed: {join}");
                continue;
            }
            Ok(Some(Ok(done))) => done,
        };
        let (i, result) = next;
        pending.retain(|p| *p != i);
        let slot = &mut slots[i];
        let source = &sources[slot.source];
        let name = &source.pollers[slot.poller].name;
        match result {
            None => tracing::warn!(
                target: "ceilo::agent",
                source = %source.name,
                "poller `{name}` is still busy with an earlier poll: this cycle's poll is skipped"
            ),
            Some(Ok(batch)) => {
                if slot.backoff.failures > 0 {
                    tracing::info!(
                        target: "ceilo::agent",
                        source = %source.name,
                        "poller `{name}` recovered after {} failure(s): polling every {}s again",
                        slot.backoff.failures,
                        interval.as_secs()
                    );
                }
                slot.backoff = Backoff::default();
                crate::metrics::global().polled(batch.len() as u64);
                let selected: SampleBatch = batch
                    .into_iter()
                    .filter(|s| source.filter.allows(s.name()))
                    .collect();
                send_to_sinks(&source.sinks, selected).await;
            }
            Some(Err(e)) => {
                crate::metrics::global().plugin_error(name);
                slot.backoff.failures += 1;
                let delay = backoff_delay(interval, slot.backoff.failures);
                slot.backoff.next_allowed = Some(Instant::now() + delay);
                tracing::warn!(
                    target: "ceilo::agent",
                    source = %source.name,
                    failures = slot.backoff.failures,
                    "{e}; backing off: next poll of `{name}` in {}s (interval {}s)",
                    delay.as_secs(),
                    interval.as_secs()
                );
            }
        }
    }
    for i in pending {
        let slot = &slots[i];
        let source = &sources[slot.source];
        tracing::warn!(
            target: "ceilo::agent",
            source = %source.name,
            "poller `{}` did not return within its interval ({}s): this cycle's poll is skipped",
            source.pollers[slot.poller].name,
            interval.as_secs()
        );
    }
    // Abandoned polls finish in the background; their instances stay locked until then.
    polls.detach_all();

    let mut to_flush: Vec<Arc<Mutex<Sink>>> = Vec::new();
    for sink in sources.iter().flat_map(|s| &s.sinks) {
        if !to_flush.iter().any(|s| Arc::ptr_eq(s, sink)) {
            to_flush.push(sink.clone());
        }
    }
    let flushed = tokio::task::spawn_blocking(move || to_flush.iter().for_each(flush_sink)).await;
    if let Err(e) = flushed {
        tracing::error!(target: "ceilo::agent", "flushing sinks failed: {e}");
    }
    tracing::debug!(target: "ceilo::agent", "cycle ({}s) took {:?}", interval.as_secs(), started.elapsed());
}

async fn send_to_sinks(sinks: &[Arc<Mutex<Sink>>], batch: SampleBatch) {
    if batch.is_empty() {
        return;
    }
    let sinks = sinks.to_vec();
    let done = tokio::task::spawn_blocking(move || process_in_sinks(&sinks, batch)).await;
    if let Err(e) = done {
        tracing::error!(target: "ceilo::agent", "sink processing failed: {e}");
    }
}

/// Each sink gets the batch (the last one without a copy).
fn process_in_sinks(sinks: &[Arc<Mutex<Sink>>], batch: SampleBatch) {
    let Some((last, rest)) = sinks.split_last() else {
        return;
    };
    for sink in rest {
        process_in(sink, batch.clone());
    }
    process_in(last, batch);
}

fn process_in(sink: &Arc<Mutex<Sink>>, batch: SampleBatch) {
    match sink.lock() {
        Ok(mut s) => {
            s.process(batch);
        }
        Err(_) => {
            tracing::error!(target: "ceilo::agent", "a sink is unusable after an earlier failure")
        }
    }
}

fn flush_sink(sink: &Arc<Mutex<Sink>>) {
    if let Ok(mut s) = sink.lock() {
        s.flush();
    }
}

/// interval × 2^failures, capped at [`MAX_BACKOFF`] (or the interval, if longer).
fn backoff_delay(interval: Duration, failures: u32) -> Duration {
    let cap = MAX_BACKOFF.max(interval);
    let factor = 2u32.saturating_pow(failures.min(20));
    interval.saturating_mul(factor).min(cap)
}

/// Polls every source once, sends the samples through the sinks and flushes them,
/// on the calling thread (`ceilo poll --once`). Returns the poll errors, which the
/// caller reports.
pub fn run_once(runtime: &Runtime) -> Vec<String> {
    let mut errors = Vec::new();
    for source in &runtime.sources {
        let mut batch = SampleBatch::new();
        for slot in &source.pollers {
            let Ok(mut p) = slot.instance.lock() else {
                continue;
            };
            match p.poll(&source.resources) {
                Ok(b) => batch.extend(b.into_iter().filter(|s| source.filter.allows(s.name()))),
                Err(e) => errors.push(format!("source `{}`: {e}", source.name)),
            }
        }
        process_in_sinks(&source.sinks, batch);
    }
    for sink in &runtime.sinks {
        flush_sink(sink);
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        let ten = Duration::from_secs(10);
        let delays: Vec<u64> = (1..=8).map(|f| backoff_delay(ten, f).as_secs()).collect();
        assert_eq!(delays, [20, 40, 80, 160, 320, 600, 600, 600]);
        let hour = Duration::from_secs(3600);
        assert_eq!(
            backoff_delay(hour, 3),
            hour,
            "never shorter than the interval"
        );
    }
}
