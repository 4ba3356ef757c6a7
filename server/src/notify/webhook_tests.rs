use super::*;

fn t(s: u64) -> Timestamp {
    Timestamp::from_unix_s(1_700_000_000 + s)
}

fn secret() -> WebhookSecret {
    WebhookSecret::new(b"0123456789abcdef-secret".to_vec()).unwrap()
}

fn endpoint(name: &str) -> Endpoint {
    Endpoint::new(name, &format!("http://127.0.0.1:9/{name}"), secret()).unwrap()
}

fn status(code: u16) -> AttemptResult {
    AttemptResult::Status { code }
}

fn drain_log(q: &mut WebhookQueue) -> Vec<DeliveryRecord> {
    std::iter::from_fn(|| q.poll_log()).collect()
}

#[test]
fn the_signature_is_hmac_sha256_over_timestamp_and_body() {
    // Expected value computed independently (Python's hmac module).
    let header = sign(&secret(), t(0), br#"{"alert":1}"#);
    assert_eq!(
        header,
        "t=1700000000,v1=38ffe93e37b67f88608f4954136891ae74ff2cba08691e1849798bb2d719758e"
    );
}

#[test]
fn verification_accepts_only_the_signed_body_from_the_same_secret_in_time() {
    let body = br#"{"alert":1}"#;
    let header = sign(&secret(), t(0), body);
    let tol = Duration::from_secs(300);
    assert_eq!(verify(&secret(), &header, body, t(10), tol), Ok(()));
    assert_eq!(
        verify(&secret(), &header, br#"{"alert":2}"#, t(10), tol),
        Err(WebhookError::BadSignature)
    );
    let other = WebhookSecret::new(b"another-secret-of-16+".to_vec()).unwrap();
    assert_eq!(
        verify(&other, &header, body, t(10), tol),
        Err(WebhookError::BadSignature)
    );
    assert!(matches!(
        verify(&secret(), &header, body, t(301), tol),
        Err(WebhookError::StaleSignature { .. })
    ));
    let multibyte = format!("t=1700000000,v1={}é{}", "0".repeat(31), "0".repeat(31));
    assert_eq!(multibyte.len() - "t=1700000000,v1=".len(), 64);
    for bad in [
        "",
        "t=1,v1=zz",
        "v1=00,t=1",
        "t=x,v1=00",
        multibyte.as_str(),
    ] {
        assert_eq!(
            verify(&secret(), bad, body, t(0), tol),
            Err(WebhookError::MalformedSignature),
            "{bad:?}"
        );
    }
}

#[test]
fn backoff_doubles_up_to_its_cap() {
    let s = RetrySchedule::default();
    let delays: Vec<u64> = (1..=10).map(|a| s.delay_after(a).as_secs()).collect();
    assert_eq!(delays, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    assert_eq!(s.delay_after(500), Duration::from_secs(300));
}

#[test]
fn a_failed_delivery_is_retried_on_schedule_and_every_attempt_is_logged() {
    let mut q = WebhookQueue::new(RetrySchedule::default());
    let id = q.enqueue(endpoint("a"), "alert.raised", r#"{"alert":1}"#.into(), t(0));
    let req = q.poll_transmit(t(0)).unwrap();
    assert_eq!(req.attempt, 1);
    let header = req
        .headers
        .iter()
        .find(|(k, _)| *k == SIGNATURE_HEADER)
        .unwrap();
    assert_eq!(
        verify(
            &secret(),
            &header.1,
            req.body.as_bytes(),
            t(0),
            Duration::from_secs(5)
        ),
        Ok(())
    );
    assert!(
        q.poll_transmit(t(0)).is_none(),
        "one attempt in flight at a time"
    );
    q.handle_result(id, status(503), t(1));
    assert_eq!(q.next_deadline(), Some(t(3)));
    assert!(q.poll_transmit(t(3) - Duration::from_millis(1)).is_none());
    let _ = q.poll_transmit(t(3)).unwrap();
    q.handle_result(
        id,
        AttemptResult::Transport {
            error: "connection refused".into(),
        },
        t(3),
    );
    let _ = q.poll_transmit(t(7)).unwrap();
    q.handle_result(id, status(204), t(7));
    let log: Vec<(u32, DeliveryOutcome)> = drain_log(&mut q)
        .into_iter()
        .map(|r| (r.attempt, r.outcome))
        .collect();
    assert_eq!(
        log,
        vec![
            (
                1,
                DeliveryOutcome::WillRetry {
                    next_attempt_at: t(3)
                }
            ),
            (
                2,
                DeliveryOutcome::WillRetry {
                    next_attempt_at: t(7)
                }
            ),
            (3, DeliveryOutcome::Delivered),
        ]
    );
    assert_eq!(q.pending(), 0);
}

#[test]
fn each_logged_attempt_maps_to_a_notification_outcome_for_the_audit_trail() {
    let mut q = WebhookQueue::new(RetrySchedule {
        max_attempts: 2,
        ..RetrySchedule::default()
    });
    let id = q.enqueue(endpoint("a"), "e", "{}".into(), t(0));
    let _ = q.poll_transmit(t(0)).unwrap();
    q.handle_result(id, status(503), t(1));
    let _ = q.poll_transmit(t(3)).unwrap();
    q.handle_result(
        id,
        AttemptResult::Transport {
            error: "connection reset".into(),
        },
        t(3),
    );
    let outcomes: Vec<NotifyOutcome> = drain_log(&mut q)
        .iter()
        .map(DeliveryRecord::notify_outcome)
        .collect();
    assert_eq!(
        outcomes,
        vec![
            NotifyOutcome::Failed(format!("attempt 1: HTTP 503; retrying at {}", t(3))),
            NotifyOutcome::Failed("attempt 2: connection reset; gave up".into()),
        ]
    );
}

#[test]
fn responses_are_classified_by_status() {
    // (status, outcome of a first attempt)
    let cases = [
        (200, "delivered"),
        (299, "delivered"),
        (400, "rejected"),
        (404, "rejected"),
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (302, "retry"),
    ];
    for (code, expected) in cases {
        let mut q = WebhookQueue::new(RetrySchedule::default());
        let id = q.enqueue(endpoint("a"), "e", "{}".into(), t(0));
        let _ = q.poll_transmit(t(0)).unwrap();
        q.handle_result(id, status(code), t(0));
        let got = match drain_log(&mut q)[0].outcome {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Rejected => "rejected",
            DeliveryOutcome::WillRetry { .. } => "retry",
            DeliveryOutcome::GaveUp => "gave up",
        };
        assert_eq!(got, expected, "HTTP {code}");
    }
}

#[test]
fn the_queue_gives_up_after_the_last_attempt() {
    let schedule = RetrySchedule {
        max_attempts: 3,
        ..RetrySchedule::default()
    };
    let mut q = WebhookQueue::new(schedule);
    let id = q.enqueue(endpoint("a"), "e", "{}".into(), t(0));
    let mut now = t(0);
    for _ in 0..3 {
        now = q.next_deadline().unwrap();
        let _ = q.poll_transmit(now).unwrap();
        q.handle_result(id, status(500), now);
    }
    assert_eq!(
        drain_log(&mut q).last().unwrap().outcome,
        DeliveryOutcome::GaveUp
    );
    assert_eq!(q.next_deadline(), None);
    assert!(q.poll_transmit(now + Duration::from_secs(3600)).is_none());
}

#[test]
fn a_failing_endpoint_does_not_hold_up_another() {
    let mut q = WebhookQueue::new(RetrySchedule::default());
    let a = q.enqueue(endpoint("down"), "e", "{}".into(), t(0));
    let _ = q.poll_transmit(t(0)).unwrap();
    q.handle_result(
        a,
        AttemptResult::Transport {
            error: "timeout".into(),
        },
        t(10),
    );
    let b = q.enqueue(endpoint("up"), "e", "{}".into(), t(10));
    let req = q.poll_transmit(t(10)).unwrap();
    assert_eq!(req.delivery, b);
    assert!(req.url.ends_with("/up"));
    // The slow endpoint's attempt in flight did not block it either.
    let c = q.enqueue(endpoint("down"), "e", "{}".into(), t(11));
    let d = q.enqueue(endpoint("up"), "e", "{}".into(), t(11));
    let ids: Vec<DeliveryId> = std::iter::from_fn(|| q.poll_transmit(t(11)))
        .map(|r| r.delivery)
        .collect();
    assert_eq!(ids, vec![c, d]);
}

#[test]
fn a_delivery_in_flight_at_a_restart_is_sent_again_and_late_responses_are_ignored() {
    let mut q = WebhookQueue::new(RetrySchedule::default());
    let id = q.enqueue(endpoint("a"), "e", "{}".into(), t(0));
    let _ = q.poll_transmit(t(0)).unwrap();
    let json = serde_json::to_string(&q.snapshot()).unwrap();
    let mut q = WebhookQueue::restore(
        RetrySchedule::default(),
        serde_json::from_str(&json).unwrap(),
        t(50),
    );
    // A response to the attempt before the restart is not trusted: it is re-sent.
    q.handle_result(id, status(200), t(50));
    assert!(drain_log(&mut q).is_empty());
    let req = q.poll_transmit(t(50)).unwrap();
    assert_eq!((req.delivery, req.attempt), (id, 2));
    let next = q.enqueue(endpoint("a"), "e", "{}".into(), t(51));
    assert_ne!(next, id, "ids are not reused after a restart");
    q.handle_result(id, status(200), t(52));
    q.handle_result(id, status(200), t(53));
    assert_eq!(
        drain_log(&mut q).len(),
        1,
        "a duplicate response changes nothing"
    );
}

#[test]
fn restored_deliveries_are_signed_with_the_secret_given_after_the_restart() {
    let mut q = WebhookQueue::new(RetrySchedule::default());
    q.enqueue(endpoint("a"), "e", "{}".into(), t(0));
    let mut q = WebhookQueue::restore(RetrySchedule::default(), q.snapshot(), t(1));
    let new = WebhookSecret::new(b"a-newer-secret-of-16-bytes".to_vec()).unwrap();
    q.rekey(&new);
    let req = q.poll_transmit(t(1)).unwrap();
    let (_, sig) = req
        .headers
        .iter()
        .find(|(k, _)| *k == SIGNATURE_HEADER)
        .unwrap();
    let tolerance = std::time::Duration::from_secs(60);
    assert_eq!(
        verify(&new, sig, req.body.as_bytes(), t(1), tolerance),
        Ok(())
    );
    assert!(verify(&secret(), sig, req.body.as_bytes(), t(1), tolerance).is_err());
}

#[test]
fn weak_secrets_and_non_http_urls_are_refused() {
    assert_eq!(
        WebhookSecret::new(b"short".to_vec()),
        Err(WebhookError::ShortSecret(5))
    );
    assert!(matches!(
        Endpoint::new("x", "ftp://example.invalid", secret()),
        Err(WebhookError::BadUrl(_))
    ));
    assert_eq!(format!("{:?}", secret()), "WebhookSecret(..)");
}

proptest::proptest! {
    #[test]
    fn verification_never_panics_on_any_header(header in "\\PC{0,90}", body in proptest::collection::vec(0u8.., 0..64)) {
        let _ = verify(&secret(), &header, &body, t(0), Duration::from_secs(300));
    }
}
