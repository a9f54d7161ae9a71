"""Print the project's performance figures, each next to a baseline measured in the same run.

Sections live in scripts/vodbench/ (one module each, `run() -> [(label, figure)]`); a section that
cannot run here says why instead of failing the rest. Nothing in the test suite depends on speed.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import subprocess
import sys
import traceback

import vodbench

SKIP = {"common", "cli"}


def main() -> int:
    sections = sorted(m.name for m in pkgutil.iter_modules(vodbench.__path__) if m.name not in SKIP)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sections", nargs="*", help=f"default: all of {', '.join(sections)}")
    args = parser.parse_args()
    failed = 0
    for name in args.sections or sections:
        print(f"\n== {name}", flush=True)
        try:
            rows = importlib.import_module(f"vodbench.{name}").run()
        except Exception as exc:  # one broken section must not hide the others' figures
            failed += 1
            traceback.print_exc()
            if isinstance(exc, subprocess.CalledProcessError) and exc.stderr:  # e.g. the bundle build's reason
                print(exc.stderr.decode(errors="replace"), file=sys.stderr)
            continue
        width = max(len(label) for label, _ in rows)
        for label, figure in rows:
            print(f"  {label:<{width}}  {figure}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
