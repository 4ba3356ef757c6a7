//! Bad input on every endpoint gets a typed JSON error naming what was wrong, never a 500.

mod api_support;

use api_support::*;
use axum::http::{Method, StatusCode};
use serde_json::json;
use vigil_server::auth::Role;

const COLLECTIONS: [&str; 6] = [
    "sites",
    "residents",
    "devices",
    "gateways",
    "responders",
    "shifts",
];

async fn admin_app(tag: &str) -> (TestApp, String) {
    let app = TestApp::new(Backend::Sqlite, tag).await;
    app.add_user("root", Role::Admin, None).await;
    let token = app.login("root").await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/sites",
            Some(&token),
            Some(site_json("site-a")),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = app
        .call(
            Method::POST,
            "/api/v1/residents",
            Some(&token),
            Some(resident_json("res-a", "site-a")),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    (app, token)
}

#[tokio::test]
async fn malformed_json_is_400_on_every_write_endpoint() {
    let (app, token) = admin_app("malformed").await;
    let mut uris: Vec<String> = COLLECTIONS.iter().map(|c| format!("/api/v1/{c}")).collect();
    uris.push("/api/v1/login".into());
    uris.push("/api/v1/users".into());
    uris.push("/api/v1/import".into());
    for uri in &uris {
        for body in ["{", "{\"id\": }", "[1,2", "", "{} trailing"] {
            let r = app
                .raw(Method::POST, uri, Some(&token), "application/json", body)
                .await;
            assert_eq!(
                r.status,
                StatusCode::BAD_REQUEST,
                "POST {uri} {body:?}: {}",
                r.text
            );
            assert_eq!(r.body["error"]["code"], "malformed_json", "{uri}");
        }
    }
    let r = app
        .raw(
            Method::PUT,
            "/api/v1/sites/site-a",
            Some(&token),
            "application/json",
            "{",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn wrong_types_and_unknown_fields_name_the_field() {
    let (app, token) = admin_app("types").await;
    let cases = [
        (
            "/api/v1/sites",
            json!({"id": "s2", "kind": "castle", "name": "n", "address": "a", "timezone": "UTC"}),
            "kind",
        ),
        (
            "/api/v1/sites",
            json!({"id": 7, "kind": "household", "name": "n", "address": "a", "timezone": "UTC"}),
            "id",
        ),
        (
            "/api/v1/sites",
            json!({"id": "s2", "kind": "household", "name": "n", "address": "a", "timezone": "UTC", "colour": "red"}),
            "colour",
        ),
        (
            "/api/v1/residents",
            json!({"id": "r2", "site_id": "site-a", "name": "n", "emergency_contacts": [{"name": "x", "phone": 5}]}),
            "emergency_contacts[0].phone",
        ),
        (
            "/api/v1/residents",
            json!({"id": "r2", "site_id": "site-a", "name": "n", "away_until": "tomorrow"}),
            "away_until",
        ),
        (
            "/api/v1/residents",
            json!({"id": "r2", "site_id": "site-a", "name": "n", "emergency_contacts": [{"name": "x", "phone": "+86 1", "fax": "1"}]}),
            "emergency_contacts[0].fax",
        ),
        (
            "/api/v1/devices",
            json!({"id": "d", "kind": "meter", "site_id": "site-a", "installed_on": "2026-13-01", "zone": "z"}),
            "installed_on",
        ),
        (
            "/api/v1/responders",
            json!({"id": "n", "name": "n", "role": "nurse", "site_ids": "site-a"}),
            "site_ids",
        ),
        (
            "/api/v1/shifts",
            json!({"id": "s", "site_id": "site-a", "responder_id": "n", "schedule": {"type": "weekly", "days": ["Funday"], "start": "08:00", "end": "09:00"}}),
            "schedule",
        ),
        (
            "/api/v1/login",
            json!({"username": "root", "password": 12}),
            "password",
        ),
        (
            "/api/v1/login",
            json!({"username": "root", "password": "x", "remember": true}),
            "remember",
        ),
    ];
    for (uri, body, field) in cases {
        let r = app
            .call(Method::POST, uri, Some(&token), Some(body.clone()))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{uri} {body}: {}",
            r.text
        );
        assert_eq!(r.body["error"]["code"], "invalid_field");
        assert_eq!(r.body["error"]["field"], field, "{uri} {body}: {}", r.text);
    }
}

#[tokio::test]
async fn a_bad_timezone_is_refused_naming_the_field() {
    let (app, token) = admin_app("tz").await;
    for tz in ["Mars/Olympus", "UTC+8", "", "asia/shanghai "] {
        let mut site = site_json("site-z");
        site["timezone"] = json!(tz);
        let r = app
            .call(Method::POST, "/api/v1/sites", Some(&token), Some(site))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{tz}: {}",
            r.text
        );
        assert_eq!(r.body["error"]["field"], "timezone");
    }
}

#[tokio::test]
async fn values_that_parse_but_are_invalid_name_the_field() {
    let (app, token) = admin_app("values").await;
    let mut r1 = resident_json("r2", "site-a");
    r1["emergency_contacts"][0]["phone"] = json!("call me maybe");
    let mut r2 = resident_json("r3", "site-a");
    r2["name"] = json!("   ");
    let cases = [
        ("/api/v1/residents", r1, "emergency_contacts[0].phone"),
        ("/api/v1/residents", r2, "name"),
        (
            "/api/v1/devices",
            json!({"id": "d1", "kind": "meter", "site_id": "site-a"}),
            "resident_id",
        ),
        (
            "/api/v1/responders",
            json!({"id": "n", "name": "n", "role": "nurse", "site_ids": []}),
            "site_ids",
        ),
        (
            "/api/v1/responders",
            json!({"id": "n", "name": "n", "role": "nurse", "site_ids": ["site-a"], "channels": [{"kind": "email", "address": "nope"}]}),
            "channels[0].address",
        ),
        (
            "/api/v1/shifts",
            json!({"id": "s", "site_id": "site-a", "responder_id": "n", "schedule": {"type": "dated", "start": "2026-12-02T00:00:00Z", "end": "2026-12-01T00:00:00Z"}}),
            "schedule.end",
        ),
        ("/api/v1/residents", resident_json("bad id", "site-a"), "id"),
        (
            "/api/v1/residents",
            resident_json(&"x".repeat(33), "site-a"),
            "id",
        ),
    ];
    for (uri, body, field) in cases {
        let r = app
            .call(Method::POST, uri, Some(&token), Some(body.clone()))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{uri} {body}: {}",
            r.text
        );
        assert_eq!(r.body["error"]["field"], field, "{uri} {body}: {}", r.text);
    }
}

