//! The registry's conformance suite: every test runs on SQLite and on PostgreSQL.

mod api_support;

use api_support::*;
use chrono::TimeZone;
use chrono::Utc;
use serde_json::{json, Value};
use vigil_server::registry::import::{parse_csv, ImportRow};
use vigil_server::registry::{
    Device, EntityKind, EscalationPolicy, Registry, RegistryError, Resident, Responder, Shift,
    Site, SiteFilter,
};

fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("fixture decodes")
}

fn only(sites: &[&str]) -> SiteFilter {
    SiteFilter::Only(sites.iter().map(|s| s.to_string()).collect())
}

async fn seed(reg: &Registry) {
    for s in ["site-a", "site-b"] {
        reg.create(&SiteFilter::All, from::<Site>(site_json(s)))
            .await
            .unwrap();
    }
}

fn field_of(e: RegistryError) -> String {
    match e {
        RegistryError::Invalid(f) => f.field,
        other => panic!("expected a field error, got {other:?}"),
    }
}

both_backends!(
    site_round_trips_through_create_get_update_delete,
    |b, tag| async move {
        let db = TestDb::open(b, tag).await;
        let reg = db.registry();
        let site: Site = from(site_json("home-1"));
        reg.create(&SiteFilter::All, site.clone()).await.unwrap();
        let got: Site = reg.get(&SiteFilter::All, "home-1").await.unwrap();
        assert_eq!(got, site);
        let mut changed = site.clone();
        changed.address = "2 Side Street".into();
        changed.timezone = chrono_tz::Europe::Berlin;
        reg.update(&SiteFilter::All, "home-1", changed.clone())
            .await
            .unwrap();
        assert_eq!(
            reg.get::<Site>(&SiteFilter::All, "home-1").await.unwrap(),
            changed
        );
        reg.delete::<Site>(&SiteFilter::All, "home-1")
            .await
            .unwrap();
        assert!(matches!(
            reg.get::<Site>(&SiteFilter::All, "home-1").await,
            Err(RegistryError::NotFound { .. })
        ));
        db.cleanup().await;
    }
);

both_backends!(creating_an_existing_id_is_a_conflict, |b, tag| async move {
    let db = TestDb::open(b, tag).await;
    let reg = db.registry();
    seed(&reg).await;
    let again = reg
        .create(&SiteFilter::All, from::<Site>(site_json("site-a")))
        .await;
    assert!(
        matches!(again, Err(RegistryError::AlreadyExists { .. })),
        "{again:?}"
    );
    db.cleanup().await;
});

both_backends!(
    references_to_missing_or_foreign_entities_name_the_field,
    |b, tag| async move {
        let db = TestDb::open(b, tag).await;
        let reg = db.registry();
        seed(&reg).await;
        let orphan = reg
            .create(
                &SiteFilter::All,
                from::<Resident>(resident_json("r1", "nowhere")),
            )
            .await;
        assert_eq!(field_of(orphan.unwrap_err()), "site_id");

        reg.create(
            &SiteFilter::All,
            from::<Resident>(resident_json("r1", "site-a")),
        )
        .await
        .unwrap();
        // A meter at site B cannot belong to a resident of site A.
        let cross = reg
            .create(
                &SiteFilter::All,
                from::<Device>(device_json("m1", "site-b", "r1")),
            )
            .await;
        assert_eq!(field_of(cross.unwrap_err()), "resident_id");
        reg.create(
            &SiteFilter::All,
            from::<Device>(device_json("m1", "site-a", "r1")),
        )
        .await
        .unwrap();

        // A shift needs a responder who covers the site.
        reg.create(
            &SiteFilter::All,
            from::<Responder>(responder_json("n1", &["site-b"])),
        )
        .await
        .unwrap();
        let shift = json!({"id": "s1", "site_id": "site-a", "responder_id": "n1",
        "schedule": {"type": "weekly", "days": ["Mon"], "start": "08:00", "end": "20:00"}});
        let bad = reg.create(&SiteFilter::All, from::<Shift>(shift)).await;
        assert_eq!(field_of(bad.unwrap_err()), "responder_id");
        db.cleanup().await;
    }
);

