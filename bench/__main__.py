"""Run every benchmark present: ``python -m bench [NAME ...]``."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ("rebuild",)


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
