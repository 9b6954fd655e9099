"""The README's configuration table, written from the settings' declarations so the two never drift.

`make readme-settings` (python -m core.settings_table) rewrites the table between the README's
markers; a test fails when the README holds anything else.
"""

from __future__ import annotations

import sys
from pathlib import Path

from core.config import PROJECT_ROOT, SETTINGS, Setting
from core.errors import ConfigError

BEGIN = "<!-- settings-table:begin -->"
END = "<!-- settings-table:end -->"
README = PROJECT_ROOT / "README.md"


def default_text(s: Setting) -> str:
    if s.shown is not None:
        return s.shown
    if s.default is None:
        return "unset"
    if isinstance(s.default, bool):
        return f"`{str(s.default).lower()}`"
    return f"`{s.default}`"


def settings_table() -> str:
    """One row per setting: conf file key, environment variable, default, what it does."""
    rows = ["| setting (conf file key) | environment variable | default | what it does |", "|---|---|---|---|"]
    for s in SETTINGS:
        env = f"`{s.env}`" if s.env else "none"
        text = s.help.replace("|", r"\|")  # a pipe would end the cell
        rows.append(f"| `{s.key}` | {env} | {default_text(s)} | {text} |")
    return "\n".join(rows)


def table_in(readme: str) -> str:
    """The table as the README holds it now, between the markers."""
    if BEGIN not in readme or END not in readme:
        raise ConfigError(f"README.md has no {BEGIN} ... {END} block for the settings table")
    return readme.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")


def with_table(readme: str) -> str:
    """The README with its table replaced by the one the declarations give."""
    old = table_in(readme)
    return readme.replace(f"{BEGIN}\n{old}\n{END}", f"{BEGIN}\n{settings_table()}\n{END}", 1)


def main(path: Path = README) -> int:
    text = path.read_text(encoding="utf-8")
    path.write_text(with_table(text), encoding="utf-8")
    print(f"{path}: settings table written ({len(SETTINGS)} settings)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