both_backends!(
    deleting_a_site_that_still_has_residents_is_refused,
    |b, tag| async move {
        let db = TestDb::open(b, tag).await;
        let reg = db.registry();
        seed(&reg).await;
        reg.create(
            &SiteFilter::All,
            from::<Resident>(resident_json("r1", "site-a")),
        )
        .await
        .unwrap();
        let refused = reg.delete::<Site>(&SiteFilter::All, "site-a").await;
        assert!(
            matches!(refused, Err(RegistryError::InUse(_))),
            "{refused:?}"
        );
        assert!(reg.get::<Site>(&SiteFilter::All, "site-a").await.is_ok());
        db.cleanup().await;
    }
);

both_backends!(
    lists_are_scoped_to_sites_and_paged_by_id,
    |b, tag| async move {
        let db = TestDb::open(b, tag).await;
        let reg = db.registry();
        seed(&reg).await;
        for i in 0..5 {
            reg.create(
                &SiteFilter::All,
                from::<Resident>(resident_json(&format!("a{i}"), "site-a")),
            )
            .await
            .unwrap();
            reg.create(
                &SiteFilter::All,
                from::<Resident>(resident_json(&format!("b{i}"), "site-b")),
            )
            .await
            .unwrap();
        }
        let first = reg
            .list::<Resident>(&only(&["site-a"]), None, 3)
            .await
            .unwrap();
        let ids: Vec<_> = first.items.iter().map(|r| r.id.to_string()).collect();
        assert_eq!(ids, ["a0", "a1", "a2"]);
        let second = reg
            .list::<Resident>(&only(&["site-a"]), first.next_after, 3)
            .await
            .unwrap();
        let ids: Vec<_> = second.items.iter().map(|r| r.id.to_string()).collect();
        assert_eq!(ids, ["a3", "a4"]);
        assert_eq!(second.next_after, None);
        assert_eq!(
            reg.list::<Resident>(&SiteFilter::All, None, 100)
                .await
                .unwrap()
                .items
                .len(),
            10
        );
        assert!(matches!(
            reg.get::<Resident>(&only(&["site-a"]), "b0").await,
            Err(RegistryError::NotFound { .. })
        ));
        let sites = reg
            .list::<Site>(&only(&["site-b"]), None, 100)
            .await
            .unwrap();
        assert_eq!(sites.items.len(), 1);
        db.cleanup().await;
    }
);

both_backends!(
    a_responder_of_two_sites_is_seen_from_either_but_changed_only_with_both,
    |b, tag| async move {
        let db = TestDb::open(b, tag).await;
        let reg = db.registry();
        seed(&reg).await;
        let n: Responder = from(responder_json("n1", &["site-a", "site-b"]));
        reg.create(&SiteFilter::All, n.clone()).await.unwrap();
        assert_eq!(
            reg.list::<Responder>(&only(&["site-a"]), None, 10)
                .await
                .unwrap()
                .items
                .len(),
            1
        );
        assert_eq!(
            reg.list::<Responder>(&only(&["site-b"]), None, 10)
                .await
                .unwrap()
                .items
                .len(),
            1
        );
        let mut narrowed = n.clone();
        narrowed.site_ids.truncate(1);
        let out = reg.update(&only(&["site-a"]), "n1", narrowed.clone()).await;
        assert!(
            matches!(out, Err(RegistryError::OutOfScope { .. })),
            "{out:?}"
        );
        reg.update(&SiteFilter::All, "n1", narrowed).await.unwrap();
        assert!(reg
            .list::<Responder>(&only(&["site-b"]), None, 10)
            .await
            .unwrap()
            .items
            .is_empty());
        db.cleanup().await;
    }
);

