//! The fall detector on the real SisFall recordings: asserts the targets.

use vigil_firmware::fall::FallConfig;
use vigil_sim::fall_eval::{default_data_dir, evaluate, AgeGroup};

#[test]
fn detector_meets_the_targets_on_sisfall_and_beats_the_classic_detector() {
    let dir = default_data_dir();
    if !dir.is_dir() {
        eprintln!(
            "SKIPPED: SisFall data not found at {} (set VIGIL_DATA_DIR)",
            dir.display()
        );
        return;
    }
    let evaluation = evaluate(&dir, 50, FallConfig::default()).expect("SisFall evaluates");
    println!("{}", evaluation.table());

    let falls = evaluation.falls();
    let young = evaluation.daily_activities(AgeGroup::Young);
    let elderly = evaluation.daily_activities(AgeGroup::Elderly);
    assert!(
        falls.trials >= 200 && young.trials >= 200 && elderly.trials >= 100,
        "the data set is incomplete"
    );
    assert!(
        falls.vigil_alarmed_share() >= 0.95,
        "sensitivity {:.3}",
        falls.vigil_alarmed_share()
    );
    assert!(
        young.vigil_quiet_share() >= 0.98,
        "young specificity {:.3}",
        young.vigil_quiet_share()
    );
    assert!(
        elderly.vigil_quiet_share() >= 0.98,
        "elderly specificity {:.3}",
        elderly.vigil_quiet_share()
    );
    assert!(
        falls.vigil_alarmed_share() > falls.classic_alarmed_share() + 0.05,
        "Vigil {:.3} is not clearly above the classic detector {:.3}",
        falls.vigil_alarmed_share(),
        falls.classic_alarmed_share()
    );
}

#[test]
fn evaluation_refuses_a_folder_without_trials() {
    let empty = std::env::temp_dir().join(format!("vigil-fall-eval-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty).expect("temp dir");
    let result = evaluate(&empty, 50, FallConfig::default());
    std::fs::remove_dir_all(&empty).ok();
    assert!(matches!(
        result,
        Err(vigil_sim::fall_eval::EvalError::NoTrials(_))
    ));
}

#[test]
fn evaluation_refuses_a_zero_rate() {
    let result = evaluate(&default_data_dir(), 0, FallConfig::default());
    assert!(matches!(
        result,
        Err(vigil_sim::fall_eval::EvalError::BadRate(0))
    ));
}
