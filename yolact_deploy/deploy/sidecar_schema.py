"""The engine sidecar's JSON Schema (``schemas/engine_sidecar.schema.json``), shared with the C++ runtime.

``validate_sidecar(data)`` raises :class:`SidecarError` with one line naming the first offending field;
the C++ runtime (engines/src/sidecar_schema.cpp) compiles the same file in and accepts and rejects the
same documents (engines ctest ``fx_sidecar_corpus_agrees_with_python``).
"""
from __future__ import annotations

import functools
import json
import os
from typing import Any, Dict, List

SCHEMA_FILE = 'engine_sidecar.schema.json'


class SidecarError(ValueError):
    """A sidecar that does not follow the schema."""


@functools.lru_cache(maxsize=1)
def sidecar_schema() -> Dict[str, Any]:
    with open(os.path.join(os.path.dirname(__file__), 'schemas', SCHEMA_FILE)) as f:
        return json.load(f)


def _validator():
    import jsonschema
    schema = sidecar_schema()
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def sidecar_errors(data: Any) -> List[str]:
    """Every schema violation of ``data`` as ``'<json path>: <message>'`` (empty: valid)."""
    out = []
    for err in sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        where = '/'.join(str(p) for p in err.absolute_path) or '(top level)'
        out.append(f'{where}: {err.message}')
    return out


def validate_sidecar(data: Any) -> None:
    """Raises :class:`SidecarError` (one line) when ``data`` does not follow the sidecar schema."""
    errors = sidecar_errors(data)
    if errors:
        more = f' (and {len(errors) - 1} more)' if len(errors) > 1 else ''
        raise SidecarError(f'engine sidecar does not follow the schema: {errors[0]}{more}')
