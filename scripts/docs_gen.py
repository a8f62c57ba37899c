"""Pages of the documentation site generated at build time (an MkDocs hook: `hooks:` in mkdocs.yml).

- `reference/cli.md`: every `lsr` subcommand and flag, read from the argparse parser
  (`lsr.cli.main.build_parser()`), so the reference cannot drift from the command line.
- `results/*.md`: every row of `results/reproduce.yaml` with the value found in its committed record
  (`lsr.reproduce.measured`) and its check (`lsr.reproduce.check_row`): the numbers are read from the
  records, never typed a second time. The benchmarks page also shows the command line's start-up times
  from `results/cli_startup.json`.
- `changelog.md`: CHANGELOG.md as it is at the root.
- record blocks in any page: a line ``<!-- record: results/NAME.json KIND [SIZE] -->`` becomes the table of
  that benchmark record (`record_block`; kinds ``peers``, ``targets``, ``build``, ``memory``, ``machine``), so
  a guide quotes benchmark figures without typing them; `lsr reproduce --check` says when a record is STALE.

Run it by hand to see the pages without building the site:

    python scripts/docs_gen.py OUT_DIR
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python scripts/docs_gen.py` and `mkdocs build` from a checkout
    sys.path.insert(0, str(ROOT))

# Results pages: (file, title, intro, name prefixes of the reproduce.yaml rows it holds); first match wins.
RESULT_PAGES = [
    ("results/training.md", "Training and evaluation",
     "The demo, the D2S and joint models, keyword queries, COCO out of domain, the sweep and "
     "retrieval through the backends (caption proxy). The lab notes that discuss them: "
     "[measured results](../lab/measured-results.md), [beyond the teacher](../lab/joint-training.md).",
     ("demo", "f30k", "coco", "keywords", "reference", "sweep", "eval-backend")),
    ("results/modes.md", "Scoring modes and inference-free queries",
     "Two-stage re-ranking, hybrid fusion, sets and inference-free queries. The lab notes: "
     "[scoring modes](../lab/scoring-modes.md), [inference-free queries](../guides/inference-free.md).",
     ("modes", "if-")),
    ("results/significance.md", "Paired significance tests",
     "`lsr compare` records: differences of R@K between two systems on the same queries, with bootstrap "
     "intervals and McNemar p-values. The lab note: [beyond the teacher](../lab/joint-training.md).",
     ("compare",)),
    ("results/benchmarks.md", "Benchmarks and encoder maps",
     "Figures printed by the scripts under `benchmarks/`. The lab notes: "
     "[benchmarks](../lab/benchmarks.md), [Procrustes and contrastive maps](../lab/procrustes.md).",
     ("bench", "procrustes")),
]


# ---------------------------------------------------------------- the CLI reference

def _cell(text: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _flags(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    names = ", ".join(f"`{o}`" for o in action.option_strings)
    if action.nargs == 0:
        return names
    metavar = action.metavar or action.dest.upper()
    if isinstance(metavar, tuple):
        metavar = " ".join(metavar)
    suffix = {"?": f" [{metavar}]", "*": f" [{metavar} ...]", "+": f" {metavar} [...]"}.get(action.nargs, f" {metavar}")
    return names + f" `{suffix.strip()}`"


def _default(action: argparse.Action) -> str:
    if action.nargs == 0 or action.default in (None, argparse.SUPPRESS) or action.required:
        return ""
    return f"`{action.default}`"


def _help(action: argparse.Action) -> str:
    text = action.help or ""
    if text == argparse.SUPPRESS:
        return ""
    params = {"default": action.default, "prog": "lsr", "dest": action.dest}
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        params["choices"] = ", ".join(map(str, action.choices))
    try:
        text = text % params
    except (KeyError, TypeError, ValueError):
        pass
    if action.choices is not None and "choices" not in (action.help or "") \
            and not isinstance(action, argparse._SubParsersAction):
        text = f"{text} (one of: {', '.join(map(str, action.choices))})".strip()
    return _cell(text)


def _subparsers(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {c.dest: c.help or "" for c in action._choices_actions}
            for name, sub in action.choices.items():
                out.append((name, helps.get(name, ""), sub))
    return out


def _command_section(path: str, summary: str, parser: argparse.ArgumentParser, level: int) -> Iterator[str]:
    yield f"{'#' * level} `{path}`"
    yield ""
    if summary:
        yield _cell(summary[0].upper() + summary[1:]) + "."
        yield ""
    if parser.description:
        yield parser.description.strip()
        yield ""
    parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=100)
    yield "```text"
    yield parser.format_usage().strip()
    yield "```"
    yield ""
    rows = [a for a in parser._actions
            if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)) and a.help != argparse.SUPPRESS]
    if rows:
        yield "| argument | default | meaning |"
        yield "|---|---|---|"
        for a in rows:
            yield f"| {_flags(a)} | {_default(a)} | {_help(a)} |"
        yield ""
    if parser.epilog:
        yield parser.epilog.strip()
        yield ""
    for name, summary_, sub in _subparsers(parser):
        yield from _command_section(f"{path} {name}", summary_, sub, min(level + 1, 4))


def cli_reference() -> str:
    """The CLI reference page, from `lsr.cli.main.build_parser()`."""
    from lsr.cli.main import build_parser

    parser = build_parser()
    lines = ["# Command-line reference", "",
             "Generated at build time from the parser itself (`lsr.cli.main.build_parser()`, "
             "`scripts/docs_gen.py`): every subcommand and flag of `lsr`, with its default and help text. "
             "`lsr SUBCOMMAND --help` prints the same.", ""]
    commands = _subparsers(parser)
    lines += ["| command | what it does |", "|---|---|"]
    lines += [f"| [`lsr {n}`](#lsr-{n.replace(' ', '-')}) | {_cell(s)} |" for n, s, _ in commands]
    lines.append("")
    top = [a for a in parser._actions
           if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)) and a.help != argparse.SUPPRESS]
    if top:
        lines += ["Options of `lsr` itself (before the subcommand):", "", "| argument | default | meaning |",
                  "|---|---|---|"]
        lines += [f"| {_flags(a)} | {_default(a)} | {_help(a)} |" for a in top]
        lines.append("")
    for name, summary, sub in commands:
        lines += list(_command_section(f"lsr {name}", summary, sub, 2))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the results pages

def _fmt(value: Any, like: Any = None) -> str:
    """A value with as many decimals as the expected figure `like` has (the precision the notes quote)."""
    if isinstance(value, (int, float)):
        text = str(like) if like is not None else f"{value:g}"
        decimals = len(text.split(".")[1]) if "." in text and "e" not in text.lower() else 0
        return f"{value:,.{decimals}f}" if decimals or abs(value) >= 1000 else f"{value:g}"
    return str(value)


def _label(row: dict[str, Any]) -> str:
    """The row as the lab notes name it: the first cell of its table row, or its printed line."""
    text = str(row.get("readme", ""))
    if text.startswith("|"):
        label = text.strip("|").split("|")[0].strip()
    else:  # a printed line: its label ends at the first run of spaces
        label = text.strip().split("  ")[0]
    parts = str(row.get("key", "")).split("/")
    if len(parts) > 2 and parts[0] == "results":  # a report's split: results/<split>/<row>
        label = f"{label} ({parts[1]})"
    return _cell(label)


def _group_rows(rows: list[dict[str, Any]]) -> "OrderedDict[str, list[dict[str, Any]]]":
    pages: OrderedDict[str, list[dict[str, Any]]] = OrderedDict((p[0], []) for p in RESULT_PAGES)
    for row in rows:
        for path, _, _, prefixes in RESULT_PAGES:
            if row["name"].startswith(prefixes):
                pages[path].append(row)
                break
        else:
            pages[RESULT_PAGES[0][0]].append(row)
    return pages


def _results_page(title: str, intro: str, rows: list[dict[str, Any]]) -> tuple[str, dict[str, int]]:
    from lsr.reproduce import check_row, measured

    counts = {"OK": 0, "FAIL": 0, "NO SOURCE": 0}
    lines = [f"# {title}", "", intro, "",
             "Generated at build time from `results/reproduce.yaml` and the committed records under "
             "`results/` (`scripts/docs_gen.py`): each value is read from the record; *check* is what "
             "`lsr reproduce --check` says of the row (OK: the record holds the expected value within the "
             "row's tolerance; NO SOURCE: the figure was measured elsewhere and no record was kept).", ""]
    groups: OrderedDict[tuple, list[dict[str, Any]]] = OrderedDict()
    for row in rows:
        groups.setdefault((row.get("command") or "", row.get("record") or ""), []).append(row)
    for (command, record), members in groups.items():
        if record:
            lines += [f"## `{record}`", ""]
        else:
            what = " ".join(command.split()[:2]) if command else "quoted figures"
            lines += [f"## `{what}` (no record kept)", ""]
        if command:
            lines += ["```bash", command, "```", ""]
        notes = sorted({str(r["note"]) for r in members if r.get("note")})
        lines += [f"*{_cell(n)}*" + "\n" for n in notes]
        if not any(r.get("expect") for r in members):  # figures quoted from elsewhere, not measured here
            lines += ["| row | figures as quoted | check |", "|---|---|---|"]
            for r in members:
                outcome = check_row(r)
                counts[outcome.status] = counts.get(outcome.status, 0) + 1
                quoted = " · ".join(c.strip() for c in str(r.get("readme", "")).strip("|").split("|")[1:] if c.strip())
                lines.append(f"| {_label(r)} | {_cell(quoted)} | {outcome.status} |")
            lines.append("")
            continue
        keys: list[str] = []
        for r in members:
            expect = r.get("expect") or {}
            for k in (expect if isinstance(expect, dict) else [str(i) for i in range(len(expect))]):
                if k not in keys:
                    keys.append(k)
        lines += ["| row | " + " | ".join(f"`{k}`" for k in keys) + " | check |",
                  "|---|" + "---|" * len(keys) + "---|"]
        for r in members:
            outcome = check_row(r)
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
            values: dict[str, Any] = {}
            source = ROOT / r["record"] if r.get("record") else None
            if source is not None and source.exists():
                try:
                    values = measured(r, source)
                except (KeyError, ValueError, IndexError):
                    values = {}
            if not values:  # no record: the expected values are the figures as measured elsewhere
                expect = r.get("expect") or {}
                values = dict(expect) if isinstance(expect, dict) else {str(i): v for i, v in enumerate(expect)}
            expect = r.get("expect") or {}
            expect = expect if isinstance(expect, dict) else {str(i): v for i, v in enumerate(expect)}
            cells = [_fmt(values[k], expect.get(k)) if k in values else "" for k in keys]
            lines.append(f"| {_label(r)} | " + " | ".join(cells) + f" | {outcome.status} |")
        lines.append("")
    return "\n".join(lines) + "\n", counts


def cli_startup_section(path: Path = ROOT / "results" / "cli_startup.json") -> str:
    """The start-up times of the command line, from the record `benchmarks/bench_cli_startup.py` writes
    (machine-dependent timings: shown with the machine and its load, not checked against a value)."""
    import json

    if not path.is_file():
        return ""
    record = json.loads(path.read_text(encoding="utf-8"))
    machine = record.get("machine", {})
    load = " / ".join(f"{x:.2f}" for x in machine.get("load_average_1_5_15") or [])
    start = machine.get("load_average_at_start_1_5_15")
    if start:
        load = f"{start[0]:.2f} at the start and {load} at the end"
    else:
        load = f"{load or '?'} when the run ended"
    lines = ["## Command-line start-up (`results/cli_startup.json`)", "",
             "```bash", record.get("command", "python benchmarks/bench_cli_startup.py"), "```", "",
             f"*{_cell(record.get('date', ''))}: {machine.get('cpus', '?')} CPUs, Python {machine.get('python', '?')}, "
             f"load average (1 / 5 / 15 min) {load}; {_cell(machine.get('note', ''))}. "
             f"Each time is the median of {record.get('runs', '?')} fresh processes; the target is under "
             f"{record.get('target_s', 0.5)} s and no heavy module (torch, transformers, opensearch-py, ...) "
             "imported by a `--help`.*", "",
             "| command | median s | min s | x `python -c pass` | heavy modules imported |", "|---|---|---|---|---|"]
    for row in record.get("rows", []):
        heavy = ", ".join(row.get("heavy_imports") or []) or "-"
        lines.append(f"| `{row['command']}` | {row['median_s']:.3f} | {row['min_s']:.3f} | "
                     f"{row.get('ratio_to_python', 0):.1f} | {_cell(heavy)} |")
    return "\n".join(lines) + "\n"


def results_pages() -> dict[str, str]:
    """The results pages (path -> Markdown) from `results/reproduce.yaml` and the records."""
    from lsr.reproduce import load_rows

    rows = load_rows(ROOT / "results" / "reproduce.yaml")
    pages, summary = {}, []
    for (path, title, intro, _), members in zip(RESULT_PAGES, _group_rows(rows).values()):
        text, counts = _results_page(title, intro, members)
        if path == "results/benchmarks.md":
            text += "\n" + cli_startup_section()
        pages[path] = text
        link = path.split("/", 1)[1]
        summary.append(f"| [{title}]({link}) | {len(members)} | {counts['OK']} | {counts['FAIL']} | "
                       f"{counts['NO SOURCE']} |")
    pages["results/summary.md"] = "\n".join(
        ["# Summary of the checks", "",
         f"Generated at build time: {len(rows)} rows in `results/reproduce.yaml`.", "",
         "| page | rows | OK | FAIL | NO SOURCE |", "|---|---|---|---|---|", *summary, ""]) + "\n"
    return pages


# ---------------------------------------------------------------- benchmark records in pages

RECORD_MARK = re.compile(r"^<!-- record: (\S+) (\w+)(?: (\d+))? -->$", re.MULTILINE)


def _num(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _config(config: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in config.items()) or "-"


def record_block(path: str, kind: str, size: str | None = None) -> str:
    """Markdown for one benchmark record (see the module docstring)."""
    import json

    record = json.loads((ROOT / path).read_text(encoding="utf-8"))
    results = record["results"]
    if kind == "machine":
        m = record["machine"]
        load = ", ".join(f"{x:.2f}" for x in m.get("load_before") or [])
        after = results.get("load_after") or next((c.get("info", {}).get("load_after") for c in results.values()
                                                   if isinstance(c, dict) and "info" in c), None)
        end = f", after {', '.join(f'{x:.2f}' for x in after)}" if after else ""
        return (f"*Record `{path}`: `{record['command']}` at commit `{(record.get('commit') or '?')[:10]}` on "
                f"{m['cores']} cores ({m['cpu']}), load average (1, 5, 15 min) before the run {load}{end}.*")
    if kind == "build":
        lines = ["| documents | before (docs/s) | after (docs/s) | speed-up | >= 400k docs/s |", "|---|---|---|---|---|"]
        for n, cell in results["sizes"].items():
            best = cell["best_docs_per_s"]
            lines.append(f"| {int(n):,} | {best['before']:,} | {best['after']:,} | {cell['speedup']}x | "
                         f"{'met' if cell['target_400k_met'] else 'not met'} |")
        return "\n".join(lines)
    cell = results[size]
    if kind == "memory":
        info = cell["info"]["embedded"]
        lines = ["| structure | MiB |", "|---|---|",
                 f"| postings (term-major) | {info['postings_bytes'] / 2**20:,.0f} |",
                 f"| forward store (document-major, two-phase stage 2) | {info['forward_bytes'] / 2**20:,.0f} |"]
        for key, cut in sorted(info.items()):
            if key.startswith("cut_"):
                lines.append(f"| n_postings {key[4:]} cut lists (stage 1, not stored) | {cut['bytes'] / 2**20:,.0f} |")
        return "\n".join(lines)
    if kind == "targets":
        lines = ["| target | two-phase p50 / SEISMIC p50 | met |", "|---|---|---|"]
        for key, t in cell["summary"].items():
            ratio = t["two_phase_over_seismic_p50"]
            queries = key.rsplit("-", 1)[0]
            lines.append(f"| {queries} queries, recall@10 >= {_target(key)}: {t['target']} | {_num(ratio, 3)} | "
                         f"{'yes' if t['met'] else 'no'} |")
        return "\n".join(lines)
    lines = ["| queries | engine | configuration | p50 ms | p99 ms | recall@10 | vs exact | chosen at recall |",
             "|---|---|---|---|---|---|---|---|"]
    for r in _peer_rows(cell):
        lines.append(f"| {r['queries']} | {r['engine']} | {_cell(_config(r['config']))} | {_num(r['p50_ms'])} | "
                     f"{_num(r['p99_ms'])} | {_num(r['recall_at_k'], 3)} | {_num(r['speedup_vs_exact'])}x | "
                     f"{_target(r.get('chosen_for'))} |")
    return "\n".join(lines)


def _target(key: str | None) -> str:
    """"expanded-0995" -> "0.995" (the recall target a row was chosen for); "best" for an engine's best."""
    if key in ("best", "defaults"):
        return {"best": "none reached: its highest", "defaults": "OpenSearch's defaults"}[key]
    return f"{int(key.rsplit('-', 1)[1]) / 1000:g}" if key else "-"


