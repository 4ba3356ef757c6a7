//! Roles and site scopes over the HTTP API: what a manager, operator and supervisor can reach.

mod api_support;

use api_support::*;
use axum::http::{Method, StatusCode};
use serde_json::json;
use vigil_server::auth::Role;

/// Two facilities, each with a resident, a meter, a gateway, a responder and a shift.
async fn district(app: &TestApp) {
    app.add_user("root", Role::Admin, None).await;
    let admin = app.login("root").await;
    for s in ["site-a", "site-b"] {
        let x = &s[5..];
        let calls = [
            ("/api/v1/sites", site_json(s)),
            ("/api/v1/residents", resident_json(&format!("res-{x}"), s)),
            (
                "/api/v1/devices",
                device_json(&format!("met-{x}"), s, &format!("res-{x}")),
            ),
            (
                "/api/v1/gateways",
                json!({"id": format!("gw-{x}"), "site_id": s, "name": "Gateway"}),
            ),
            (
                "/api/v1/responders",
                responder_json(&format!("nur-{x}"), &[s]),
            ),
            (
                "/api/v1/shifts",
                json!({"id": format!("sh-{x}"), "site_id": s,
                "responder_id": format!("nur-{x}"),
                "schedule": {"type": "weekly", "days": ["Mon"], "start": "08:00", "end": "20:00"}}),
            ),
        ];
        for (uri, body) in calls {
            let r = app.call(Method::POST, uri, Some(&admin), Some(body)).await;
            assert_eq!(r.status, StatusCode::CREATED, "{uri}: {}", r.text);
        }
    }
}

const B_RESOURCES: [&str; 10] = [
    "/api/v1/sites/site-b",
    "/api/v1/residents/res-b",
    "/api/v1/devices/met-b",
    "/api/v1/gateways/gw-b",
    "/api/v1/responders/nur-b",
    "/api/v1/shifts/sh-b",
    "/api/v1/sites/site-b/on-duty",
    "/api/v1/devices/met-b/readings?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z",
    "/api/v1/residents/res-b/water-use?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z&bucket=hour",
    "/api/v1/residents?site=site-b",
];

both_backends!(
    manager_of_site_a_finds_nothing_of_site_b,
    |b, tag| async move {
        let app = TestApp::new(b, tag).await;
        district(&app).await;
        app.add_user("mgr-a", Role::Manager, Some(&["site-a"]))
            .await;
        let mgr = app.login("mgr-a").await;

        for uri in B_RESOURCES {
            let r = app.call(Method::GET, uri, Some(&mgr), None).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "GET {uri}: {}", r.text);
            assert_eq!(r.body["error"]["code"], "not_found");
            // The same resource of site A is there.
            let a = uri.replace("site-b", "site-a").replace("-b", "-a");
            let r = app.call(Method::GET, &a, Some(&mgr), None).await;
            assert_eq!(r.status, StatusCode::OK, "GET {a}: {}", r.text);
        }
        for (uri, body) in [
            ("/api/v1/residents/res-b", resident_json("res-b", "site-b")),
            (
                "/api/v1/devices/met-b",
                device_json("met-b", "site-b", "res-b"),
            ),
        ] {
            let r = app.call(Method::PUT, uri, Some(&mgr), Some(body)).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "PUT {uri}: {}", r.text);
            let r = app.call(Method::DELETE, uri, Some(&mgr), None).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "DELETE {uri}: {}", r.text);
        }
        // Lists show only site A.
        for list in [
            "residents",
            "devices",
            "gateways",
            "responders",
            "shifts",
            "sites",
            "device-states",
        ] {
            let r = app
                .call(Method::GET, &format!("/api/v1/{list}"), Some(&mgr), None)
                .await;
            assert_eq!(r.status, StatusCode::OK, "{list}: {}", r.text);
            let items = r.body["items"].as_array().unwrap();
            assert_eq!(items.len(), 1, "{list}: {}", r.text);
            assert!(
                !r.text.contains("site-b"),
                "{list} leaks site B: {}",
                r.text
            );
        }
        // Creating something in site B looks exactly like naming a site that does not exist.
        let into_b = app
            .call(
                Method::POST,
                "/api/v1/residents",
                Some(&mgr),
                Some(resident_json("new", "site-b")),
            )
            .await;
        let into_nowhere = app
            .call(
                Method::POST,
                "/api/v1/residents",
                Some(&mgr),
                Some(resident_json("new", "site-x")),
            )
            .await;
        assert_eq!(
            into_b.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            into_b.text
        );
        assert_eq!(into_b.body["error"]["field"], "site_id");
        assert_eq!(into_b.text.replace("site-b", "site-x"), into_nowhere.text);
        // A device of site A cannot be tied to a resident of site B.
        let r = app
            .call(
                Method::POST,
                "/api/v1/devices",
                Some(&mgr),
                Some(device_json("met-x", "site-a", "res-b")),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["error"]["field"], "resident_id");
        app.db.cleanup().await;
    }
);

