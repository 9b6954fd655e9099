"""Pages as headless Chromium renders them (Debian's chromium, installed by `make test`)."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


def rendered_dom(page: Path, profile: Path) -> str:
    """The DOM of a local page after its scripts ran (virtual time lets them finish)."""
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: `make test` installs it (make browser)"
    done = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=5000",
                           "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


def visible_text(dom: str) -> str:
    """What a reader sees: no scripts or styles, tags dropped, white space collapsed."""
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom)))


def data_docs_index_rows(dom: str) -> list[tuple[str, str, str, str]]:
    """(run name, suite, page link, Success|Failed) per validation result, newest first, as GX's Data
    Docs index hands them to its table. The table itself is drawn by bootstrap-table from a CDN,
    which an offline machine cannot reach, so the rows are read from the data the page carries."""
    return re.findall(r"'run_name': '([^']*)'.*?'_expectation_suite_name_sort': '([^']*)', "
                      r"'_table_row_link_path': '([^']*)', '_validation_success_text': '(\w+)'", dom, flags=re.S)
