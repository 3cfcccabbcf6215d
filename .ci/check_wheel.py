"""Check that a built wheel holds every subpackage under the one import name ``accum``."""

import sys
import zipfile

REQUIRED = [
    "accum/__init__.py", "accum/_kernels/__init__.py", "accum/_kernels/counting.py", "accum/sources/__init__.py",
    "accum/cli/__init__.py", "accum/cli/main.py", "accum/storage/__init__.py", "accum/storage/store.py",
    "accum/cli/service/__init__.py", "accum/cli/service/app.py", "accum/cli/web/index.html",
    "accum/markov/__init__.py", "accum/markov/model.py", "accum/_markov_kernels/__init__.py",
    "accum/_markov_kernels/sampling.py", "accum/_primitives.py", "accum/data/llms.csv", "accum/capacity.py",
]

names = set(zipfile.ZipFile(sys.argv[1]).namelist())
missing = [n for n in REQUIRED if n not in names]
stray = sorted({n.split("/")[0] for n in names} - {"accum"} - {n.split("/")[0] for n in names if ".dist-info" in n})
if missing or stray:
    sys.exit(f"wheel {sys.argv[1]}: missing {missing}, stray top-level entries {stray}")
print(f"wheel ok: {len(names)} files, all under accum/")
