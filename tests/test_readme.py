"""The README's Python example runs as written, and does what it says."""

import os
import re

import numpy as np
import pytest

# End-to-end: trains, exports or runs the binaries (.ci/run runs these on one Python only).
pytestmark = pytest.mark.end_to_end

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def python_example() -> str:
  with open(README) as f:
    text = f.read()
  section = text.split("## In Python", 1)[1].split("\n## ", 1)[0]
  blocks = re.findall(r"```python\n(.*?)```", section, re.S)
  assert len(blocks) == 1, "the README's 'In Python' section has one example"
  return blocks[0]


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
  monkeypatch.chdir(tmp_path)
  scope = {}
  exec(compile(python_example(), "README.md", "exec"), scope)  # noqa: S102  (our own text)
  student, flags = scope["student"], scope["flags"]
  # The student masked the top 5% of each class's implicit negatives: floor(5% of n) per
  # class, counted from the flags' ranks.
  expected = int((flags.rank <= np.floor(flags.num_implicit[flags.cls] * 5 / 100 + 1e-9)).sum())
  assert student["masked_entries"] == expected > 0
  assert {"d_prime", "lwlrap", "mAP"} <= set(student["eval"])
  for name in ("runs/teacher/model.keras", "runs/p5/model.keras", "scores/scores.json",
               "examples/train/manifest.json"):
    assert (tmp_path / name).exists(), name
  assert f"{expected} entries masked" in capsys.readouterr().out