both_backends!(
    on_duty_names_the_responders_of_shifts_covering_the_instant,
    |b, tag| async move {
        let db = TestDb::open(b, tag).await;
        let reg = db.registry();
        seed(&reg).await;
        reg.create(
            &SiteFilter::All,
            from::<Responder>(responder_json("day", &["site-a"])),
        )
        .await
        .unwrap();
        reg.create(
            &SiteFilter::All,
            from::<Responder>(responder_json("night", &["site-a"])),
        )
        .await
        .unwrap();
        let days = json!(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]);
        reg.create(
            &SiteFilter::All,
            from::<Shift>(
                json!({"id": "d", "site_id": "site-a", "responder_id": "day",
        "schedule": {"type": "weekly", "days": days, "start": "08:00", "end": "20:00"}}),
            ),
        )
        .await
        .unwrap();
        reg.create(
            &SiteFilter::All,
            from::<Shift>(
                json!({"id": "n", "site_id": "site-a", "responder_id": "night",
        "schedule": {"type": "weekly", "days": days, "start": "20:00", "end": "08:00"}}),
            ),
        )
        .await
        .unwrap();
        // Site A is in Shanghai (UTC+8): 02:00 UTC is 10:00 local, 14:00 UTC is 22:00 local.
        let at = |h| Utc.with_ymd_and_hms(2026, 11, 30, h, 0, 0).unwrap();
        let names = |v: Vec<vigil_server::registry::OnDuty>| {
            v.into_iter()
                .map(|d| d.responder.id.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(
                reg.on_duty(&SiteFilter::All, "site-a", at(2))
                    .await
                    .unwrap()
            ),
            ["day"]
        );
        assert_eq!(
            names(
                reg.on_duty(&SiteFilter::All, "site-a", at(14))
                    .await
                    .unwrap()
            ),
            ["night"]
        );
        assert!(reg
            .on_duty(&SiteFilter::All, "site-b", at(2))
            .await
            .unwrap()
            .is_empty());
        assert!(matches!(
            reg.on_duty(&only(&["site-b"]), "site-a", at(2)).await,
            Err(RegistryError::NotFound { .. })
        ));
        db.cleanup().await;
    }
);

both_backends!(
    import_reports_every_bad_row_and_writes_nothing_unless_all_are_good,
    |b, tag| async move {
        let db = TestDb::open(b, tag).await;
        let reg = db.registry();
        seed(&reg).await;
        let row = |kind, row, doc| ImportRow { kind, row, doc };
        let rows = vec![
            row(EntityKind::Resident, 1, resident_json("ok1", "site-a")),
            row(
                EntityKind::Resident,
                2,
                json!({"id": "bad id!", "site_id": "site-a", "name": "X"}),
            ),
            row(EntityKind::Resident, 3, resident_json("ok1", "site-a")),
            row(EntityKind::Device, 1, device_json("m1", "site-a", "ghost")),
            row(EntityKind::Device, 2, device_json("m2", "site-a", "ok1")),
        ];
        let report = reg
            .import(&SiteFilter::All, rows.clone(), Vec::new(), false)
            .await
            .unwrap();
        assert_eq!(report.imported, 0);
        let found: Vec<_> = report
            .errors
            .iter()
            .map(|e| {
                (
                    e.entity.as_str(),
                    e.row,
                    e.field.clone().unwrap_or_default(),
                )
            })
            .collect();
        assert!(found.contains(&("residents", 2, "id".into())), "{found:?}");
        assert!(found.contains(&("residents", 3, "id".into())), "{found:?}");
        assert!(
            found.contains(&("devices", 1, "resident_id".into())),
            "{found:?}"
        );
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(reg
            .list::<Resident>(&SiteFilter::All, None, 10)
            .await
            .unwrap()
            .items
            .is_empty());

        // Fix the bad rows: the dry run is clean and writes nothing; the real run writes all.
        let good: Vec<ImportRow> = vec![
            row(EntityKind::Resident, 1, resident_json("ok1", "site-a")),
            row(EntityKind::Device, 2, device_json("m2", "site-a", "ok1")),
        ];
        let dry = reg
            .import(&SiteFilter::All, good.clone(), Vec::new(), true)
            .await
            .unwrap();
        assert!(dry.errors.is_empty(), "{:?}", dry.errors);
        assert_eq!(dry.imported, 0);
        assert!(reg
            .list::<Device>(&SiteFilter::All, None, 10)
            .await
            .unwrap()
            .items
            .is_empty());
        let done = reg
            .import(&SiteFilter::All, good, Vec::new(), false)
            .await
            .unwrap();
        assert_eq!(done.imported, 2);
        assert_eq!(
            reg.list::<Device>(&SiteFilter::All, None, 10)
                .await
                .unwrap()
                .items
                .len(),
            1
        );
        db.cleanup().await;
    }
);

