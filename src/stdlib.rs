//! The Rhai modules in `stdlib/`, compiled into the binary so `import "name"` works from any
//! working directory. Add a module here when you add a file there (a test checks they match).

pub const MODULES: &[(&str, &str)] = &[
    ("experiments", include_str!("../stdlib/experiments.rhai")),
    ("tensors", include_str!("../stdlib/tensors.rhai")),
    ("train", include_str!("../stdlib/train.rhai")),
    // Script twins of native methods (docs/your-method.md): import "methods/ogm-ge" as ogm;
    ("methods/concat", include_str!("../stdlib/methods/concat.rhai")),
    ("methods/ogm-ge", include_str!("../stdlib/methods/ogm-ge.rhai")),
    ("methods/mmcosine", include_str!("../stdlib/methods/mmcosine.rhai")),
    ("methods/adaptive", include_str!("../stdlib/methods/adaptive.rhai")),
    ("methods/mmpareto", include_str!("../stdlib/methods/mmpareto.rhai")),
    ("methods/mslr", include_str!("../stdlib/methods/mslr.rhai")),
    ("methods/dgl", include_str!("../stdlib/methods/dgl.rhai")),
];

pub fn source(name: &str) -> Option<&'static str> {
    MODULES.iter().find(|(n, _)| *n == name).map(|(_, src)| *src)
}
