//! The alert read API over HTTP on both backends (registry and alert store on SQLite, and both
//! on PostgreSQL in their own schemas): listing with filters and paging, site scope, detail
//! with the audit trail and the readings around the alert, KPIs from the stored trail checked
//! against a hand-computed case, bad input for every parameter, and "away until".
//!
//! The alerts are made by the real cores: detector actions and operator actions go through an
//! `AlertBook`, each step's `ChangeSet` is committed with `AlertStore::apply`.

#[allow(unused_macros)]
mod alert_store_support;
mod api_support;

use std::time::Duration;

use alert_store_support::{raise, roster, step_changes, TestDb as _};
use api_support::*;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use vigil_server::alert_store::{AlertStore, AnyAlertStore};
use vigil_server::alerts::audit::Actor;
use vigil_server::alerts::book::AlertBook;
use vigil_server::alerts::lifecycle::{AlertId, AlertPolicy, Disposition, OperatorAction};
use vigil_server::alerts::{AlertKind, Severity, Subject, Timestamp};
use vigil_server::auth::Role;
use vigil_server::escalation::{EscalationPolicy, Roster};
use vigil_server::http::telemetry::{Reading, ReadingBody};
use vigil_server::ids::{DeviceId, ResidentId, ResponderId};

/// The alert store of a test, on the same kind of backend as the registry.
enum AlertDb {
    Sqlite(alert_store_support::SqliteDb),
    Postgres(alert_store_support::PgDb),
}

impl AlertDb {
    async fn open(backend: Backend) -> (Self, AnyAlertStore) {
        match backend {
            Backend::Sqlite => {
                let db = alert_store_support::SqliteDb::new().await;
                let store = db.instance().await.into();
                (Self::Sqlite(db), store)
            }
            Backend::Postgres => {
                let db = alert_store_support::PgDb::new().await;
                let store = db.instance().await.into();
                (Self::Postgres(db), store)
            }
        }
    }

    async fn cleanup(self) {
        match self {
            Self::Sqlite(db) => db.cleanup().await,
            Self::Postgres(db) => db.cleanup().await,
        }
    }
}

/// `t0()` plus `s` seconds, on the cores' clock.
fn ts(s: u64) -> Timestamp {
    Timestamp::from_unix_ms(t0().timestamp_millis() as u64) + Duration::from_secs(s)
}

fn rfc(s: i64) -> String {
    (t0() + chrono::Duration::seconds(s))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        .replace("+00:00", "Z")
}

/// Drives the book and commits every step, as the server's driver does.
struct Cores {
    book: AlertBook,
    policy: EscalationPolicy,
    roster: Roster,
    store: AnyAlertStore,
}

impl Cores {
    async fn commit(&mut self, now: Timestamp) {
        let changes = step_changes(&mut self.book, &self.policy, &self.roster, now);
        let _ = self.store.apply(&changes).await.expect("commit the step");
    }

    async fn detect(
        &mut self,
        site: &str,
        subject: Subject,
        kind: AlertKind,
        sev: Severity,
        s: u64,
    ) {
        self.book
            .handle_detection(raise(site, subject, kind, sev, ts(s)), ts(s));
        self.commit(ts(s)).await;
    }

    async fn act(&mut self, id: u64, action: OperatorAction, s: u64) {
        self.book
            .handle_operator(
                AlertId(id),
                &action,
                Actor::User("ops".into()),
                Some(format!("{} by ops", action.name())),
                ts(s),
            )
            .expect("the action is allowed");
        self.commit(ts(s)).await;
    }
}

fn resident(id: &str) -> Subject {
    Subject::Resident(ResidentId::new(id).unwrap())
}

/// Alert ids of the seeded alerts, in the order they are raised.
const CALL_A: u64 = 1;
const CALL_B: u64 = 2;
const FALL_A: u64 = 3;
const WATER_A: u64 = 4;
const BATTERY_B: u64 = 5;

