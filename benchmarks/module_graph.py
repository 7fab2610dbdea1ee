"""Print pytest_phyjudge's module graph: each subpackage's modules, the package's modules
each one imports (every import, those inside functions too; ``TYPE_CHECKING`` aside), and
any circle, as a path ``a -> b -> a``.

    python benchmarks/module_graph.py

The reading is tests/test_layout.py's, the one the layout test enforces.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_TEST = Path(__file__).resolve().parents[1] / "tests" / "test_layout.py"


def main() -> int:
    spec = importlib.util.spec_from_file_location("_layout", _TEST)
    assert spec is not None and spec.loader is not None
    layout = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(layout)
    print(layout.describe_graph())
    return 1 if layout.find_cycles(layout.module_graph()) else 0


if __name__ == "__main__":
    sys.exit(main())
