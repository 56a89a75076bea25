"""Published tables say what wrote them, and rewrite only their own block of a page."""

from __future__ import annotations

import subprocess
from datetime import date
from pathlib import Path

from mnistlab.tables import commit, provenance, publish, write_into_page

ROOT = Path(__file__).resolve().parents[1]


def test_the_provenance_line_names_command_commit_date_and_machine() -> None:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()
    line = provenance("make compare")
    assert line.startswith(f"Written by `make compare` at commit {commit()} on "
                           f"{date.today().isoformat()}; machine: ")
    assert commit().split()[0] == head and "cores" in line


def test_outside_git_the_commit_is_unknown(tmp_path: Path) -> None:
    assert commit(tmp_path) == "unknown"


def test_a_page_block_is_replaced_and_the_rest_kept(tmp_path: Path) -> None:
    page = tmp_path / "results.md"
    page.write_text("# Results\n\nprose\n\n<!-- table:compare -->\nold\n<!-- /table:compare -->"
                    "\n\nmore prose\n\n<!-- table:other -->\nkept\n<!-- /table:other -->\n")
    write_into_page(page, "compare", "| a |\n| --- |\n| 1 |\n")
    assert page.read_text() == (
        "# Results\n\nprose\n\n<!-- table:compare -->\n| a |\n| --- |\n| 1 |\n"
        "<!-- /table:compare -->\n\nmore prose\n\n<!-- table:other -->\nkept\n"
        "<!-- /table:other -->\n")
    write_into_page(page, "new", "x")  # a page without the block gets it at its end
    assert page.read_text().endswith("<!-- table:new -->\nx\n<!-- /table:new -->\n")


def test_publish_writes_the_table_its_files_and_the_page(tmp_path: Path, capsys) -> None:
    page = tmp_path / "performance.md"
    page.write_text("<!-- table:bench -->\n<!-- /table:bench -->\n")
    publish(tmp_path / "out", "Seconds.", "make bench", [{"setup": "x", "s": "1.0"}],
            name="bench", page=page)
    text = page.read_text()
    assert "| setup | s |\n| --- | --- |\n| x | 1.0 |" in text
    assert "Written by `make bench` at commit" in text
    assert (tmp_path / "out" / "bench.csv").read_text().splitlines() == ["setup,s", "x,1.0"]
    assert "Written by `make bench`" in capsys.readouterr().out