/// Two homes; five alerts raised and handled through the cores:
/// - home-a: a call (answered in 30 s, dispatched, on scene after 900 s, resolved as a real
///   emergency), a fall (answered in 120 s, a false alarm), a no-use alert nobody answered;
/// - home-b: a call answered in 10 s (still acknowledged), a low battery nobody answered.
async fn seed(store: AnyAlertStore) {
    let mut c = Cores {
        book: AlertBook::with_ids(AlertPolicy::default(), 1..1_000_000),
        policy: EscalationPolicy::telecare_default(),
        roster: roster(&["home-a", "home-b"]),
        store,
    };
    let (crit, major, warn) = (Severity::Critical, Severity::Major, Severity::Warning);
    c.detect("home-a", resident("mrs-li"), AlertKind::Call, crit, 0)
        .await;
    c.act(CALL_A, OperatorAction::Acknowledge, 30).await;
    c.detect("home-b", resident("mr-wang"), AlertKind::Call, crit, 50)
        .await;
    c.act(CALL_B, OperatorAction::Acknowledge, 60).await;
    let nurse = ResponderId::new("nurse-x").unwrap();
    c.act(CALL_A, OperatorAction::Dispatch { responder: nurse }, 60)
        .await;
    c.detect("home-a", resident("mrs-li"), AlertKind::Fall, crit, 100)
        .await;
    c.detect(
        "home-a",
        resident("mrs-li"),
        AlertKind::WaterNoUse,
        major,
        200,
    )
    .await;
    c.act(FALL_A, OperatorAction::Acknowledge, 220).await;
    let false_alarm = OperatorAction::Resolve {
        disposition: Disposition::FalseAlarm,
    };
    c.act(FALL_A, false_alarm, 300).await;
    let meter_b = Subject::Device(DeviceId::new("meter-b").unwrap());
    c.detect("home-b", meter_b, AlertKind::LowBattery, warn, 400)
        .await;
    c.act(CALL_A, OperatorAction::OnScene, 900).await;
    let real = OperatorAction::Resolve {
        disposition: Disposition::RealEmergency,
    };
    c.act(CALL_A, real, 1200).await;
}

struct Fixture {
    app: TestApp,
    alert_db: AlertDb,
    admin: String,
}

impl Fixture {
    async fn new(backend: Backend, tag: &str) -> Self {
        let mut app = TestApp::new(backend, tag).await;
        let (alert_db, store) = AlertDb::open(backend).await;
        app.state = app.state.clone().with_alerts(store.clone());
        app.add_user("root", Role::Admin, None).await;
        let admin = app.login("root").await;
        for site in ["home-a", "home-b"] {
            let r = app
                .call(
                    Method::POST,
                    "/api/v1/sites",
                    Some(&admin),
                    Some(site_json(site)),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        }
        for (path, body) in [
            ("residents", resident_json("mrs-li", "home-a")),
            ("residents", resident_json("mr-wang", "home-b")),
            ("devices", device_json("meter-a", "home-a", "mrs-li")),
            (
                "devices",
                json!({"id": "pendant-a", "kind": "pendant", "site_id": "home-a",
                       "resident_id": "mrs-li"}),
            ),
            ("devices", device_json("meter-b", "home-b", "mr-wang")),
        ] {
            let r = app
                .call(
                    Method::POST,
                    &format!("/api/v1/{path}"),
                    Some(&admin),
                    Some(body),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        }
        seed(store).await;
        Self {
            app,
            alert_db,
            admin,
        }
    }

    async fn get(&self, uri: &str, token: &str) -> Response {
        self.app.call(Method::GET, uri, Some(token), None).await
    }

    async fn user(&self, name: &str, role: Role, sites: Option<&[&str]>) -> String {
        self.app.add_user(name, role, sites).await;
        self.app.login(name).await
    }

    async fn cleanup(self) {
        self.app.db.cleanup().await;
        self.alert_db.cleanup().await;
    }
}

fn ids(r: &Response) -> Vec<u64> {
    r.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items in {}", r.text))
        .iter()
        .map(|a| a["id"].as_u64().unwrap())
        .collect()
}

fn assert_bad(r: &Response, status: StatusCode, field: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.body["error"]["field"], json!(field), "{}", r.text);
}

both_backends!(
    listing_filters_pages_and_sorts_most_severe_then_oldest_first,
    |b, tag| async move {
        let f = Fixture::new(b, tag).await;
        let t = f.admin.clone();
        let all = f.get("/api/v1/alerts", &t).await;
        assert_eq!(all.status, StatusCode::OK, "{}", all.text);
        assert_eq!(ids(&all), vec![CALL_A, CALL_B, FALL_A, WATER_A, BATTERY_B]);
        assert_eq!(all.body["total"], json!(5));
        let first = &all.body["items"][0];
        assert_eq!(first["key"]["kind"], json!("call"));
        assert_eq!(first["key"]["subject"], json!({"resident": "mrs-li"}));
        assert_eq!(first["state"], json!("resolved"));
        assert_eq!(first["disposition"], json!("real_emergency"));
        assert_eq!(first["opened_at"], json!(ts(0).unix_ms()));
        assert_eq!(first["acknowledged"]["at"], json!(ts(30).unix_ms()));

        let since_60 = format!("from={}", rfc(60));
        let between = format!("from={}&to={}", rfc(50), rfc(200));
        for (query, expected) in [
            ("kind=call", vec![CALL_A, CALL_B]),
            ("kind=fall&kind=water_no_use", vec![FALL_A, WATER_A]),
            ("state=active", vec![CALL_B, WATER_A, BATTERY_B]),
            ("state=closed", vec![CALL_A, FALL_A]),
            ("state=open", vec![WATER_A, BATTERY_B]),
            ("state=acknowledged,false_alarm", vec![CALL_B, FALL_A]),
            ("severity=major,warning", vec![WATER_A, BATTERY_B]),
            ("site=home-b", vec![CALL_B, BATTERY_B]),
            ("site=home-a&site=home-b&kind=call", vec![CALL_A, CALL_B]),
            (since_60.as_str(), vec![FALL_A, WATER_A, BATTERY_B]),
            (between.as_str(), vec![CALL_B, FALL_A]),
            ("state=active&severity=critical", vec![CALL_B]),
            ("kind=fire_alarm", vec![]),
        ] {
            let r = f.get(&format!("/api/v1/alerts?{query}"), &t).await;
            assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text);
            assert_eq!(ids(&r), expected, "{query}");
            assert_eq!(r.body["total"], json!(expected.len()), "{query}");
        }

        let page = f.get("/api/v1/alerts?limit=2&offset=1", &t).await;
        assert_eq!(ids(&page), vec![CALL_B, FALL_A]);
        assert_eq!(page.body["total"], json!(5));
        let past_end = f.get("/api/v1/alerts?limit=2&offset=5", &t).await;
        assert_eq!(ids(&past_end), Vec::<u64>::new());
        assert_eq!(past_end.body["total"], json!(5));
        f.cleanup().await;
    }
);