def _peer_rows(cell: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows a peers table shows: the exact rows, each engine's fastest setting at each recall target
    (the record's summary), and for an engine that reaches no target, its highest-recall setting."""
    import json

    order = {"expanded": 0, "no-expansion": 1}
    defaults = {"prune_type": "max_ratio", "prune_ratio": 0.4, "expansion_rate": 5}  # OpenSearch's pipeline defaults
    shown = [r for r in cell["rows"] if r["engine"] in ("embedded exact", "exact dense 384-d")
             or r["engine"].startswith("OpenSearch HTTP floor")]  # bench_peers_opensearch.py's empty request
    shown += [{**r, "chosen_for": "defaults"} for r in cell["rows"]
              if r["engine"] == "embedded two-phase" and r["config"] == defaults]
    seen = set()
    for key, target in cell["summary"].items():
        for engine, best in target["best"].items():
            if best is not None and engine != "embedded exact":
                tag = (engine, best["queries"], json.dumps(best["config"], sort_keys=True))
                if tag not in seen:
                    seen.add(tag)
                    shown.append({**best, "chosen_for": key})
    for queries in order:
        reached = {r["engine"] for r in shown if r["queries"] == queries}
        for engine in dict.fromkeys(r["engine"] for r in cell["rows"]):
            rows = [r for r in cell["rows"] if r["engine"] == engine and r["queries"] == queries
                    and r["recall_at_k"] is not None]
            if rows and engine not in reached:
                shown.append({**max(rows, key=lambda r: (r["recall_at_k"], -r["p50_ms"])), "chosen_for": "best"})
    return sorted(shown, key=lambda r: (order[r["queries"]], -(r["recall_at_k"] or 2), r["p50_ms"]))


def render_records(markdown: str) -> str:
    """`markdown` with every record marker replaced by its block."""
    return RECORD_MARK.sub(lambda m: record_block(m.group(1), m.group(2), m.group(3)), markdown)


def on_page_markdown(markdown, page, config, files):  # noqa: ANN001 - MkDocs' hook signature
    return render_records(markdown)


def changelog() -> str:
    return (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


def generated_pages() -> dict[str, str]:
    """Every generated page, path (relative to docs/) -> Markdown."""
    pages = {"reference/cli.md": cli_reference(), "changelog.md": changelog()}
    pages.update(results_pages())
    return pages


# ---------------------------------------------------------------- the MkDocs hook

def on_files(files, config):  # noqa: ANN001 - MkDocs' hook signature
    """Add the generated pages to the site (MkDocs >= 1.6: `File.generated`)."""
    from mkdocs.structure.files import File

    for path, text in generated_pages().items():
        existing = files.get_file_from_path(path)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, path, content=text))
    return files


def on_config(config):  # noqa: ANN001
    """Re-build when the sources of the generated pages change (`mkdocs serve`)."""
    for extra in ("results/reproduce.yaml", "results/cli_startup.json", "CHANGELOG.md", "lsr/cli"):
        path = str(ROOT / extra)
        if path not in config.watch:
            config.watch.append(path)
    return config


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "site-generated")
    for path, text in generated_pages().items():
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        print(target)
