"""attnlab.data is floor 3: it imports torch, numpy, the standard library (Pillow, optionally), itself and the
floor-0 name lookup (attnlab.names) only."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import attnlab.data

ALLOWED_THIRD_PARTY = {"torch", "numpy", "PIL"}


def test_data_imports_only_torch_numpy_and_itself():
    root = Path(attnlab.data.__file__).parent
    bad = []
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                if node.level > 1 and not (node.level == 2 and node.module == "names"):
                    bad.append(f"{path.name}: from {'.' * node.level}{node.module or ''}")
                continue
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                top = name.split(".")[0]
                if name.startswith("attnlab.") and not name.startswith("attnlab.data"):
                    bad.append(f"{path.name}: {name}")
                elif top not in ALLOWED_THIRD_PARTY and top not in sys.stdlib_module_names and top != "attnlab":
                    bad.append(f"{path.name}: {name}")
    assert not bad, bad
