// Embeds the libtorch library directory as an rpath so `gapscope` starts without
// LD_LIBRARY_PATH, and keeps libtorch (and through it libtorch_cuda) linked even though no
// symbol of it is referenced directly: without --no-as-needed the linker drops libtorch_cuda
// and CUDA is never found at run time.
fn main() {
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath={lib}");
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
