//! Groups decoded messages into store transactions, then acknowledges them.
//!
//! A transaction is committed when it holds `max_batch_readings` readings, when its first
//! message has waited `max_delay`, or at once when it holds an urgent frame (call, fall,
//! fire alarm) and nothing else is queued. A failed commit is retried with backoff, without
//! acknowledging anything, until it succeeds: nothing received is dropped, and while the
//! store is down the broker holds the backlog.

// The commit loop is the ingest driver: it owns the real clock for its batch deadline.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::decode::DecodedMessage;
use super::{FrameSink, IngestError, IngestStats};
use crate::store::{IngestBatch, SharedStore};

/// Acknowledges a message to whoever delivered it, once it is durable.
#[async_trait]
pub trait Acknowledger: Send + Sync + 'static {
    type Token: Send + 'static;
    async fn ack(&self, token: Self::Token);
}

/// One decoded message and what acknowledges it.
pub struct Inbound<T> {
    pub decoded: DecodedMessage,
    pub token: T,
}

/// Bounds of one transaction.
#[derive(Debug, Clone, Copy)]
pub struct WriterSettings {
    pub max_batch_readings: usize,
    pub max_delay: Duration,
    pub quarantine_bound: u64,
}

/// Test hook: when it returns true for a committed batch, the writer stops right after that
/// commit, before acknowledging it, as if the process had been killed there.
pub type CrashAfterCommit = Arc<dyn Fn(&IngestBatch) -> bool + Send + Sync>;

const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Runs until `inbound` closes (then flushes what it holds) or a crash is injected.
#[allow(clippy::too_many_arguments)]
pub async fn run_writer<A: Acknowledger>(
    mut inbound: mpsc::Receiver<Inbound<A::Token>>,
    store: SharedStore,
    acker: Arc<A>,
    sink: Arc<dyn FrameSink>,
    stats: Arc<IngestStats>,
    settings: WriterSettings,
    crash_after_commit: Option<CrashAfterCommit>,
) -> Result<(), IngestError> {
    loop {
        let Some(first) = inbound.recv().await else {
            return Ok(());
        };
        let deadline = Instant::now() + settings.max_delay;
        let mut readings = first.decoded.frames.len();
        let mut urgent = first.decoded.frames.iter().any(|f| f.frame.is_urgent());
        let mut pending = vec![first];
        let mut closed = false;
        while readings < settings.max_batch_readings {
            let next = match inbound.try_recv() {
                Ok(m) => Some(m),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) if urgent => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline, inbound.recv()).await {
                        Ok(m) => m,
                        Err(_elapsed) => break,
                    }
                }
            };
            let Some(m) = next else {
                closed = true;
                break;
            };
            readings += m.decoded.frames.len();
            urgent |= m.decoded.frames.iter().any(|f| f.frame.is_urgent());
            pending.push(m);
        }
        flush(
            pending,
            &store,
            &*acker,
            &*sink,
            &stats,
            settings,
            crash_after_commit.as_ref(),
        )
        .await?;
        if closed {
            return Ok(());
        }
    }
}

async fn flush<A: Acknowledger>(
    pending: Vec<Inbound<A::Token>>,
    store: &SharedStore,
    acker: &A,
    sink: &dyn FrameSink,
    stats: &IngestStats,
    settings: WriterSettings,
    crash_after_commit: Option<&CrashAfterCommit>,
) -> Result<(), IngestError> {
    let mut batch = IngestBatch {
        quarantine_bound: settings.quarantine_bound,
        ..Default::default()
    };
    let mut tokens = Vec::with_capacity(pending.len());
    for m in pending {
        batch.frames.extend(m.decoded.frames);
        batch.quarantine.extend(m.decoded.quarantine);
        tokens.push(m.token);
    }
    let batch = Arc::new(batch);
    let mut delay = FIRST_RETRY;
    let started = Instant::now();
    let report = loop {
        match store.commit(Arc::clone(&batch)).await {
            Ok(report) => break report,
            Err(e) => {
                IngestStats::add(&stats.commit_errors, 1);
                metrics::counter!("vigil_ingest_db_errors_total", "code" => e.code()).increment(1);
                tracing::error!(error = %e, retry_in_ms = delay.as_millis() as u64,
                    frames = batch.frames.len(), "commit failed; retrying, nothing acknowledged");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_RETRY);
            }
        }
    };
    metrics::histogram!("vigil_ingest_commit_seconds").record(started.elapsed().as_secs_f64());
    let stored = report.stored() as u64;
    let duplicates = report.duplicates() as u64;
    IngestStats::add(&stats.commits, 1);
    IngestStats::add(&stats.frames_stored, stored);
    IngestStats::add(&stats.duplicates, duplicates);
    IngestStats::add(&stats.quarantined, batch.quarantine.len() as u64);
    metrics::counter!("vigil_ingest_readings_stored_total").increment(stored);
    metrics::counter!("vigil_ingest_dedup_hits_total").increment(duplicates);
    if crash_after_commit.is_some_and(|crash| crash(&batch)) {
        return Err(IngestError::CrashedAfterCommit);
    }
    // The store has let go of its handle once the commit returned.
    let batch = Arc::try_unwrap(batch).unwrap_or_else(|shared| (*shared).clone());
    let new_frames: Vec<_> = batch
        .frames
        .into_iter()
        .zip(&report.admissions)
        .filter(|(_, a)| a.is_stored())
        .map(|(f, _)| f)
        .collect();
    if !new_frames.is_empty() {
        sink.committed(new_frames).await;
    }
    let n = tokens.len() as u64;
    for token in tokens {
        acker.ack(token).await;
    }
    stats.acked.send_modify(|v| *v += n);
    Ok(())
}
