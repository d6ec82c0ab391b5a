"""The listening test: the verdicts file (append-only, refused when it answers other flags,
bad rows named by file and row), verdicts into a student's targets (against a hand-made
table), the cleaned dataset (against hand-written rows), the simulated reviewer, and the
page in a real browser, with the server killed between answers and two clients at once."""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest

from tf_skeptical import flag_stage, flagging, input_pipeline, scoring
from tf_skeptical.data import examples
from tf_skeptical.entries import Entries
from tf_skeptical.review import cleaned, queue, simulated, verdicts
from tf_skeptical.review.session import made_from
from tf_skeptical.targets import Targets
from tf_skeptical.treatments import Treatment

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
WEB = os.path.join(ROOT, "export", "web")
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


@pytest.fixture(scope="module")
def flags_dir(teacher_flags, tiny_examples, tmp_path_factory):
  """A flags directory of the tiny teacher (every class flagged, up to 20%)."""
  scores_dir, _ = teacher_flags
  train_dir, _ = tiny_examples
  info = examples.read_info(train_dir)
  out = str(tmp_path_factory.mktemp("review") / "flags")
  flag_stage.flag(lambda: scoring.read_scores(scores_dir), info.class_map,
                  os.path.join(train_dir, examples.CLASS_MAP), out,
                  flag_stage.FlagParams(max_percent=20.0, min_positives=0))
  return out


def _teacher_order(flags):
  """A numpy reference of the teacher's order: score descending, ties by percentile."""
  percentile = 100.0 * flags.rank / flags.num_implicit[flags.cls]
  return np.lexsort((percentile, -flags.score.astype(np.float64)))


def test_verdicts_become_targets_as_a_hand_made_table(tiny_examples):
  """One clip, four entries: a flagged one confirmed present, a flagged one rejected, a
  flagged one unreviewed, an unflagged one confirmed. Under mask and soft the targets and
  mask are what the table says, whatever the treatment makes of flags."""
  train_dir, _ = tiny_examples
  info = examples.read_info(train_dir)
  clip = next(c for c in examples.iterate(train_dir)
              if (c["positives"] + c["explicit_negatives"] == 0).sum() >= 4)
  positives = set(np.flatnonzero(clip["positives"]))
  a, b, c, d = [k for k in range(info.num_classes) if k not in positives][:4]
  ids = [clip["clip_id"]]
  made = {k: info.extra[k] for k in ("clips_id", "class_map_id")}
  flagged = Entries.from_lists(ids, [[a, b, c]], made, [[0.7, 0.6, 0.3]])
  reviewed = Entries.from_lists(ids, [[a, b, d]], made, [[1.0, 0.0, 1.0]])
  table = {  # treatment -> {class: (target, mask)}; other classes: (label, 1)
      "mask": {a: (1, 1), b: (0, 1), c: (0, 0), d: (1, 1)},
      "soft": {a: (1, 1), b: (0, 1), c: (0.3, 1), d: (1, 1)},
  }
  for name, want in table.items():
    told = Targets(Treatment(name), flagged, 1.0, reviewed=reviewed)
    ds = input_pipeline.training_dataset(train_dir, 8, hop_frames=48, targets=told, seed=0,
                                         repeat=False, with_clip_ids=True)
    rows = [(t["labels"][i], t["mask"][i]) for _, t in ds.as_numpy_iterator()
            for i in range(len(t["clip_id"])) if t["clip_id"][i].decode() == ids[0]]
    assert rows
    for labels, mask in rows:
      for k in range(info.num_classes):
        target, m = want.get(k, (1.0 if k in positives else 0.0, 1.0))
        assert labels[k] == pytest.approx(target) and mask[k] == m, (name, k)
  assert (told.confirmed, told.rejected) == (2, 1)
  assert told.record()["verdicts"]["confirmed"] == 2


