"""The built-in data: its truth file against its segments, and the missing rate it was asked
for."""

import os

import pytest

from tf_skeptical import evaluation
from tf_skeptical.data.segments import read_segments
from tf_skeptical.data.class_map import read_class_map
from tf_skeptical.datasets import builtin_data

from conftest import TINY


def test_generator_truth(tiny_data):
  data, summary = tiny_data
  cmap = read_class_map(os.path.join(data, builtin_data.CLASS_MAP))
  train, _ = read_segments(os.path.join(data, builtin_data.TRAIN_SEGMENTS), cmap)
  truth = evaluation.read_truth(os.path.join(data, builtin_data.TRUTH), cmap)
  observed = {(s.clip_id, c) for s in train for c in s.positives}
  assert not truth & observed  # a missing label is not observed
  assert truth  # and some exist
  negatives = {(s.clip_id, c) for s in train for c in s.explicit_negatives}
  assert not truth & negatives and not observed & negatives
  implicit = sum(TINY.num_classes - len(s.positives) - len(s.explicit_negatives) for s in train)
  assert summary["train_implicit_negatives"] == implicit
  assert len(truth) / implicit == pytest.approx(TINY.missing_rate, abs=0.02)


def test_generator_missing_rate_matches_request(tmp_path):
  p = builtin_data.BuiltinDataParams(train_clips=400, eval_clips=1, missing_rate=0.02, seed=5)
  s = builtin_data.generate(str(tmp_path), p)
  assert s["missing_rate_of_implicit_negatives"] == pytest.approx(0.02, abs=0.004)
  # Observed labels are a subset of the true ones: truth = true - observed.
  assert s["train_true_labels"] - s["train_missing_labels"] == sum(
      len(x.positives) for x in read_segments(
          os.path.join(tmp_path, builtin_data.TRAIN_SEGMENTS),
          builtin_data.class_map(p.num_classes))[0])
