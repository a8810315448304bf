"""Imports every built-in metric module so each registers itself (see :func:`train.eval.base.register`).

Add a new metric module's import here.
"""

import train.eval.harness
import train.eval.loss
import train.eval.preference
import train.eval.safety  # noqa: F401
