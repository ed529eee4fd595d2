//! The polling agent: one schedule per distinct interval. Every tick starts a cycle
//! of its own, so a cycle that runs long never delays the next one: each cycle polls
//! every poller its sources select (off the async threads), hands each poll's samples
//! to the sinks as soon as that poll returns (each poll's processing on its own, so a
//! large batch delays nobody else's), and flushes the sinks when its polls are done or
//! their deadline has passed. A poll has a deadline (default: the interval) and a
//! sample cap; a poll still running when the next is due is skipped, never queued; a
//! poller that keeps failing is backed off (interval doubled per failure, capped,
//! restored on the first success); shutdown flushes every sink.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ceilo_plugin_api::SampleBatch;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use crate::loader::PollLimits;
use crate::pipeline::{Runtime, Sink, SourceRuntime};

/// The longest a failing poller is backed off, unless its interval is longer.
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// How long past a poll's deadline the cycle still waits for it (an isolated poller
/// is killed at its deadline; its error arrives just after).
const DEADLINE_GRACE: Duration = Duration::from_millis(500);

/// The agent's bounds.
#[derive(Debug, Clone, Copy)]
pub struct AgentSettings {
    /// The longest a poll may take (none: its source's interval).
    pub poll_timeout: Option<Duration>,
    /// Samples kept from one poll.
    pub max_samples_per_poll: usize,
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            poll_timeout: None,
            max_samples_per_poll: 100_000,
        }
    }
}

/// Backoff state of one poller in one source.
#[derive(Debug, Default, Clone)]
struct Backoff {
    failures: u32,
    next_allowed: Option<Instant>,
    /// Consecutive cycles skipped because an earlier poll still runs.
    busy: u32,
}

struct Slot {
    source: usize,
    poller: usize,
    backoff: Mutex<Backoff>,
}

/// A new runtime for a running agent, taken at a cycle boundary: the cycles under
/// way finish on the old one, the schedule goes on (no cycle is lost or run early),
/// and the old sinks the new runtime does not keep are flushed. `applied` hears when.
pub struct Swap {
    /// The new runtime.
    pub runtime: Runtime,
    /// Told once the new runtime runs.
    pub applied: tokio::sync::oneshot::Sender<()>,
}

/// Runs the agent until `shutdown` turns true, then flushes every sink.
pub async fn run(runtime: Runtime, settings: AgentSettings, shutdown: watch::Receiver<bool>) {
    run_live(runtime, settings, shutdown, None).await;
}

/// As [`run`], taking new runtimes from `swaps` (live reloads).
pub async fn run_live(
    runtime: Runtime,
    settings: AgentSettings,
    mut shutdown: watch::Receiver<bool>,
    mut swaps: Option<tokio::sync::mpsc::Receiver<Swap>>,
) {
    let mut runtime = runtime;
    // When each interval's next cycle is due, carried across swaps.
    let mut schedule: BTreeMap<Duration, Instant> = BTreeMap::new();
    loop {
        let Runtime { sources, sinks, .. } = runtime;
        let mut groups: BTreeMap<Duration, Vec<SourceRuntime>> = BTreeMap::new();
        for s in sources {
            groups.entry(s.interval).or_default().push(s);
        }
        let (retire, retired) = watch::channel(false);
        let mut tasks = Vec::new();
        for (interval, group) in groups {
            let first = schedule.get(&interval).copied();
            tasks.push(tokio::spawn(run_group(
                interval,
                group,
                settings,
                first,
                shutdown.clone(),
                retired.clone(),
            )));
        }
        let next = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => None,
            Some(swap) = async {
                match swaps.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => Some(swap),
        };
        let _ = retire.send(true);
        schedule.clear();
        for t in tasks {
            if let Ok((interval, due)) = t.await {
                schedule.insert(interval, due);
            }
        }
        let Some(swap) = next else {
            tracing::info!(target: "ceilo::agent", "shutting down: flushing transformers and publishers");
            let _ = tokio::task::spawn_blocking(move || {
                for sink in &sinks {
                    flush_sink(sink);
                }
            })
            .await;
            return;
        };
        // Sinks the new runtime does not keep release what they hold into their
        // publishers (some shared with the new sinks) before they go.
        let gone: Vec<Arc<Mutex<Sink>>> = sinks
            .into_iter()
            .filter(|s| !swap.runtime.sinks.iter().any(|n| Arc::ptr_eq(n, s)))
            .collect();
        let _ = tokio::task::spawn_blocking(move || gone.iter().for_each(flush_sink)).await;
        // The export forgets pollers the new runtime no longer polls.
        let polled: Vec<(String, String)> = swap
            .runtime
            .sources
            .iter()
            .flat_map(|s| s.pollers.iter().map(|p| (s.name.clone(), p.name.clone())))
            .collect();
        crate::services::exporter::retain(&polled);
        runtime = swap.runtime;
        let _ = swap.applied.send(());
    }
}

