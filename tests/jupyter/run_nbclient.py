"""Executes a notebook through the lab's kernel with nbclient, as `jupyter execute` does, and writes the result.

    /usr/bin/python3 tests/jupyter/run_nbclient.py IN.ipynb OUT.ipynb

The kernel runs in the notebook's folder (so `#r "../lib/Lab.dll"` resolves as in `lab run`).
"""
import os
import sys
import time

import nbformat
from nbclient import NotebookClient

src, dst = sys.argv[1], sys.argv[2]
nb = nbformat.read(src, as_version=4)
t0 = time.monotonic()
client = NotebookClient(nb, kernel_name="lab-csharp", timeout=120, startup_timeout=60,
                        resources={"metadata": {"path": os.path.dirname(os.path.abspath(src))}})
client.execute()
nbformat.validate(nb)
nbformat.write(nb, dst)
print("executed %s in %.2f s" % (os.path.basename(src), time.monotonic() - t0))
