//! The alert, detection, escalation and notification cores take `now` from their caller:
//! none of their sources may read a clock or an unseeded random generator.

use std::path::Path;

const CORE_SOURCES: &[&str] = &[
    "src/alerts",
    "src/detection/action.rs",
    "src/detection/call.rs",
    "src/detection/fire.rs",
    "src/detection/fire",
    "src/detection/health.rs",
    "src/detection/health",
    "src/escalation",
    // `notify/dispatch.rs` is the webhook driver: it reads the clock and passes it on.
    "src/notify/live.rs",
    "src/notify/live_tests.rs",
    "src/notify/mod.rs",
    "src/notify/settings.rs",
    "src/notify/sse.rs",
    "src/notify/webhook.rs",
    "src/notify/webhook_tests.rs",
];

const FORBIDDEN: &[&str] = &[
    "Instant::now",
    "SystemTime::now",
    "Utc::now",
    "Local::now",
    "thread_rng",
    "rand::random",
    "OsRng",
];

fn visit(path: &Path, offenders: &mut Vec<String>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("readable source directory") {
            visit(&entry.expect("directory entry").path(), offenders);
        }
        return;
    }
    if path.extension().is_none_or(|e| e != "rs") {
        return;
    }
    let text = std::fs::read_to_string(path).expect("readable source file");
    for (n, line) in text.lines().enumerate() {
        for word in FORBIDDEN {
            if line.contains(word) {
                offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
}

#[test]
fn core_sources_never_read_the_clock() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut offenders = Vec::new();
    for p in CORE_SOURCES {
        let path = root.join(p);
        assert!(path.exists(), "{} is missing", path.display());
        visit(&path, &mut offenders);
    }
    assert!(
        offenders.is_empty(),
        "clock reads in cores:\n{}",
        offenders.join("\n")
    );
}
