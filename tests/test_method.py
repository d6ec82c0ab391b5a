"""The method's central claim, on a small built-in set: a teacher's top-scored implicit
negatives are missing labels far more often than random picks."""

import os

import pytest

from tf_skeptical.datasets import builtin_data
from tf_skeptical.data import class_map
from tf_skeptical import evaluation, flagging, prepare, scoring, teacher_check, training

# End-to-end: trains, exports or runs the binaries (.ci/run runs these on one Python only).
pytestmark = pytest.mark.end_to_end

SMALL = builtin_data.BuiltinDataParams(num_classes=6, train_clips=300, eval_clips=10,
                                       clip_seconds=1.5, missing_rate=0.05, seed=4)


def _teacher_scores(train, root, name, epochs):
  teacher = str(root / name)
  training.train(train, teacher, training.TrainConfig(
      model="mobilenet_v1", width=0.25, epochs=epochs, batch_size=16, train_hop_frames=48),
                 verbose=0)
  scores = str(root / f"{name}_scores")
  scoring.score(train, teacher, scores, local_workers=1)
  return scoring.read_scores(scores)


@pytest.fixture(scope="module")
def small_teacher_flags(tmp_path_factory):
  """300 clips, a MobileNetV1 w0.25 teacher of 15 epochs (about a minute), its flags, and
  the scores of the same network untrained (zero steps)."""
  root = tmp_path_factory.mktemp("method")
  data, train = str(root / "data"), str(root / "train")
  builtin_data.generate(data, SMALL)
  prepare.prepare_audio(os.path.join(data, builtin_data.TRAIN_SEGMENTS),
                        os.path.join(data, builtin_data.AUDIO_DIR),
                        os.path.join(data, builtin_data.CLASS_MAP), train,
                        clip_seconds=SMALL.clip_seconds)
  cmap = class_map.read_class_map(os.path.join(data, builtin_data.CLASS_MAP))
  truth = evaluation.read_truth(os.path.join(data, builtin_data.TRUTH), cmap)
  trained = _teacher_scores(train, root, "teacher", 15)
  untrained = _teacher_scores(train, root, "untrained", 0)
  return (flagging.flag_scores(trained, max_percent=20), truth, trained, untrained,
          cmap.display_names)


def test_teacher_flags_beat_random_flags_fivefold(small_teacher_flags):
  """Measured once: 62% of the flags at 5% are truly missing labels, against a base rate
  (the precision of random flags) of 6.9%."""
  flags, truth = small_teacher_flags[:2]
  row, = evaluation.flag_quality(flags, truth, [5])
  assert row["flagged"] >= 30
  assert row["precision"] >= 5 * row["base_rate"]



def test_teacher_check_warns_on_an_untrained_teacher_not_on_a_trained_one(
    small_teacher_flags):
  flags, truth, trained, untrained, names = small_teacher_flags
  report = teacher_check.check(trained, flags, names)
  assert not report["weak"], report
  # The estimate is in-sample, so optimistic: it is at least the measured lift.
  row, = evaluation.flag_quality(flags, truth, [4])
  at4 = next(r for r in report["percents"] if r["percent"] == 4)
  assert at4["lift"] >= 0.8 * row["precision"] / row["base_rate"]
  untrained_flags = flagging.flag_scores(untrained, max_percent=20)
  weak = teacher_check.check(untrained, untrained_flags, names)
  assert weak["weak"], weak
  assert "barely better than random" in teacher_check.warnings(weak)[0]
