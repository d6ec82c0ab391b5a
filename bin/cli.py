"""What every binary shares: quiet start-up, Beam's pass-through arguments, and one error
path: a known failure (errors.py: bad data, mismatched artifacts, a lock, a flag out of
range, a full disk, a truncated file) is one line, `<binary>: error: <what, which file,
what to do>`, and exit status 1; `--traceback` shows the Python traceback too. An
unexpected exception keeps its traceback. SIGTERM and SIGINT stop a binary within seconds,
its workers with it and its partial output removed (util/stopping.py)."""

import importlib.util
import logging
import os
import re
import sys
import traceback

from absl import app, flags

from tf_skeptical import errors
from tf_skeptical.util import progress, stopping

TRACEBACK = flags.DEFINE_bool(
    "traceback", False, "On a known error, print the Python traceback as well as the "
    "one-line message (for a bug report).")


def quiet_tensorflow() -> None:
  """Hides TensorFlow's Python INFO lines, the local Beam runner's INFO lines (its
  per-worker chatter) and its workers' own reports of an exception (with traceback: the
  exception reaches the binary, which reports it once), so that the binaries' own progress
  stays readable; --verbosity=1 (absl's flag, or -v 1) shows them again. The converter's
  and LiteRT's C++ lines follow TF_CPP_MIN_LOG_LEVEL (util/native_output.py)."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  if verbose_requested(sys.argv):
    return
  logging.getLogger("apache_beam").setLevel(logging.WARNING)
  # TensorFlow's own INFO lines (a SavedModel's assets and fingerprint written, inputs
  # renamed in a signature) say nothing a user acts on; most go through absl's logger,
  # which the binaries' own progress lines share.
  logging.getLogger("tensorflow").setLevel(logging.WARNING)
  logging.getLogger("absl").addFilter(InfoFromPackagesDropped(("tensorflow", "keras")))
  # The runner's and its workers' logs, except the workers' progress lines (progress.py),
  # which the local job service forwards and this shows as the plain message.
  logging.getLogger("apache_beam.runners").setLevel(logging.CRITICAL)
  forwarded = logging.getLogger("apache_beam.runners.portability.local_job_service")
  forwarded.setLevel(logging.INFO)
  forwarded.addFilter(WorkerProgressOnly())


class InfoFromPackagesDropped(logging.Filter):
  """Drops records below WARNING that code inside the named packages logged."""

  def __init__(self, packages):
    super().__init__()
    self._roots = tuple(os.path.join(root, "") for name in packages
                        for root in _package_directories(name))

  def filter(self, record):
    return record.levelno >= logging.WARNING or not record.pathname.startswith(self._roots)


def _package_directories(name: str) -> list:
  """Where an installed package's modules live, found without importing it."""
  spec = importlib.util.find_spec(name)
  return list(spec.submodule_search_locations or []) if spec else []


class WorkerProgressOnly(logging.Filter):
  """Passes only a Beam worker's progress lines (ProgressLog's), as their bare message; the
  rest of a local worker's log (channels opened, bundles done) is dropped."""

  _MESSAGE = re.compile(r'message: "((?:[^"\\]|\\.)*)"')

  def filter(self, record):
    found = self._MESSAGE.search(record.getMessage())
    if not found or not progress.is_progress_line(found.group(1)):
      return False
    record.msg, record.args = found.group(1), ()
    return True


def verbose_requested(argv) -> bool:
  """Whether the command line asks for absl's --verbosity (or -v): then the start-up and
  Beam's logs are shown."""
  return any(a == "-v" or a.startswith(("--verbosity", "-v=")) for a in argv[1:])


def binary_name() -> str:
  return os.path.splitext(os.path.basename(sys.argv[0]))[0] or "tfsk"


def _guarded(main):
  """main, with known errors turned into one line on stderr and exit status 1."""

  def run_main(argv):
    try:
      return main(argv)
    except Exception as error:  # noqa: BLE001  (sorted into known and unexpected below)
      message = errors.known_error(error)
      if message is None:
        raise
      if TRACEBACK.value:
        traceback.print_exc()
      first = (str(message).strip().splitlines() or ["(no message)"])[0]
      sys.stderr.write(f"{binary_name()}: error: {first}\n")
      sys.stderr.flush()
      sys.exit(1)

  return run_main


def _show_flags_in_help(main) -> None:
  """Makes `--help` list the binary's flags.

  absl's --help lists the flags of the main module, which for an installed command is the
  generated wrapper script, not the module that defines the flags.
  """
  module = sys.modules[main.__module__]
  for flag in flags.FLAGS.get_key_flags_for_module(module):
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
  flags.FLAGS.register_key_flag_for_module(sys.argv[0], flags.FLAGS["traceback"])


_HELP = {"--help": True, "-h": True, "-?": True, "--helpshort": True, "--helpfull": False}


def _parse_flags(argv, known_only: bool):
  """absl's flag parsing, with a flag error as one line (a usage error, exit status 1), and
  --help answered with exit status 0 (absl's exits 1, which a script checking a binary
  with --help takes for a failure)."""
  asked = [a for a in argv[1:] if a in _HELP]
  if asked:
    app.usage(shorthelp=_HELP[asked[0]], writeto_stdout=True)
    if _HELP[asked[0]]:
      print("\nTry --helpfull to get a list of all flags.")
    sys.exit(0)
  try:
    return flags.FLAGS(argv, known_only=known_only)
  except flags.Error as e:
    sys.stderr.write(f"{binary_name()}: error: {e} (see --help)\n")
    sys.exit(1)


def run_with_beam_args(main) -> None:
  """app.run(main), where flags this binary does not define go to Beam's pipeline options.

  main(argv) gets them as argv[1:], e.g. `--runner=DataflowRunner --project=...`.
  """
  quiet_tensorflow()
  stopping.install(binary_name())
  _show_flags_in_help(main)
  app.run(_guarded(main), flags_parser=lambda argv: _parse_flags(argv, known_only=True))


def run(main) -> None:
  quiet_tensorflow()
  stopping.install(binary_name())
  _show_flags_in_help(main)
  app.run(_guarded(main), flags_parser=lambda argv: _parse_flags(argv, known_only=False))
