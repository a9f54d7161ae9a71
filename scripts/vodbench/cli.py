"""Print the project's performance figures, each next to a baseline measured in the same run.

Sections live in scripts/vodbench/ (one module each, `run() -> Section`: the rows of the table printed at
the end, which is the README's, and detail lines that say more, such as where a cold start goes). A
section that cannot run here says why instead of failing the rest. Nothing in the test suite depends on
speed.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import subprocess
import sys
import traceback

import vodbench
from vodbench.common import ROOT, Figure, bundle_python, markdown_table

SKIP = {"common", "cli"}


def main() -> int:
    sections = sorted(m.name for m in pkgutil.iter_modules(vodbench.__path__) if m.name not in SKIP)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sections", nargs="*", help=f"default: all of {', '.join(sections)}")
    args = parser.parse_args()
    if not (ROOT / "functions" / "sign" / "index.py").is_file():  # installed (an app's venv), not in a checkout
        print(f"vod-bench measures a checkout of the bundle (`make bench` there); {ROOT} is not one", file=sys.stderr)
        return 2
    here = ".".join(map(str, sys.version_info[:3]))
    try:
        cold = f"cold starts on {bundle_python()}"
    except subprocess.CalledProcessError as exc:  # each cold start's section says so too (its build fails)
        cold = f"no CPython 3.10 for cold starts: {exc.stderr.decode(errors='replace').strip()}"
    print(f"per-call figures on Python {here} ({sys.executable}); {cold}", flush=True)
    failed = 0
    figures: list[Figure] = []
    for name in args.sections or sections:
        print(f"\n== {name}", flush=True)
        try:
            section = importlib.import_module(f"vodbench.{name}").run()
        except Exception as exc:  # one broken section must not hide the others' figures
            failed += 1
            traceback.print_exc()
            if isinstance(exc, subprocess.CalledProcessError) and exc.stderr:  # e.g. the bundle build's reason
                print(exc.stderr.decode(errors="replace"), file=sys.stderr)
            figures.append(Figure(f"{name}: not measured", f"failed: {type(exc).__name__} (traceback above)"))
            continue
        width = max((len(label) for label, _ in section.lines), default=0)
        for label, text in section.lines:
            print(f"  {label:<{width}}  {text}", flush=True)
        figures += section.figures
    print(f"\n== the table (README, Benchmarks)\n{markdown_table(figures)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