def test_answers_append_and_the_last_counts(flags_dir, tmp_path):
  flags = flagging.read_flags(os.path.join(flags_dir, flagging.FLAGS_FILE))
  path = str(tmp_path / "verdicts.csv")
  verdicts.open_for(path, made_from(flags, os.path.join(flags_dir, flagging.FLAGS_FILE)))
  before = open(path, "rb").read()
  verdicts.append(path, [verdicts.Answer("c1", "/m/a", "A", "present", 0.5, 1)])
  verdicts.append(path, [verdicts.Answer("c2", "/m/a", "A", "unsure", 0.4, 2),
                         verdicts.Answer("c1", "/m/a", "A", "absent", 0.5, 1)])
  after = open(path, "rb").read()
  assert after.startswith(before)  # appended, never rewritten
  got = verdicts.read(path)
  assert got.lines == 3 and got.counts() == dict(present=0, absent=1, unsure=1)
  assert [k for k in got.answers] == [("c2", "/m/a"), ("c1", "/m/a")]


def test_the_answers_id_says_what_was_answered(flags_dir, tmp_path):
  """The same present and absent answers give one id, whatever the order, the re-answers
  and the unsure ones; one answer changed gives another."""
  flags = flagging.read_flags(os.path.join(flags_dir, flagging.FLAGS_FILE))
  made = made_from(flags, os.path.join(flags_dir, flagging.FLAGS_FILE))
  a = verdicts.Answer("c1", "/m/a", "A", "present", 0.5, 1)
  b = verdicts.Answer("c2", "/m/a", "A", "absent", 0.4, 2)
  files_of = {}
  for name, rows in (("one", [a, b]),
                     ("two", [dataclasses.replace(b, verdict="present"), b,
                              verdicts.Answer("c3", "/m/a", "A", "unsure", 0.3, 3), a]),
                     ("other", [a, dataclasses.replace(b, verdict="present")])):
    path = str(tmp_path / f"{name}.csv")
    verdicts.open_for(path, made)
    verdicts.append(path, rows)
    files_of[name] = verdicts.read(path).answers_id()
  assert files_of["one"] == files_of["two"] != files_of["other"]
  assert files_of["one"].startswith("2:")


def test_a_run_trained_on_other_verdicts_is_trained_again(tmp_path, monkeypatch):
  """A sweep resumed with another listening test's answers (or none) retrains the runs
  made without them, and skips those made with the same answers."""
  from tf_skeptical import training
  from tf_skeptical.sweep import runs
  trained = []
  monkeypatch.setattr(training, "train", lambda *a, **k: trained.append(a[1]) or {})
  monkeypatch.setattr(runs.examples, "read_info", lambda d: type(
      "Info", (), dict(class_map=type("Map", (), dict(mids=["/m/a"]))))())
  told = {}
  monkeypatch.setattr(runs.Run, "targets", lambda self, mids: told["targets"])
  reviewed = Entries.from_lists(["c1"], [[0]], {"verdicts_id": "1:aa"}, [[1.0]])
  for recorded, now, retrained in ((None, None, False), ("1:aa", reviewed, False),
                                   (None, reviewed, True), ("1:bb", reviewed, True),
                                   ("1:aa", None, True)):
    model_dir = tmp_path / f"run_{len(trained)}_{recorded}_{now is None}"
    model_dir.mkdir()
    (model_dir / training.RESULT).write_text(json.dumps(
        dict(verdicts=None if recorded is None else dict(id=recorded))))
    told["targets"] = Targets(reviewed=now)
    before = len(trained)
    runs.train_run("train", None, runs.Run(str(model_dir), training.TrainConfig()))
    assert (len(trained) > before) == retrained, (recorded, now)


def _bad_file(tmp_path, flags_dir, row, name):
  flags = flagging.read_flags(os.path.join(flags_dir, flagging.FLAGS_FILE))
  path = str(tmp_path / name)
  verdicts.open_for(path, made_from(flags, os.path.join(flags_dir, flagging.FLAGS_FILE)))
  with open(path, "a") as f:
    f.write(row + "\n")
  return path


def _one_line(args, cwd):
  done = subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True,
                        text=True, timeout=600, env=ENV)
  lines = done.stderr.strip().splitlines()
  assert done.returncode == 1 and len(lines) == 1, done.stderr[-3000:]
  return lines[0]


