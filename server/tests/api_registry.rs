//! Registry over HTTP: CRUD, import with dry run, on duty, OpenAPI, health and metrics.

mod api_support;

use api_support::*;
use axum::http::{Method, StatusCode};
use serde_json::json;
use vigil_server::auth::Role;

async fn admin(app: &TestApp) -> String {
    app.add_user("root", Role::Admin, None).await;
    app.login("root").await
}

both_backends!(
    every_entity_goes_through_create_read_update_list_delete,
    |b, tag| async move {
        let app = TestApp::new(b, tag).await;
        let t = admin(&app).await;
        let entities = [
            ("sites", site_json("site-a"), "name", json!("Renamed")),
            (
                "residents",
                resident_json("res-a", "site-a"),
                "away_until",
                json!("2026-12-24T08:00:00Z"),
            ),
            (
                "devices",
                device_json("met-a", "site-a", "res-a"),
                "installed_on",
                json!("2026-01-15"),
            ),
            (
                "gateways",
                json!({"id": "gw-a", "site_id": "site-a", "name": "Hall"}),
                "name",
                json!("Basement"),
            ),
            (
                "responders",
                responder_json("nur-a", &["site-a"]),
                "role",
                json!("volunteer"),
            ),
            (
                "shifts",
                json!({"id": "sh-a", "site_id": "site-a", "responder_id": "nur-a",
            "schedule": {"type": "dated", "start": "2026-12-24T18:00:00Z", "end": "2026-12-25T06:00:00Z"}}),
                "schedule",
                json!({"type": "weekly", "days": ["Sat", "Sun"], "start": "22:00", "end": "06:00"}),
            ),
        ];
        for (coll, body, _, _) in &entities {
            let r = app
                .call(
                    Method::POST,
                    &format!("/api/v1/{coll}"),
                    Some(&t),
                    Some(body.clone()),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{coll}: {}", r.text);
            let id = body["id"].as_str().unwrap();
            let r = app
                .call(Method::GET, &format!("/api/v1/{coll}/{id}"), Some(&t), None)
                .await;
            assert_eq!(r.status, StatusCode::OK);
            assert_eq!(r.body["id"], body["id"]);
            let again = app
                .call(
                    Method::POST,
                    &format!("/api/v1/{coll}"),
                    Some(&t),
                    Some(body.clone()),
                )
                .await;
            assert_eq!(again.status, StatusCode::CONFLICT, "{coll}");
        }
        for (coll, body, field, value) in &entities {
            let id = body["id"].as_str().unwrap();
            let mut changed = body.clone();
            changed[*field] = value.clone();
            let r = app
                .call(
                    Method::PUT,
                    &format!("/api/v1/{coll}/{id}"),
                    Some(&t),
                    Some(changed),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{coll}: {}", r.text);
            let r = app
                .call(Method::GET, &format!("/api/v1/{coll}/{id}"), Some(&t), None)
                .await;
            assert_eq!(&r.body[*field], value, "{coll}");
            let r = app
                .call(Method::GET, &format!("/api/v1/{coll}"), Some(&t), None)
                .await;
            assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{coll}");
        }
        // Deleting the site first is refused while things still refer to it.
        let r = app
            .call(Method::DELETE, "/api/v1/sites/site-a", Some(&t), None)
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
        for (coll, body, _, _) in entities.iter().rev() {
            let id = body["id"].as_str().unwrap();
            let r = app
                .call(
                    Method::DELETE,
                    &format!("/api/v1/{coll}/{id}"),
                    Some(&t),
                    None,
                )
                .await;
            assert_eq!(r.status, StatusCode::NO_CONTENT, "{coll}: {}", r.text);
            let r = app
                .call(Method::GET, &format!("/api/v1/{coll}/{id}"), Some(&t), None)
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND);
        }
        app.db.cleanup().await;
    }
);

both_backends!(
    csv_import_dry_run_reports_bad_rows_and_imports_nothing,
    |b, tag| async move {
        let app = TestApp::new(b, tag).await;
        let t = admin(&app).await;
        let sites = "id,kind,name,address,timezone\n\
                 home-1,household,Wang,1 Lane,Asia/Shanghai\n\
                 home-2,household,Li,2 Lane,Asia/Atlantis\n\
                 home-3,hut,Zhao,3 Lane,Asia/Shanghai\n";
        for dry in [true, false] {
            let r = app
                .raw(
                    Method::POST,
                    &format!("/api/v1/import/sites?dry_run={dry}"),
                    Some(&t),
                    "text/csv",
                    sites,
                )
                .await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
            assert_eq!(r.body["imported"], 0);
            assert_eq!(r.body["dry_run"], dry);
            let errs = r.body["errors"].as_array().unwrap();
            assert_eq!(errs.len(), 2, "{}", r.text);
            assert_eq!(
                (errs[0]["row"].as_u64(), errs[0]["field"].as_str()),
                (Some(3), Some("timezone"))
            );
            assert_eq!(
                (errs[1]["row"].as_u64(), errs[1]["field"].as_str()),
                (Some(4), Some("kind"))
            );
        }
        let r = app.call(Method::GET, "/api/v1/sites", Some(&t), None).await;
        assert!(
            r.body["items"].as_array().unwrap().is_empty(),
            "nothing imported: {}",
            r.text
        );

        let good = sites
            .replace("Asia/Atlantis", "Asia/Shanghai")
            .replace("hut", "household");
        let r = app
            .raw(
                Method::POST,
                "/api/v1/import/sites?dry_run=true",
                Some(&t),
                "text/csv",
                good.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["imported"], 0);
        let r = app
            .raw(
                Method::POST,
                "/api/v1/import/sites",
                Some(&t),
                "text/csv",
                good,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["imported"], 3);
        let r = app
            .raw(
                Method::POST,
                "/api/v1/import/sites",
                Some(&t),
                "text/csv",
                "id,colour\nx,red\n",
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        app.db.cleanup().await;
    }
);

#[tokio::test]
async fn json_import_of_all_kinds_resolves_references_within_the_file() {
    let app = TestApp::new(Backend::Sqlite, "jsonimport").await;
    let t = admin(&app).await;
    let doc = json!({
        "sites": [site_json("home-1")],
        "residents": [resident_json("wang", "home-1")],
        "devices": [device_json("met-1", "home-1", "wang"), device_json("met-2", "home-1", "nobody")],
        "responders": [responder_json("vol-1", &["home-1"])],
        "shifts": [{"id": "s1", "site_id": "home-1", "responder_id": "vol-1",
            "schedule": {"type": "weekly", "days": ["Mon"], "start": "08:00", "end": "12:00"}}]
    });
    let r = app
        .call(Method::POST, "/api/v1/import", Some(&t), Some(doc.clone()))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(
        r.body["errors"],
        json!([{"entity": "devices", "row": 2, "field": "resident_id",
        "reason": "no resident \"nobody\""}])
    );
    let mut fixed = doc;
    fixed["devices"][1]["resident_id"] = json!("wang");
    let r = app
        .call(Method::POST, "/api/v1/import", Some(&t), Some(fixed))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["imported"], 6);
    let r = app
        .call(
            Method::GET,
            "/api/v1/sites/home-1/on-duty?at=2026-11-30T01:00:00Z",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body[0]["responder"]["id"], "vol-1",
        "Monday 09:00 in Shanghai"
    );
    let r = app
        .call(
            Method::POST,
            "/api/v1/import",
            Some(&t),
            Some(json!({"widgets": []})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_manager_cannot_import_sites() {
    let app = TestApp::new(Backend::Sqlite, "mgrimport").await;
    let t = admin(&app).await;
    app.call(
        Method::POST,
        "/api/v1/sites",
        Some(&t),
        Some(site_json("site-a")),
    )
    .await;
    app.add_user("mgr", Role::Manager, Some(&["site-a"])).await;
    let m = app.login("mgr").await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/import",
            Some(&m),
            Some(json!({"sites": [site_json("x")]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .call(
            Method::POST,
            "/api/v1/import",
            Some(&m),
            Some(json!({"residents": [resident_json("r", "site-a")]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn the_openapi_document_describes_the_api() {
    let app = TestApp::new(Backend::Sqlite, "openapi").await;
    let r = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["openapi"].as_str().unwrap().starts_with("3."));
    let paths = r.body["paths"].as_object().unwrap();
    for p in [
        "/api/v1/login",
        "/api/v1/logout",
        "/api/v1/me",
        "/api/v1/users",
        "/api/v1/sites",
        "/api/v1/sites/{id}",
        "/api/v1/sites/{id}/on-duty",
        "/api/v1/residents/{id}",
        "/api/v1/devices",
        "/api/v1/gateways/{id}",
        "/api/v1/responders",
        "/api/v1/shifts/{id}",
        "/api/v1/import",
        "/api/v1/import/{kind}",
        "/api/v1/device-states",
        "/api/v1/devices/{id}/readings",
        "/api/v1/residents/{id}/water-use",
    ] {
        assert!(paths.contains_key(p), "missing {p}");
    }
    let schemas = r.body["components"]["schemas"].as_object().unwrap();
    for s in [
        "Site",
        "Resident",
        "Device",
        "ErrorBody",
        "ImportReport",
        "ReadingBody",
    ] {
        assert!(schemas.contains_key(s), "missing schema {s}");
    }
}

#[tokio::test]
async fn health_readiness_and_metrics_answer_without_a_session() {
    let app = TestApp::new(Backend::Sqlite, "ops").await;
    let r = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!((r.status, r.text.as_str()), (StatusCode::OK, "ready\n"));
    app.call(Method::GET, "/api/v1/sites", None, None).await;
    let r = app.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert!(
        r.text.contains(
            r#"vigil_http_requests_total{method="GET",route="/api/v1/sites",status="401"}"#
        ),
        "{}",
        r.text
    );
    assert!(
        r.text
            .contains("vigil_http_request_duration_seconds_bucket"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    use std::sync::Arc;
    use vigil_server::http::{ApiConfig, AppState};
    use vigil_server::registry::{PostgresRegistry, Registry};
    // A database of its own, dropped under the running API.
    let db = "vr_registry_readiness";
    let (admin, conn) = tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL (VIGIL_TEST_PG_URL) is needed");
    let driver = tokio::spawn(conn);
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let base = pg_url();
    let base = base.split('?').next().unwrap();
    let url = format!("{}/{db}", &base[..base.rfind('/').unwrap()]);
    let store = PostgresRegistry::connect(&url, None).await.unwrap();
    let mut app = TestApp::new(Backend::Sqlite, "ready").await;
    app.state = AppState::new(
        Registry::new(Arc::new(store)),
        Arc::new(MemoryTelemetry::default()),
        ApiConfig::default(),
        ManualClock::new(t0()),
        vigil_server::auth::PasswordHashing::insecure_fast_for_tests(),
    );
    let r = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    admin
        .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .await
        .unwrap();
    let r = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "unavailable");
    assert!(!r.text.contains(db), "no internals leak: {}", r.text);
    let r = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "the process is still up");
    drop(admin);
    let _ = driver.await;
}

#[tokio::test]
async fn answers_are_not_cached_or_sniffed() {
    let app = TestApp::new(Backend::Sqlite, "headers").await;
    let t = admin(&app).await;
    let r = app.call(Method::GET, "/api/v1/me", Some(&t), None).await;
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
}

#[test]
fn api_config_takes_defaults_for_missing_keys_and_refuses_unknown_ones() {
    use vigil_server::http::ApiConfig;
    let c: ApiConfig =
        serde_json::from_value(json!({"listen": "0.0.0.0:9000", "session_lifetime_s": 600}))
            .unwrap();
    assert_eq!(c.listen.port(), 9000);
    assert_eq!(c.session_lifetime_s, 600);
    assert_eq!(c.max_body_bytes, ApiConfig::default().max_body_bytes);
    assert!(serde_json::from_value::<ApiConfig>(json!({"listen_addr": "0.0.0.0:1"})).is_err());
}

#[tokio::test]
async fn escalation_policies_are_read_by_every_role_and_written_by_admins() {
    let app = TestApp::new(Backend::Sqlite, "policies").await;
    let t = admin(&app).await;
    app.call(
        Method::POST,
        "/api/v1/sites",
        Some(&t),
        Some(site_json("site-a")),
    )
    .await;
    let policy = json!({"id": "telecare", "name": "Telecare", "min_severity": "major",
        "tiers": [{"targets": [{"type": "role", "id": "nurse_lead"}], "ack_deadline_s": 60}]});
    let r = app
        .call(
            Method::POST,
            "/api/v1/escalation_policies",
            Some(&t),
            Some(policy.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.add_user("mgr", Role::Manager, Some(&["site-a"])).await;
    let m = app.login("mgr").await;
    let r = app
        .call(
            Method::GET,
            "/api/v1/escalation_policies/telecare",
            Some(&m),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, policy);
    let r = app
        .call(
            Method::DELETE,
            "/api/v1/escalation_policies/telecare",
            Some(&m),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let mut bad = policy.clone();
    bad["id"] = json!("p2");
    bad["tiers"][0]["ack_deadline_s"] = json!(0);
    let r = app
        .call(
            Method::POST,
            "/api/v1/escalation_policies",
            Some(&t),
            Some(bad),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("tiers[0].ack_deadline_s"), "{}", r.text);
}
