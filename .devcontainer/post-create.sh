#!/usr/bin/env bash
# Runs once when the container is created (and is safe to run again: a second run changes nothing).
# Installs the Debian packages the lab uses, builds the library and the `lab` command, and installs the lab's
# Jupyter kernelspec, so a chapter opened right after creation runs with "C# (Backend Accept Lab)" selected. It also
# registers the real .NET Interactive kernel as ".NET (C#)" (`.net-csharp`), the host Polyglot Notebooks runs:
# deprecated upstream in 2026, still working, and the chapters run unchanged in it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/prereqs
dotnet build Lab.sln --nologo -v quiet -clp:ErrorsOnly
dotnet artifacts/bin/Lab.Cli/debug/Lab.Cli.dll jupyter install --user
bash scripts/net-csharp-kernelspec
dotnet artifacts/bin/Lab.Cli/debug/Lab.Cli.dll doctor || true   # a report for the reader; missing pieces are not fatal here
echo "post-create: ready. Open notebooks/00-start-here.ipynb and pick the kernel \"C# (Backend Accept Lab)\" (or \".NET (C#)\", the .NET Interactive kernel)."
