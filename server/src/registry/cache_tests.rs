use std::sync::atomic::AtomicBool;

use chrono::TimeZone;
use serde_json::json;

use super::*;
use crate::auth::{Session, StoredUser};
use crate::registry::SqliteRegistry;

fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("fixture decodes")
}

fn site(id: &str, tz: &str) -> Site {
    from(json!({"id": id, "kind": "facility", "name": "Home", "address": "1 Road", "timezone": tz}))
}

fn responder(id: &str, role: &str, sites: &[&str]) -> Responder {
    from(json!({"id": id, "name": id, "role": role,
        "channels": [{"kind": "sms", "number": "+86 138 0000 0001"}], "site_ids": sites}))
}

fn weekly(id: &str, site: &str, who: &str, role: Option<&str>, start: &str, end: &str) -> Shift {
    let mut v = json!({"id": id, "site_id": site, "responder_id": who,
        "schedule": {"type": "weekly", "days": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
                     "start": start, "end": end}});
    if let Some(r) = role {
        v["role"] = json!(r);
    }
    from(v)
}

fn role(s: &str) -> RoleName {
    RoleName::new(s).unwrap()
}

fn sid(s: &str) -> SiteId {
    SiteId::new(s).unwrap()
}

fn rid(s: &str) -> ResponderId {
    ResponderId::new(s).unwrap()
}

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Timestamp {
    Timestamp::from_unix_ms(
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .unwrap()
            .timestamp_millis() as u64,
    )
}

/// A facility in Shanghai (UTC+8) with a night caregiver 22:00–06:00 local, a day nurse lead,
/// a district operator rostered at another site, and a resident with two contacts.
fn contents() -> RegistryContents {
    RegistryContents {
        sites: vec![
            site("care-1", "Asia/Shanghai"),
            site("care-2", "Asia/Shanghai"),
        ],
        residents: vec![from(
            json!({"id": "mrs-li", "site_id": "care-1", "name": "Li",
            "emergency_contacts": [
                {"name": "Daughter", "phone": "+86 139 0000 0002"},
                {"name": "Neighbour", "phone": "+86 139 0000 0003"}]}),
        )],
        devices: vec![from(
            json!({"id": "p-1", "kind": "pendant", "site_id": "care-1", "resident_id": "mrs-li"}),
        )],
        gateways: vec![],
        responders: vec![
            responder("night-carer", "caregiver", &["care-1"]),
            responder("day-nurse", "nurse", &["care-1"]),
            responder("operator", "neighbourhood_worker", &["care-1", "care-2"]),
            responder("far-operator", "neighbourhood_worker", &["care-2"]),
        ],
        shifts: vec![
            // No role: a caregiver holds `on_duty_caregiver`.
            weekly("s-night", "care-1", "night-carer", None, "22:00", "06:00"),
            weekly(
                "s-day",
                "care-1",
                "day-nurse",
                Some("nurse_lead"),
                "08:00",
                "20:00",
            ),
            // District-wide: rostered at care-2, covers care-1 because the operator does.
            weekly(
                "s-dist",
                "care-2",
                "operator",
                Some("district_duty_operator"),
                "00:00",
                "23:59:59",
            ),
            weekly(
                "s-far",
                "care-2",
                "far-operator",
                Some("district_duty_operator"),
                "00:00",
                "23:59:59",
            ),
        ],
    }
}

#[test]
fn a_night_shift_runs_past_midnight_in_the_sites_zone() {
    let v = RegistryView::new(contents(), 1);
    let carer = role("on_duty_caregiver");
    // 23:30 Shanghai = 15:30 UTC; 05:30 Shanghai = 21:30 UTC the day before; 07:00 = 23:00 UTC.
    assert_eq!(
        v.on_duty(&sid("care-1"), &carer, at(2026, 12, 1, 15, 30)),
        [rid("night-carer")]
    );
    assert_eq!(
        v.on_duty(&sid("care-1"), &carer, at(2026, 12, 1, 21, 30)),
        [rid("night-carer")]
    );
    assert!(
        v.on_duty(&sid("care-1"), &carer, at(2026, 12, 1, 23, 0))
            .is_empty(),
        "nobody is on the night shift at 07:00 local"
    );
}

#[test]
fn only_shifts_holding_the_role_count() {
    let v = RegistryView::new(contents(), 1);
    // 10:00 Shanghai = 02:00 UTC: the nurse lead is on, the night carer is not.
    let ten = at(2026, 12, 1, 2, 0);
    assert_eq!(
        v.on_duty(&sid("care-1"), &role("nurse_lead"), ten),
        [rid("day-nurse")]
    );
    assert!(v
        .on_duty(&sid("care-1"), &role("on_duty_caregiver"), ten)
        .is_empty());
    assert!(v
        .on_duty(&sid("care-1"), &role("volunteer"), ten)
        .is_empty());
    assert!(
        v.on_duty(&sid("nowhere"), &role("nurse_lead"), ten)
            .is_empty(),
        "an unknown site has nobody on duty"
    );
}

