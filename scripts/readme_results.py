"""Regenerate the README's results table from a committed results.json.

    python scripts/readme_results.py                      # docs/results.json -> README.md
    python scripts/readme_results.py --from adamlab-report/results.json   # after a new full run: copies it
    python scripts/readme_results.py --rejudge            # verdicts and headlines from the current code
    python scripts/readme_results.py --check              # exit 1 if README.md is out of date

tests/test_lab_readme.py runs the same check in CI.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from adamlab.lab.framework import readme

ROOT = Path(__file__).resolve().parent.parent
RESULTS, README = ROOT / "docs" / "results.json", ROOT / "README.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="source", type=Path, help="a new results.json to copy to docs/ first")
    parser.add_argument("--rejudge", action="store_true", help="recompute parts and verdicts from the stored metrics")
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if README.md is out of date")
    args = parser.parse_args()
    if args.source and not args.check:
        shutil.copyfile(args.source, RESULTS)
    data = json.loads(RESULTS.read_text(encoding="utf-8"))
    if args.rejudge and not args.check:
        data = readme.rejudge(data)
        RESULTS.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    text = README.read_text(encoding="utf-8")
    updated = readme.replace_table(text, readme.table(data))
    if args.check:
        if updated != text:
            print("README.md's results table is out of date: run python scripts/readme_results.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(updated, encoding="utf-8")
    print(f"wrote the results table of {README} from {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
