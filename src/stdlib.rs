//! The Rhai modules in `stdlib/`, compiled into the binary so `import "name"` works from any
//! working directory. Add a module here when you add a file there (a test checks they match).

pub const MODULES: &[(&str, &str)] = &[
    ("experiments", include_str!("../stdlib/experiments.rhai")),
    ("tensors", include_str!("../stdlib/tensors.rhai")),
    ("train", include_str!("../stdlib/train.rhai")),
];

pub fn source(name: &str) -> Option<&'static str> {
    MODULES.iter().find(|(n, _)| *n == name).map(|(_, src)| *src)
}
