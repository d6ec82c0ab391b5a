"""What every binary shares: quiet TensorFlow start-up and Beam's pass-through arguments."""

import logging
import os
import sys

from absl import app, flags


def quiet_tensorflow() -> None:
  """Hides TensorFlow's C++ start-up chatter (CUDA probes on a CPU machine) and the local
  Beam runner's per-worker INFO lines, so that the binaries' own progress stays readable."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  for name in ("apache_beam", "apache_beam.runners.portability.local_job_service"):
    logging.getLogger(name).setLevel(logging.WARNING)


def _show_flags_in_help(main) -> None:
  """Makes `--help` list the binary's flags.

  absl's --help lists the flags of the main module, which for an installed command is the
  generated wrapper script, not the module that defines the flags.
  """
  module = sys.modules[main.__module__]
  for flag in flags.FLAGS.get_key_flags_for_module(module):
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)


def run_with_beam_args(main) -> None:
  """app.run(main), where flags this binary does not define go to Beam's pipeline options.

  main(argv) gets them as argv[1:], e.g. `--runner=DataflowRunner --project=...`.
  """
  quiet_tensorflow()
  _show_flags_in_help(main)

  def parse(argv):
    try:
      return flags.FLAGS(argv, known_only=True)
    except flags.Error as e:
      sys.stderr.write(f"FATAL Flags parsing error: {e}\n")
      sys.exit(1)

  app.run(main, flags_parser=parse)


def run(main) -> None:
  quiet_tensorflow()
  _show_flags_in_help(main)
  app.run(main)
