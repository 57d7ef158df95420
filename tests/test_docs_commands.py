"""Every command block shown in README.md and docs/*.md runs.

A block is a fenced ```bash/sh/shell/console block, or an unmarked ``` block whose first command
starts with `lemcosim`. Each block runs as one bash script (`set -e`, so every line must succeed)
in a fresh folder that holds what the docs assume (`my_feeder/Master.dss`, the user's own feeder of
docs/grid.md). Runs are kept short: `lemcosim run` and `lemcosim compose` get
`--set time.windows=2` appended. A block that needs an external program, another machine or a long
run says so in a marker comment on the line after its closing fence, with the reason:

    <!-- docs-test: skip (why) -->

Inline `code` spans are mentions of commands (often with placeholders such as SCENARIO), not runs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELLS = {"bash", "sh", "shell", "console"}
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->")
SHORT = "--set time.windows=2"
# wrappers defined before each block: short runs, and the test's own python for `lemcosim`
PRELUDE = f"""set -e
lemcosim() {{
  case "$1" in
    run|compose) {sys.executable} -m lemcosim.runner.cli "$@" {SHORT} ;;
    *) {sys.executable} -m lemcosim.runner.cli "$@" ;;
  esac
}}
"""


@dataclass
class Block:
    doc: Path
    line: int  # of the opening fence
    text: str
    skip: str | None

    @property
    def id(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def command_blocks(doc: Path) -> list[Block]:
    lines = doc.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = re.match(r"^\s*```(\w*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip().startswith("```")),
                   len(lines))
        body = lines[i + 1:end]
        after = lines[end + 1] if end + 1 < len(lines) else ""
        first = next((b.strip() for b in body if b.strip() and not b.strip().startswith("#")), "")
        if fence.group(1) in SHELLS or (fence.group(1) == "" and first.startswith("lemcosim ")):
            marker = SKIP.search(after)
            blocks.append(Block(doc, i + 1, "\n".join(body), marker.group("reason") if marker
                                else None))
        i = end + 1
    return blocks


BLOCKS = [b for doc in DOCS for b in command_blocks(doc)]


def test_the_docs_show_commands_and_the_grid_examples_are_among_them():
    ids = [b.id for b in BLOCKS]
    assert any(i.startswith("docs/grid.md:") for i in ids), ids
    assert any(i.startswith("README.md:") and b.skip is None for i, b in zip(ids, BLOCKS,
                                                                               strict=True)), ids


def test_a_skip_marker_needs_a_reason(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text("```bash\nlemcosim nosuch\n```\n<!-- docs-test: skip (needs two hosts) -->\n"
                   "```\nlemcosim scenarios\n```\n\n```yaml\nname: x\n```\n")
    blocks = command_blocks(doc)
    assert [(b.line, b.skip) for b in blocks] == [(1, "needs two hosts"), (5, None)]


@pytest.mark.federation
@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_every_command_shown_in_the_docs_runs(block: Block, tmp_path):
    if block.skip:
        pytest.skip(block.skip)
    (tmp_path / "my_feeder").mkdir()
    shutil.copy(ROOT / "tests" / "data" / "three_bus.dss", tmp_path / "my_feeder" / "Master.dss")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    proc = subprocess.run(["bash", "-c", PRELUDE + block.text], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{block.id}:\n{block.text}\n--- stderr ---\n{proc.stderr[-3000:]}"
