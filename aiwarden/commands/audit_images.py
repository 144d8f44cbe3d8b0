"""``aiwarden audit images DIR|MANIFEST``: quality, label issues and outliers of a training set.

Names every problem image by its path and a reason code (docs/images.md); exit 1 when
anything is found (a retraining pipeline gates on it), 0 when clean, 2 on bad input or a
missing ``images`` extra. aiwarden.images (Pillow, cleanlab) is imported only when it runs.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from aiwarden.commands._common import Exit, add_output_options, fail

__all__ = ["add_images_parser"]


def add_images_parser(sub: Any) -> None:
    p = sub.add_parser(
        "images", help="audit an image training set: unreadable, constant, duplicate, "
        "leaked, mislabelled and outlier images (exit 1 when found)",
        description="Reads DIR/<label>/<file> (or DIR/<split>/<label>/<file>) or a manifest "
                    "(CSV, JSON or JSONL with path, label and optional split; paths relative "
                    "to the manifest). Names each problem image with a reason code. Label "
                    "issues use confident learning on out-of-fold probabilities: yours "
                    "(--probabilities) or a quick model's on thumbnails. Exit code 1 when "
                    "anything is found, 0 when clean, 2 on bad input.")
    p.add_argument("source", help="folder of images, or a manifest .csv/.json/.jsonl")
    p.add_argument("--probabilities", help="out-of-fold class probabilities, one row per image "
                   "in source order: .npy, or .csv whose header names the classes")
    p.add_argument("--embeddings", help="one embedding per image (.npy) for the outlier check "
                   "(default: thumbnail features)")
    p.add_argument("--no-labels", action="store_true", help="skip the label check")
    p.add_argument("--no-outliers", action="store_true", help="skip the outlier check")
    p.add_argument("--expected-mode", help="flag images not in this mode (e.g. RGB)")
    p.add_argument("--near-distance", type=int, default=20,
                   help="near duplicates: 256-bit pHash distance at most this (default 20)")
    p.add_argument("--outlier-z", type=float, default=10.0,
                   help="outliers: robust z of the kNN distance above this (default 10)")
    p.add_argument("--max-rows", type=int, default=50,
                   help="findings listed in the table output (default 50; JSON lists all)")
    add_output_options(p)
    p.set_defaults(func=_run)


def _load_probabilities(path: str) -> tuple[Any, list[str] | None]:
    import numpy as np

    if path.endswith(".npy"):
        return np.load(path, allow_pickle=False), None
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().strip().split(",")
    return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2), [h.strip() for h in header]


def _run(args: argparse.Namespace) -> int:
    from aiwarden.errors import AiwardenError

    try:
        import numpy as np

        from aiwarden.images import audit_images

        proba, classes = (_load_probabilities(args.probabilities) if args.probabilities
                          else (None, None))
        emb = np.load(args.embeddings, allow_pickle=False) if args.embeddings else None
        report = audit_images(args.source, probabilities=proba, classes=classes,
                              embeddings=emb, label_issues=not args.no_labels,
                              outliers=not args.no_outliers, expected_mode=args.expected_mode,
                              near_distance=args.near_distance, outlier_z=args.outlier_z)
    except (AiwardenError, OSError, ValueError) as exc:
        return fail("audit images", str(exc))
    doc = report.to_dict()
    if args.output == "json":
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        _table(doc, args.max_rows)
    return Exit.FOUND if report.findings else Exit.OK


def _table(r: dict[str, Any], max_rows: int) -> None:
    classes = ", ".join(f"{k} {v}" for k, v in r["classes"].items()) or "none"
    print(f"audit of {r['source']}: {r['images']} images; labels: {classes}")
    print(f"label check: {r['label_check']}")
    for note in r["notes"]:
        print(f"  note: {note}")
    for f in r["findings"][:max_rows]:
        print(f"{f.get('name', f['index'])}: {f['reason']}: {f['message']}")
    if len(r["findings"]) > max_rows:
        print(f"... {len(r['findings']) - max_rows} more (use -o json for all)")
    if not r["findings"]:
        print("no findings")
        return
    print(f"flagged images: {r['flagged']} of {r['images']}")
    print("by reason: " + ", ".join(f"{k} {v}" for k, v in r["counts"].items()))
