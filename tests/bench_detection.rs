//! `vigil bench detection` at a small size: it runs, measures the real heap of the detector
//! state through the binary's counting allocator, and prints every figure. No timing is
//! asserted: figures come from a full run on a quiet machine (docs/performance.md).

use std::process::Command;

#[test]
fn the_detection_benchmark_prints_state_per_monitored_subject_and_cpu_per_reading() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args([
            "bench",
            "detection",
            "--subjects",
            "300",
            "--hours",
            "1",
            "--fire-nodes",
            "8",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .expect("vigil runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("300 households, 1 facilities (8 fire nodes)"),
        "{stdout}"
    );
    // 300 meter reports per 15-minute step, four steps.
    assert!(
        stdout.contains("1200 meter reports = 18000 water minutes"),
        "{stdout}"
    );
    // Each detector's own subject, measured: "household meter (water) 730 B, …".
    let sizes = stdout
        .lines()
        .find(|l| l.contains("household meter (water)"))
        .expect("a state line");
    let size_of = |what: &str| -> f64 {
        let at = sizes
            .find(what)
            .unwrap_or_else(|| panic!("{what} in {sizes:?}"));
        sizes[at + what.len()..]
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("a measured size after {what} in {sizes:?}"))
    };
    // A warmed water detector holds its 28-day use history (348 B of masks).
    assert!(size_of("household meter (water)") > 348.0, "{sizes}");
    assert!(size_of("resident (call)") > 0.0, "{sizes}");
    // Two boards' health records and their ids.
    assert!(size_of("household site (device health)") > 80.0, "{sizes}");
    assert!(size_of("nodes)") > 0.0, "{sizes}");
    assert!(
        stdout.contains("one household's detectors together"),
        "{stdout}"
    );
    assert!(stdout.contains("ingest CPU per reading"), "{stdout}");
    assert!(stdout.contains("detection CPU per reading"), "{stdout}");
    assert!(stdout.contains("0 duplicates"), "{stdout}");
}
