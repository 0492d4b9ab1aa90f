"""Mutation check of BalanceBenchmark's rules and the 2024-2025 methods' (docs/methods.md, Tests): each mutation below
changes one rule (a sign, a weight, a boundary, a stop-gradient); the unit tests beside the rule
must fail on it. Run from the repository root: python3 scripts/mutate_rules.py (about 1 minute a
mutation: each rebuilds the library's tests). It restores every file, and exits 1 if any
mutation survives (or does not compile, which proves nothing)."""
import subprocess, sys
muts = [
 ("src/train/methods/mmpareto.rs", "(v22 - v12) / (v11 + v22 - 2.0 * v12)", "(v11 - v12) / (v11 + v22 - 2.0 * v12)", "mmpareto"),
 ("src/train/methods/mmpareto.rs", "if r > 1.0 { gamma * r } else { gamma }", "gamma", "mmpareto"),
 ("src/train/methods/lfm.rs", "let per = if js {", "let per = if !js {", "lfm"),
 ("src/train/methods/lfm.rs", "3.35472727e-3", "3.35472727e-2", "lfm"),
 ("src/train/methods/cml.rs", "conf[k + 1].f_sub(&conf[k].f_detach().map_err(|e| Error::torch(op, e))?)", "conf[k + 1].f_sub(&conf[k])", "cml"),
 ("src/train/methods/cml.rs", "Hinge::Batch => check(op, rise.f_sum(Kind::Float)", "Hinge::Batch => check(op, rise.f_mean(Kind::Float)", "cml"),
 ("src/train/methods/reconboost.rs", "q.f_mul_scalar(-w2)", "q.f_mul_scalar(w2)", "reconboost"),
 ("src/train/methods/sample.rs", "if 0.4 < phi && phi < 1.0 {", "if 0.4 <= phi && phi <= 1.0 {", "sample"),
 ("src/train/methods/sample.rs", "(2.0 / 3.0) * alpha", "(4.0 / 3.0) * alpha", "sample"),
 ("src/train/methods/sample.rs", "mask.count_ones() as f64 } else { 1.0 }", "1.0 } else { 1.0 }", "sample"),
 ("src/train/fusion.rs", "let blocks = self.concat_blocks(&fc.weight.f_detach()?)?;", "let blocks = self.concat_blocks(&fc.weight)?;", "dgl"),
 ("src/train/methods/inforeg.rs", "if s[0] > s[1] && open[0] {", "if s[0] < s[1] && open[0] {", "inforeg"),
 ("src/train/methods/g2d.rs", "out[order[stage]] = true;", "out[order[n - 1 - stage]] = true;", "g2d"),
 ("src/train/methods/cggm.rs", "d.iter().map(|dm| (total - dm) / total)", "d.iter().map(|dm| dm / total)", "cggm"),
 ("src/train/methods/amss.rs", "let k = (1.0 - (x - top).exp() / z).clamp(0.1, 0.9);", "let k = ((x - top).exp() / z).clamp(0.1, 0.9);", "amss"),
 ("src/train/filter_masks.rs", "KeptWeight::Code => 1.0 / (q[j] + 1.0 / n as f64)", "KeptWeight::Code => 1.0 / (q[j] + 0.5 / n as f64)", "filter_masks"),
 ("src/train/filter_masks.rs", "let filled = keep - kept.len();", "let filled = 0;", "filter_masks"),
 ("src/train/methods/amco.rs", "shares.iter().map(|&x| x > sigma).collect()", "shares.iter().map(|&x| x < sigma).collect()", "amco"),
 ("src/train/methods/amco.rs", "l += epoch as f64 / 10.0;", "l += epoch as f64 / 5.0;", "amco"),
 ("src/train/methods/aug.rs", "let weight = q.f_mul_scalar(-residual)?.f_add_scalar(1.0)?;", "let weight = q.f_mul_scalar(residual)?.f_add_scalar(1.0)?;", "aug"),
 ("src/train/methods/aug.rs", "e == 0 || (e + 1).is_multiple_of(self.check_every)", "(e + 1).is_multiple_of(self.check_every)", "aug"),
 ("src/train/methods/di_mml.rs", "let logits = query.f_matmul(&keys.f_detach()?.f_t_copy()?)?.f_div_scalar(tau)?;", "let logits = query.f_matmul(&keys.f_t_copy()?)?.f_div_scalar(tau)?;", "di_mml"),
 ("src/train/methods/di_mml.rs", "Ok(Vec::<f64>::try_from(&acc)?.into_iter().map(|a| a > mean).collect())", "Ok(Vec::<f64>::try_from(&acc)?.into_iter().map(|a| a < mean).collect())", "di_mml"),
 ("src/train/head_stage.rs", "f_div_scalar(tau)?.f_softmax(1, Kind::Float)", "f_mul_scalar(tau)?.f_softmax(1, Kind::Float)", "head_stage"),
 ("src/train/methods/greedy.rs", "self.caring = Some(if d > 0.0 { 0 } else { 1 });", "self.caring = Some(if d > 0.0 { 1 } else { 0 });", "greedy"),
 ("src/train/methods/greedy.rs", "if self.curated == self.window {", "if self.curated > self.window {", "greedy"),
 ("src/train/mmtm.rs", "let next = mean.f_add(&self.running[m].f_mul_scalar(t)?)?.f_div_scalar(t + 1.0)?;", "let next = mean.f_add(&self.running[m].f_mul_scalar(t)?)?.f_div_scalar(t + 2.0)?;", "mmtm"),
 ("src/train/methods/mbsd.rs", "u.f_mul(&u.f_log()?.f_sub(&s)?)?", "s.f_mul(&u.f_log()?.f_sub(&s)?)?", "mbsd"),
]
missed = 0
for path, old, new, filt in muts:
    src = open(path).read()
    assert src.count(old) == 1, (path, old)
    open(path, "w").write(src.replace(old, new))
    try:
        r = subprocess.run(["cargo", "test", "-q", "--lib", "--", filt], capture_output=True, text=True)
        out = r.stdout + r.stderr
        compiled = "could not compile" not in out
        caught = compiled and r.returncode != 0 and "FAILED" in out
        missed += not caught
        print(("CAUGHT " if caught else "MISSED " if compiled else "NO BUILD ") + path + ": " + old + " -> " + new, flush=True)
    finally:
        open(path, "w").write(src)
sys.exit(1 if missed else 0)
