"""A careless path or number loses nothing: an output path that is not what the stage
writes, a read-only location, a number out of range, a failed re-run, each refused in one
line before anything is created, the previous output byte-identical."""

import contextlib
import errno
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import snapshot_tree
from tf_skeptical import errors, flag_stage, flagging, scoring
from tf_skeptical.data import examples
from tf_skeptical.util import output_paths
from tf_skeptical.util.bad_input import DataError

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
KIND = output_paths.OutputKind("scores directory", ("scores.json",))


def run(binary, *args, cwd):
  """A binary's exit status and stderr lines without TensorFlow's start-up lines."""
  done = subprocess.run([sys.executable, "-m", f"tf_skeptical_bin.{binary}", *args], cwd=cwd,
                        env=ENV, capture_output=True, text=True, timeout=300)
  return done.returncode, [l for l in done.stderr.splitlines() if l.strip()]


@contextlib.contextmanager
def read_only_directory(path):
  """A directory that cannot be written: a read-only tmpfs mounted on it when this runs as
  root (who may write anywhere else), or its write permission removed otherwise."""
  path.mkdir()
  if os.geteuid() == 0:
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)],
                          capture_output=True)
    if done.returncode:
      pytest.skip("cannot mount a read-only file system here")
    try:
      yield path
    finally:
      subprocess.run(["umount", str(path)], check=True)
  else:
    path.chmod(0o555)
    try:
      yield path
    finally:
      path.chmod(0o755)


# -- the checks themselves ----------------------------------------------------------------

def test_a_file_in_the_way_is_refused_and_kept(tmp_path):
  notes = tmp_path / "notes.txt"
  notes.write_text("mine")
  with pytest.raises(DataError, match=r"notes.txt: exists and is a file, not a scores "
                                      r"directory: give --output_dir a new or empty"):
    output_paths.check_directory(str(notes), KIND)
  with pytest.raises(DataError, match=r"notes.txt is a file, not a directory"):
    output_paths.check_directory(str(notes / "sub"), KIND)
  assert notes.read_text() == "mine"


def test_a_foreign_directory_is_refused_and_ones_own_accepted(tmp_path):
  (tmp_path / "foreign").mkdir()
  (tmp_path / "foreign" / "thesis.tex").write_text("x")
  with pytest.raises(DataError, match=r"holds other files \(thesis.tex\) and is not a "
                                      r"scores directory \(it has none of scores.json\)"):
    output_paths.check_directory(str(tmp_path / "foreign"), KIND)
  (tmp_path / "empty").mkdir()
  output_paths.check_directory(str(tmp_path / "empty"), KIND)
  (tmp_path / "mine").mkdir()
  (tmp_path / "mine" / "scores.json").write_text("{}")
  output_paths.check_directory(str(tmp_path / "mine"), KIND)
  output_paths.check_directory(str(tmp_path / "new" / "deeper"), KIND)


def test_a_file_output_must_be_a_file_of_its_kind(tmp_path):
  header = flagging.REVIEW_HEADER
  with pytest.raises(DataError, match="is a directory, not a review list"):
    output_paths.check_file(str(tmp_path), "review list", header)
  other = tmp_path / "other.csv"
  other.write_text("name,age\n")
  with pytest.raises(DataError, match="exists and is not a review list"):
    output_paths.check_file(str(other), "review list", header, "--review_csv")
  ours = tmp_path / "review.csv"
  ours.write_text("\ufeff" + ",".join(header) + "\r\n")  # a spreadsheet's save of it
  output_paths.check_file(str(ours), "review list", header)


def test_a_read_only_location_is_refused(tmp_path):
  with read_only_directory(tmp_path / "ro") as ro:
    for path in (ro / "scores", ro / "a" / "b"):
      with pytest.raises(DataError, match=r"cannot be written: .*ro is (on a read-only "
                                          r"file system|not writable)"):
        output_paths.check_directory(str(path), KIND)


# -- the binaries ---------------------------------------------------------------------------

def test_score_and_train_refuse_a_file_as_their_output(tiny_teacher, tiny_examples, tmp_path):
  model_dir, _ = tiny_teacher
  train_dir, _ = tiny_examples
  notes = tmp_path / "notes.txt"
  notes.write_text("my notes\n")
  status, lines = run("tfsk_score", f"--examples={train_dir}", f"--model={model_dir}",
                      "--output_dir=notes.txt", cwd=tmp_path)
  assert status == 1 and lines == [
      "tfsk_score: error: notes.txt: exists and is a file, not a scores directory: give "
      "--output_dir a new or empty directory (the file is kept as it is)"]
  status, lines = run("tfsk_train", f"--train={train_dir}", "--model_dir=notes.txt",
                      cwd=tmp_path)
  assert status == 1 and len(lines) == 1 and "not a model directory" in lines[0]
  assert notes.read_text() == "my notes\n"
  assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


def test_read_only_outputs_are_one_line(teacher_flags, tiny_teacher, tiny_examples, tmp_path):
  model_dir, _ = tiny_teacher
  train_dir, _ = tiny_examples
  scores_dir, _ = teacher_flags
  with read_only_directory(tmp_path / "ro"):
    for binary, args in (
        ("tfsk_score", [f"--examples={train_dir}", f"--model={model_dir}",
                        "--output_dir=ro/scores"]),
        ("tfsk_flag", [f"--scores={scores_dir}", "--output_dir=ro/flags"]),
        ("tfsk_flag", [f"--scores={scores_dir}", "--output_dir=flags",
                       "--review_csv=ro/review.csv"])):
      status, lines = run(binary, *args, cwd=tmp_path)
      assert status == 1 and len(lines) == 1, lines
      assert lines[0].startswith(f"{binary}: error: ro/") and "cannot be written" in lines[0]
  assert sorted(os.listdir(tmp_path)) == ["ro"]


