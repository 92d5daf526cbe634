"""`python -m engine samples`: list the bundled sample scenes (usable with `preview --sample NAME`)."""
from __future__ import annotations

import argparse
import json


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine samples", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    from engine import samples

    rows = [{"name": name, **samples.sample_meta(name)} for name in samples.list_samples()]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(f"{row['name']:<16} {row.get('title', '')}: {row.get('description', '')}")
    return 0
