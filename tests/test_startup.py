"""What users wait for: ``--help`` loads click and nothing heavy; a build never imports ``datasets``.

The timings themselves are measured by ``benchmarks/build.py``; these tests pin the causes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import RAW, REPO

HEAVY = ["numpy", "pyarrow", "datasets", "pandas", "huggingface_hub", "PIL", "torch"]


def imported_after(code: str, tmp_path) -> set[str]:
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env, check=True)
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_help_imports_only_click(tmp_path):
    modules = imported_after(
        "from mnist_idk.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "for name in ['build', 'validate', 'review', 'suggest']:\n"
        "    try:\n        main([name, '--help'])\n    except SystemExit:\n        pass",
        tmp_path,
    )
    assert not modules & set(HEAVY), modules & set(HEAVY)


def test_a_build_without_validation_never_imports_datasets_or_pandas(tmp_path):
    modules = imported_after(
        f"from mnist_idk import Workspace, build\n"
        f"build(Workspace.find(raw_dir={str(RAW)!r}, cwd={str(REPO)!r}), {str(tmp_path / 'out')!r}, validate=False)",
        tmp_path,
    )
    assert "datasets" not in modules and "pandas" not in modules and "huggingface_hub" not in modules
    assert (tmp_path / "out" / "README.md").is_file()
