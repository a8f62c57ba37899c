"""The lab: the drivers of the paper tables and sweeps that the README's results come from.

Not part of the installed package (`pyproject.toml` packages only ``lsr*``): run them from the checkout
root, where ``experiments`` is importable, for example::

    python -m experiments.modes rerank --model runs/demo/model --out runs/modes-rerank-demo.json
    python -m experiments.modes hybrid|sets|inference-free ...
    python -m experiments.sweep --lambdas 1e-3 1e-2 --out runs/sweep
    python -m experiments.published runs/demo/report.json

They are clients of the library (`lsr`); nothing in `lsr` imports them. `results/reproduce.yaml` names these
commands for the rows they produce.
"""

from __future__ import annotations

import logging
import sys
from typing import Callable


def run_main(body: Callable[[], int], verbose: bool) -> int:
    """Run a driver's body as `lsr` runs a command: progress logged at INFO (DEBUG with -v), a bad input or
    a missing file printed as one line, exit status 2."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    for name in ("lsr", "experiments"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.INFO)
    try:
        return body()
    except (FileNotFoundError, ValueError, ConnectionError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
