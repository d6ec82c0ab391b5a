"""The whole pipeline with every path a URL (TensorFlow's in-memory ram:// filesystem), as a
Dataflow job has them on gs://: generate, prepare, train, score, flag, evaluate, export.

A path the package handled with os/open instead of tf.io.gfile fails here, or leaves a local
"ram:" directory behind in the working directory."""

import os

import numpy as np
import pytest
import tensorflow as tf

import ram_filesystem  # noqa: F401  (registers ram:// with Beam)
from conftest import TINY, TINY_TRAIN
from tf_skeptical.datasets import builtin_data
from tf_skeptical import evaluation, exporting, flagging, prepare, scoring, training
from tf_skeptical.targets import Targets
from tf_skeptical.data import examples
from tf_skeptical.util import files

# End-to-end: trains, exports or runs the binaries (.ci/run runs these on one Python only).
pytestmark = pytest.mark.end_to_end

ROOT = "ram://tfsk"


@pytest.fixture
def in_empty_dir(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  yield tmp_path
  tf.io.gfile.rmtree(ROOT)


def test_pipeline_on_urls_matches_local_and_writes_nothing_locally(in_empty_dir, tiny_examples):
  data = f"{ROOT}/data"
  builtin_data.generate(data, TINY)
  train_dir = f"{ROOT}/examples/train"
  result = prepare.prepare_audio(f"{data}/{builtin_data.TRAIN_SEGMENTS}",
                                 f"{data}/{builtin_data.AUDIO_DIR}",
                                 f"{data}/{builtin_data.CLASS_MAP}", train_dir,
                                 clip_seconds=TINY.clip_seconds)
  assert result.num_clips == TINY.train_clips

  # The same features as the local run of the same data (conftest's tiny_examples).
  local = {c["clip_id"]: c for c in examples.iterate(tiny_examples[0])}
  remote = {c["clip_id"]: c for c in examples.iterate(train_dir)}
  assert remote.keys() == local.keys()
  for clip_id, clip in remote.items():
    np.testing.assert_array_equal(clip["features"], local[clip_id]["features"])
    np.testing.assert_array_equal(clip["positives"], local[clip_id]["positives"])
  assert examples.read_info(train_dir).extra["audio_dir"] == f"{data}/{builtin_data.AUDIO_DIR}"

  cfg = training.TrainConfig(**dict(TINY_TRAIN, epochs=1))
  teacher = f"{ROOT}/teacher"
  training.train(train_dir, teacher, cfg, verbose=0)
  assert files.exists(f"{teacher}/{training.RESULT}") and files.glob(f"{teacher}/logs/*")

  scores_dir = f"{ROOT}/scores"
  scoring.score(train_dir, teacher, scores_dir, patch_batch=16, clips_per_batch=8,
                local_workers=1)
  scores = scoring.read_scores(scores_dir)
  assert len(scores.clip_ids) == TINY.train_clips

  flags_path = f"{ROOT}/flags/flags.npz"
  files.makedirs(f"{ROOT}/flags")
  flags = flagging.flag_scores(scores, max_percent=20)
  flagging.write_flags(flags, flags_path)
  flagging.write_summary(flags, examples.read_info(train_dir).class_map.display_names,
                         f"{ROOT}/flags/summary.csv")
  again = flagging.read_flags(flags_path)
  np.testing.assert_array_equal(again.clip, flags.clip)
  np.testing.assert_array_equal(again.percentile, flags.percentile)

  student = f"{ROOT}/student"
  training.train(train_dir, student, cfg, verbose=0,
                 targets=Targets(flagged=flagging.load_entries(flags_path, 5.0), percent=5.0))
  ev = evaluation.evaluate_model(student, train_dir)
  evaluation.write_evaluation(ev, examples.read_info(train_dir).class_map.display_names,
                              f"{ROOT}/eval")
  assert files.read_json(f"{ROOT}/eval/eval.json")["summary"]["d_prime"] == pytest.approx(
      ev.summary()["d_prime"])

  tagger = f"{ROOT}/tagger"
  exporting.export(student, f"{train_dir}/{examples.CLASS_MAP}", tagger,
                   calibration_files=prepare.source_audio(train_dir),
                   cfg=exporting.ExportConfig(calibration_windows=20))
  assert files.size(f"{tagger}/{exporting.INT8_TFLITE}") > 0
  assert files.read_json(f"{tagger}/{exporting.SANITY}")["failures"] == []
  assert files.exists(f"{tagger}/{exporting.SAVED_MODEL}/saved_model.pb")

  assert os.listdir(in_empty_dir) == []  # no local "ram:" directory from a mangled URL
