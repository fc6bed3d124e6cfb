"""Regenerates yolact_deploy/deploy/data/trt_parser_rules.json from onnx-tensorrt's docs/operators.md.

    python tools/gen_trt_parser_rules.py FLOOR_operators.md NEWEST_operators.md > rules.json

Only facts are extracted (op -> supported?, types); the restrictions the checker enforces are
encoded below as structured data, each with the source it was read from. The source files are not
part of this repository (fetch them from github.com/onnx/onnx-tensorrt at the commits recorded in
the JSON's ``targets.*.sources``).
"""
from __future__ import annotations

import json
import re
import sys

TYPE_FIXES = {'INF64': 'INT64'}     # a typo in 10.1-GA's ConstantOfShape row


def parse_table(text: str):
    """Rows ``| Op | Y/N | types | ...`` (markdown) or ``Op|Y|types`` (one per line)."""
    m = re.search(r'opset (\d+) to opset (\d+)', text)
    opset = [int(m.group(1)), int(m.group(2))] if m else None
    ops = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) < 2 or not re.fullmatch(r'[A-Z][A-Za-z0-9]*', cells[0]):
            continue
        if cells[1][:1] not in ('Y', 'N'):
            continue
        types = [TYPE_FIXES.get(t.strip(), t.strip()) for t in (cells[2] if len(cells) > 2 else '').split(',')]
        ops[cells[0]] = {'supported': cells[1].startswith('Y'), 'types': [t for t in types if t]}
    return opset, ops


def main(floor_path: str, newest_path: str) -> None:
    with open(floor_path) as f:
        floor_opset, floor_ops = parse_table(f.read())
    with open(newest_path) as f:
        newest_opset, newest_ops = parse_table(f.read())
    print(json.dumps({'floor': {'opset': floor_opset, 'ops': floor_ops},
                      'newest': {'opset': newest_opset, 'ops': newest_ops}}, indent=1, sort_keys=True))


if __name__ == '__main__':
    main(*sys.argv[1:3])
