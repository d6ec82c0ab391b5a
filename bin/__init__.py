"""The tfsk_* command-line binaries (installed as the package tf_skeptical_bin).

Imported before any binary module, and so before TensorFlow: hide TensorFlow's C++
start-up chatter (CUDA probes on a CPU machine). Set TF_CPP_MIN_LOG_LEVEL to override.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