#[tokio::test]
async fn oversize_bodies_are_413() {
    let (app, token) = admin_app("oversize").await;
    let limit = app.state.config().max_body_bytes;
    let mut site = site_json("big");
    site["address"] = json!("x".repeat(limit + 1));
    for uri in COLLECTIONS
        .iter()
        .map(|c| format!("/api/v1/{c}"))
        .chain(["/api/v1/login".to_owned()])
    {
        let r = app
            .call(Method::POST, &uri, Some(&token), Some(site.clone()))
            .await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{uri}: {}", r.text);
        assert_eq!(r.body["error"]["code"], "payload_too_large");
    }
    // Imports have their own, larger limit: a body over the JSON limit is accepted there.
    let rows: Vec<_> = (0..600)
        .map(|i| resident_json(&format!("r{i}"), "site-a"))
        .collect();
    let body = serde_json::to_string(&rows).unwrap();
    assert!(body.len() > limit);
    let r = app
        .raw(
            Method::POST,
            "/api/v1/import/residents?dry_run=true",
            Some(&token),
            "application/json",
            body,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        &r.text[..200.min(r.text.len())]
    );
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let (app, token) = admin_app("ctype").await;
    let body = site_json("s9").to_string();
    for ct in ["text/plain", "application/x-www-form-urlencoded"] {
        let r = app
            .raw(
                Method::POST,
                "/api/v1/sites",
                Some(&token),
                ct,
                body.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct}");
    }
    let r = app
        .raw(
            Method::POST,
            "/api/v1/import/residents",
            Some(&token),
            "text/plain",
            "id\n",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn bad_ids_in_the_path_are_400_and_missing_ones_404() {
    let (app, token) = admin_app("ids").await;
    for c in COLLECTIONS {
        for bad in ["bad%20id", "%2F..%2Fetc", &"x".repeat(33), "semi%3Bcolon"] {
            let uri = format!("/api/v1/{c}/{bad}");
            for m in [Method::GET, Method::DELETE] {
                let r = app.call(m.clone(), &uri, Some(&token), None).await;
                assert_eq!(r.status, StatusCode::BAD_REQUEST, "{m} {uri}: {}", r.text);
                assert_eq!(r.body["error"]["code"], "invalid_id");
            }
        }
        let r = app
            .call(
                Method::GET,
                &format!("/api/v1/{c}/nothing-here"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{c}");
    }
    for uri in [
        "/api/v1/devices/bad%20id/readings?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z",
        "/api/v1/residents/bad%20id/water-use?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z&bucket=day",
        "/api/v1/sites/bad%20id/on-duty",
    ] {
        let r = app.call(Method::GET, uri, Some(&token), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.text);
    }
    // The path id must match the body id.
    let r = app
        .call(
            Method::PUT,
            "/api/v1/residents/res-a",
            Some(&token),
            Some(resident_json("other", "site-a")),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["error"]["field"], "id");
}

#[tokio::test]
async fn bad_query_strings_are_400() {
    let (app, token) = admin_app("query").await;
    for uri in [
        "/api/v1/residents?limit=abc",
        "/api/v1/residents?limit=0",
        "/api/v1/residents?limit=100000",
        "/api/v1/residents?colour=red",
        "/api/v1/residents?site=bad%20id",
        "/api/v1/device-states?limit=-1",
        "/api/v1/sites/site-a/on-duty?at=noon",
        "/api/v1/import/residents?dry_run=maybe",
        "/api/v1/devices/d/readings?from=yesterday&to=2026-11-02T00:00:00Z",
        "/api/v1/residents/res-a/water-use?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z&bucket=week",
        "/api/v1/residents/res-a/water-use?from=2026-11-01T00:00:00Z",
    ] {
        let m = if uri.contains("import") { Method::POST } else { Method::GET };
        let r = app.call(m, uri, Some(&token), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.text);
        assert!(r.body["error"]["code"].is_string(), "{uri}");
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_without_leaking() {
    let (app, token) = admin_app("routes").await;
    let r = app
        .call(Method::GET, "/api/v1/nope", Some(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"]["code"], "not_found");
    let r = app
        .call(Method::PATCH, "/api/v1/sites/site-a", Some(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = app
        .call(
            Method::POST,
            "/api/v1/import/widgets",
            Some(&token),
            Some(json!([])),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
