"""The tfsk_* command-line binaries (installed as the package tf_skeptical_bin).

Imported before any binary module, and so before TensorFlow: hide TensorFlow's C++
start-up chatter (CUDA probes and "Unable to register cuDNN factory" errors on a CPU
machine), unless --verbosity (or -v) asks for more or TF_CPP_MIN_LOG_LEVEL is set.
"""

import logging
import os
import sys

from tf_skeptical_bin.cli import verbose_requested  # imports no TensorFlow

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose_requested(sys.argv) else "3")


class _DropBeamGcpNote(logging.Filter):
  """Beam's GCP IO logs a note on the root logger at import that no local job can act on."""

  def filter(self, record):
    return "apitools not found" not in record.getMessage()


logging.getLogger().addFilter(_DropBeamGcpNote())
# A handler on the root logger before anything logs, so that a library's module-level
# logging call does not install Python's default stderr handler beside absl's (every
# line of Beam's then came twice, once as "INFO:apache_beam...").
if not logging.getLogger().handlers:
  logging.getLogger().addHandler(logging.NullHandler())
