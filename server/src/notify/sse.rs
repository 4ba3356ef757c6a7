//! The live event feed behind Server-Sent Events: numbered events, filtered per user by the
//! sites they may see, with a bounded replay buffer so a browser that reconnects with
//! `Last-Event-ID` misses nothing (or is told to reload when it is too far behind).

use std::collections::{BTreeSet, VecDeque};

use crate::alerts::audit::AuditRecord;
use crate::alerts::lifecycle::Alert;
use crate::ids::SiteId;

/// The sites a user may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteScope {
    /// District-wide roles (supervisor, admin).
    All,
    Sites(BTreeSet<SiteId>),
}

impl SiteScope {
    pub fn allows(&self, site: &SiteId) -> bool {
        match self {
            Self::All => true,
            Self::Sites(s) => s.contains(site),
        }
    }
}

/// The SSE `event:` name, which the console listens for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveEventKind {
    /// An alert's current state (raised, repeated, cleared, acknowledged, closed…).
    Alert,
    /// One audit record.
    Audit,
}

impl LiveEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alert => "alert",
            Self::Audit => "audit",
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LiveEvent {
    pub id: u64,
    pub site: SiteId,
    pub kind: LiveEventKind,
    pub data: serde_json::Value,
}

impl LiveEvent {
    /// The event as an SSE frame (`id`, `event`, `data`, blank line).
    pub fn to_sse_frame(&self) -> String {
        // serde_json writes no raw newlines, so the data is a single `data:` line.
        format!(
            "id: {}\nevent: {}\ndata: {}\n\n",
            self.id,
            self.kind.as_str(),
            self.data
        )
    }
}

/// The alert as the console shows it, with what it needs to show "nobody acknowledged".
#[derive(serde::Serialize)]
struct AlertView<'a> {
    #[serde(flatten)]
    alert: &'a Alert,
    closed_unacknowledged: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("events after {requested} are no longer buffered (oldest kept is {oldest}): reload")]
pub struct ReplayGap {
    pub requested: u64,
    pub oldest: u64,
}

#[derive(Debug)]
pub struct LiveFeed {
    capacity: usize,
    next_id: u64,
    buffer: VecDeque<LiveEvent>,
}

impl LiveFeed {
    /// Keeps the last `capacity` events for replay (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            next_id: 1,
            buffer: VecDeque::new(),
        }
    }

    fn push(&mut self, site: SiteId, kind: LiveEventKind, data: serde_json::Value) -> &LiveEvent {
        if self.buffer.len() == self.capacity {
            self.buffer.pop_front();
        }
        let id = self.next_id;
        self.next_id += 1;
        self.buffer.push_back(LiveEvent {
            id,
            site,
            kind,
            data,
        });
        &self.buffer[self.buffer.len() - 1]
    }

    pub fn publish_alert(&mut self, alert: &Alert) -> &LiveEvent {
        let view = AlertView {
            alert,
            closed_unacknowledged: alert.closed_unacknowledged(),
        };
        let data = serde_json::to_value(view).unwrap_or_else(|e| {
            serde_json::json!({ "error": format!("alert {} could not be encoded: {e}", alert.id) })
        });
        self.push(alert.site.clone(), LiveEventKind::Alert, data)
    }

    pub fn publish_audit(&mut self, record: &AuditRecord) -> &LiveEvent {
        let data = serde_json::to_value(record).unwrap_or_else(
            |e| serde_json::json!({ "error": format!("audit record could not be encoded: {e}") }),
        );
        self.push(record.site.clone(), LiveEventKind::Audit, data)
    }

    /// The id of the newest event published (0 before the first).
    pub fn last_id(&self) -> u64 {
        self.next_id - 1
    }

    /// The id of the oldest event still buffered (the next id while none is).
    pub fn oldest_id(&self) -> u64 {
        self.buffer.front().map_or(self.next_id, |e| e.id)
    }

    /// The events after `last_event_id` that `scope` may see, oldest first.
    pub fn replay_since(
        &self,
        last_event_id: u64,
        scope: &SiteScope,
    ) -> Result<Vec<&LiveEvent>, ReplayGap> {
        if let Some(oldest) = self.buffer.front().map(|e| e.id) {
            if last_event_id + 1 < oldest {
                return Err(ReplayGap {
                    requested: last_event_id,
                    oldest,
                });
            }
        }
        Ok(self
            .buffer
            .iter()
            .filter(|e| e.id > last_event_id && scope.allows(&e.site))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::lifecycle::{AlertId, AlertState};
    use crate::alerts::{AlertKind, Severity, Subject, Timestamp};
    use crate::detection::action::{details, AlertKey};

    fn alert(site: &str, id: u64) -> Alert {
        Alert {
            id: AlertId(id),
            site: SiteId::new(site).unwrap(),
            key: AlertKey::new(
                Subject::Site(SiteId::new(site).unwrap()),
                AlertKind::GatewayOffline,
            ),
            severity: Severity::Major,
            state: AlertState::Resolved,
            opened_at: Timestamp(0),
            last_seen_at: Timestamp(0),
            repeat_count: 0,
            origin: None,
            details: details([]),
            cleared: None,
            acknowledged: None,
            dispatched_to: vec![],
            disposition: None,
            closed_at: Some(Timestamp(5)),
            closed_by: None,
        }
    }

    fn scope(sites: &[&str]) -> SiteScope {
        SiteScope::Sites(sites.iter().map(|s| SiteId::new(s).unwrap()).collect())
    }

    #[test]
    fn a_user_sees_only_the_sites_in_their_scope() {
        let mut feed = LiveFeed::new(16);
        feed.publish_alert(&alert("home-1", 1));
        feed.publish_alert(&alert("home-2", 2));
        let mine: Vec<u64> = feed
            .replay_since(0, &scope(&["home-2"]))
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(mine, vec![2]);
        assert_eq!(feed.replay_since(0, &SiteScope::All).unwrap().len(), 2);
    }

    #[test]
    fn the_frame_is_one_sse_event_showing_nobody_acknowledged() {
        let mut feed = LiveFeed::new(4);
        let frame = feed.publish_alert(&alert("home-1", 9)).to_sse_frame();
        assert!(frame.starts_with("id: 1\nevent: alert\ndata: {"), "{frame}");
        assert!(frame.ends_with("}\n\n"));
        assert_eq!(frame.matches('\n').count(), 4);
        assert!(frame.contains(r#""closed_unacknowledged":true"#), "{frame}");
        assert!(frame.contains(r#""acknowledged":null"#));
    }

    #[test]
    fn a_reconnect_resumes_after_its_last_event_or_is_told_to_reload() {
        let mut feed = LiveFeed::new(3);
        for i in 1..=5 {
            feed.publish_alert(&alert("home-1", i));
        }
        // Buffer holds 3, 4, 5.
        let ids: Vec<u64> = feed
            .replay_since(3, &SiteScope::All)
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, vec![4, 5]);
        assert_eq!(feed.replay_since(2, &SiteScope::All).unwrap().len(), 3);
        assert_eq!(
            feed.replay_since(1, &SiteScope::All),
            Err(ReplayGap {
                requested: 1,
                oldest: 3
            })
        );
        assert!(feed.replay_since(5, &SiteScope::All).unwrap().is_empty());
    }
}
