"""Evaluation of flags against truth, and the sweep's artifacts and resumption."""

import os

import pytest

from tf_skeptical import builtin_data, evaluation, flagging, scoring, sweep, training

from conftest import TINY_TRAIN
from test_flagging import hand_worked


def test_flag_precision_hand_worked():
  ids, scores, pos, neg = hand_worked()
  f = flagging.rank_implicit_negatives(ids, scores, pos, neg, max_percent=50)
  # Truly missing: class 0 in c07 and c03; class 1 in c05. 20 implicit negatives in all.
  truth = {("c07", 0), ("c03", 0), ("c05", 1)}
  rows = {r["percent"]: r for r in evaluation.flag_quality(f, truth, [20, 50])}
  # At 20%: flags (c04, 0), (c04, 1), (c05, 1): one true of three.
  assert rows[20]["flagged"] == 3 and rows[20]["truly_missing"] == 1
  assert rows[20]["precision"] == pytest.approx(1 / 3)
  assert rows[20]["recall"] == pytest.approx(1 / 3)
  # At 50%: class 0 flags c04, c07, c10, c06; class 1 flags c04, c05, c09, c08, c07.
  assert rows[50]["truly_missing"] == 2 and rows[50]["precision"] == pytest.approx(2 / 9)
  assert rows[50]["base_rate"] == pytest.approx(3 / 20)


def test_sweep_produces_every_artifact_and_resumes(tiny_data, tiny_examples, tmp_path,
                                                   monkeypatch):
  data, _ = tiny_data
  train_dir, eval_dir = tiny_examples
  work = str(tmp_path / "sweep")
  cfg = sweep.SweepConfig(train=training.TrainConfig(**dict(TINY_TRAIN, epochs=1)),
                          percents=(0.0, 5.0, 10.0), max_percent=10.0, score_workers=1,
                          seeds=2)
  truth = os.path.join(data, builtin_data.TRUTH)
  table = sweep.run(train_dir, eval_dir, work, cfg, truth_csv=truth)
  assert [r["discard_percent"] for r in table] == [0.0, 5.0, 10.0]
  assert all(r["runs"] == 2 for r in table)
  assert all(r["d_prime_min"] <= r["d_prime"] <= r["d_prime_max"] for r in table)
  assert table[0]["masked_entries"] == 0 and table[2]["masked_entries"] > table[1]["masked_entries"]
  for name in ("results.csv", "results.md", "plot_metrics.png", "plot_flags.png",
               "flag_quality.csv", "flags/flags.npz", "flags/summary.csv", "flags/review.csv",
               "scores/scores.json", "teacher/result.json", "students/p5/result.json",
               "students/p10/model.keras", "students/p0_seed1/result.json",
               "students/p10_seed1/result.json"):
    assert os.path.exists(os.path.join(work, name)), name
  with open(os.path.join(work, "plot_metrics.png"), "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  runs = os.listdir(os.path.join(work, "logs"))
  assert {"p0", "p5", "p10"} <= set(runs)  # HParams runs
  assert any(n.startswith("events.out.tfevents") for n in os.listdir(os.path.join(work, "logs")))

  # A re-run trains, scores and flags nothing again, and gives the same table.
  def refuse(*args, **kwargs):
    raise AssertionError("a completed stage ran again")
  monkeypatch.setattr(training, "train", refuse)
  monkeypatch.setattr(scoring, "score", refuse)
  monkeypatch.setattr(flagging, "flag_scores", refuse)
  again = sweep.run(train_dir, eval_dir, work, cfg, truth_csv=truth)
  assert again == table or all(
      a["d_prime"] == b["d_prime"] for a, b in zip(again, table))
