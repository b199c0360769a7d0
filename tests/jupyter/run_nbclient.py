"""Executes a notebook through the lab's kernel with nbclient, as `jupyter execute` does, and writes the result.

    /usr/bin/python3 tests/jupyter/run_nbclient.py IN.ipynb OUT.ipynb [KERNEL_NAME] [--allow-errors]

The kernel runs in the notebook's folder (so `#r "../lib/Lab.dll"` resolves as in `lab run`). KERNEL_NAME defaults
to the lab's `lab-csharp`; `.net-csharp` is the real .NET Interactive kernel. With --allow-errors every cell runs and
error outputs are kept (tests/polyglot/check.py counts them) instead of stopping at the first.
"""
import os
import sys
import time

import nbformat
from nbclient import NotebookClient

args = [a for a in sys.argv[1:] if a != "--allow-errors"]
allow_errors = "--allow-errors" in sys.argv
src, dst = args[0], args[1]
kernel = args[2] if len(args) > 2 else "lab-csharp"
nb = nbformat.read(src, as_version=4)
t0 = time.monotonic()
client = NotebookClient(nb, kernel_name=kernel, timeout=300, startup_timeout=120, allow_errors=allow_errors,
                        resources={"metadata": {"path": os.path.dirname(os.path.abspath(src))}})
client.execute()
nbformat.validate(nb)
nbformat.write(nb, dst)
print("executed %s in %.2f s" % (os.path.basename(src), time.monotonic() - t0))
