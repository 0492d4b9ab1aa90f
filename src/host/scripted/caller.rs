//! The script call a scripted method's hooks run inside. The trainer calls a method from Rust,
//! several frames below the Rhai call (`train_step`, `train_epoch`) that started it, and a hook
//! is a Rhai closure: to run, it needs that call's context. `within` lends the context (and the
//! model being trained) to everything below it for the call's duration; `call` runs a hook in it.

use crate::host::handles::ScriptModel;
use crate::host::RhaiResult;
use crate::train::model::Model;
use rhai::{Dynamic, EvalAltResult, FnPtr, NativeCallContext, Position};
use std::cell::RefCell;

struct Frame {
    /// The context of the Rhai call that started the training step, with its lifetime erased:
    /// it is only read while that call is on the stack (`within` pops the frame on return and
    /// on unwinding, before the context goes away).
    ctx: *const NativeCallContext<'static>,
    model: ScriptModel,
}

thread_local! {
    static FRAMES: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
    /// Models whose method hooks are running: nothing may change their parameters meanwhile.
    static HOOKED: RefCell<Vec<*const Model>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` (a training call on `model`) with `ctx` available to the hooks it reaches.
pub fn within<R>(ctx: &NativeCallContext, model: &ScriptModel, f: impl FnOnce() -> R) -> R {
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            FRAMES.with(|f| f.borrow_mut().pop());
        }
    }
    // The frame outlives the borrow's name, not its use: the lifetime is erased here and the frame
    // popped (by `Pop`) before `ctx` goes out of scope.
    #[allow(clippy::unnecessary_cast)]
    let ptr = ctx as *const NativeCallContext<'_> as *const NativeCallContext<'static>;
    FRAMES.with(|f| f.borrow_mut().push(Frame { ctx: ptr, model: model.clone() }));
    let _pop = Pop;
    f()
}

/// The model of the innermost training call (what `ctx.model` and `grad_of` read).
pub fn current_model() -> Option<ScriptModel> {
    FRAMES.with(|f| f.borrow().last().map(|fr| fr.model.clone()))
}

/// Calls a hook with `args` in the innermost training call's context, marking `model` as being
/// trained so the hook cannot change its parameters. `libs` are the script-function libraries
/// of the place that defined the hook: a closure written in a module is one of that module's
/// functions, which the training call (in the main script) cannot otherwise see.
pub fn call(hook: &FnPtr, libs: &[rhai::Shared<rhai::Module>], model: &Model, args: Vec<Dynamic>) -> RhaiResult<Dynamic> {
    let ptr = FRAMES.with(|f| f.borrow().last().map(|fr| fr.ctx)).ok_or_else(|| {
        Box::new(EvalAltResult::ErrorRuntime(
            "a scripted method runs only inside train_step, train_epoch or a recipe (it was called from elsewhere)".into(),
            Position::NONE,
        ))
    })?;
    struct Unmark;
    impl Drop for Unmark {
        fn drop(&mut self) {
            HOOKED.with(|h| h.borrow_mut().pop());
        }
    }
    HOOKED.with(|h| h.borrow_mut().push(model as *const Model));
    let _unmark = Unmark;
    // SAFETY: the frame's context is alive while its `within` call is on the stack, and frames
    // are pushed and popped strictly nested on this thread, so the innermost one is alive here.
    let outer = unsafe { &*ptr };
    #[allow(deprecated)]
    let mut global = outer.global_runtime_state().clone();
    // Rhai looks a closure up in the first library first: the defining module's go in front.
    let mut lib: Vec<rhai::Shared<rhai::Module>> = libs.to_vec();
    lib.extend(global.lib.iter().filter(|m| !libs.iter().any(|l| rhai::Shared::ptr_eq(l, m))).cloned());
    global.lib = lib.into_iter().collect();
    let ctx: NativeCallContext = (outer.engine(), hook.fn_name(), None, &global, outer.call_position()).into();
    hook.call_raw(&ctx, None, args)
}

/// Refuses a call that would change a model while one of its method's hooks runs.
pub fn refuse_in_hook(model: &Model, what: &str) -> RhaiResult<()> {
    if HOOKED.with(|h| h.borrow().contains(&(model as *const Model))) {
        return Err(crate::error::Error::arg(format!(
            "{what}: a method's hook cannot change the model's parameters; return the gradients you want from gradients: (the optimizer applies them), or keep extra values in ctx.state"
        ))
        .into());
    }
    Ok(())
}