both_backends!(
    a_manager_of_one_site_never_sees_another_sites_alerts,
    |b, tag| async move {
        let f = Fixture::new(b, tag).await;
        let m = f.user("mgr-a", Role::Manager, Some(&["home-a"])).await;
        let mine = f.get("/api/v1/alerts", &m).await;
        assert_eq!(ids(&mine), vec![CALL_A, FALL_A, WATER_A]);
        assert_eq!(mine.body["total"], json!(3));
        let none = f.get("/api/v1/alerts?kind=low_battery", &m).await;
        assert_eq!(ids(&none), Vec::<u64>::new());
        // Naming a site outside the scope is answered as for a missing site.
        let call_b = format!("/api/v1/alerts/{CALL_B}");
        let battery_b = format!("/api/v1/alerts/{BATTERY_B}");
        for uri in [
            "/api/v1/alerts?site=home-b",
            "/api/v1/alerts?site=home-a,home-b",
            "/api/v1/kpis?site=home-b",
            call_b.as_str(),
            battery_b.as_str(),
            "/api/v1/alerts/999",
        ] {
            let r = f.get(uri, &m).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}: {}", r.text);
        }
        // The same answer for another site's alert and a missing one: ids cannot be probed.
        let other = f.get(&format!("/api/v1/alerts/{CALL_B}"), &m).await;
        let missing = f.get("/api/v1/alerts/999", &m).await;
        assert_eq!(other.body["error"]["code"], missing.body["error"]["code"]);
        let kpis = f.get("/api/v1/kpis", &m).await;
        let sites: Vec<&str> = kpis.body["sites"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["site_id"].as_str().unwrap())
            .collect();
        assert_eq!(sites, vec!["home-a"], "{}", kpis.text);
        // Without a session there is nothing to see.
        let anon = f.app.call(Method::GET, "/api/v1/alerts", None, None).await;
        assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
        f.cleanup().await;
    }
);

