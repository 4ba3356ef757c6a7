//! The live event hub: the driver around [`LiveFeed`] that the alert engine publishes to and
//! every Server-Sent Events stream subscribes to.
//!
//! Design: the feed (numbering and the replay buffer) sits behind a mutex held only to push
//! or copy events; live delivery goes through a bounded `tokio::sync::broadcast` channel of
//! the same capacity. Publishing never waits for a subscriber: a subscriber that stops reading
//! falls behind in the ring buffer (memory stays bounded by the capacity, whatever the number
//! of subscribers) and, when it reads again, either catches up from the replay buffer or is
//! told to reload. Subscribing takes the mutex, so no event falls between the replay and the
//! live part of a stream.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{broadcast, watch};

use super::sse::{LiveEvent, LiveFeed, ReplayGap, SiteScope};
use crate::alerts::audit::AuditRecord;
use crate::alerts::lifecycle::Alert;

/// Default number of events kept for replay (`[notify] sse_buffer`).
pub const DEFAULT_CAPACITY: usize = 4096;

/// One thing to send to a subscriber.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveMessage {
    /// An event the subscriber may see.
    Event(Arc<LiveEvent>),
    /// Events the subscriber missed are gone: it must reload its state. The stream goes on
    /// with live events; `resume_after` is the id to resume from on a later reconnect.
    Reload { gap: ReplayGap, resume_after: u64 },
}

struct Hub {
    feed: Mutex<LiveFeed>,
    live: broadcast::Sender<Arc<LiveEvent>>,
    closed: watch::Sender<bool>,
}

/// The live feed shared by the publishers (the alert engine) and the SSE endpoint. Cheap to
/// clone: every clone is the same hub.
#[derive(Clone)]
pub struct LiveHub(Arc<Hub>);

impl std::fmt::Debug for LiveHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveHub")
            .field("subscribers", &self.subscribers())
            .finish_non_exhaustive()
    }
}

impl LiveHub {
    /// Keeps the last `capacity` events for replay (at least one); a subscriber may fall
    /// that many events behind before it has to reload.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let (live, _) = broadcast::channel(capacity);
        let (closed, _) = watch::channel(false);
        Self(Arc::new(Hub {
            feed: Mutex::new(LiveFeed::new(capacity)),
            live,
            closed,
        }))
    }

    fn feed(&self) -> MutexGuard<'_, LiveFeed> {
        // A panic while holding the lock leaves the feed consistent (push is one step), so a
        // poisoned lock is used as it is rather than taking every stream down.
        self.0.feed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes an alert's current state to every subscriber who may see its site.
    pub fn publish_alert(&self, alert: &Alert) {
        let mut feed = self.feed();
        let event = Arc::new(feed.publish_alert(alert).clone());
        self.send(event);
    }

    /// Publishes one audit record.
    pub fn publish_audit(&self, record: &AuditRecord) {
        let mut feed = self.feed();
        let event = Arc::new(feed.publish_audit(record).clone());
        self.send(event);
    }

    /// Called with the feed locked, so the broadcast order is the numbering order.
    fn send(&self, event: Arc<LiveEvent>) {
        metrics::counter!("vigil_live_events_total", "kind" => event.kind.as_str()).increment(1);
        // No receiver is not an error: nobody is watching right now.
        let _ = self.0.live.send(event);
    }

    /// Open subscriptions.
    pub fn subscribers(&self) -> usize {
        self.0.live.receiver_count()
    }

    /// Ends every subscription (their streams return `None`), for a server that stops:
    /// an open SSE response would otherwise hold the graceful shutdown forever.
    pub fn close(&self) {
        self.0.closed.send_replace(true);
    }

    /// A subscription for a user who sees `scope`. With `last_event_id` (the SSE
    /// `Last-Event-ID` of a reconnect) the events after it come first, from the replay buffer;
    /// without it the subscription starts with the next event published.
    pub fn subscribe(&self, scope: SiteScope, last_event_id: Option<u64>) -> LiveSubscription {
        let feed = self.feed();
        let mut sub = LiveSubscription {
            hub: self.clone(),
            scope,
            live: self.0.live.subscribe(),
            closed: self.0.closed.subscribe(),
            pending: VecDeque::new(),
            last_id: feed.last_id(),
        };
        if let Some(after) = last_event_id {
            sub.catch_up(&feed, after);
        }
        drop(feed);
        sub
    }
}

/// One subscriber's stream of [`LiveMessage`]s: replay first, then live events, filtered by
/// its scope. Holds no more than the replay it was created with plus what the bounded
/// broadcast buffer holds.
pub struct LiveSubscription {
    hub: LiveHub,
    scope: SiteScope,
    live: broadcast::Receiver<Arc<LiveEvent>>,
    closed: watch::Receiver<bool>,
    pending: VecDeque<LiveMessage>,
    /// The newest event id this subscriber has been given or skipped.
    last_id: u64,
}

impl LiveSubscription {
    /// Queues what the feed still holds after `after` (or a reload) and moves `last_id` to
    /// the newest event of the feed. Called with the feed locked and a fresh receiver.
    fn catch_up(&mut self, feed: &LiveFeed, after: u64) {
        let newest = feed.last_id();
        let replay = if after > newest {
            // An id this feed never gave out: the server restarted (ids start at 1 again)
            // and whatever the client holds may be stale.
            Err(ReplayGap {
                requested: after,
                oldest: feed.oldest_id(),
            })
        } else {
            feed.replay_since(after, &self.scope)
        };
        match replay {
            Ok(events) => self.pending.extend(
                events
                    .into_iter()
                    .map(|e| LiveMessage::Event(Arc::new(e.clone()))),
            ),
            Err(gap) => {
                metrics::counter!("vigil_live_reloads_total").increment(1);
                self.pending.push_back(LiveMessage::Reload {
                    gap,
                    resume_after: newest,
                });
            }
        }
        self.last_id = newest;
    }

    /// The next message, waiting for one; `None` once the hub is closed.
    pub async fn next(&mut self) -> Option<LiveMessage> {
        loop {
            if *self.closed.borrow() {
                return None;
            }
            if let Some(m) = self.pending.pop_front() {
                return Some(m);
            }
            let received = tokio::select! {
                biased;
                changed = self.closed.changed() => {
                    if changed.is_err() {
                        // The hub is gone.
                        return None;
                    }
                    continue;
                }
                r = self.live.recv() => r,
            };
            match received {
                Ok(event) => {
                    if event.id <= self.last_id {
                        // Already replayed.
                        continue;
                    }
                    self.last_id = event.id;
                    if self.scope.allows(&event.site) {
                        return Some(LiveMessage::Event(event));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Fell behind the broadcast buffer: start over from the replay buffer,
                    // with a fresh receiver taken under the lock.
                    let hub = self.hub.clone();
                    let feed = hub.feed();
                    self.live = hub.0.live.subscribe();
                    let after = self.last_id;
                    self.catch_up(&feed, after);
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

#[cfg(test)]
#[path = "live_tests.rs"]
mod tests;
