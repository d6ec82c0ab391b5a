"""Evaluation of flags against truth, and the sweep's artifacts and resumption."""

import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf

from tf_skeptical.datasets import audioset_simulation as sim, builtin_data
from tf_skeptical import (evaluation, flagging, inference, input_pipeline, prepare, scoring,
                          sweep, training, treatments)
from tf_skeptical.data import examples, ontology
from tf_skeptical.util import files, provenance

from conftest import TINY_TRAIN
from test_flagging import hand_worked

# End-to-end: trains, exports or runs the binaries (.ci/run runs these on one Python only).
pytestmark = pytest.mark.end_to_end


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
                          percents=(0.0, 10.0), max_percent=10.0, score_workers=1,
                          seeds=2, jobs=2)  # side by side; the re-runs below in-process
  truth = os.path.join(data, builtin_data.TRUTH)
  result = sweep.run(train_dir, eval_dir, work, cfg, truth_csv=truth)
  table = result.table
  assert [r["discard_percent"] for r in table] == [0.0, 10.0]
  assert all(r["runs"] == 2 for r in table)
  # The table's statistics, recomputed from every run's own result.json.
  for r in table:
    runs = [files.read_json(os.path.join(sweep.run_dir(work, r["discard_percent"], i),
                                         training.RESULT))["eval"]["d_prime"] for i in range(2)]
    assert r["d_prime"] == pytest.approx(np.mean(runs))
    assert (r["d_prime_min"], r["d_prime_max"]) == (min(runs), max(runs))
  # Each p's gain, paired by seed, from the runs' own result.json.
  base = [files.read_json(os.path.join(sweep.run_dir(work, 0.0, i), training.RESULT))["eval"]
          ["d_prime"] for i in range(2)]
  for r in table[1:]:
    runs = [files.read_json(os.path.join(sweep.run_dir(work, r["discard_percent"], i),
                                         training.RESULT))["eval"]["d_prime"] for i in range(2)]
    assert r["gain"] == pytest.approx(np.mean(np.subtract(runs, base)), abs=1e-5)
    assert r["gain_seed_low"] <= r["gain"] <= r["gain_seed_high"]
    assert r["gain_clip_low"] <= r["gain_clip_high"] and r["paired_runs"] == 2
    assert isinstance(r["significant"], bool)
  # The complete-label reference: trained with every known missing label added back.
  truth_count = len(evaluation.read_truth(truth, examples.read_info(train_dir).class_map))
  for i in range(2):
    ref = files.read_json(os.path.join(sweep.reference_dir(work, sweep.COMPLETE, i), training.RESULT))
    assert ref["added_positives"] == truth_count > 0 and ref["masked_entries"] == 0
  # The perfect mask: as many entries masked as the truth lists, nothing added, and the
  # truth file named as its flags' maker.
  for i in range(2):
    ref = files.read_json(os.path.join(sweep.reference_dir(work, sweep.PERFECT_MASK, i),
                                       training.RESULT))
    assert ref["masked_entries"] == truth_count and ref["added_positives"] == 0
    assert ref["flags"]["model_id"] == "truth " + provenance.file_id(truth)
  text = sweep.results_text(work)
  assert "Complete labels" in text and "Perfect mask" in text and "lwlrap gain" in text
  # Each student masked exactly the entries its flags name, counted through the mask the
  # input pipeline looks up for every train clip.
  flags = flagging.read_flags(os.path.join(work, sweep.FLAGS, flagging.FLAGS_FILE))
  num_classes = examples.read_info(train_dir).num_classes
  for r in table:
    p = r["discard_percent"]
    lookup = input_pipeline.entry_lookup(flags.entries(p) if p else None, num_classes)
    masked = sum(int(lookup(tf.constant(c["clip_id"]))[0].numpy().sum())
                 for c in examples.iterate(train_dir))
    assert r["masked_entries"] == masked
    assert masked == int((flags.rank <= np.floor(flags.num_implicit[flags.cls] * p / 100
                                                 + 1e-9)).sum())
  assert table[1]["masked_entries"] > 0 == table[0]["masked_entries"]
  for name in ("results.csv", "results.md", "plot_metrics.png", "plot_flags.png",
               "flag_quality.csv", "flags/flags.npz", "flags/summary.csv", "flags/review.csv",
               "scores/scores.json", "teacher/result.json", "students/p10/result.json",
               "students/p10/model.keras", "students/p0_seed1/result.json",
               "students/p10_seed1/result.json", "students/p10_seed1/eval_scores.npz"):
    assert os.path.exists(os.path.join(work, name)), name
  with open(os.path.join(work, "plot_metrics.png"), "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  runs = os.listdir(os.path.join(work, "logs"))
  assert {"p0", "p10"} <= set(runs)  # HParams runs
  assert any(n.startswith("events.out.tfevents") for n in os.listdir(os.path.join(work, "logs")))

  # A re-run trains, scores and flags nothing again, and gives the same table.
  cfg = dataclasses.replace(cfg, jobs=1)  # in this process, where the patches below apply

  def refuse(*args, **kwargs):
    raise AssertionError("a completed stage ran again")
  monkeypatch.setattr(training, "train", refuse)
  monkeypatch.setattr(scoring, "score", refuse)
  monkeypatch.setattr(flagging, "flag_scores", refuse)
  monkeypatch.setattr(inference, "predict_clip_scores", refuse)
  again = sweep.run(train_dir, eval_dir, work, cfg, truth_csv=truth).table
  assert again == table or all(
      a["d_prime"] == b["d_prime"] for a, b in zip(again, table))
  monkeypatch.undo()

  # A retrained teacher: its scores, flags and students are made again, not reused.
  teacher = sweep.run_dir(work, 0.0)
  old_id = provenance.file_id(inference.model_path(teacher))
  training.train(train_dir, teacher, dataclasses.replace(cfg.train, seed=7), eval_dir=eval_dir,
                 verbose=0, overwrite=True)
  new_id = provenance.file_id(inference.model_path(teacher))
  assert new_id != old_id
  sweep.run(train_dir, eval_dir, work, cfg, truth_csv=truth)
  assert files.read_json(os.path.join(work, sweep.SCORES, scoring.MANIFEST))["model_id"] == new_id
  flags = flagging.read_flags(os.path.join(work, sweep.FLAGS, flagging.FLAGS_FILE))
  assert flags.made_from["model_id"] == new_id
  student = files.read_json(os.path.join(sweep.run_dir(work, 10.0), training.RESULT))
  assert student["flags"]["model_id"] == new_id


@pytest.fixture(scope="module")
def harder_set(tmp_path_factory):
  """A small harder set (the AudioSet simulation with an ontology), prepared: (train
  examples, eval examples, truth CSV)."""
  root = tmp_path_factory.mktemp("harder")
  sim.generate(str(root / "sim"), sim.SimulationParams(
      train_clips=800, eval_clips=300, num_classes=12, clips_per_shard=400, chunk=400,
      smallest_class=0.05, child_share=0.5, seed=2))
  out = []
  for split in (sim.TRAIN, sim.EVAL):
    prepare.prepare_embeddings(str(root / "sim" / split / "*.tfrecord"),
                               str(root / "sim" / sim.CLASS_MAP), str(root / split))
    out.append(str(root / split))
  return out[0], out[1], str(root / "sim" / sim.TRUTH)


def test_second_round_is_taught_by_the_best_first_round_student(harder_set, tmp_path):
  train_dir, eval_dir, truth = harder_set
  work = str(tmp_path / "sweep")
  cfg = sweep.SweepConfig(train=training.TrainConfig(model="embedding_mlp", width=0.25,
                                                     epochs=3, batch_size=64),
                          percents=(0.0, 5.0, 10.0), max_percent=10.0, score_workers=1,
                          rounds=2, complete_reference=False, jobs=1)
  result = sweep.run(train_dir, eval_dir, work, cfg, truth_csv=truth)
  table = result.table
  assert [(r["round"], r["discard_percent"]) for r in table] == [
      (1, 0.0), (1, 5.0), (1, 10.0), (2, 5.0), (2, 10.0)]

  def d_prime(model_dir):
    return files.read_json(os.path.join(model_dir, training.RESULT))["eval"]["d_prime"]
  # The second round's teacher: the first round's student with the higher d', read from
  # the runs' own result.json.
  first = {p: sweep.run_dir(work, p, 0, 1) for p in (5.0, 10.0)}
  best = max(first, key=lambda p: d_prime(first[p]))
  teacher_id = provenance.file_id(inference.model_path(first[best]))
  second = sweep.round_dir(work, 2)
  assert files.read_json(os.path.join(second, sweep.SCORES, scoring.MANIFEST))[
      "model_id"] == teacher_id
  flags = flagging.read_flags(os.path.join(second, sweep.FLAGS, flagging.FLAGS_FILE))
  assert flags.made_from["model_id"] == teacher_id
  first_flags = flagging.read_flags(os.path.join(work, sweep.FLAGS, flagging.FLAGS_FILE))
  assert first_flags.made_from["model_id"] != teacher_id
  baseline = d_prime(sweep.run_dir(work, 0.0))
  for r in table[3:]:
    p = r["discard_percent"]
    run = sweep.run_dir(work, p, 0, 2)
    assert run.startswith(second)
    run_result = files.read_json(os.path.join(run, training.RESULT))
    assert run_result["flags"]["model_id"] == teacher_id
    assert r["masked_entries"] == int((flags.rank <= np.floor(
        flags.num_implicit[flags.cls] * p / 100 + 1e-9)).sum())
    assert r["gain"] == pytest.approx(d_prime(run) - baseline, abs=1e-5)  # paired, 1 seed
  assert "round 1's p = %g%% student" % best in sweep.results_text(work)
  assert os.path.exists(os.path.join(second, evaluation.FLAG_QUALITY))
  assert {"p5_round2", "p10_round2"} <= set(os.listdir(os.path.join(work, "logs")))
  # Embedding examples have no audio frontend: the sweep exports no tagger, and says so.
  best, tagger = sweep.export_best(result, train_dir)
  assert tagger is None and best["d_prime"] == max(r["d_prime"] for r in table)


def test_rounds_need_a_student(tmp_path):
  with pytest.raises(ValueError, match="rounds = 2 needs a p > 0"):
    sweep.run("unused", "unused", str(tmp_path), sweep.SweepConfig(percents=(0.0,), rounds=2))


def test_treatments_and_the_ontology_each_get_their_rows_and_runs(harder_set, tmp_path):
  """Every treatment trains its own student per p from the same flags, paired with the same
  baseline; with the harder set's ontology the flags never fall on a known positive."""
  train_dir, eval_dir, truth = harder_set
  onto_path = os.path.join(os.path.dirname(truth), sim.ONTOLOGY)
  work = str(tmp_path / "sweep")
  cfg = sweep.SweepConfig(train=training.TrainConfig(model="embedding_mlp", width=0.25,
                                                     epochs=2, batch_size=64),
                          ontology=onto_path,
                          percents=(0.0, 10.0), max_percent=10.0, score_workers=1,
                          treatments=("mask", "soft", "distill0.5", "positive"),
                          complete_reference=False, perfect_mask_reference=False,
                          jobs=2)  # the teacher's scores read in each worker
  table = sweep.run(train_dir, eval_dir, work, cfg, truth_csv=truth).table
  assert [(r["treatment"], r["discard_percent"]) for r in table] == [
      ("", 0.0), ("mask", 10.0), ("soft", 10.0), ("distill0.5", 10.0), ("positive", 10.0)]
  flags = flagging.read_flags(os.path.join(work, sweep.FLAGS, flagging.FLAGS_FILE))
  assert flags.made_from["ontology"] == onto_path
  baseline = files.read_json(os.path.join(sweep.run_dir(work, 0.0), training.RESULT))
  assert baseline["ontology"] == onto_path
  for r in table[1:]:
    run = sweep.row_dir(work, r)
    assert os.path.basename(run) == ("p10" if r["treatment"] == "mask"
                                     else f"{r['treatment']}_p10")
    result = files.read_json(os.path.join(run, training.RESULT))
    assert result["treatment"] == r["treatment"]
    assert result["flags"]["model_id"] == flags.made_from["model_id"]
    assert r["gain"] == pytest.approx(result["eval"]["d_prime"]
                                      - baseline["eval"]["d_prime"], abs=1e-5)
  assert files.read_json(os.path.join(sweep.row_dir(work, table[3]), training.RESULT))[
      "treatment"] == "distill0.5"
  # No flag is an ancestor of a class labelled in its clip (read from the train examples).
  info = examples.read_info(train_dir)
  tree = ontology.read_ontology(onto_path, info.class_map.mids)
  known = set()
  for clip in examples.iterate(train_dir):
    for c in np.flatnonzero(clip["positives"]):
      known |= {(clip["clip_id"], int(a)) for a in tree.ancestors[c]}
  assert known
  flagged = {(str(flags.clip_ids[i]), int(c)) for i, c in zip(flags.clip, flags.cls)}
  assert flagged and not flagged & known
  text = sweep.results_text(work)
  for t in ("| soft |", "| distill0.5 |", "| positive |", "| mask |"):
    assert t in text
  assert {"p10", "soft_p10", "distill0.5_p10", "positive_p10"} <= set(
      os.listdir(os.path.join(work, "logs")))


def test_a_class_map_that_the_data_covers_in_part(tiny_data, tmp_path):
  """30 classes, 6 of which occur (the tiny set's, prepared with 24 more in its class map):
  by default no flag falls on a class without train positives; flag precision is over the
  occurring classes (against a hand count of the flags file and the truth); head and tail
  are taken over the occurring classes; no numpy warning; the report says what it counts."""
  import csv
  import warnings
  from tf_skeptical import verdict
  data, _ = tiny_data
  padded = str(tmp_path / "classes30.csv")
  with open(os.path.join(data, builtin_data.CLASS_MAP)) as f:
    rows = list(csv.reader(f))
  with open(padded, "w", newline="") as f:
    w = csv.writer(f)
    w.writerows(rows + [[i, f"/absent/{i}", f"absent {i}"] for i in range(len(rows) - 1, 30)])
  dirs = {}
  for split, segments in (("train", builtin_data.TRAIN_SEGMENTS),
                          ("eval", builtin_data.EVAL_SEGMENTS)):
    dirs[split] = str(tmp_path / split)
    prepare.prepare_audio(os.path.join(data, segments),
                          os.path.join(data, builtin_data.AUDIO_DIR), padded, dirs[split],
                          clip_seconds=1.5)
  assert examples.read_info(dirs["train"]).num_classes == 30
  work = str(tmp_path / "sweep")
  truth_csv = os.path.join(data, builtin_data.TRUTH)
  cfg = sweep.SweepConfig(train=training.TrainConfig(**dict(TINY_TRAIN, epochs=1)),
                          percents=(0.0, 10.0), max_percent=10.0, seeds=2, score_workers=1)
  assert cfg.flag_min_positives == flagging.MIN_POSITIVES > 0
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    table = sweep.run(dirs["train"], dirs["eval"], work, cfg, truth_csv=truth_csv).table
  numpy_warnings = [w for w in caught if "numpy" in w.filename or "verdict" in w.filename
                    or "empty slice" in str(w.message)]
  assert not numpy_warnings, [str(w.message) for w in numpy_warnings]

  flags = flagging.read_flags(os.path.join(work, sweep.FLAGS, flagging.FLAGS_FILE))
  train_positives = flags.num_positives
  assert (train_positives[6:] == 0).all() and (train_positives[:6] > 0).all()
  assert set(np.unique(flags.cls)) <= set(np.flatnonzero(train_positives >= 5))
  # Precision at 10%, counted by hand from the flags file and the truth CSV.
  cmap = examples.read_info(dirs["train"]).class_map
  with open(truth_csv) as f:
    truth = {(r["clip_id"], cmap.index_of[r["mid"]]) for r in csv.DictReader(f)}
  chosen = flags.selected(10.0)
  pairs = [(str(flags.clip_ids[i]), int(c)) for i, c in zip(flags.clip[chosen],
                                                            flags.cls[chosen])]
  row = table[1]
  assert row["masked_entries"] == len(pairs) > 0
  assert row["flag_precision"] == pytest.approx(sum(p in truth for p in pairs) / len(pairs))
  assert row["classes_without_positives"] == 24 and row["flagged_without_positives"] == 0
  text = sweep.results_text(work)
  assert ("over the 6 classes with train positives; the 24 classes without one (the teacher "
          "never saw them present) took no flags." in text)
  parts = verdict.head_and_tail(train_positives)
  assert sorted(np.r_[parts[verdict.HEAD], parts[verdict.TAIL]].tolist()) == list(range(6))
