"""numpy peer of `modewise bench --workload sde`: Euler-Maruyama for the end-to-end per-mode SDE
of an aligned, balanced deep linear network, vectorised over paths, timed.

The SDE (docs/theory.md, section 3.5), with q(w) = 2 (s - w)^2 + sigma^2:

    dw = [L w^(2-2/L) (s - w) + (eta/2B) L (L-1) w^(3-4/L) q(w)] dt
         + sqrt(eta/B) L w^(2-2/L) sqrt(q(w)) dB

at L = 4, s = 2, sigma = 0.5, eta = 1e-3, B = 4, dt = 1e-3, from w0 = 1e-3, each step
reflected at 0, the same workload as modewise's. Prints one JSON line; `per_second` is
path-steps per second, like `modewise bench --json`.

    python numpy_sde.py                       # 10^5 paths, 100 steps
    python numpy_sde.py --paths 1000000 --steps 20
"""

import argparse
import json
import sys
import time

import numpy as np

L, S, SIGMA, ETA, B, DT, W0 = 4, 2.0, 0.5, 1e-3, 4, 1e-3, 1e-3


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--paths", type=int, default=100_000, help="paths (default 10^5)")
    p.add_argument("--steps", type=int, default=100, help="timed steps (default 100)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    for name in ("paths", "steps"):
        if getattr(a, name) < 1:
            p.error(f"--{name}: must be at least 1 (got {getattr(a, name)})")
    return a


def main(argv):
    a = parse_args(argv)
    rng = np.random.default_rng(a.seed)
    p1, p2 = 2 - 2 / L, 3 - 4 / L
    ito = ETA / (2 * B) * L * (L - 1)
    noise = np.sqrt(ETA / B) * L * np.sqrt(DT)
    w = np.full(a.paths, W0)
    start = time.perf_counter()
    for _ in range(a.steps):
        d = S - w
        q = 2 * d * d + SIGMA ** 2
        wp = w ** p1
        drift = L * wp * d + ito * w ** p2 * q
        w = np.abs(w + drift * DT + noise * wp * np.sqrt(q) * rng.standard_normal(a.paths))
    seconds = time.perf_counter() - start
    print(json.dumps({
        "peer": "numpy",
        "numpy": np.__version__,
        "workload": "sde",
        "threads": 1,
        "paths": a.paths,
        "steps": a.steps,
        "unit": "path-steps/s",
        "per_second": float(f"{a.paths * a.steps / seconds:.4e}"),
        "mean_w": float(w.mean()),
    }, separators=(",", ":")))


if __name__ == "__main__":
    main(sys.argv[1:])
