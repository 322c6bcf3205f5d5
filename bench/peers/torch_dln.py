"""PyTorch peer of `modewise bench`: SGD on deep linear networks, timed.

Two forms of the same training step:

* eager (one network, the default for one member): a bias-free ``nn.Linear`` stack trained by
  ``torch.optim.SGD``, the way a PyTorch user writes it;
* bmm (an ensemble of E independent networks, the default for E > 1): the weights of all members
  stacked in ``[E, d_out, d_in]`` tensors and multiplied with ``torch.bmm``, the fastest plain
  PyTorch form of an ensemble.

Both train on online Gaussian teacher data like modewise's speed workloads: a rank-5 teacher
``M = U diag(1, 1/2, 1/3, 1/4, 1/5) V^T`` with random orthonormal ``U``, ``V`` (shared by the
members), inputs ``x ~ N(0, I)``, labels ``y = M x + 0.1 eps``, Gaussian initial weights with
standard deviation ``1/min(d_in, d_out)``, loss ``0.5 |W x - y|^2`` averaged over the batch,
learning rate 1e-3. A step includes drawing its batch.

Prints one JSON line; ``per_second`` is steps per second for one network and member-steps per
second for an ensemble, like ``modewise bench --json``.

    python torch_dln.py --workload w1
    python torch_dln.py --workload w2 --members 1024 --device cuda
    python torch_dln.py --dims 10,100,100,100,10 --batch 1 --steps 5000
"""

import argparse
import json
import sys
import time

import torch

# name: (layer widths d_0..d_L, batch, members, timed steps)
WORKLOADS = {
    "w1": ([10, 100, 100, 100, 10], 1, 1, 5000),
    "w2": ([100, 100, 100, 100, 100], 32, 1, 3000),
    "w3": ([512, 512, 512, 512, 512], 128, 1, 60),
    "w1e": ([10, 100, 100, 100, 10], 1, 64, 1000),
    "w2e": ([100, 100, 100, 100, 100], 32, 16, 300),
}
TEACHER = [1.0, 1.0 / 2, 1.0 / 3, 1.0 / 4, 1.0 / 5]
SIGMA = 0.1
LR = 1e-3


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workload", choices=sorted(WORKLOADS), default="w1",
                   help="standard sizes (default w1); the options below override them")
    p.add_argument("--dims", help="layer widths d_0,...,d_L, e.g. 10,100,100,100,10")
    p.add_argument("--batch", type=int, help="batch size B")
    p.add_argument("--members", type=int, help="ensemble members E (E > 1 uses the bmm form)")
    p.add_argument("--steps", type=int, help="timed SGD steps")
    p.add_argument("--warmup", type=int, help="untimed steps first (default: min(200, steps))")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--form", choices=["eager", "bmm"],
                   help="eager nn.Linear + optim.SGD (one member only) or batched bmm "
                        "(default: eager for one member, bmm for an ensemble)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    dims, batch, members, steps = WORKLOADS[a.workload]
    if a.dims is not None:
        try:
            dims = [int(d) for d in a.dims.split(",")]
        except ValueError:
            p.error(f"--dims: must be comma-separated integers (got {a.dims!r})")
    a.dims = dims
    a.batch = batch if a.batch is None else a.batch
    a.members = members if a.members is None else a.members
    a.steps = steps if a.steps is None else a.steps
    a.warmup = min(200, a.steps) if a.warmup is None else a.warmup
    a.form = a.form or ("eager" if a.members == 1 else "bmm")
    if len(a.dims) < 2 or min(a.dims) < 1:
        p.error(f"--dims: needs at least two positive widths (got {a.dims})")
    for name in ("batch", "members", "steps", "threads"):
        if getattr(a, name) < 1:
            p.error(f"--{name}: must be at least 1 (got {getattr(a, name)})")
    if a.warmup < 0:
        p.error(f"--warmup: must be at least 0 (got {a.warmup})")
    if a.form == "eager" and a.members != 1:
        p.error(f"--form eager: trains one network; use --form bmm for --members {a.members}")
    if a.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: torch sees no CUDA device (is this a CPU-only torch build?)")
    return a


def orthonormal(rows, cols, gen, device):
    """A random matrix with orthonormal columns (QR of a Gaussian matrix, signs fixed)."""
    q, r = torch.linalg.qr(torch.randn(rows, cols, generator=gen))
    return (q * torch.sign(torch.diagonal(r))).to(device)


def teacher(d_in, d_out, gen, device):
    rank = min(len(TEACHER), d_in, d_out)
    u = orthonormal(d_out, rank, gen, device)
    v = orthonormal(d_in, rank, gen, device)
    return u @ torch.diag(torch.tensor(TEACHER[:rank], device=device)) @ v.T


def eager(a, m, device):
    dims = a.dims
    layers = [torch.nn.Linear(dims[i], dims[i + 1], bias=False) for i in range(len(dims) - 1)]
    for layer in layers:
        torch.nn.init.normal_(layer.weight, std=1.0 / min(layer.weight.shape))
    net = torch.nn.Sequential(*layers).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=LR)

    def step():
        x = torch.randn(a.batch, dims[0], device=device)
        y = x @ m.T + SIGMA * torch.randn(a.batch, dims[-1], device=device)
        opt.zero_grad(set_to_none=True)
        loss = 0.5 * ((net(x) - y) ** 2).sum(dim=1).mean()
        loss.backward()
        opt.step()
        return loss.detach()

    return step


def bmm(a, m, device):
    dims, e = a.dims, a.members
    ws = [(torch.randn(e, dims[i + 1], dims[i], device=device) / min(dims[i], dims[i + 1])).requires_grad_()
          for i in range(len(dims) - 1)]
    opt = torch.optim.SGD(ws, lr=LR)

    def step():
        x = torch.randn(e, dims[0], a.batch, device=device)
        y = torch.matmul(m, x) + SIGMA * torch.randn(e, dims[-1], a.batch, device=device)
        h = x
        for w in ws:
            h = torch.bmm(w, h)
        # Each member's loss is its own batch mean; their sum gives every member its own gradient.
        loss = 0.5 * ((h - y) ** 2).sum() / a.batch
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach() / e

    return step


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv):
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    device = torch.device(a.device)
    gen = torch.Generator().manual_seed(a.seed + 1)
    m = teacher(a.dims[0], a.dims[-1], gen, device)
    step = eager(a, m, device) if a.form == "eager" else bmm(a, m, device)

    loss_start = step().item()
    for _ in range(a.warmup):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    sync(device)
    seconds = time.perf_counter() - start
    loss_end = loss.item()

    print(json.dumps({
        "peer": "torch",
        "torch": torch.__version__,
        "form": a.form,
        "workload": a.workload,
        "device": a.device,
        "threads": a.threads,
        "dims": a.dims,
        "batch": a.batch,
        "members": a.members,
        "steps": a.steps,
        "unit": "steps/s" if a.members == 1 else "member-steps/s",
        "per_second": round(a.members * a.steps / seconds, 1),
        "loss_start": loss_start,
        "loss_end": loss_end,
    }, separators=(",", ":")))


if __name__ == "__main__":
    main(sys.argv[1:])