both_backends!(
    csv_rows_become_entities_with_lists_and_contacts,
    |b, tag| async move {
        let db = TestDb::open(b, tag).await;
        let reg = db.registry();
        seed(&reg).await;
        let csv = "id,site_id,name,conditions,emergency_contacts,away_until\n\
               r1,site-a,Anna,diabetes;dementia,Bo|+86 138 0000 0001|son,\n\
               r2,site-a,Bert,,Cy|not-a-phone,\n\
               r3,site-a,Cora,,,2026-12-24T00:00:00Z\n";
        let mut errors = Vec::new();
        let rows = parse_csv(EntityKind::Resident, csv.as_bytes(), &mut errors).unwrap();
        let report = reg
            .import(&SiteFilter::All, rows, errors, false)
            .await
            .unwrap();
        assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
        assert_eq!(report.errors[0].row, 3);
        assert_eq!(
            report.errors[0].field.as_deref(),
            Some("emergency_contacts[0].phone")
        );

        let csv = csv.replace("Cy|not-a-phone", "Cy|+86 138 0000 0002");
        let mut errors = Vec::new();
        let rows = parse_csv(EntityKind::Resident, csv.as_bytes(), &mut errors).unwrap();
        let report = reg
            .import(&SiteFilter::All, rows, errors, false)
            .await
            .unwrap();
        assert_eq!(report.imported, 3, "{:?}", report.errors);
        let anna: Resident = reg.get(&SiteFilter::All, "r1").await.unwrap();
        assert_eq!(anna.conditions, ["diabetes", "dementia"]);
        assert_eq!(anna.emergency_contacts[0].relation.as_deref(), Some("son"));
        let cora: Resident = reg.get(&SiteFilter::All, "r3").await.unwrap();
        assert!(cora.away_until.is_some());
        db.cleanup().await;
    }
);

both_backends!(
    an_entity_cannot_move_to_another_site_by_update,
    |b, tag| async move {
        let db = TestDb::open(b, tag).await;
        let reg = db.registry();
        seed(&reg).await;
        reg.create(
            &SiteFilter::All,
            from::<Resident>(resident_json("r1", "site-a")),
        )
        .await
        .unwrap();
        let moved: Resident = from(resident_json("r1", "site-b"));
        assert_eq!(
            field_of(reg.update(&SiteFilter::All, "r1", moved).await.unwrap_err()),
            "site_id"
        );
        db.cleanup().await;
    }
);

both_backends!(
    users_and_sessions_round_trip_and_expired_sessions_are_purged,
    |b, tag| async move {
        use vigil_server::auth::{Role, Session, SiteScope, StoredUser};
        let db = TestDb::open(b, tag).await;
        let store = db.store.clone();
        let user = StoredUser {
            username: "mgr".into(),
            role: Role::Manager,
            scope: SiteScope::Sites(vec!["site-a".into()]),
            password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into(),
            created_at: t0(),
        };
        store.insert_user(&user).await.unwrap();
        assert_eq!(store.get_user("mgr").await.unwrap(), Some(user.clone()));
        assert!(store.insert_user(&user).await.is_err());
        let s = |h: &str, mins| Session {
            token_hash: h.into(),
            username: "mgr".into(),
            created_at: t0(),
            expires_at: t0() + chrono::Duration::minutes(mins),
        };
        store.insert_session(&s("old", 5)).await.unwrap();
        store.insert_session(&s("new", 60)).await.unwrap();
        assert_eq!(store.get_session("new").await.unwrap(), Some(s("new", 60)));
        let purged = store
            .delete_expired_sessions(t0() + chrono::Duration::minutes(10))
            .await
            .unwrap();
        assert_eq!(purged, 1);
        assert_eq!(store.get_session("old").await.unwrap(), None);
        assert_eq!(store.count_admins().await.unwrap(), 0);
        assert!(store.delete_user("mgr").await.unwrap());
        assert_eq!(
            store.get_session("new").await.unwrap(),
            None,
            "sessions go with the user"
        );
        db.cleanup().await;
    }
);

