"""Installs the hook tools into a model's bin dir: each tool a thin client of the model's
server (tests/jujurules/server.py). The C client (client/jujuc.c) is compiled once into
build/jujuc/ when a C compiler exists (about 1 ms a call); otherwise the tools are the Python
client (client/jujuc.py, an interpreter start a call)."""
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterable, Optional

HERE = Path(__file__).resolve().parent
C_SOURCE = HERE / "client" / "jujuc.c"
PY_CLIENT = HERE / "client" / "jujuc.py"
BUILD = HERE.parent.parent / "build" / "jujuc"


def c_client() -> Optional[Path]:
    """build/jujuc/jujuc, compiled if missing or older than its source; None without cc
    (or with JUJU_SIM_NO_CC set, to test the fallback)."""
    target = BUILD / "jujuc"
    if os.environ.get("JUJU_SIM_NO_CC"):
        return None
    if target.exists() and target.stat().st_mtime >= C_SOURCE.stat().st_mtime:
        return target
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    BUILD.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=BUILD, prefix=".jujuc-")
    os.close(fd)
    try:
        subprocess.run([cc, "-O2", "-o", tmp, str(C_SOURCE)], check=True,
                       capture_output=True, timeout=120)
        os.replace(tmp, target)  # atomic: parallel test workers may build at once
    except (OSError, subprocess.SubprocessError):
        return None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def install_tools(bin_dir: Path, known: Iterable[str], linked: Iterable[str],
                  python: str) -> Path:
    """bin_dir/jujutool.py (the Python client, ``jujutool.py TOOL ARGS``: it knows the tools
    ``known``) and one entry per tool in ``linked``: a link to the C client, else to
    jujutool.py. Returns the client to exec as ``CLIENT TOOL ARGS``."""
    tools = list(known)
    script = PY_CLIENT.read_text()
    script = f"#!{python} -IS\n" + script.replace("\nTOOLS = ()\n",
                                                  f"\nTOOLS = {json.dumps(tools)}\n", 1)
    py_client = bin_dir / "jujutool.py"
    py_client.write_text(script)
    py_client.chmod(0o755)
    client = c_client()
    for tool in linked:
        (bin_dir / tool).symlink_to(str(client) if client else "jujutool.py")
    return client or py_client
