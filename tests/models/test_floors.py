"""attnlab.models looks only down: it imports attention/, benchtools/ and the floor-0 helper _names, never train/, cam/,
study/ or cli."""

from __future__ import annotations

import ast
from pathlib import Path

import attnlab.models

ALLOWED = {"attention", "benchtools", "models", "_names"}


def test_models_imports_only_lower_floors():
    root = Path(attnlab.models.__file__).parent
    bad = []
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level >= 1:
                # from . import x (level 1) stays in models/; from ..x import y (level 2) names a sibling floor
                target = (node.module or "").split(".")[0] if node.level == 2 else "models"
                if node.level > 2 or target not in ALLOWED:
                    bad.append(f"{path.name}: from {'.' * node.level}{node.module or ''}")
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                bad += [f"{path.name}: import {n}" for n in names
                        if n.startswith("attnlab.") and n.split(".")[1] not in ALLOWED]
    assert not bad, bad
