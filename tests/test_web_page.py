"""export/web/ in headless Chromium: the page's classes equal the Python runtime's.

Needs Node.js, `npm ci` in export/web (MediaPipe's tasks-audio and playwright-core) and
Debian's chromium (or $CHROMIUM); .ci/run installs all three. Elsewhere the test skips and
says what is missing; under CI=true it fails instead. The page's screenshot is kept in
$TFSK_TEST_ARTIFACTS (default build/test-artifacts/) as web_page.png.
"""

import functools
import glob
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

from conftest import write_float_wav

from tf_skeptical.data import audio_io
from tf_skeptical import exporting
from tf_skeptical.datasets.builtin_data import AUDIO_DIR

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
WEB = os.path.join(ROOT, "export", "web")
sys.path.insert(0, os.path.join(ROOT, "export"))
import tagger as runtime  # noqa: E402  (export/tagger.py)

pytestmark = pytest.mark.end_to_end


def _missing() -> list:
  chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
  return [what for what, ok in (
      ("node", shutil.which("node")),
      (f"chromium at {chromium}", os.path.exists(chromium)),
      ("export/web/node_modules (run `npm ci` in export/web)",
       os.path.isdir(os.path.join(WEB, "node_modules", "@mediapipe", "tasks-audio"))))
          if not ok]


@pytest.fixture(scope="module")
def page_url():
  missing = _missing()
  if missing:
    message = "the browser test needs " + ", ".join(missing)
    if os.environ.get("CI"):
      pytest.fail(message)
    pytest.skip(message)
  handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=WEB)
  handler.log_message = lambda *a: None
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
  server.shutdown()


def _run_page(url, model, audio, screenshot=None, microphone=False):
  cmd = ["node", os.path.join(WEB, "test", "check_page.mjs"), url, model, audio]
  cmd += [screenshot] if screenshot else []
  cmd += ["--microphone"] if microphone else []
  done = subprocess.run(cmd, cwd=WEB, capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr
  return json.loads(done.stdout.strip().splitlines()[-1])


def _top3(scores):
  return [int(i) for i in np.argsort(-np.asarray(scores), kind="stable")[:3]]


@pytest.mark.parametrize("which", ["tiny_tagger", "fine_tuned_tagger"])
def test_page_tags_a_file_as_the_python_runtime_does(request, which, tiny_data, page_url,
                                                     tmp_path):
  """Both the tagger trained from random weights and a student fine-tuned from YAMNet's
  layout (conftest.fine_tuned_tagger)."""
  out, _ = request.getfixturevalue(which)
  data, _ = tiny_data
  clips = sorted(glob.glob(os.path.join(data, AUDIO_DIR, "*.wav")))[:3]
  # 4.5 s: four whole windows and one zero-padded part. Float samples: the browser decodes
  # them exactly (16-bit PCM it scales by 1/32767 above zero and 1/32768 below, which moves
  # this tiny model's scores by up to 0.03).
  audio = np.concatenate([runtime.resample(*runtime.read_wav(p)) for p in clips])
  wav = str(tmp_path / "three_clips.wav")
  write_float_wav(wav, audio)
  artifacts = os.environ.get("TFSK_TEST_ARTIFACTS", os.path.join(ROOT, "build",
                                                                 "test-artifacts"))
  os.makedirs(artifacts, exist_ok=True)
  shot = os.path.join(artifacts, "web_page.png" if which == "tiny_tagger" else
                      f"web_page_{which}.png")
  page = _run_page(page_url, os.path.join(out, exporting.FLOAT_TFLITE), wav, shot)
  assert (page["model"], page["state"]) == ("ready", "done"), page
  assert "6 classes" in page["info"]

  tagger = runtime.Tagger(out)
  samples, _ = runtime.read_wav(wav)
  windows = -(-len(samples) // tagger.window)
  padded = np.pad(samples, (0, windows * tagger.window - len(samples)))
  want = np.stack([tagger.patch(w) for w in padded.reshape(windows, tagger.window)])
  got = np.array([w["scores"] for w in page["result"]["windows"]])
  assert got.shape == want.shape == (5, 6)
  assert page["top3Shown"] == [_top3(w) for w in want]
  assert page["overallShown"][:3] == _top3(want.mean(0))
  # The wasm build sums in another order than native LiteRT: up to 1.2e-4 seen here.
  assert np.abs(got - want).max() <= 1e-3
  assert page["result"]["classNames"] == tagger.class_names
  assert os.path.getsize(shot) > 10_000


def test_page_listens_to_the_microphone(tiny_tagger, page_url, tmp_path):
  """Chromium's fake microphone (a beep): the page tags it window by window."""
  out, _ = tiny_tagger
  wav = str(tmp_path / "short.wav")
  audio_io.write_wav(wav, np.zeros(8000, np.float32), 16000)
  page = _run_page(page_url, os.path.join(out, exporting.INT8_TFLITE), wav, microphone=True)
  assert page["microphoneWindows"] >= 2


def test_page_names_a_file_that_is_no_tagger(page_url, tmp_path):
  bad = tmp_path / "not_a_model.tflite"
  bad.write_bytes(b"\0" * 1000)
  wav = str(tmp_path / "short.wav")
  audio_io.write_wav(wav, np.zeros(8000, np.float32), 16000)
  done = subprocess.run(["node", os.path.join(WEB, "test", "check_page.mjs"), page_url,
                         str(bad), wav], cwd=WEB, capture_output=True, text=True, timeout=300)
  page = json.loads(done.stdout.strip().splitlines()[-1])
  assert page["model"] == "failed"
  assert "not_a_model.tflite did not load" in page["status"]