both_backends!(
    csv_responders_and_shifts_carry_channels_and_schedules,
    |b, tag| async move {
        let db = TestDb::open(b, tag).await;
        let reg = db.registry();
        seed(&reg).await;
        let responders = "id,name,role,channels,site_ids\n\
                      n1,Nurse Li,nurse,phone:+86 139 0000 0000;email:li@example.org,site-a;site-b\n\
                      n2,Vol Wu,volunteer,pager:123,site-a\n";
        let mut errors = Vec::new();
        let rows = parse_csv(EntityKind::Responder, responders.as_bytes(), &mut errors).unwrap();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            (errors[0].row, errors[0].field.as_deref()),
            (3, Some("channels[0]"))
        );
        let report = reg
            .import(&SiteFilter::All, rows, errors, false)
            .await
            .unwrap();
        assert_eq!(report.imported, 0, "a bad row stops the whole import");

        let fixed = responders.replace("pager:123", "sms:+86 137 0000 0000");
        let mut errors = Vec::new();
        let rows = parse_csv(EntityKind::Responder, fixed.as_bytes(), &mut errors).unwrap();
        assert_eq!(
            reg.import(&SiteFilter::All, rows, errors, false)
                .await
                .unwrap()
                .imported,
            2
        );
        let li: Responder = reg.get(&SiteFilter::All, "n1").await.unwrap();
        assert_eq!(li.channels.len(), 2);
        assert_eq!(li.site_ids.len(), 2);

        let shifts = "id,site_id,responder_id,type,days,start,end\n\
                  s1,site-a,n1,weekly,Mon;Tue,22:00,06:00\n\
                  s2,site-b,n1,dated,,2026-12-24T18:00:00Z,2026-12-25T06:00:00Z\n\
                  s3,site-b,n2,weekly,Mon,08:00,09:00\n";
        let mut errors = Vec::new();
        let rows = parse_csv(EntityKind::Shift, shifts.as_bytes(), &mut errors).unwrap();
        let report = reg
            .import(&SiteFilter::All, rows, errors, true)
            .await
            .unwrap();
        let bad: Vec<_> = report
            .errors
            .iter()
            .map(|e| (e.row, e.field.clone()))
            .collect();
        assert_eq!(
            bad,
            [(4, Some("responder_id".to_owned()))],
            "n2 does not cover site-b"
        );
        db.cleanup().await;
    }
);

fn policy_json(id: &str, responder: &str) -> Value {
    json!({"id": id, "name": format!("Policy {id}"), "min_severity": "major",
        "tiers": [
            {"targets": [{"type": "role", "id": "on_duty_caregiver"}], "ack_deadline_s": 60},
            {"targets": [{"type": "responder", "id": responder}, {"type": "emergency_contact"}],
             "ack_deadline_s": 300}]})
}

both_backends!(
    escalation_policies_round_trip_and_sites_refer_to_them,
    |b, tag| async move {
        let db = TestDb::open(b, tag).await;
        let reg = db.registry();
        seed(&reg).await;
        reg.create(
            &SiteFilter::All,
            from::<Responder>(responder_json("n1", &["site-a"])),
        )
        .await
        .unwrap();
        let p: EscalationPolicy = from(policy_json("telecare", "n1"));
        reg.create(&SiteFilter::All, p.clone()).await.unwrap();
        // District-wide: a manager scoped to one site reads it.
        let got: EscalationPolicy = reg.get(&only(&["site-b"]), "telecare").await.unwrap();
        assert_eq!(got, p);
        let page = reg
            .list::<EscalationPolicy>(&only(&["site-b"]), None, 10)
            .await
            .unwrap();
        assert_eq!(page.items, vec![p.clone()]);
        let mut changed = p.clone();
        changed.tiers[0].ack_deadline_s = 45;
        reg.update(&SiteFilter::All, "telecare", changed.clone())
            .await
            .unwrap();
        assert_eq!(
            reg.get::<EscalationPolicy>(&SiteFilter::All, "telecare")
                .await
                .unwrap(),
            changed
        );
        // A site names a policy that exists, or the field is invalid.
        let mut site: Site = from(site_json("site-c"));
        site.escalation_policy = Some("nope".into());
        let err = reg
            .create(&SiteFilter::All, site.clone())
            .await
            .unwrap_err();
        assert_eq!(field_of(err), "escalation_policy");
        site.escalation_policy = Some("telecare".into());
        reg.create(&SiteFilter::All, site).await.unwrap();
        reg.delete::<EscalationPolicy>(&SiteFilter::All, "telecare")
            .await
            .unwrap();
        assert!(matches!(
            reg.get::<EscalationPolicy>(&SiteFilter::All, "telecare")
                .await,
            Err(RegistryError::NotFound { .. })
        ));
        db.cleanup().await;
    }
);

