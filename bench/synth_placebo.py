"""Placebo-in-space on Prop 99 (38 donors): one vmapped batch of W solves vs solving them one by one.

Both paths use the same V (from the treated fit, v="equal" on every pre-period outcome) and the same
jitted simplex solver; the one-by-one path calls it once per donor, as a Python loop would. Timings
exclude compilation (each path runs once before it is timed) and report the best of ``--repeat`` runs.

    python bench/synth_placebo.py --repeat 5
"""

from __future__ import annotations

import argparse
import importlib
import time

import jax.numpy as jnp
import numpy as np

from decrimkit import Panel
from decrimkit.datasets import load_dataset
from decrimkit.estimators import synth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    scm_module = importlib.import_module("decrimkit.estimators.synth._scm")
    df = load_dataset("prop99", file="california_prop99_long.csv")
    panel = Panel.from_frame(df, unit="State", time="Year", outcome="PacksPerCapita", treated="treated")
    res = synth.scm(panel, treated="California", start=1989, v="equal")
    design = res.extra["design"]
    x0, _, _ = scm_module._normalise(design)
    v = res.v.to_numpy()

    def batched() -> np.ndarray:
        j = x0.shape[1]
        padded = scm_module.pad_donors(x0, scm_module.donor_bucket(j))  # the estimator's padded donor axis
        w, _ = scm_module._placebo_w(jnp.asarray(v), jnp.asarray(padded), scm_module.valid_donors(j))
        return np.asarray(w)[:j, :j]

    def one_by_one() -> np.ndarray:
        out = np.zeros((design.n_donors, design.n_donors))
        for j in range(design.n_donors):
            others = [i for i in range(design.n_donors) if i != j]
            out[j, others] = scm_module.solve_w(v, x0[:, others], x0[:, j])
        return out

    a, b = batched(), one_by_one()  # compile both
    assert np.abs(a - b).max() < 1e-8
    wall, cpu = {}, {}
    for name, fn in (("vmapped batch", batched), ("one by one", one_by_one)):
        best_wall = best_cpu = np.inf
        for _ in range(args.repeat):
            t, c = time.perf_counter(), time.process_time()
            fn()
            best_wall = min(best_wall, time.perf_counter() - t)
            best_cpu = min(best_cpu, time.process_time() - c)
        wall[name], cpu[name] = best_wall, best_cpu
        print(f"{name:>14}: wall {best_wall * 1e3:8.1f} ms, cpu {best_cpu * 1e3:8.1f} ms "
              f"for {design.n_donors} placebo W solves")
    print(f"speed-up: wall {wall['one by one'] / wall['vmapped batch']:.1f}x, "
          f"cpu {cpu['one by one'] / cpu['vmapped batch']:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
