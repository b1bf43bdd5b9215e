"""`python -m retrace.llm`: build the embedded default model's checkpoint (idempotent) and print its path.

A package-level entry rather than `python -m retrace.llm.embedded`, which runpy warns about because the
package's `__init__` has already imported that module.
"""

import logging

from retrace.llm.embedded import build_embedded_model

logging.basicConfig(level=logging.INFO)
print(build_embedded_model())
