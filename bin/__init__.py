"""The tfsk_* command-line binaries (installed as the package tf_skeptical_bin).

Imported before any binary module, and so before TensorFlow: hide TensorFlow's C++
start-up chatter (CUDA probes on a CPU machine). Set TF_CPP_MIN_LOG_LEVEL to override.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import logging


class _DropBeamGcpNote(logging.Filter):
  """Beam's GCP IO logs a note on the root logger at import that no local job can act on."""

  def filter(self, record):
    return "apitools not found" not in record.getMessage()


logging.getLogger().addFilter(_DropBeamGcpNote())
