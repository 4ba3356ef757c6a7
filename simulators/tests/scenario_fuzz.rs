//! Bad scenario files get a typed error, never a panic.

use proptest::prelude::*;
use vigil_sim::scenario::Scenario;

fn example_texts() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in ".{0,400}") {
        let _ = Scenario::parse(&text, "fuzz.toml");
    }

    #[test]
    fn an_example_with_a_line_dropped_or_replaced_never_panics(
        file in 0usize..6,
        line in 0usize..80,
        replacement in prop::option::of("[a-z_]{1,12} = (\"[a-z0-9 :/.+-]{0,16}\"|-?[0-9]{1,6}|true)"),
    ) {
        let texts = example_texts();
        let text = &texts[file % texts.len()];
        let mut lines: Vec<&str> = text.lines().collect();
        let i = line % lines.len();
        match &replacement {
            Some(r) => lines[i] = r,
            None => { lines.remove(i); }
        }
        let _ = Scenario::parse(&lines.join("\n"), "fuzz.toml");
    }
}
