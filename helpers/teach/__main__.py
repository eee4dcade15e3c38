"""``python -m helpers.teach build [--out DIR]``: write the teaching edition (student and
instructor notebooks and an index) from the solution notebooks."""

import argparse
import sys

from .build import DEFAULT_OUT, NOTEBOOK_DIR, build
from .markup import MarkupError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.teach", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write DIR/student/, DIR/instructor/ and DIR/INDEX.md")
    b.add_argument("--out", default=str(DEFAULT_OUT), help=f"output folder ({DEFAULT_OUT})")
    b.add_argument("--notebooks", default=str(NOTEBOOK_DIR),
                   help="folder of the solution notebooks (notebooks/)")
    args = parser.parse_args(argv)
    try:
        build(args.out, args.notebooks)
    except (MarkupError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