def test_bad_verdicts_are_refused_naming_file_and_row(flags_dir, tiny_examples, tmp_path):
  train_dir, _ = tiny_examples
  info = examples.read_info(train_dir)
  mid = info.class_map.mids[0]
  malformed = _bad_file(tmp_path, flags_dir, f"train000001,{mid},x,present,0.5",
                        "malformed.csv")
  line = _one_line(["tf_skeptical_bin.tfsk_train", f"--train={train_dir}", "--model_dir=run",
                    "--width=0.25", "--epochs=1", f"--reviewed={malformed}"], tmp_path)
  assert line == (f"tfsk_train: error: {malformed}: row 3: 5 fields, a verdict has 7 "
                  f"({','.join(verdicts.HEADER)})")
  assert not os.path.exists(tmp_path / "run")
  unknown = _bad_file(tmp_path, flags_dir, f"nosuchclip,{mid},x,present,0.5,3,t",
                      "unknown.csv")
  line = _one_line(["tf_skeptical_bin.tfsk_review", f"--flags={flags_dir}",
                    f"--verdicts={unknown}", f"--export={tmp_path / 'cleaned'}"], tmp_path)
  assert line == (f"tfsk_review: error: {unknown}: row 3: clip nosuchclip is not in the "
                  "train set")
  assert not os.path.exists(tmp_path / "cleaned")
  other = str(tmp_path / "other.csv")
  verdicts.open_for(other, dict(flags="elsewhere/flags.npz", flags_id="0123456789abcdef",
                                class_map_id=info.extra["class_map_id"],
                                clips_id=info.extra["clips_id"]))
  kept = open(other, "rb").read()
  line = _one_line(["tf_skeptical_bin.tfsk_review", f"--flags={flags_dir}",
                    f"--verdicts={other}", "--simulate_from=none.csv"], tmp_path)
  assert line.startswith(f"tfsk_review: error: {other}: these verdicts answer other flags "
                         "(elsewhere/flags.npz, flags_id 0123456789abcdef vs ")
  assert open(other, "rb").read() == kept


def test_the_cleaned_dataset_against_hand_written_rows(flags_dir, tiny_examples, tiny_data,
                                                       tmp_path):
  """Clip train000003 gains a label, train000005 gets an explicit negative, an unsure
  answer changes nothing; every other row is the original's."""
  train_dir, _ = tiny_examples
  info = examples.read_info(train_dir)
  mids = info.class_map.mids
  flags = flagging.read_flags(os.path.join(flags_dir, flagging.FLAGS_FILE))
  path = str(tmp_path / "verdicts.csv")
  verdicts.open_for(path, made_from(flags, os.path.join(flags_dir, flagging.FLAGS_FILE)))
  original, negatives = {}, {}
  for clip in examples.iterate(train_dir):
    original[clip["clip_id"]] = [mids[k] for k in np.flatnonzero(clip["positives"])]
    negatives[clip["clip_id"]] = [mids[k] for k in np.flatnonzero(clip["explicit_negatives"])]
  known = {c: set(original[c]) | set(negatives[c]) for c in original}
  new = next(m for m in mids if m not in known["train000003"])
  absent = next(m for m in mids if m not in known["train000005"])
  unsure = next(m for m in mids if m not in known["train000007"])
  verdicts.append(path, [verdicts.Answer("train000003", new, "N", "present", 0.61, 1),
                         verdicts.Answer("train000005", absent, "A", "absent", 0.52, 2),
                         verdicts.Answer("train000007", unsure, "U", "unsure", 0.40, 3)])
  out = str(tmp_path / "cleaned")
  counts = cleaned.export(path, train_dir, out)
  assert (counts["present"], counts["absent"], counts["unsure"]) == (1, 1, 1)
  with open(os.path.join(out, cleaned.CHANGES)) as f:
    assert f.read() == ("clip_id,mid,display_name,verdict,teacher_score\n"
                        f"train000003,{new},N,present,0.61000\n"
                        f"train000005,{absent},A,absent,0.52000\n")
  rows = {}
  with open(os.path.join(out, cleaned.SEGMENTS)) as f:
    for line in f:
      if not line.startswith("#"):
        clip_id, start, end, rest = line.rstrip("\n").split(", ", 3)
        rows[clip_id] = rest

  def row(positives, negs):
    ordered = [m for m in mids if m in set(positives)], [m for m in mids if m in set(negs)]
    return '"' + ",".join(ordered[0]) + '", "' + ",".join(ordered[1]) + '"'
  assert rows["train000003"] == row(original["train000003"] + [new], negatives["train000003"])
  assert rows["train000005"] == row(original["train000005"], negatives["train000005"] + [absent])
  for clip_id, labels in original.items():
    if clip_id not in ("train000003", "train000005"):
      assert rows[clip_id] == row(labels, negatives[clip_id])


