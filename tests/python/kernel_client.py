"""Drives the installed gapscope kernel with the real jupyter_client, as a notebook would.

Run by tests/kernel.rs with JUPYTER_PATH pointing at a prefix where `gapscope kernel install
--prefix` wrote the kernelspec (and a copy named gapscope-message with interrupt_mode
"message"). Each check prints one line; any failure raises, and the exit status is non-zero.

    python tests/python/kernel_client.py OUT_DIR
"""
import base64
import os
import re
import sys
import time

from jupyter_client.manager import KernelManager

OUT = sys.argv[1]
DATA = 'let data = dataset("synthetic", #{ n: 240, classes: 3, audio_shape: [8], visual_shape: [8], seed: 3 });'


def start(name):
    km = KernelManager(kernel_name=name)
    km.start_kernel()
    KERNELS.append(km)
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=120)
    return km, kc


def run(kc, code, timeout=120, before_idle=None):
    """Executes code; returns (reply content, the iopub messages of this execution)."""
    msg_id = kc.execute(code)
    outputs = []
    deadline = time.time() + timeout
    acted = False
    while True:
        msg = kc.get_iopub_msg(timeout=max(1, deadline - time.time()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        outputs.append(msg)
        if before_idle and not acted and msg["msg_type"] == "status" and msg["content"]["execution_state"] == "busy":
            before_idle()
            acted = True
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    while True:
        reply = kc.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"], outputs


def shell_reply(kc, msg_id, timeout=60):
    while True:
        reply = kc.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"]


def of_type(outputs, kind):
    return [m["content"] for m in outputs if m["msg_type"] == kind]


def result_text(outputs):
    r = of_type(outputs, "execute_result")
    assert len(r) == 1, f"expected one execute_result, got {outputs}"
    return r[0]["data"]["text/plain"]


def check(name, cond, detail=""):
    if not cond:
        raise AssertionError(f"{name}: {detail}")
    print(f"ok {name}")


KERNELS = []


def main():
    km, kc = start("gapscope")
    info = kc.kernel_info(reply=True)["content"]
    check("kernel_info", info["language_info"]["name"] == "rhai" and info["implementation"] == "gapscope", info)

    # Cells share state; the last expression is the result, printed as the REPL prints it.
    reply, _ = run(kc, "let x = 40;")
    check("statement ok", reply["status"] == "ok", reply)
    reply, out = run(kc, "x + 2")
    check("state across cells", result_text(out) == "42", out)
    check("execution count", reply["execution_count"] == 2, reply)
    reply, out = run(kc, "tensor([1.0, 2.0])")
    check("tensor echo", result_text(out).startswith("tensor([1., 2.]"), result_text(out))

    # print goes to stdout, before the result.
    reply, out = run(kc, 'print("hello from rhai"); 7')
    streams = of_type(out, "stream")
    check("print is stdout", any(s["name"] == "stdout" and "hello from rhai" in s["text"] for s in streams), out)
    kinds = [m["msg_type"] for m in out]
    check("stream before result", kinds.index("stream") < kinds.index("execute_result"), kinds)

    # A DataFrame renders as HTML (and text).
    reply, out = run(kc, 'let t = frame(#{ method: ["concat", "ours"], acc: [0.71, 0.78] }); t')
    data = of_type(out, "execute_result")[0]["data"]
    check("frame html", "<table" in data["text/html"] and "ours" in data["text/html"] and "text/plain" in data, data)

    # plot_* shows its figure inline: PNG for .png, SVG for .svg.
    reply, out = run(kc, f'plot_bars(t, "{OUT}/bars.png", #{{ x: "method", y: ["acc"] }})')
    shown = of_type(out, "display_data")
    check("plot_bars inline png", len(shown) == 1 and base64.b64decode(shown[0]["data"]["image/png"])[:8] == b"\x89PNG\r\n\x1a\n", out)
    reply, out = run(kc, f'plot_bars(t, "{OUT}/bars.svg", #{{ x: "method", y: ["acc"] }});')
    shown = of_type(out, "display_data")
    check("plot_bars inline svg", len(shown) == 1 and "<svg" in shown[0]["data"]["image/svg+xml"], out)

    # Errors carry the cell's line and column, as the REPL writes them.
    reply, out = run(kc, "let a = 1;\nlet b = a + no_such_variable;")
    err = of_type(out, "error")
    check("error reply", reply["status"] == "error" and len(err) == 1, reply)
    n = reply["execution_count"]
    check("error position", err[0]["evalue"].startswith(f"cell[{n}]:2:13:") and "no_such_variable" in err[0]["evalue"], err[0]["evalue"])
    reply, out = run(kc, "x")
    check("session survives an error", result_text(out) == "40", out)

    # An import persists wherever it stands in a cell, as in a script.
    reply, _ = run(kc, 'import "tensors" as tx; let a = 1;')
    check("mixed import cell", reply["status"] == "ok", reply)
    reply, out = run(kc, "tx::one_hot(tensor([1]), 2)")
    check("import in the next cell", reply["status"] == "ok" and result_text(out).startswith("tensor([[0., 1.]]"), out)

    # Completion of functions, methods and variables; help on inspection.
    run(kc, "let zebra_count = 3;")
    c = kc.complete("zebra_c", 7, reply=True)["content"]
    check("complete variable", "zebra_count" in c["matches"] and c["cursor_start"] == 0 and c["cursor_end"] == 7, c)
    c = kc.complete("let y = softm", 13, reply=True)["content"]
    check("complete function", "softmax" in c["matches"] and c["cursor_start"] == 8, c)
    c = kc.complete("t.sel", 5, reply=True)["content"]
    check("complete method", "select" in c["matches"] and c["cursor_start"] == 2, c)
    i = kc.inspect("softmax", 3, reply=True)["content"]
    check("inspect help", i["found"] and "softmax(" in i["data"]["text/plain"], i)
    i = kc.inspect("zebra_count", 2, reply=True)["content"]
    check("inspect variable", i["found"] and "zebra_count" in i["data"]["text/plain"], i)
    check("is_complete incomplete", shell_reply(kc, kc.is_complete("fn f(x) {"))["status"] == "incomplete")
    check("is_complete complete", shell_reply(kc, kc.is_complete("let q = 1;"))["status"] == "complete")
    check("is_complete invalid", shell_reply(kc, kc.is_complete("let = ;"))["status"] == "invalid")

    # Progress bars update one display in place (display_data, then update_display_data with the
    # same display_id), never a stream of bar lines.
    reply, out = run(kc, DATA + ' let m = model(data, #{ seed: 1 }); let o = optimizer(m, #{ lr: 0.01 }); train_epoch(m, o, data.train, #{ batch: 8, quiet: false }); "trained"')
    first = of_type(out, "display_data")
    updates = of_type(out, "update_display_data")
    ids = {d["transient"]["display_id"] for d in first + updates}
    check("progress in place", reply["status"] == "ok" and len(first) == 1 and len(ids) == 1 and "epoch 0" in first[0]["data"]["text/plain"], out)
    final = (updates[-1] if updates else first[0])["data"]["text/plain"]
    check("progress final line", re.match(r"epoch 0 (\d+)/\1 in ", final), final)
    check("no bar in streams", not any("[#" in s["text"] for s in of_type(out, "stream")), of_type(out, "stream"))


    def interrupted(kc, km, code, how):
        """Runs code that would not end by itself, interrupts it once it runs, checks the stop."""
        start_t = time.time()
        reply, out = run(kc, code, timeout=60, before_idle=lambda: (time.sleep(1.5), how()))
        took = time.time() - start_t
        err = of_type(out, "error")
        return reply, err, took


    # Interrupt by signal (the kernelspec's mode): a busy loop stops at its next statement.
    reply, err, took = interrupted(kc, km, "let i = 0; loop { i += 1; }", km.interrupt_kernel)
    check("SIGINT stops a loop", reply["status"] == "error" and err and err[0]["ename"] == "Interrupted" and took < 30, (reply, err, took))
    reply, out = run(kc, "x")
    check("session kept after interrupt", result_text(out) == "40", out)
    # ... and a training loop at its next batch.
    train = DATA + ' let m2 = model(data, #{ seed: 1 }); let o2 = optimizer(m2, #{}); for e in 0..100000 { train_epoch(m2, o2, data.train, #{ batch: 8, seed: e, quiet: true }); }'
    reply, err, took = interrupted(kc, km, train, km.interrupt_kernel)
    check("SIGINT stops training", reply["status"] == "error" and err and "interrupted" in err[0]["evalue"] and took < 30, (reply, err, took))

    # Restart: a fresh session (x is gone), then shutdown.
    km.restart_kernel(now=False)
    kc.wait_for_ready(timeout=120)
    reply, out = run(kc, "x")
    check("restart clears state", reply["status"] == "error", reply)
    reply, out = run(kc, "1 + 1")
    check("restarted kernel runs", result_text(out) == "2", out)
    kc.stop_channels()
    km.shutdown_kernel(now=False)
    check("shutdown", not km.is_alive())

    # Interrupt by message (interrupt_request on the control channel).
    km, kc = start("gapscope-message")
    check("message mode spec", km.kernel_spec.interrupt_mode == "message")
    reply, err, took = interrupted(kc, km, "let i = 0; loop { i += 1; }", km.interrupt_kernel)
    check("interrupt_request stops a loop", reply["status"] == "error" and err and err[0]["ename"] == "Interrupted" and took < 30, (reply, err, took))
    reply, out = run(kc, "21 * 2")
    check("message-mode session kept", result_text(out) == "42", out)
    kc.stop_channels()
    km.shutdown_kernel(now=False)

    # A client that stops answering: once its heartbeat has been quiet for
    # GAPSCOPE_KERNEL_HEARTBEAT_S seconds, the kernel exits by itself.
    km = KernelManager(kernel_name="gapscope")
    km.start_kernel(env={**os.environ, "GAPSCOPE_KERNEL_HEARTBEAT_S": "3"})
    KERNELS.append(km)
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=120)
    reply, out = run(kc, "1 + 1")
    time.sleep(2)
    check("alive while the heartbeat beats", km.is_alive() and kc.hb_channel.is_beating())
    kc.stop_channels()
    deadline = time.time() + 30
    while km.is_alive() and time.time() < deadline:
        time.sleep(0.5)
    check("a quiet heartbeat ends the kernel", not km.is_alive())
    print("all kernel checks passed")


try:
    main()
finally:
    # A failed check must not leave a kernel running.
    for km in KERNELS:
        if km.is_alive():
            km.shutdown_kernel(now=True)
