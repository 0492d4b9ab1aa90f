// Embeds the libtorch library directory as an rpath so `gapscope` starts without
// LD_LIBRARY_PATH, and keeps libtorch (and through it libtorch_cuda) linked even though no
// symbol of it is referenced directly: without --no-as-needed the linker drops libtorch_cuda
// and CUDA is never found at run time. It also compiles the autocast shim (see autocast_shim).
fn main() {
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath={lib}");
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
        autocast_shim(&lib);
    }
    // The commit run records name (config.json's git_commit); "unknown" outside a git checkout.
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let Some(c) = commit.filter(|c| !c.is_empty()) {
        println!("cargo:rustc-env=GAPSCOPE_GIT_COMMIT={c}");
    }
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    println!("cargo:rerun-if-changed=build.rs");
}

/// Compiles src/train/autocast_shim.cpp (libtorch's autocast for any device; tch has CUDA's
/// only) against the headers beside libtorch's library directory, with tch's C++ flags.
fn autocast_shim(lib: &str) {
    let include = std::path::Path::new(lib).join("../include");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_string());
    cc::Build::new()
        .cpp(true)
        .file("src/train/autocast_shim.cpp")
        .include(&include)
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .warnings(false)
        .compile("gapscope_autocast");
    println!("cargo:rerun-if-changed=src/train/autocast_shim.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
}