def test_the_simulated_reviewer_answers_the_teachers_top_from_the_truth(flags_dir,
                                                                       tiny_data, tmp_path):
  data, _ = tiny_data
  truth_csv = os.path.join(data, "train_missing_labels.csv")
  truth = simulated.read_truth(truth_csv)
  flags = flagging.read_flags(os.path.join(flags_dir, flagging.FLAGS_FILE))
  path = str(tmp_path / "verdicts.csv")
  done = simulated.review(flags_dir, truth_csv, path, 12)
  info = examples.read_info(flags.made_from["examples"])
  top = _teacher_order(flags)[:12]
  want = [(str(flags.clip_ids[flags.clip[i]]), info.class_map.mids[flags.cls[i]])
          for i in top]
  got = verdicts.read(path)
  assert list(got.answers) == want
  for key, a in got.answers.items():
    assert a.verdict == ("present" if key in truth else "absent")
  assert done["present"] == sum(k in truth for k in want)
  rand = str(tmp_path / "random.csv")
  simulated.review(flags_dir, truth_csv, rand, 30, simulated.RANDOM, seed=1)
  drawn = verdicts.read(rand).answers
  assert len(drawn) == 30
  labelled = {c["clip_id"]: set(info.class_map.mids[k] for k in np.flatnonzero(c["positives"]))
              for c in examples.iterate(flags.made_from["examples"])}
  assert all(mid not in labelled[clip] for clip, mid in drawn)


# -- the page and its server ---------------------------------------------------------------

