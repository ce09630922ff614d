"""Training and evaluation commands: ``python -m training.<step> --help``."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of progress logs