#[test]
fn a_district_role_covers_the_sites_its_responder_covers() {
    let v = RegistryView::new(contents(), 1);
    let op = role("district_duty_operator");
    let ten = at(2026, 12, 1, 2, 0);
    assert_eq!(v.on_duty(&sid("care-1"), &op, ten), [rid("operator")]);
    assert_eq!(
        v.on_duty(&sid("care-2"), &op, ten),
        [rid("operator"), rid("far-operator")]
    );
}

#[test]
fn emergency_contacts_are_synthetic_responders_reached_by_phone() {
    let v = RegistryView::new(contents(), 1);
    let resident = ResidentId::new("mrs-li").unwrap();
    let ids = v.emergency_contacts(&Subject::Resident(resident.clone()));
    assert_eq!(ids, [rid("ec.0.mrs-li"), rid("ec.1.mrs-li")]);
    assert_eq!(
        v.emergency_contacts(&Subject::Device(DeviceId::new("p-1").unwrap())),
        ids,
        "a pendant's alert reaches its resident's contacts"
    );
    assert!(v
        .emergency_contacts(&Subject::Site(sid("care-1")))
        .is_empty());
    assert_eq!(
        v.channels(&ids[1]),
        [
            ContactChannel::Phone {
                number: "+86 139 0000 0003".into()
            },
            ContactChannel::Sms {
                number: "+86 139 0000 0003".into()
            }
        ]
    );
    assert_eq!(v.channels(&rid("day-nurse")).len(), 1);
    assert!(v.channels(&rid("nobody")).is_empty());
}

#[test]
fn a_long_resident_id_gets_a_hashed_stable_contact_id() {
    let long = ResidentId::new("resident-with-a-long-id-0001").unwrap();
    let a = emergency_contact_id(&long, 3);
    assert!(a.as_str().starts_with("ec.3."), "{a:?}");
    assert!(a.as_str().len() <= 32);
    assert_eq!(a, emergency_contact_id(&long, 3), "stable");
    let other = ResidentId::new("resident-with-a-long-id-0002").unwrap();
    assert_ne!(a, emergency_contact_id(&other, 3));
}

#[test]
fn a_site_without_a_policy_or_with_a_missing_one_escalates_by_the_telecare_default() {
    let mut c = contents();
    c.sites[1].escalation_policy = Some("gone".into());
    let v = RegistryView::new(c, 1);
    let default = SiteEscalation::from(EscalationPolicy::telecare_default());
    assert_eq!(v.escalation(&sid("care-1")), default);
    assert_eq!(v.escalation(&sid("care-2")), default);
    assert_eq!(
        v.dangling_policies().collect::<Vec<_>>(),
        [(&sid("care-2"), "gone")]
    );
}

/// A store whose reads can be made to fail.
struct Flaky {
    inner: SqliteRegistry,
    failing: AtomicBool,
}

impl Flaky {
    fn check(&self) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("switched off by the test".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl RegistryStore for Flaky {
    async fn insert(&self, record: &super::super::Record) -> Result<(), StoreError> {
        self.inner.insert(record).await
    }
    async fn update(&self, record: &super::super::Record) -> Result<bool, StoreError> {
        self.inner.update(record).await
    }
    async fn get(
        &self,
        kind: super::super::EntityKind,
        id: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        self.inner.get(kind, id).await
    }
    async fn delete(&self, kind: super::super::EntityKind, id: &str) -> Result<bool, StoreError> {
        self.inner.delete(kind, id).await
    }
    async fn list(
        &self,
        kind: super::super::EntityKind,
        filter: &SiteFilter,
        page: &PageRequest,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        self.check()?;
        self.inner.list(kind, filter, page).await
    }
    async fn shifts_of_site(&self, site: &str) -> Result<Vec<serde_json::Value>, StoreError> {
        self.inner.shifts_of_site(site).await
    }
    async fn import(&self, records: &[super::super::Record]) -> Result<(), StoreError> {
        self.inner.import(records).await
    }
    async fn insert_user(&self, user: &StoredUser) -> Result<(), StoreError> {
        self.inner.insert_user(user).await
    }
    async fn get_user(&self, username: &str) -> Result<Option<StoredUser>, StoreError> {
        self.inner.get_user(username).await
    }
    async fn list_users(&self) -> Result<Vec<StoredUser>, StoreError> {
        self.inner.list_users().await
    }
    async fn delete_user(&self, username: &str) -> Result<bool, StoreError> {
        self.inner.delete_user(username).await
    }
    async fn count_admins(&self) -> Result<u64, StoreError> {
        self.inner.count_admins().await
    }
    async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        self.inner.insert_session(session).await
    }
    async fn get_session(&self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        self.inner.get_session(token_hash).await
    }
    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.inner.delete_session(token_hash).await
    }
    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.inner.delete_expired_sessions(now).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}