both_backends!(
    detail_has_the_trail_oldest_first_and_the_readings_around_the_alert,
    |b, tag| async move {
        let f = Fixture::new(b, tag).await;
        let reading = |s: i64, seq: u32, body: ReadingBody| Reading {
            boot_id: 1,
            seq,
            at: t0() + chrono::Duration::seconds(s),
            body,
        };
        let press = || ReadingBody::Button {
            action: "press".into(),
        };
        let meter = || ReadingBody::Meter {
            total_ml: 1_000,
            flow_ml_per_min: 0,
            battery_mv: 3_000,
            tamper: false,
            leak: false,
        };
        {
            let mut rs = f.app.telemetry.readings.lock().unwrap();
            let dev = |s: &str| DeviceId::new(s).unwrap();
            // The call was opened and last seen at t0: the window is t0 ± 30 min.
            rs.push((dev("pendant-a"), reading(-31 * 60, 1, press())));
            rs.push((dev("pendant-a"), reading(-10 * 60, 2, press())));
            rs.push((dev("pendant-a"), reading(0, 3, press())));
            rs.push((dev("pendant-a"), reading(31 * 60, 4, press())));
            rs.push((dev("meter-a"), reading(29 * 60, 1, meter())));
            rs.push((dev("meter-b"), reading(0, 1, meter())));
        }
        let r = f.get(&format!("/api/v1/alerts/{CALL_A}"), &f.admin).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["alert"]["id"], json!(CALL_A));
        let trail = r.body["trail"].as_array().unwrap();
        assert_eq!(trail[0]["change"]["change"], json!("raised"));
        let at: Vec<u64> = trail.iter().map(|t| t["at"].as_u64().unwrap()).collect();
        assert!(at.windows(2).all(|w| w[0] <= w[1]), "oldest first: {at:?}");
        let transitions: Vec<(&Value, &Value, &Value)> = trail
            .iter()
            .filter(|t| t["change"]["change"] == "transition")
            .map(|t| (&t["from"], &t["to"], &t["note"]))
            .collect();
        assert_eq!(
            transitions,
            vec![
                (
                    &json!("open"),
                    &json!("acknowledged"),
                    &json!("acknowledge by ops")
                ),
                (
                    &json!("acknowledged"),
                    &json!("dispatched"),
                    &json!("dispatch by ops")
                ),
                (
                    &json!("dispatched"),
                    &json!("on_scene"),
                    &json!("on_scene by ops")
                ),
                (
                    &json!("on_scene"),
                    &json!("resolved"),
                    &json!("resolve by ops")
                ),
            ]
        );
        let readings = &r.body["readings"];
        assert_eq!(readings["from"], json!(rfc(-30 * 60)));
        assert_eq!(readings["to"], json!(rfc(30 * 60)));
        assert_eq!(readings["more_devices"], json!(false));
        let devices = readings["devices"].as_array().unwrap();
        let by_device: Vec<(&str, Vec<u64>, bool)> = devices
            .iter()
            .map(|d| {
                (
                    d["device_id"].as_str().unwrap(),
                    d["readings"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r["seq"].as_u64().unwrap())
                        .collect(),
                    d["more"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            by_device,
            vec![
                ("meter-a", vec![1], false),
                ("pendant-a", vec![2, 3], false)
            ]
        );
        assert_eq!(devices[1]["readings"][0]["body"]["kind"], json!("button"));

        // A device subject shows that device only.
        let battery = f
            .get(&format!("/api/v1/alerts/{BATTERY_B}"), &f.admin)
            .await;
        let devices = battery.body["readings"]["devices"].as_array().unwrap();
        assert_eq!(devices.len(), 1, "{}", battery.text);
        assert_eq!(devices[0]["device_id"], json!("meter-b"));

        let missing = f.get("/api/v1/alerts/424242", &f.admin).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        for junk in ["abc", "-1", "1.5", "99999999999999999999"] {
            let r = f.get(&format!("/api/v1/alerts/{junk}"), &f.admin).await;
            assert_bad(&r, StatusCode::BAD_REQUEST, "id");
        }
        f.cleanup().await;
    }
);

both_backends!(
    kpis_come_from_the_stored_trail_and_match_a_hand_computed_case,
    |b, tag| async move {
        let f = Fixture::new(b, tag).await;
        let period = format!("from={}&to={}", rfc(-3600), rfc(3600));
        let r = f.get(&format!("/api/v1/kpis?{period}"), &f.admin).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["targets"]["answered_within_60s"], json!(0.975));
        assert_eq!(r.body["targets"]["answered_within_180s"], json!(0.99));
        let sites = r.body["sites"].as_array().unwrap();
        assert_eq!(sites.len(), 2, "{}", r.text);
        let a = &sites[0];
        assert_eq!(a["site_id"], json!("home-a"));
        let k = &a["kpis"];
        assert_eq!(k["alerts"], json!(3));
        assert_eq!(
            k["by_kind"],
            json!({"call": 1, "fall": 1, "water_no_use": 1})
        );
        // Critical alerts: the call answered after 30 s, the fall after 120 s. Nearest rank:
        // median = 30 s, 90th = 120 s; within 60 s: 1 of 2; within 180 s: 2 of 2.
        let crit = &k["answer_critical"];
        assert_eq!(
            crit["time_to_acknowledge"],
            json!({"count": 2, "median_s": 30.0, "p90_s": 120.0})
        );
        assert_eq!(crit["within_60s"], json!({"hits": 1, "of": 2}));
        assert_eq!(crit["within_180s"], json!({"hits": 2, "of": 2}));
        assert_eq!(crit["unanswered"], json!(0));
        // The no-use alert (major) was never answered: it waited past both targets by the end
        // of the period, so it counts as a miss for its kind.
        let water = &k["answer_by_kind"]["water_no_use"];
        assert_eq!(water["unanswered"], json!(1));
        assert_eq!(water["within_60s"], json!({"hits": 0, "of": 1}));
        assert_eq!(
            k["time_to_on_scene"],
            json!({"count": 1, "median_s": 900.0, "p90_s": 900.0})
        );
        assert_eq!(k["on_scene_within_45min"], json!({"hits": 1, "of": 1}));
        // Dispositions: one real emergency, one false alarm.
        assert_eq!(k["false_alarms"], json!({"hits": 1, "of": 2}));
        let s = &a["summary"];
        assert_eq!(s["critical_answered_within_60s"], json!(0.5));
        assert_eq!(s["meets_60s_target"], json!(false));
        assert_eq!(s["critical_answered_within_180s"], json!(1.0));
        assert_eq!(s["meets_180s_target"], json!(true));
        assert_eq!(s["false_alarm_share"], json!(0.5));

        let b_site = &sites[1];
        assert_eq!(b_site["site_id"], json!("home-b"));
        assert_eq!(
            b_site["kpis"]["answer_critical"]["time_to_acknowledge"],
            json!({"count": 1, "median_s": 10.0, "p90_s": 10.0})
        );
        assert_eq!(b_site["kpis"]["false_alarms"], json!({"hits": 0, "of": 0}));
        assert_eq!(b_site["summary"]["false_alarm_share"], Value::Null);

        // One site by name; a period that starts after the calls leaves them out.
        let only_b = f
            .get(&format!("/api/v1/kpis?site=home-b&{period}"), &f.admin)
            .await;
        assert_eq!(only_b.body["sites"].as_array().unwrap().len(), 1);
        let late = f
            .get(
                &format!(
                    "/api/v1/kpis?site=home-a&from={}&to={}",
                    rfc(150),
                    rfc(3600)
                ),
                &f.admin,
            )
            .await;
        assert_eq!(
            late.body["sites"][0]["kpis"]["by_kind"],
            json!({"water_no_use": 1})
        );
        // A named site without alerts is listed with zeroes; the default period ends now.
        let before = f
            .get(
                &format!("/api/v1/kpis?site=home-a&to={}", rfc(-60)),
                &f.admin,
            )
            .await;
        assert_eq!(before.status, StatusCode::OK, "{}", before.text);
        assert_eq!(before.body["sites"][0]["kpis"]["alerts"], json!(0));
        assert_eq!(before.body["from"], json!(rfc(-60 - 30 * 86_400)));
        f.cleanup().await;
    }
);

both_backends!(
    bad_filter_values_are_refused_naming_the_parameter,
    |b, tag| async move {
        let f = Fixture::new(b, tag).await;
        let t = f.admin.clone();
        for (query, field) in [
            ("site=no/slash", "site"),
            ("kind=meteor", "kind"),
            ("state=asleep", "state"),
            ("severity=huge", "severity"),
            ("from=yesterday", "from"),
            ("to=2026-02-30T00:00:00Z", "to"),
            ("limit=0", "limit"),
            ("limit=501", "limit"),
            ("offset=-3", "offset"),
            ("limit=5&limit=6", "limit"),
            ("sort=asc", "sort"),
        ] {
            let r = f.get(&format!("/api/v1/alerts?{query}"), &t).await;
            assert_bad(&r, StatusCode::BAD_REQUEST, field);
            assert_eq!(r.body["error"]["code"], json!("invalid_query"), "{query}");
        }
        let empty = format!("from={}&to={}", rfc(10), rfc(10));
        let too_long = format!("from={}&to={}", rfc(0), rfc(367 * 86_400));
        for (query, field) in [
            ("site=", "site"),
            ("from=soon", "from"),
            (empty.as_str(), "to"),
            (too_long.as_str(), "to"),
            ("kind=call", "kind"),
        ] {
            let r = f.get(&format!("/api/v1/kpis?{query}"), &t).await;
            assert_bad(&r, StatusCode::BAD_REQUEST, field);
        }
        // 366 days is the longest period.
        let year = f
            .get(
                &format!("/api/v1/kpis?from={}&to={}", rfc(0), rfc(366 * 86_400)),
                &t,
            )
            .await;
        assert_eq!(year.status, StatusCode::OK, "{}", year.text);
        f.cleanup().await;
    }
);

both_backends!(
    away_until_is_validated_scoped_and_stored_on_the_resident,
    |b, tag| async move {
        let f = Fixture::new(b, tag).await;
        let ops = f.user("ops-a", Role::Operator, Some(&["home-a"])).await;
        let uri = "/api/v1/residents/mrs-li/away_until";
        let put = |token: String, body: Value| {
            let app = &f.app;
            async move { app.call(Method::PUT, uri, Some(&token), Some(body)).await }
        };
        let until = rfc(3 * 86_400);
        let r = put(ops.clone(), json!({"until": until})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["away_until"], json!(until));
        let stored = f.get("/api/v1/residents/mrs-li", &ops).await;
        assert_eq!(stored.body["away_until"], json!(until));
        // The rest of the resident is untouched.
        assert_eq!(stored.body["conditions"], json!(["diabetes"]));

        let r = put(ops.clone(), json!({"until": null})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let stored = f.get("/api/v1/residents/mrs-li", &ops).await;
        assert_eq!(stored.body.get("away_until"), None, "{}", stored.text);

        for body in [
            json!({"until": rfc(-1)}),
            json!({"until": rfc(0)}),
            json!({"until": rfc(366 * 86_400)}),
            json!({"until": "next tuesday"}),
            json!({}),
        ] {
            let r = put(ops.clone(), body.clone()).await;
            assert_bad(&r, StatusCode::UNPROCESSABLE_ENTITY, "until");
        }
        let r = put(ops.clone(), json!({"until": null, "why": "x"})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
        let r = f
            .app
            .raw(Method::PUT, uri, Some(&ops), "text/plain", "tomorrow")
            .await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

        // Another site's resident does not exist for this operator; supervisors only watch.
        let r = f
            .app
            .call(
                Method::PUT,
                "/api/v1/residents/mr-wang/away_until",
                Some(&ops),
                Some(json!({"until": null})),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
        let sup = f.user("sup", Role::Supervisor, None).await;
        let r = put(sup, json!({"until": until})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
        let r = f
            .app
            .call(
                Method::PUT,
                "/api/v1/residents/bad%2Fid/away_until",
                Some(&ops),
                Some(json!({"until": null})),
            )
            .await;
        assert_bad(&r, StatusCode::BAD_REQUEST, "id");
        f.cleanup().await;
    }
);

#[tokio::test]
async fn without_an_alert_store_the_alert_endpoints_answer_503_saying_so() {
    let app = TestApp::new(Backend::Sqlite, "no_alert_store").await;
    app.add_user("root", Role::Admin, None).await;
    let t = app.login("root").await;
    for uri in ["/api/v1/alerts", "/api/v1/alerts/1", "/api/v1/kpis"] {
        let r = app.call(Method::GET, uri, Some(&t), None).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert_eq!(r.body["error"]["code"], json!("not_configured"));
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("alert store"),
            "{}",
            r.text
        );
    }
}

#[tokio::test]
async fn the_openapi_document_describes_the_alert_endpoints() {
    let doc = serde_json::to_value(vigil_server::http::openapi()).unwrap();
    for path in [
        "/api/v1/alerts",
        "/api/v1/alerts/{id}",
        "/api/v1/kpis",
        "/api/v1/residents/{id}/away_until",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    let params: Vec<&str> = doc["paths"]["/api/v1/alerts"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        params,
        ["site", "kind", "state", "severity", "from", "to", "limit", "offset"]
    );
    assert!(doc["components"]["schemas"]["Alert"].is_object());
    assert!(doc["components"]["schemas"]["SiteKpis"].is_object());
}
