//! Build script: on Linux with glibc, links the `rfm-agent` binary with packed relative
//! relocations (DT_RELR, glibc 2.36+ and any current linker). A position-independent binary
//! of this size otherwise carries 3 MB of relocation entries, a tenth of the container image's
//! binary; linkers that predate the option warn and ignore it.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