/// One interval's schedule, until shutdown or until retired by a swap; returns when
/// its next cycle was due.
async fn run_group(
    interval: Duration,
    sources: Vec<SourceRuntime>,
    settings: AgentSettings,
    first: Option<Instant>,
    mut shutdown: watch::Receiver<bool>,
    mut retired: watch::Receiver<bool>,
) -> (Duration, Instant) {
    let start = first.unwrap_or_else(Instant::now);
    let mut ticker = tokio::time::interval_at(start, interval);
    let mut due = start;
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let slots: Arc<Vec<Slot>> = Arc::new(
        sources
            .iter()
            .enumerate()
            .flat_map(|(si, s)| {
                (0..s.pollers.len()).map(move |pi| Slot {
                    source: si,
                    poller: pi,
                    backoff: Mutex::new(Backoff::default()),
                })
            })
            .collect(),
    );
    let sources = Arc::new(sources);
    let flushing = Arc::new(AtomicBool::new(false));
    let mut cycles = JoinSet::new();
    loop {
        if *shutdown.borrow() || *retired.borrow() {
            break;
        }
        tokio::select! {
            at = ticker.tick() => {
                due = at + interval;
                cycles.spawn(run_cycle(
                    interval,
                    sources.clone(),
                    slots.clone(),
                    settings,
                    flushing.clone(),
                    shutdown.clone(),
                ));
                while cycles.try_join_next().is_some() {}
            }
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            changed = retired.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    // Cycles abandon their pending polls at shutdown and finish the processing they
    // started; the final flush comes after. Retired, they finish as usual.
    while cycles.join_next().await.is_some() {}
    (interval, due)
}

/// What one poll's task gives back: the slot, and the poll's result (none: the
/// poller was still busy with an earlier poll).
type PollDone = (
    usize,
    Option<Result<crate::loader::PollOutput, crate::loader::PluginCallError>>,
);

/// One cycle of an interval group.
async fn run_cycle(
    interval: Duration,
    sources: Arc<Vec<SourceRuntime>>,
    slots: Arc<Vec<Slot>>,
    settings: AgentSettings,
    flushing: Arc<AtomicBool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let started = Instant::now();
    let poll_deadline = settings.poll_timeout.unwrap_or(interval);
    let wait_until = started + poll_deadline + DEADLINE_GRACE;
    let limits = PollLimits {
        deadline: Some(poll_deadline),
        max_samples: settings.max_samples_per_poll,
    };
    let mut polls: JoinSet<PollDone> = JoinSet::new();
    let mut pending = Vec::new();
    for (i, slot) in slots.iter().enumerate() {
        let backed_off = slot
            .backoff
            .lock()
            .map(|b| b.next_allowed.is_some_and(|t| started < t))
            .unwrap_or(false);
        if backed_off {
            continue;
        }
        let source = &sources[slot.source];
        let poller = source.pollers[slot.poller].instance.clone();
        let resources = source.resources.clone();
        polls.spawn_blocking(move || {
            // A poll from an earlier cycle still holding the instance: skip this one.
            let result = poller
                .try_lock()
                .ok()
                .map(|mut p| p.poll_within(&resources, &limits));
            (i, result)
        });
        pending.push(i);
    }

    let mut processing: JoinSet<(usize, usize, Duration)> = JoinSet::new();
    let mut aborted = false;
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout_at(wait_until, polls.join_next()) => next,
            _ = shutdown.changed() => {
                aborted = true;
                break;
            }
        };
        let (i, result) = match next {
            Err(_) => break,   // past the deadline
            Ok(None) => break, // every poll returned
            Ok(Some(Err(join))) => {
                tracing::error!(target: "ceilo::agent", "a poll task failed: {join}");
                continue;
            }
            Ok(Some(Ok(done))) => done,
        };
        pending.retain(|p| *p != i);
        if let Some(batch) = poll_result(&sources, &slots[i], interval, result) {
            let source = &sources[slots[i].source];
            let (sinks, routes) = (source.sinks.clone(), source.routes.clone());
            let n = batch.len();
            processing.spawn_blocking(move || {
                let t = std::time::Instant::now();
                SourceRuntime::deliver(
                    &sinks,
                    routes.as_deref().map(Vec::as_slice),
                    batch,
                    process_in_sinks,
                );
                (i, n, t.elapsed())
            });
        }
    }
    for &i in &pending {
        let slot = &slots[i];
        let source = &sources[slot.source];
        crate::metrics::global().poll_overrun();
        tracing::warn!(
            target: "ceilo::agent",
            source = %source.name,
            "poller `{}` did not return within its deadline ({:.1}s): this cycle goes on without it",
            source.pollers[slot.poller].name,
            poll_deadline.as_secs_f64()
        );
    }
    // Abandoned polls finish in the background; their instances stay locked until then.
    polls.detach_all();

    let mut slowest: Option<(usize, usize, Duration)> = None;
    while let Some(done) = processing.join_next().await {
        match done {
            Ok(d) if slowest.is_none_or(|s| d.2 > s.2) => slowest = Some(d),
            Ok(_) => {}
            Err(e) => tracing::error!(target: "ceilo::agent", "sink processing failed: {e}"),
        }
    }
    if aborted || *shutdown.borrow() {
        return;
    }
    let took = started.elapsed();
    if took > interval {
        let cause = match (pending.first(), slowest) {
            (Some(&i), _) => format!(
                "poller `{}` did not return",
                sources[slots[i].source].pollers[slots[i].poller].name
            ),
            (None, Some((i, n, d))) => format!(
                "the sinks took {:.1}s over the {n} samples of poller `{}`",
                d.as_secs_f64(),
                sources[slots[i].source].pollers[slots[i].poller].name
            ),
            (None, None) => "flushing the sinks".into(),
        };
        tracing::warn!(
            target: "ceilo::agent",
            "a {}s cycle took {:.1}s: {cause} (the next cycles start on time regardless)",
            interval.as_secs(),
            took.as_secs_f64()
        );
    }

    if flushing.swap(true, Ordering::AcqRel) {
        tracing::warn!(target: "ceilo::agent", "the previous cycle's flush is still running: this cycle's flush is skipped");
        return;
    }
    let mut to_flush: Vec<Arc<Mutex<Sink>>> = Vec::new();
    for sink in sources.iter().flat_map(|s| &s.sinks) {
        if !to_flush.iter().any(|s| Arc::ptr_eq(s, sink)) {
            to_flush.push(sink.clone());
        }
    }
    let flag = flushing.clone();
    let flushed = tokio::task::spawn_blocking(move || {
        to_flush.iter().for_each(flush_sink);
        flag.store(false, Ordering::Release);
    })
    .await;
    if let Err(e) = flushed {
        flushing.store(false, Ordering::Release);
        tracing::error!(target: "ceilo::agent", "flushing sinks failed: {e}");
    }
    tracing::debug!(target: "ceilo::agent", "cycle ({}s) took {:?}", interval.as_secs(), started.elapsed());
    // Idle until the next cycle: the code this one ran need not stay mapped.
    let _ = tokio::task::spawn_blocking(crate::loader::release_after_work).await;
}

