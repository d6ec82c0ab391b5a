"""files.py: outputs appear whole or not at all, locally and on a URL filesystem (ram://)."""

import os

import pytest
import tensorflow as tf

from tf_skeptical.util import files


@pytest.fixture(params=["local", "url"])
def root(request, tmp_path):
  if request.param == "local":
    yield str(tmp_path)
  else:
    url = "ram://files_test"
    tf.io.gfile.makedirs(url)
    yield url
    tf.io.gfile.rmtree(url)


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(root):
  path = f"{root}/out.csv"
  with files.atomic_write(path) as f:
    f.write("old\n")
  with pytest.raises(RuntimeError):
    with files.atomic_write(path) as f:
      f.write("half of the new")
      raise RuntimeError("killed mid-write")
  with files.open(path) as f:
    assert f.read() == "old\n"
  assert files.listdir(root) == ["out.csv"]


def test_local_output_gives_a_local_name_and_publishes_only_on_success(root):
  path = f"{root}/a.npz"
  with files.local_output(path) as tmp:
    assert not files.is_url(tmp) and tmp.endswith(".npz")
    with open(tmp, "wb") as f:
      f.write(b"complete")
  with pytest.raises(ValueError):
    with files.local_output(f"{root}/b.npz") as tmp:
      with open(tmp, "wb") as f:
        f.write(b"partial")
      raise ValueError("writer failed")
  assert files.listdir(root) == ["a.npz"]
  with files.open(path, "rb") as f:
    assert f.read() == b"complete"


def test_publish_directory_replaces_the_old_directory_with_the_manifest(root, monkeypatch):
  copied, copy = [], files.copy
  monkeypatch.setattr(files, "copy", lambda src, dst: (copied.append(dst), copy(src, dst)))
  out = f"{root}/export"
  files.makedirs(out)
  files.write_bytes(f"{out}/stale.bin", b"x")
  staging = files.staging_directory(out)
  assert files.is_url(out) or staging == files.sibling(out, "tmp")
  os.makedirs(os.path.join(staging, "sub"))
  for name, data in (("metadata.json", "{}"), ("sub/model.bin", "m"), ("a.txt", "a")):
    with open(os.path.join(staging, name), "w") as f:
      f.write(data)
  files.publish_directory(staging, out, last="metadata.json")
  assert files.listdir(out) == ["a.txt", "metadata.json", "sub"]
  assert files.listdir(f"{out}/sub") == ["model.bin"]
  assert not os.path.exists(staging)
  if files.is_url(out):  # copied file by file, the manifest last
    assert len(copied) == 3 and copied[-1] == f"{out}/metadata.json"


def test_absolute_keeps_urls_and_anchors_local_paths():
  assert files.absolute("gs://bucket/x/y") == "gs://bucket/x/y"
  assert files.absolute("ram://a") == "ram://a"
  assert files.absolute("rel/dir") == os.path.join(os.getcwd(), "rel/dir")
