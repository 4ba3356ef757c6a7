//! Puts `memory.x` and `stack.x` where the linker (cortex-m-rt's `link.x`) finds them.
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for script in ["memory.x", "stack.x"] {
        fs::copy(script, out.join(script)).expect("linker scripts are next to Cargo.toml");
        println!("cargo:rerun-if-changed={script}");
    }
    println!("cargo:rustc-link-search={}", out.display());
}
