"""Rewrite what is generated from the option schema (core/spritefit/options.py): the README's
table of fit options and plugins/client/spritefit_options.json, the schema's copy that the
editor plugins build their controls from before a worker runs. tests/test_options.py fails
while either is stale.

    python scripts/update_options.py
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "core"))

from spritefit.options import client_schema_json, readme_with_table  # noqa: E402

README = ROOT / "README.md"
CLIENT_SCHEMA = ROOT / "plugins" / "client" / "spritefit_options.json"


def main() -> int:
    README.write_text(readme_with_table(README.read_text(encoding="utf-8")), encoding="utf-8")
    CLIENT_SCHEMA.write_text(client_schema_json(), encoding="utf-8")
    print(f"wrote {README} and {CLIENT_SCHEMA}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
