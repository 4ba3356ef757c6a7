//! `vigil sim load --broker`: generated boards' frames published through real MQTT
//! connections, and (with `--server`) committed by a real `vigil server`.
//!
//! Needs a broker at `VIGIL_TEST_MQTT_URL` (default `mqtt://127.0.0.1:1883`) for the first
//! test; the second starts `vigil server` with its embedded broker.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

fn vigil_load(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["sim", "load"])
        .args(args)
        .output()
        .expect("vigil runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// The first number after `label` in `text`.
fn figure(text: &str, label: &str) -> u64 {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in {text}"));
    text[at + label.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no figure after {label:?} in {text}"))
}

#[test]
fn every_frame_published_over_multiplexed_connections_is_acknowledged_by_the_broker() {
    let url = std::env::var("VIGIL_TEST_MQTT_URL").unwrap_or("mqtt://127.0.0.1:1883".into());
    let (code, text) = vigil_load(&[
        "--boards",
        "40",
        "--rate",
        "400",
        "--seconds",
        "2",
        "--connections",
        "4",
        "--broker",
        &url,
    ]);
    assert_eq!(code, 0, "{text}");
    let published = figure(&text, "published ");
    // 400 frames/s for 2 s, both ends included.
    assert_eq!(published, 801, "{text}");
    assert_eq!(figure(&text, "(PUBACK): "), published, "{text}");
    assert!(text.contains("over 4 MQTT connection(s)"), "{text}");
}

/// A `vigil server` child process; killed when dropped.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn with_a_server_the_load_reports_the_readings_the_server_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["server", "--mqtt-port", "0", "--mqtt-bind", "127.0.0.1"])
        .args(["--api-listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        // Ingest logs each subscription acknowledged (debug), which the test awaits.
        .env(
            "RUST_LOG",
            "warn,vigil_server::ingest::mqtt=debug,rumqttd=off",
        )
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("vigil server starts");
    let stdout = child.stdout.take().unwrap();
    let _server = Server(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (mut broker, mut api, mut subscriptions) = (None, None, 0);
    // The two ingest filters (gateway batches, device frames) must be in place before the
    // load starts: the embedded broker keeps nothing for a subscriber that comes later.
    while broker.is_none() || api.is_none() || subscriptions < 2 {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server prints its addresses and subscribes");
        if line.contains("subscribed") && line.contains("reasons") {
            subscriptions += 1;
        }
        if let Some(rest) = line.split("publish to ").nth(1) {
            broker = Some(rest.trim().to_owned());
        }
        if let Some(rest) = line.split("API at ").nth(1) {
            api = rest.split("/api/v1").next().map(str::to_owned);
        }
    }
    let (broker, api) = (broker.unwrap(), api.unwrap());
    let (code, text) = vigil_load(&[
        "--boards",
        "20",
        "--rate",
        "200",
        "--seconds",
        "2",
        "--connections",
        "2",
        "--broker",
        &broker,
        "--server",
        &api,
    ]);
    assert_eq!(code, 0, "{text}");
    let published = figure(&text, "published ");
    assert_eq!(published, 401, "{text}");
    let committed = figure(&text, "readings stored + duplicates, from /metrics): ");
    let quarantined = text
        .find("quarantined by the server: ")
        .map_or(0, |_| figure(&text, "quarantined by the server: "));
    assert_eq!(committed + quarantined, published, "{text}");
}
