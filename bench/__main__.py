"""Every benchmark of the performance issue in one run, each printing its own table with
ratios: pass-through against direct MySQL and a bare relay (bench.passthrough), batched
inference against its latency bound (bench.ml_batching), the local model through SQL
against the model alone, with the latency it costs other clients (bench.ml_local),
statements against a service with a quota against the time the quota allows
(bench.ml_quota), and an ML statement with cached answers against its plain twin
(bench.ml_fixed_cost).

Each starts the backend, proxy and fakes it needs. Run from the repository root:
``python -m bench [--repeat R]`` (``./dev bench``); each module also runs alone, with
more options (``python -m bench.passthrough --help``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from bench import ml_batching, ml_fixed_cost, ml_local, ml_quota, passthrough

PARTS: tuple[tuple[str, Callable[[Sequence[str]], int]], ...] = (
    ("pass-through: direct, bare relay, proxy", passthrough.main),
    ("ML batching against its latency bound", ml_batching.main),
    ("ML on the local model against the model alone", ml_local.main),
    ("ML against a service's quota, the rate found by the proxy", ml_quota.main),
    ("the fixed cost of an ML statement with cached answers", ml_fixed_cost.main),
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; medians")
    args = parser.parse_args(argv)
    for title, run in PARTS:
        print(f"\n== {title} ==", flush=True)
        status = run(["--repeat", str(args.repeat)])
        if status:
            return status
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