@pytest.mark.parametrize("binary,args,flag", [
    ("tfsk_train", ["--epochs=0"], "--epochs=0: must be >= 1"),
    ("tfsk_train", ["--epochs=-1"], "--epochs=-1: must be >= 1"),
    ("tfsk_train", ["--steps_per_epoch=-5"], "--steps_per_epoch=-5: must be >= 0"),
    ("tfsk_train", ["--batch_size=0"], "--batch_size=0: must be >= 1"),
    ("tfsk_train", ["--batch_size=-8"], "--batch_size=-8: must be >= 1"),
    ("tfsk_train", ["--width=nan"], "--width=nan: must be > 0"),
    ("tfsk_sweep", ["--eval=e", "--work_dir=w", "--seeds=0"], "--seeds=0: must be >= 1"),
    ("tfsk_sweep", ["--eval=e", "--work_dir=w", "--seeds=-1"], "--seeds=-1: must be >= 1"),
    ("tfsk_sweep", ["--eval=e", "--work_dir=w", "--percents=0,30"],
     "--percents must be 'paper' or comma-separated percentages in [0, --max_percent]"),
    ("tfsk_score", ["--examples=e", "--model=m", "--local_workers=0"],
     "--local_workers=0: must be >= 1"),
    ("tfsk_flag", ["--scores=s", "--max_percent=nan"], "--max_percent=nan: must be in (0, 100]"),
    ("tfsk_flag", ["--scores=s", "--max_percent=0"], "--max_percent=0.0: must be in (0, 100]"),
])
def test_numbers_out_of_range_are_refused_before_anything_is_made(tmp_path, binary, args,
                                                                  flag):
  output = {"tfsk_train": ["--train=t", "--model_dir=out"], "tfsk_sweep": ["--train=t"],
            "tfsk_score": ["--output_dir=out"], "tfsk_flag": ["--output_dir=out"]}[binary]
  status, lines = run(binary, *output, *args, cwd=tmp_path)
  assert status == 1 and len(lines) == 1, lines
  assert lines[0].startswith(f"{binary}: error: ") and flag in lines[0], lines
  assert os.listdir(tmp_path) == []


# -- the flag stage's outputs appear together -----------------------------------------------

def test_a_failed_flag_run_keeps_the_previous_flags_and_review(teacher_flags, tiny_examples,
                                                              tmp_path, monkeypatch):
  scores_dir, _ = teacher_flags
  train_dir, _ = tiny_examples
  class_map = examples.read_info(train_dir).class_map
  csv = os.path.join(train_dir, examples.CLASS_MAP)
  out, review = str(tmp_path / "flags"), str(tmp_path / "lists" / "review.csv")
  read = lambda: scoring.read_scores(scores_dir)
  flag_stage.flag(read, class_map, csv, out, review_csv=review)
  assert sorted(os.listdir(out)) == ["flags.npz", "summary.csv", "teacher_check.json"]
  before, review_before = snapshot_tree(out), open(review, "rb").read()

  def full_disk(*args, **kwargs):  # the last write of the stage fails
    raise OSError(errno.ENOSPC, "No space left on device", "flags.npz")

  monkeypatch.setattr(flagging, "write_flags", full_disk)
  with pytest.raises(OSError):
    flag_stage.flag(read, class_map, csv, out, flag_stage.FlagParams(max_percent=5.0),
                    review_csv=review)
  assert snapshot_tree(out) == before and open(review, "rb").read() == review_before
  assert sorted(os.listdir(tmp_path)) == ["flags", "lists"]
  assert os.listdir(tmp_path / "lists") == ["review.csv"]


def test_the_flag_stage_refuses_a_foreign_review_path_before_reading(tmp_path):
  (tmp_path / "notes.csv").write_text("my,own\n")
  read = lambda: pytest.fail("the scores were read before the outputs were checked")
  with pytest.raises(DataError, match="notes.csv: exists and is not a review list"):
    flag_stage.flag(read, None, "c.csv", str(tmp_path / "flags"),
                    review_csv=str(tmp_path / "notes.csv"))
  assert sorted(os.listdir(tmp_path)) == ["notes.csv"]


# -- file-system failures are one line, named by the path -----------------------------------

@pytest.mark.parametrize("code,words", [
    (errno.ENOENT, "no such file or directory"), (errno.EACCES, "permission denied"),
    (errno.EROFS, "read-only file system"), (errno.ENOTDIR, "a part of the path is a file"),
    (errno.EISDIR, "is a directory"), (errno.EPERM, "not permitted")])
def test_os_errors_are_one_line_naming_the_path(code, words):
  message = errors.known_error(OSError(code, os.strerror(code), "/data/out/x.csv"))
  assert message.startswith("/data/out/x.csv: ") and words in message


def test_tensorflow_and_worker_file_errors_are_one_line(tmp_path):
  (tmp_path / "a_file").write_text("x")
  for failing in (lambda: tf.io.gfile.GFile(str(tmp_path / "missing")).read(),
                  lambda: tf.io.gfile.makedirs(str(tmp_path / "a_file" / "sub"))):
    with pytest.raises(tf.errors.OpError) as caught:
      failing()
    message = errors.known_error(caught.value)
    assert message and str(tmp_path) in message and "\n" not in message
  wrapped = RuntimeError("Traceback ...\nOSError: [Errno 30] Read-only file system: "
                         "'/mnt/ro/.tmp.scores/scores-00000' [while running 'Write']")
  assert errors.known_error(wrapped) == ("/mnt/ro/.tmp.scores/scores-00000: read-only file "
                                         "system: choose a writable location")
  assert errors.known_error(KeyError("a bug")) is None