both_backends!(
    invalid_escalation_policies_name_the_field,
    |b, tag| async move {
        let db = TestDb::open(b, tag).await;
        let reg = db.registry();
        seed(&reg).await;
        let bad = |edit: &dyn Fn(&mut Value)| {
            let mut v = policy_json("p1", "n1");
            edit(&mut v);
            from::<EscalationPolicy>(v)
        };
        let cases: Vec<(Value, &str)> = vec![
            (json!([]), "tiers"),
            (
                json!([{"targets": [], "ack_deadline_s": 60}]),
                "tiers[0].targets",
            ),
            (
                json!([{"targets": [{"type": "emergency_contact"}], "ack_deadline_s": 0}]),
                "tiers[0].ack_deadline_s",
            ),
            (
                json!([{"targets": [{"type": "emergency_contact"}], "ack_deadline_s": 86401}]),
                "tiers[0].ack_deadline_s",
            ),
            (
                json!([{"targets": [{"type": "emergency_contact"}, {"type": "emergency_contact"}],
                    "ack_deadline_s": 60}]),
                "tiers[0].targets[1]",
            ),
        ];
        for (tiers, field) in cases {
            let p = bad(&|v: &mut Value| v["tiers"] = tiers.clone());
            let err = reg.create(&SiteFilter::All, p).await.unwrap_err();
            assert_eq!(field_of(err), field, "tiers {tiers}");
        }
        // The responder a tier names must exist.
        let err = reg
            .create(
                &SiteFilter::All,
                from::<EscalationPolicy>(policy_json("p1", "ghost")),
            )
            .await
            .unwrap_err();
        assert_eq!(field_of(err), "tiers[1].targets[0]");
        // A kind's chain names its own fields.
        let p = bad(&|v: &mut Value| {
            v["by_kind"] = json!({"water_no_use": {"tiers": []}});
        });
        let err = reg.create(&SiteFilter::All, p).await.unwrap_err();
        assert_eq!(field_of(err), "by_kind.water_no_use.tiers");
        // Role names are checked when read.
        let mut v = policy_json("p1", "n1");
        v["tiers"][0]["targets"][0]["id"] = json!("Nurse Lead");
        assert!(serde_json::from_value::<EscalationPolicy>(v).is_err());
        db.cleanup().await;
    }
);

both_backends!(
    policies_import_as_json_before_the_sites_naming_them,
    |b, tag| async move {
        let db = TestDb::open(b, tag).await;
        let reg = db.registry();
        let mut site = site_json("site-p");
        site["escalation_policy"] = json!("night");
        let policy = json!({"id": "night", "name": "Night", "min_severity": "critical",
            "tiers": [{"targets": [{"type": "role", "id": "district_duty_operator"}],
                       "ack_deadline_s": 120}]});
        let rows = vigil_server::registry::import::parse_json(
            serde_json::to_vec(&json!({"sites": [site], "escalation_policies": [policy]}))
                .unwrap()
                .as_slice(),
        )
        .unwrap();
        let report = reg
            .import(&SiteFilter::All, rows, Vec::new(), false)
            .await
            .unwrap();
        assert!(report.errors.is_empty(), "{report:?}");
        assert_eq!(report.imported, 2);
        let stored: Site = reg.get(&SiteFilter::All, "site-p").await.unwrap();
        assert_eq!(stored.escalation_policy.as_deref(), Some("night"));
        // CSV has no room for tiers.
        let mut errors = Vec::new();
        assert!(parse_csv(EntityKind::EscalationPolicy, b"id,name\n", &mut errors).is_err());
        // A shift may carry a roster role; a bad one is refused when read.
        reg.create(
            &SiteFilter::All,
            from::<Responder>(responder_json("op1", &["site-p"])),
        )
        .await
        .unwrap();
        let shift: Shift = from(
            json!({"id": "sh1", "site_id": "site-p", "responder_id": "op1",
            "role": "district_duty_operator",
            "schedule": {"type": "weekly", "days": ["Mon"], "start": "08:00", "end": "20:00"}}),
        );
        reg.create(&SiteFilter::All, shift.clone()).await.unwrap();
        let got: Shift = reg.get(&SiteFilter::All, "sh1").await.unwrap();
        assert_eq!(
            got.role.as_ref().map(|r| r.as_str()),
            Some("district_duty_operator")
        );
        assert!(
            serde_json::from_value::<Shift>(json!({"id": "sh2", "site_id": "site-p",
            "responder_id": "op1", "role": "Boss",
            "schedule": {"type": "weekly", "days": ["Mon"], "start": "08:00", "end": "20:00"}}))
            .is_err()
        );
        db.cleanup().await;
    }
);