#[tokio::test]
async fn a_manager_maintains_their_facility_but_not_sites_or_users() {
    let app = TestApp::new(Backend::Sqlite, "mgr").await;
    district(&app).await;
    app.add_user("mgr-a", Role::Manager, Some(&["site-a"]))
        .await;
    let mgr = app.login("mgr-a").await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/residents",
            Some(&mgr),
            Some(resident_json("res-a2", "site-a")),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .call(
            Method::POST,
            "/api/v1/sites",
            Some(&mgr),
            Some(site_json("site-c")),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .call(
            Method::PUT,
            "/api/v1/sites/site-a",
            Some(&mgr),
            Some(site_json("site-a")),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .call(Method::GET, "/api/v1/users", Some(&mgr), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["error"]["code"], "forbidden");
}

#[tokio::test]
async fn an_operator_reads_but_cannot_change_the_registry() {
    let app = TestApp::new(Backend::Sqlite, "op").await;
    district(&app).await;
    app.add_user("op", Role::Operator, Some(&["site-a", "site-b"]))
        .await;
    let op = app.login("op").await;
    let r = app
        .call(Method::GET, "/api/v1/residents/res-b", Some(&op), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let writes = [
        (
            Method::POST,
            "/api/v1/residents",
            Some(resident_json("x", "site-a")),
        ),
        (
            Method::PUT,
            "/api/v1/residents/res-a",
            Some(resident_json("res-a", "site-a")),
        ),
        (Method::DELETE, "/api/v1/residents/res-a", None),
        (
            Method::POST,
            "/api/v1/devices",
            Some(device_json("d", "site-a", "res-a")),
        ),
        (Method::DELETE, "/api/v1/devices/met-a", None),
        (Method::DELETE, "/api/v1/gateways/gw-a", None),
        (Method::DELETE, "/api/v1/shifts/sh-a", None),
        (Method::DELETE, "/api/v1/responders/nur-a", None),
        (Method::DELETE, "/api/v1/sites/site-a", None),
        (
            Method::POST,
            "/api/v1/import/residents",
            Some(json!([resident_json("x", "site-a")])),
        ),
    ];
    for (m, uri, body) in writes {
        let r = app.call(m.clone(), uri, Some(&op), body).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{m} {uri}: {}", r.text);
    }
    let r = app
        .call(Method::GET, "/api/v1/residents/res-a", Some(&op), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "nothing was deleted");
}

#[tokio::test]
async fn a_supervisor_sees_every_site_of_the_district_and_changes_nothing() {
    let app = TestApp::new(Backend::Sqlite, "sup").await;
    district(&app).await;
    app.add_user("sup", Role::Supervisor, None).await;
    let sup = app.login("sup").await;
    let r = app
        .call(Method::GET, "/api/v1/sites", Some(&sup), None)
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    let r = app
        .call(Method::DELETE, "/api/v1/gateways/gw-b", Some(&sup), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn requests_without_a_valid_session_are_401() {
    let app = TestApp::new(Backend::Sqlite, "nosess").await;
    district(&app).await;
    let unknown = "a".repeat(64);
    for token in [None, Some("garbage"), Some(unknown.as_str())] {
        let r = app
            .call(Method::GET, "/api/v1/residents", token, None)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(r.body["error"]["code"], "unauthenticated");
        assert!(r.headers.contains_key("www-authenticate"));
    }
}

#[tokio::test]
async fn sessions_expire_after_their_lifetime() {
    let app = TestApp::new(Backend::Sqlite, "expiry").await;
    app.add_user("root", Role::Admin, None).await;
    let token = app.login("root").await;
    let lifetime = app.state.config().session_lifetime_s as i64;
    app.clock.advance(chrono::Duration::seconds(lifetime - 1));
    let r = app
        .call(Method::GET, "/api/v1/me", Some(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["role"], "admin");
    app.clock.advance(chrono::Duration::seconds(1));
    let r = app
        .call(Method::GET, "/api/v1/me", Some(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn logout_ends_the_session_and_clears_the_cookie() {
    let app = TestApp::new(Backend::Sqlite, "logout").await;
    app.add_user("root", Role::Admin, None).await;
    let token = app.login("root").await;
    let r = app
        .call(Method::POST, "/api/v1/logout", Some(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let cookie = r.headers["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with("vigil_session=;") && cookie.contains("Max-Age=0"),
        "{cookie}"
    );
    let r = app
        .call(Method::GET, "/api/v1/me", Some(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn browsers_get_an_httponly_strict_cookie_that_works_like_the_bearer_token() {
    let app = TestApp::new(Backend::Sqlite, "cookie").await;
    app.add_user("root", Role::Admin, None).await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/login",
            None,
            Some(json!({"username": "root", "password": PASSWORD})),
        )
        .await;
    let cookie = r.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Secure"), "{cookie}");
    let token = r.body["token"].as_str().unwrap();
    assert!(cookie.starts_with(&format!("vigil_session={token};")));
    let req = axum::http::Request::get("/api/v1/me")
        .header("cookie", format!("theme=dark; vigil_session={token}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["username"], "root");
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let app = TestApp::new(Backend::Sqlite, "creds").await;
    app.add_user("root", Role::Admin, None).await;
    let wrong = app
        .call(
            Method::POST,
            "/api/v1/login",
            None,
            Some(json!({"username": "root", "password": "not the password"})),
        )
        .await;
    let unknown = app
        .call(
            Method::POST,
            "/api/v1/login",
            None,
            Some(json!({"username": "nobody", "password": "not the password"})),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.text, unknown.text);
    assert_eq!(wrong.body["error"]["code"], "invalid_credentials");
}

#[tokio::test]
async fn login_attempts_are_rate_limited_per_user_and_per_address() {
    let config = vigil_server::http::ApiConfig {
        login_per_user: vigil_server::auth::LoginRateLimit {
            burst: 3,
            per_minute: 1,
        },
        login_per_ip: vigil_server::auth::LoginRateLimit {
            burst: 5,
            per_minute: 1,
        },
        ..Default::default()
    };
    let mut app = TestApp::with_config(Backend::Sqlite, "rate", config).await;
    app.add_user("root", Role::Admin, None).await;
    let attempt = |user: &str, pw: &str| json!({"username": user, "password": pw});
    for _ in 0..3 {
        let r = app
            .call(
                Method::POST,
                "/api/v1/login",
                None,
                Some(attempt("root", "guess guess guess")),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Even the right password is refused now, with a hint when to come back.
    let r = app
        .call(
            Method::POST,
            "/api/v1/login",
            None,
            Some(attempt("root", PASSWORD)),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert_eq!(r.headers["retry-after"], "60");
    // Another address does not help against the per-user limit.
    app.client_addr = "198.51.100.7:4000".parse().unwrap();
    let r = app
        .call(
            Method::POST,
            "/api/v1/login",
            None,
            Some(attempt("root", PASSWORD)),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    app.clock.advance(chrono::Duration::seconds(60));
    let r = app
        .call(
            Method::POST,
            "/api/v1/login",
            None,
            Some(attempt("root", PASSWORD)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // One address spraying user names is stopped by the per-address limit.
    app.client_addr = "203.0.113.9:4000".parse().unwrap();
    for i in 0..5 {
        let r = app
            .call(
                Method::POST,
                "/api/v1/login",
                None,
                Some(attempt(&format!("u{i}"), "x")),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = app
        .call(
            Method::POST,
            "/api/v1/login",
            None,
            Some(attempt("u9", "x")),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn users_are_managed_by_admins_and_the_last_admin_stays() {
    let app = TestApp::new(Backend::Sqlite, "users").await;
    district(&app).await;
    let admin = app.login("root").await;
    let r = app
        .call(Method::POST, "/api/v1/users", Some(&admin),
            Some(json!({"username": "mgr-b", "password": PASSWORD, "role": "manager", "sites": ["site-b"]})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(!r.text.contains("argon2"));
    let r = app
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&admin),
            Some(json!({"username": "mgr-all", "password": PASSWORD, "role": "manager"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["error"]["field"], "sites");
    let r = app
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&admin),
            Some(json!({"username": "weak", "password": "short", "role": "operator"})),
        )
        .await;
    assert_eq!(r.body["error"]["field"], "password");
    let r = app
        .call(Method::GET, "/api/v1/users", Some(&admin), None)
        .await;
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    let r = app
        .call(Method::DELETE, "/api/v1/users/root", Some(&admin), None)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = app
        .call(Method::DELETE, "/api/v1/users/mgr-b", Some(&admin), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn impossible_user_names_are_refused_like_wrong_passwords() {
    let app = TestApp::new(Backend::Sqlite, "junkname").await;
    app.add_user("root", Role::Admin, None).await;
    for name in ["x".repeat(5000), "semi;colon".into(), String::new()] {
        let r = app
            .call(
                Method::POST,
                "/api/v1/login",
                None,
                Some(json!({"username": name, "password": "whatever it is"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
        assert_eq!(r.body["error"]["code"], "invalid_credentials");
    }
}
