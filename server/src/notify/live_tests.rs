use std::time::Duration;

use super::*;
use crate::alerts::lifecycle::{AlertId, AlertState};
use crate::alerts::{AlertKind, Severity, Subject, Timestamp};
use crate::detection::action::{details, AlertKey};
use crate::ids::SiteId;

fn alert(site: &str, id: u64) -> Alert {
    Alert {
        id: AlertId(id),
        site: SiteId::new(site).unwrap(),
        key: AlertKey::new(
            Subject::Site(SiteId::new(site).unwrap()),
            AlertKind::GatewayOffline,
        ),
        severity: Severity::Major,
        state: AlertState::Open,
        opened_at: Timestamp(0),
        last_seen_at: Timestamp(0),
        repeat_count: 0,
        origin: None,
        details: details([]),
        cleared: None,
        acknowledged: None,
        dispatched_to: vec![],
        disposition: None,
        closed_at: None,
        closed_by: None,
    }
}

fn scope(sites: &[&str]) -> SiteScope {
    SiteScope::Sites(sites.iter().map(|s| SiteId::new(s).unwrap()).collect())
}

/// The next message, or a failure if none comes within a generous guard.
async fn next(sub: &mut LiveSubscription) -> LiveMessage {
    tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("a message in time")
        .expect("the subscription is open")
}

fn event_id(m: &LiveMessage) -> u64 {
    match m {
        LiveMessage::Event(e) => e.id,
        LiveMessage::Reload { .. } => panic!("expected an event, got {m:?}"),
    }
}

/// Whether the subscription has nothing to give right now.
async fn is_idle(sub: &mut LiveSubscription) -> bool {
    tokio::time::timeout(Duration::from_millis(50), sub.next())
        .await
        .is_err()
}

#[tokio::test]
async fn a_subscriber_gets_live_events_in_order_with_their_ids() {
    let hub = LiveHub::new(16);
    hub.publish_alert(&alert("home-1", 1)); // before the subscription: not replayed
    let mut sub = hub.subscribe(SiteScope::All, None);
    hub.publish_alert(&alert("home-1", 2));
    hub.publish_alert(&alert("home-2", 3));
    assert_eq!(event_id(&next(&mut sub).await), 2);
    let m = next(&mut sub).await;
    assert_eq!(event_id(&m), 3);
    let LiveMessage::Event(e) = m else {
        unreachable!()
    };
    assert_eq!(e.data["id"], 3);
    assert!(is_idle(&mut sub).await);
}

#[tokio::test]
async fn a_reconnect_with_last_event_id_replays_what_was_missed_then_goes_live() {
    let hub = LiveHub::new(16);
    for i in 1..=5 {
        hub.publish_alert(&alert("home-1", i));
    }
    let mut sub = hub.subscribe(SiteScope::All, Some(3));
    assert_eq!(event_id(&next(&mut sub).await), 4);
    assert_eq!(event_id(&next(&mut sub).await), 5);
    hub.publish_alert(&alert("home-1", 6));
    assert_eq!(event_id(&next(&mut sub).await), 6);
    assert!(is_idle(&mut sub).await, "nothing is delivered twice");
}

#[tokio::test]
async fn a_user_never_sees_events_of_sites_outside_their_scope() {
    let hub = LiveHub::new(16);
    hub.publish_alert(&alert("home-b", 1));
    let mut sub = hub.subscribe(scope(&["home-a"]), Some(0));
    hub.publish_alert(&alert("home-b", 2));
    hub.publish_alert(&alert("home-a", 3));
    hub.publish_alert(&alert("home-b", 4));
    assert_eq!(event_id(&next(&mut sub).await), 3);
    assert!(is_idle(&mut sub).await);
}

#[tokio::test]
async fn a_client_too_far_behind_is_told_to_reload_and_then_gets_live_events() {
    let hub = LiveHub::new(3);
    for i in 1..=6 {
        hub.publish_alert(&alert("home-1", i));
    }
    let mut sub = hub.subscribe(SiteScope::All, Some(1));
    match next(&mut sub).await {
        LiveMessage::Reload { gap, resume_after } => {
            assert_eq!(gap.requested, 1);
            assert_eq!(gap.oldest, 4);
            assert_eq!(resume_after, 6);
        }
        other => panic!("expected a reload, got {other:?}"),
    }
    hub.publish_alert(&alert("home-1", 7));
    assert_eq!(event_id(&next(&mut sub).await), 7);
}

#[tokio::test]
async fn an_id_from_before_a_server_restart_asks_for_a_reload() {
    let hub = LiveHub::new(8);
    hub.publish_alert(&alert("home-1", 1));
    let mut sub = hub.subscribe(SiteScope::All, Some(900));
    assert!(matches!(
        next(&mut sub).await,
        LiveMessage::Reload {
            resume_after: 1,
            ..
        }
    ));
}

#[tokio::test]
async fn a_stalled_subscriber_does_not_block_publishing_and_catches_up_or_reloads() {
    let hub = LiveHub::new(8);
    let mut stalled = hub.subscribe(SiteScope::All, None);
    let mut reader = hub.subscribe(SiteScope::All, None);
    // Far more than the buffer while `stalled` reads nothing: publishing must not wait.
    let publish = async {
        for i in 1..=1000 {
            hub.publish_alert(&alert("home-1", i));
            if i % 4 == 0 {
                // `reader` keeps up.
                for _ in 0..4 {
                    let _ = next(&mut reader).await;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), publish)
        .await
        .expect("publishing is never held up by a subscriber");
    assert!(is_idle(&mut reader).await, "reader read all 1000");
    // The stalled one missed far more than the buffer holds: it must reload, then go on.
    assert!(matches!(
        next(&mut stalled).await,
        LiveMessage::Reload {
            resume_after: 1000,
            ..
        }
    ));
    hub.publish_alert(&alert("home-1", 1001));
    assert_eq!(event_id(&next(&mut stalled).await), 1001);
}

#[tokio::test]
async fn closing_the_hub_ends_every_subscription() {
    let hub = LiveHub::new(4);
    let mut sub = hub.subscribe(SiteScope::All, None);
    assert_eq!(hub.subscribers(), 1);
    let waiting = tokio::spawn(async move { sub.next().await });
    tokio::task::yield_now().await;
    hub.close();
    let ended = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the subscription ends in time")
        .unwrap();
    assert_eq!(ended, None);
    assert!(hub.subscribe(SiteScope::All, None).next().await.is_none());
}

#[tokio::test]
async fn audit_records_are_published_as_audit_events_of_their_site() {
    use crate::alerts::audit::{Actor, AuditChange};
    let hub = LiveHub::new(4);
    let mut sub = hub.subscribe(scope(&["home-a"]), None);
    let record = AuditRecord {
        alert: AlertId(7),
        site: SiteId::new("home-a").unwrap(),
        kind: AlertKind::Call,
        at: Timestamp(1),
        actor: Actor::System,
        from: None,
        to: AlertState::Open,
        change: AuditChange::Note,
        note: Some("checked".into()),
    };
    hub.publish_audit(&record);
    let LiveMessage::Event(e) = next(&mut sub).await else {
        panic!("expected an event")
    };
    assert_eq!(e.kind, crate::notify::sse::LiveEventKind::Audit);
    assert_eq!(e.data["note"], "checked");
}
