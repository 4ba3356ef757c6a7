//! How the book spends the alert ids it is granted, and what a raise does when none is left.

use super::*;
use crate::alerts::{Severity, Subject};
use crate::detection::action::details;
use crate::detection::action::ClearReason;
use crate::ids::{ResidentId, SiteId};

fn t(s: u64) -> Timestamp {
    Timestamp::from_unix_s(1_700_000_000 + s)
}

fn key(who: &str, kind: AlertKind) -> AlertKey {
    AlertKey::new(Subject::Resident(ResidentId::new(who).unwrap()), kind)
}

fn raise(who: &str, kind: AlertKind, at: u64) -> DetectorAction {
    DetectorAction::Raise {
        site: SiteId::new("site-1").unwrap(),
        key: key(who, kind),
        severity: Severity::Critical,
        at: t(at),
        origin: None,
        details: details([]),
    }
}

fn clear(who: &str, kind: AlertKind, at: u64) -> DetectorAction {
    DetectorAction::Clear {
        site: SiteId::new("site-1").unwrap(),
        key: key(who, kind),
        at: t(at),
        reason: ClearReason::ReturnedToNormal,
        details: details([]),
    }
}

fn id_of(book: &AlertBook, who: &str, kind: AlertKind) -> Option<u64> {
    book.open_alert(&key(who, kind)).map(|a| a.id.0)
}

fn drain(book: &mut AlertBook) -> Vec<BookEvent> {
    std::iter::from_fn(|| book.poll_event()).collect()
}

#[test]
fn new_alerts_take_the_granted_ids_in_order_across_blocks() {
    let mut book = AlertBook::new(AlertPolicy::default());
    book.grant_ids(40..42);
    book.grant_ids(7..8);
    assert_eq!(book.ids_left(), 3);
    for (i, who) in ["a", "b", "c"].into_iter().enumerate() {
        book.handle_detection(raise(who, AlertKind::Call, i as u64), t(i as u64));
    }
    assert_eq!(id_of(&book, "a", AlertKind::Call), Some(40));
    assert_eq!(id_of(&book, "b", AlertKind::Call), Some(41));
    assert_eq!(id_of(&book, "c", AlertKind::Call), Some(7));
    assert_eq!(book.ids_left(), 0);
}

#[test]
fn a_repeat_or_a_clear_spends_no_id() {
    let mut book = AlertBook::with_ids(AlertPolicy::default(), 1..2);
    book.handle_detection(raise("a", AlertKind::Call, 0), t(0));
    book.handle_detection(raise("a", AlertKind::Call, 1), t(1));
    book.handle_detection(clear("a", AlertKind::Call, 2), t(2));
    assert_eq!(book.ids_left(), 0);
    assert_eq!(book.ids_wanted(), 0);
    assert_eq!(book.waiting_actions(), 0);
    assert_eq!(
        book.open_alert(&key("a", AlertKind::Call))
            .unwrap()
            .repeat_count,
        1
    );
}

#[test]
fn a_book_without_ids_opens_no_alert_and_says_how_many_it_wants() {
    let mut book = AlertBook::new(AlertPolicy::default());
    book.handle_detection(raise("a", AlertKind::Call, 0), t(0));
    book.handle_detection(raise("b", AlertKind::Fall, 1), t(1));
    assert_eq!(book.open_alerts().count(), 0, "no id is invented");
    assert!(drain(&mut book).is_empty());
    assert_eq!(book.ids_wanted(), 2);
    assert_eq!(book.waiting_actions(), 2);
    assert_eq!(book.counters().raises_short_of_ids, 1);
}

#[test]
fn waiting_raises_open_their_alerts_when_ids_arrive_with_their_own_times() {
    let mut book = AlertBook::new(AlertPolicy::default());
    book.handle_detection(raise("a", AlertKind::Call, 0), t(0));
    book.handle_detection(raise("b", AlertKind::Fall, 1), t(1));
    // Only one id: the first raise opens, the second keeps waiting.
    book.grant_ids(10..11);
    assert_eq!(id_of(&book, "a", AlertKind::Call), Some(10));
    assert_eq!(id_of(&book, "b", AlertKind::Fall), None);
    assert_eq!(book.ids_wanted(), 1);
    book.grant_ids(20..30);
    assert_eq!(id_of(&book, "b", AlertKind::Fall), Some(20));
    assert_eq!(book.ids_wanted(), 0);
    assert_eq!(book.waiting_actions(), 0);
    let raised: Vec<_> = drain(&mut book)
        .into_iter()
        .filter_map(|e| match e {
            BookEvent::Audit(r) => Some((r.alert.0, r.at)),
            _ => None,
        })
        .collect();
    assert_eq!(raised, [(10, t(0)), (20, t(1))]);
    let b = book.open_alert(&key("b", AlertKind::Fall)).unwrap();
    assert_eq!(b.opened_at, t(1));
}

#[test]
fn actions_behind_a_waiting_raise_keep_their_order() {
    let mut book = AlertBook::new(AlertPolicy::default());
    book.handle_detection(raise("a", AlertKind::Tamper, 0), t(0));
    // A clear, then a repeat, of the very condition that is waiting to open.
    book.handle_detection(clear("a", AlertKind::Tamper, 5), t(5));
    book.handle_detection(raise("a", AlertKind::Tamper, 9), t(9));
    assert_eq!(book.counters().clears_without_alert, 0);
    assert_eq!(book.ids_wanted(), 2, "at most one id per waiting raise");
    book.grant_ids(1..2);
    let a = book.open_alert(&key("a", AlertKind::Tamper)).unwrap();
    assert_eq!(a.id, AlertId(1));
    assert_eq!(a.repeat_count, 1);
    assert_eq!(a.cleared, None, "the repeat after the clear withdraws it");
    assert_eq!(book.waiting_actions(), 0);
    assert_eq!(book.ids_left(), 0);
}

#[test]
fn a_granted_id_already_held_by_an_open_alert_is_skipped_and_counted() {
    let mut book = AlertBook::with_ids(AlertPolicy::default(), 5..6);
    book.handle_detection(raise("a", AlertKind::Call, 0), t(0));
    book.grant_ids(5..7);
    book.handle_detection(raise("b", AlertKind::Call, 1), t(1));
    assert_eq!(id_of(&book, "b", AlertKind::Call), Some(6));
    assert_eq!(book.counters().granted_ids_in_use, 1);
}

#[test]
fn an_empty_grant_changes_nothing() {
    let mut book = AlertBook::new(AlertPolicy::default());
    book.grant_ids(Range { start: 9, end: 3 });
    book.grant_ids(4..4);
    assert_eq!(book.ids_left(), 0);
    book.handle_detection(raise("a", AlertKind::Call, 0), t(0));
    assert_eq!(book.ids_wanted(), 1);
}

#[test]
fn a_restored_book_has_no_ids_until_granted() {
    let mut old = AlertBook::with_ids(AlertPolicy::default(), 1..100);
    old.handle_detection(raise("a", AlertKind::Call, 0), t(0));
    let mut book = AlertBook::restore(AlertPolicy::default(), old.snapshot());
    assert_eq!(book.ids_left(), 0);
    book.handle_detection(raise("b", AlertKind::Call, 1), t(1));
    assert_eq!(book.ids_wanted(), 1);
    book.grant_ids(100..132);
    assert_eq!(id_of(&book, "b", AlertKind::Call), Some(100));
}