class Server:
  """tfsk_review serving in a subprocess, on a free port."""

  def __init__(self, flags_dir, verdicts_path, cwd):
    self.proc = subprocess.Popen(
        [sys.executable, "-m", "tf_skeptical_bin.tfsk_review", f"--flags={flags_dir}",
         f"--verdicts={verdicts_path}", "--port=0"], cwd=cwd, env=ENV,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    self.url = None
    for line in self.proc.stdout:
      if "open http" in line:
        self.url = line.split("open ", 1)[1].split(" ", 1)[0]
        break
    assert self.url, self.proc.stderr.read()[-3000:]

  def get(self, path):
    with urllib.request.urlopen(self.url + path.lstrip("/"), timeout=60) as r:
      return json.loads(r.read())

  def answer(self, pos, verdict):
    request = urllib.request.Request(self.url + "api/answer", method="POST",
                                     data=json.dumps(dict(pos=pos, verdict=verdict)).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as r:
      return json.loads(r.read())

  def stop(self, sig=signal.SIGTERM):
    self.proc.send_signal(sig)
    self.proc.wait(timeout=30)


def test_the_page_in_a_real_browser(flags_dir, tmp_path):
  """Keys P, A, U answer the first three candidates in the teacher's order, B goes back to
  the third (showing its answer), a reload keeps the count and resumes at the fourth; the
  file holds the three answers."""
  missing = [w for w, ok in (("node", shutil.which("node")),
                             ("chromium", os.path.exists(os.environ.get("CHROMIUM",
                                                                        "/usr/bin/chromium"))),
                             ("export/web/node_modules",
                              os.path.isdir(os.path.join(WEB, "node_modules", "playwright-core"))))
             if not ok]
  if missing:
    if os.environ.get("CI"):
      pytest.fail("the browser test needs " + ", ".join(missing))
    pytest.skip("the browser test needs " + ", ".join(missing))
  path = str(tmp_path / "verdicts.csv")
  server = Server(flags_dir, path, tmp_path)
  artifacts = os.environ.get("TFSK_TEST_ARTIFACTS", os.path.join(ROOT, "build",
                                                                 "test-artifacts"))
  os.makedirs(artifacts, exist_ok=True)
  shot = os.path.join(artifacts, "review_page.png")
  try:
    done = subprocess.run(["node", os.path.join(ROOT, "tests", "review_page.mjs"),
                           server.url, shot], capture_output=True, text=True, timeout=300,
                          env=dict(ENV, WEB_DIR=WEB))
    assert done.returncode == 0, done.stderr[-3000:]
    page = json.loads(done.stdout.strip().splitlines()[-1])
  finally:
    server.stop()
  flags = flagging.read_flags(os.path.join(flags_dir, flagging.FLAGS_FILE))
  top = _teacher_order(flags)[:3]
  want_clips = [str(flags.clip_ids[flags.clip[i]]) for i in top]
  assert page["errors"] == [] and page["start"] == 0
  assert [s["clip"] for s in page["shown"]] == want_clips
  assert [s["pos"] for s in page["shown"]] == [0, 1, 2]
  assert page["back"]["answer"] == "unsure"
  assert page["after"]["reviewed"] == 3 and page["after"]["pos"] == 3
  assert page["logmelWidth"] > 0 and os.path.getsize(shot) > 10_000
  got = verdicts.read(path)
  assert [(a.clip_id, a.verdict) for a in got.answers.values()] == list(
      zip(want_clips, ["present", "absent", "unsure"]))


def test_a_killed_server_loses_no_answer_and_resumes(flags_dir, tmp_path):
  path = str(tmp_path / "verdicts.csv")
  server = Server(flags_dir, path, tmp_path)
  assert server.answer(0, "present")["next"] == 1
  server.stop(signal.SIGKILL)  # no chance to clean up
  server = Server(flags_dir, path, tmp_path)
  try:
    assert server.get("api/start")["first"] == 1
    server.answer(1, "absent")
    assert server.get("api/start")["counts"]["reviewed"] == 2
  finally:
    server.stop()
  got = verdicts.read(path)
  assert [a.verdict for a in got.answers.values()] == ["present", "absent"]


def test_two_clients_at_once_keep_every_answer(flags_dir, tmp_path):
  """Two threads answer ten candidates each at the same time, and a second server on the
  same file answers three more meanwhile: all 23 answers are in the file."""
  path = str(tmp_path / "verdicts.csv")
  one = Server(flags_dir, path, tmp_path)
  two = Server(flags_dir, path, tmp_path)
  try:
    def answer(server, positions):
      for pos in positions:
        server.answer(pos, "present" if pos % 2 else "absent")
    threads = [threading.Thread(target=answer, args=(one, range(0, 20, 2))),
               threading.Thread(target=answer, args=(one, range(1, 20, 2))),
               threading.Thread(target=answer, args=(two, range(20, 23)))]
    for t in threads:
      t.start()
    for t in threads:
      t.join(timeout=120)
    time.sleep(0.1)
    assert one.get("api/start")["counts"]["reviewed"] == 23
  finally:
    one.stop()
    two.stop()
  got = verdicts.read(path)
  assert got.lines == 23 and len(got.answers) == 23


def test_the_table_and_hparams_say_how_many_verdicts_a_run_used(tmp_path):
  import glob
  import tensorflow as tf
  from tensorboard.plugins.hparams import plugin_data_pb2
  from tf_skeptical.sweep import report
  results = [dict(eval=dict(d_prime=1.0, lwlrap=0.5, mAP=0.4, AUC=0.7), masked_entries=0,
                  verdicts=dict(file="v.csv", confirmed=4, rejected=2))]
  row = report.table_row(0.0, results, {}, None, 1, "")
  assert (row["verdicts"], row["verdicts_confirmed"]) == (6, 4)
  text = report.write_table([row], str(tmp_path))
  assert "trained on 6 verdicts of a listening test (4 confirmed present, 2 absent)" in text
  report.write_hparams([row], str(tmp_path))
  found = []
  for path in glob.glob(str(tmp_path / "logs" / "p0" / "events*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.metadata.plugin_data.plugin_name == "hparams":
          data = plugin_data_pb2.HParamsPluginData.FromString(
              value.metadata.plugin_data.content)
          if data.HasField("session_start_info"):
            found.append(data.session_start_info.hparams["verdicts"].number_value)
  assert found == [6]