/// Books one poll's result (backoff, counters, logs) and returns the samples its
/// source's filter lets through.
fn poll_result(
    sources: &[SourceRuntime],
    slot: &Slot,
    interval: Duration,
    result: Option<Result<crate::loader::PollOutput, crate::loader::PluginCallError>>,
) -> Option<SampleBatch> {
    let source = &sources[slot.source];
    let name = &source.pollers[slot.poller].name;
    let Ok(mut backoff) = slot.backoff.lock() else {
        return None;
    };
    match result {
        None => {
            backoff.busy += 1;
            // Once, then every 60th skip: a poller stuck for good must not flood the log.
            if backoff.busy % 60 == 1 {
                tracing::warn!(
                    target: "ceilo::agent",
                    source = %source.name,
                    skipped = backoff.busy,
                    "poller `{name}` is still busy with an earlier poll: this cycle's poll is skipped"
                );
            }
            None
        }
        Some(Ok(out)) => {
            if backoff.failures > 0 {
                tracing::info!(
                    target: "ceilo::agent",
                    source = %source.name,
                    "poller `{name}` recovered after {} failure(s): polling every {}s again",
                    backoff.failures,
                    interval.as_secs()
                );
            }
            *backoff = Backoff::default();
            let metrics = crate::metrics::global();
            metrics.polled(out.samples.len() as u64 + out.cut);
            if out.cut > 0 {
                metrics.samples_cut(out.cut);
                tracing::warn!(
                    target: "ceilo::agent",
                    source = %source.name,
                    cut = out.cut,
                    "poller `{name}` returned {} samples in one poll: kept {}, cut {} (--max-samples-per-poll)",
                    out.samples.len() as u64 + out.cut,
                    out.samples.len(),
                    out.cut
                );
            }
            let mut selected = out.samples;
            selected.retain(source.filter.sample_predicate());
            crate::services::exporter::record(&source.name, name, &selected);
            (!selected.is_empty()).then_some(selected)
        }
        Some(Err(e)) => {
            crate::metrics::global().plugin_error(name);
            backoff.busy = 0;
            backoff.failures += 1;
            let delay = backoff_delay(interval, backoff.failures);
            backoff.next_allowed = Some(Instant::now() + delay);
            tracing::warn!(
                target: "ceilo::agent",
                source = %source.name,
                failures = backoff.failures,
                "{e}; backing off: next poll of `{name}` in {}s (interval {}s)",
                delay.as_secs(),
                interval.as_secs()
            );
            None
        }
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
                Ok(mut b) => {
                    b.retain(source.filter.sample_predicate());
                    if batch.is_empty() {
                        batch = b;
                    } else {
                        batch.extend(b);
                    }
                }
                Err(e) => errors.push(format!("source `{}`: {e}", source.name)),
            }
        }
        SourceRuntime::deliver(
            &source.sinks,
            source.routes.as_deref().map(Vec::as_slice),
            batch,
            process_in_sinks,
        );
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
