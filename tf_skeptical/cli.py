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


def run_with_beam_args(main) -> None:
  """app.run(main), where flags this binary does not define go to Beam's pipeline options.

  main(argv) gets them as argv[1:], e.g. `--runner=DataflowRunner --project=...`.
  """
  quiet_tensorflow()

  def parse(argv):
    try:
      return flags.FLAGS(argv, known_only=True)
    except flags.Error as e:
      sys.stderr.write(f"FATAL Flags parsing error: {e}\n")
      sys.exit(1)

  app.run(main, flags_parser=parse)


def run(main) -> None:
  quiet_tensorflow()
  app.run(main)
