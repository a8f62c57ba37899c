"""Start-up time of the command line: `lsr --help`, `lsr opensearch --help` and every `lsr SUBCOMMAND --help`
beside `python -c pass` and `python -c "import lsr"`, each the median of N fresh processes, run in one go
so they share the machine's load. Also lists the heavy modules each command imports (one extra run under
``python -X importtime``): a `--help` should import none of them.

    python benchmarks/bench_cli_startup.py                  # N=5, writes results/cli_startup.json
    python benchmarks/bench_cli_startup.py --runs 11 --note "idle laptop"

Target (issue 34): every `--help` under 0.5 s. `lsr` is this interpreter's console script (not a pyenv or
other shim, whose own start-up would be measured too); without one, ``python -m lsr.cli``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 0.5
HEAVY = ("torch", "transformers", "tokenizers", "safetensors", "opensearchpy", "starlette", "uvicorn", "numpy",
         "scipy", "pyarrow", "PIL", "tqdm", "yaml", "matplotlib", "sklearn", "lavis")


def lsr_command() -> list[str]:
    """This interpreter's `lsr` console script, or ``python -m lsr.cli``."""
    script = Path(sys.executable).parent / "lsr"
    if script.is_file():
        return [sys.executable, str(script)]
    found = shutil.which("lsr")
    if found and "shims" not in found:
        return [sys.executable, found]
    return [sys.executable, "-m", "lsr.cli"]


def subcommands() -> list[str]:
    """The top-level subcommands, read from the parser itself."""
    from lsr.cli.main import build_parser

    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


def commands() -> list[tuple[str, list[str]]]:
    py, lsr = [sys.executable], lsr_command()
    out = [("python -c pass", py + ["-c", "pass"]), ("python -c 'import lsr'", py + ["-c", "import lsr"]),
           ("lsr --help", lsr + ["--help"])]
    out += [(f"lsr {name} --help", lsr + [name, "--help"]) for name in subcommands()]
    return out


def time_once(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.decode()[-800:]}")
    return elapsed


def heavy_imports(cmd: list[str], env: dict) -> list[str]:
    """The HEAVY top-level packages that `cmd` imports (from ``-X importtime``)."""
    done = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env=env, cwd=ROOT, text=True)
    names = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return [h for h in HEAVY if h in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per command; the median is reported")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "cli_startup.json")
    parser.add_argument("--note", default="", help="a word on the machine (idle, busy, shared ...) for the record")
    args = parser.parse_args(argv)

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    cmds = commands()
    for _, cmd in cmds:  # warm the file cache and the bytecode caches once; also fails early on a broken command
        time_once(cmd, {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"})
    times: dict[str, list[float]] = {label: [] for label, _ in cmds}
    for _ in range(args.runs):  # interleaved rounds: a load spike touches every command alike
        for label, cmd in cmds:
            times[label].append(time_once(cmd, env))
    base = statistics.median(times["python -c pass"])
    rows = []
    for label, cmd in cmds:
        med = statistics.median(times[label])
        rows.append({"command": label, "argv": cmd, "median_s": round(med, 4), "min_s": round(min(times[label]), 4),
                     "runs_s": [round(t, 4) for t in times[label]], "ratio_to_python": round(med / base, 1),
                     "heavy_imports": heavy_imports(cmd, env),
                     **({"under_target": med < TARGET_S} if "--help" in cmd else {})})

    width = max(len(r["command"]) for r in rows)
    print(f"{'command':<{width}}  median s    min s  x python  heavy modules imported")
    for r in rows:
        flag = "" if r.get("under_target", True) else f"   OVER {TARGET_S} s"
        print(f"{r['command']:<{width}}  {r['median_s']:8.3f} {r['min_s']:8.3f}  {r['ratio_to_python']:8.1f}  "
              f"{', '.join(r['heavy_imports']) or '-'}{flag}")
    helps = [r for r in rows if "under_target" in r]
    over = [r["command"] for r in helps if not r["under_target"]]
    print(f"{len(helps) - len(over)}/{len(helps)} --help commands under {TARGET_S} s"
          + (f"; over: {', '.join(over)}" if over else ""))

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    record = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"note": args.note, "platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "load_average_1_5_15": [round(x, 2) for x in load] if load else None,
                    "load_average_at_start_1_5_15": [round(x, 2) for x in load_before] if load_before else None},
        "command": " ".join(["python", *sys.argv]) if argv is None else " ".join(["python", __file__, *argv]),
        "runs": args.runs, "target_s": TARGET_S, "lsr": " ".join(lsr_command()), "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