async fn seeded() -> (Arc<Flaky>, Arc<RegistryCache>) {
    let store = Arc::new(Flaky {
        inner: SqliteRegistry::open_in_memory().unwrap(),
        failing: AtomicBool::new(false),
    });
    let reg = Registry::new(store.clone());
    let c = contents();
    for s in c.sites {
        reg.create(&SiteFilter::All, s).await.unwrap();
    }
    for r in c.residents {
        reg.create(&SiteFilter::All, r).await.unwrap();
    }
    let cache = RegistryCache::load(store.clone()).await.unwrap();
    (store, cache)
}

fn meter(id: &str) -> Device {
    from(json!({"id": id, "kind": "meter", "site_id": "care-1", "resident_id": "mrs-li"}))
}

#[tokio::test]
async fn a_write_through_the_caches_registry_is_in_the_view_when_it_returns() {
    let (_store, cache) = seeded().await;
    let mut changes = cache.changes();
    assert_eq!(*changes.borrow_and_update(), 1);
    let m = DeviceId::new("m-1").unwrap();
    assert!(!cache.knows(&m));
    let reg = cache.registry();
    reg.create(&SiteFilter::All, meter("m-1")).await.unwrap();
    assert!(cache.knows(&m));
    assert!(cache.view().device(&m).is_some());
    assert!(changes.has_changed().unwrap(), "the generation moved");
    assert_eq!(cache.view().generation(), 2);
    reg.delete::<Device>(&SiteFilter::All, "m-1").await.unwrap();
    assert!(!cache.knows(&m));
    // A failed write changes nothing and refreshes nothing.
    let before = cache.view().generation();
    assert!(reg
        .create(
            &SiteFilter::All,
            from::<Device>(json!({"id": "m-2", "kind": "meter",
            "site_id": "nowhere", "zone": "z"}))
        )
        .await
        .is_err());
    assert_eq!(cache.view().generation(), before);
}

#[tokio::test]
async fn a_write_elsewhere_shows_up_on_refresh() {
    let (store, cache) = seeded().await;
    let elsewhere = Registry::new(store.clone());
    elsewhere
        .create(&SiteFilter::All, meter("m-9"))
        .await
        .unwrap();
    let m = DeviceId::new("m-9").unwrap();
    assert!(!cache.knows(&m), "not until the cache re-reads");
    cache.refresh().await.unwrap();
    assert!(cache.knows(&m));
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_last_good_view() {
    let (store, cache) = seeded().await;
    let held = cache.view();
    let elsewhere = Registry::new(store.clone());
    elsewhere
        .create(&SiteFilter::All, meter("m-5"))
        .await
        .unwrap();
    store.failing.store(true, Ordering::SeqCst);
    let err = cache.refresh().await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let now = cache.view();
    assert!(Arc::ptr_eq(&held, &now), "the same view is still served");
    assert!(now.site(&sid("care-1")).is_some());
    assert_eq!(*cache.changes().borrow(), 1);
    store.failing.store(false, Ordering::SeqCst);
    cache.refresh().await.unwrap();
    assert!(cache.knows(&DeviceId::new("m-5").unwrap()));
}

#[tokio::test]
async fn the_periodic_refresh_follows_the_store_and_stops_on_shutdown() {
    let (store, cache) = seeded().await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = cache.spawn_refresh(Duration::from_millis(20), async {
        let _ = stopped.await;
    });
    let mut changes = cache.changes();
    Registry::new(store.clone())
        .create(&SiteFilter::All, meter("m-7"))
        .await
        .unwrap();
    let m = DeviceId::new("m-7").unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !cache.knows(&m) {
            changes.changed().await.unwrap();
        }
    })
    .await
    .expect("picked up by the periodic refresh");
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stops")
        .unwrap();
}

#[tokio::test]
async fn a_large_registry_loads_across_pages() {
    let store: Arc<dyn RegistryStore> = Arc::new(SqliteRegistry::open_in_memory().unwrap());
    let reg = Registry::new(Arc::clone(&store));
    reg.create(&SiteFilter::All, site("care-1", "UTC"))
        .await
        .unwrap();
    let n = LOAD_PAGE as usize + 7;
    let rows: Vec<_> = (0..n)
        .map(|i| crate::registry::import::ImportRow {
            kind: crate::registry::EntityKind::Device,
            row: i as u64 + 1,
            doc: json!({"id": format!("d-{i:05}"), "kind": "meter", "site_id": "care-1",
                "zone": "z"}),
        })
        .collect();
    let report = reg
        .import(&SiteFilter::All, rows, Vec::new(), false)
        .await
        .unwrap();
    assert_eq!(report.imported, n, "{report:?}");
    let cache = RegistryCache::load(store).await.unwrap();
    assert_eq!(cache.view().devices().count(), n);
}
