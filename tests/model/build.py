"""Build a charm from local layers with charm-tools, offline for layers, cached by input hash.

``build_charm(layer_dir)`` runs ``charm-build --binary-wheels`` with every layer and interface
taken from this repository (a directory of symlinks named as charm-tools looks them up:
``basic``, ``tls``, ...), a layer index that does not exist (so nothing is fetched from it), then
``charm proof`` (warnings and errors fail the build). Wheels come from PyPI. The result is cached
under ``build/charms/<name>-<hash>`` and reused while the hash of all input files is unchanged.

``ensure_charm_venv(charm_dir)`` makes the one venv that all simulated units of a charm share,
from the charm's ``wheelhouse/`` (``pip install --no-index``), cached by the wheel file names,
or for an ops charm from its pinned ``requirements.txt`` (PyPI), cached by that file.

``pack_ops_charm(src_dir)`` lays an ops charm out as ``charmcraft pack`` does: its files,
``metadata.yaml`` / ``config.yaml`` / ``actions.yaml`` split out of ``charmcraft.yaml``
(what ops reads from the charm dir) and charmcraft's ``dispatch`` script.
"""
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "build"
VENV_BIN = Path(sys.prefix) / "bin"
LAYERS = {  # name charm-tools looks for -> directory in this repo
    "basic": ROOT / "tests" / "layers" / "basic",
    "tls": ROOT / "layer-tls",
    "peer-echo": ROOT / "tests" / "layers" / "peer-echo",
}
INTERFACES_DIR = ROOT / "tests" / "layers" / "interfaces"
NO_INDEX = "http://127.0.0.1:9/"
SKIP = {"__pycache__", ".pytest_cache", ".ruff_cache", "build", ".git"}


class BuildError(RuntimeError):
    pass


def _interfaces():
    found = {"tls": ROOT / "interface-tls",
             "certificate_transfer": ROOT / "interface-certificate-transfer",
             "tls-certificates": ROOT / "interface-tls-certificates"}
    if INTERFACES_DIR.is_dir():
        for d in sorted(INTERFACES_DIR.iterdir()):
            if (d / "interface.yaml").exists():
                found[d.name] = d
    return found


def _files(top):
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP)
        for name in sorted(filenames):
            if not name.endswith(".pyc"):
                yield Path(dirpath) / name


def inputs_hash(layer_dir):
    """Hash of every file of every local layer and interface (and the build tool versions)."""
    h = hashlib.sha256()
    tops = {"top": Path(layer_dir).resolve()}
    tops.update({"layer-" + k: v for k, v in LAYERS.items()})
    tops.update({"interface-" + k: v for k, v in _interfaces().items()})
    for label in sorted(tops):
        top = tops[label]
        if not top.is_dir():
            continue
        for path in _files(top):
            h.update(f"{label}:{path.relative_to(top)}\0".encode())
            h.update(path.read_bytes() if not path.is_symlink() else os.readlink(path).encode())
            h.update(b"\1" if os.access(path, os.X_OK) else b"\0")
    h.update(b"charm-tools 3.0.9; binary-wheels; " + sys.version.encode())
    return h.hexdigest()


def _link_dir(where, mapping):
    where.mkdir(parents=True, exist_ok=True)
    for name, target in mapping.items():
        link = where / name
        if not link.exists():
            link.symlink_to(target)
    return where


def _charm_name(layer_dir):
    import yaml

    with open(Path(layer_dir) / "metadata.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)["name"]


def _run(cmd, env, log, cwd=None):
    with open(log, "a", encoding="utf-8") as out:
        out.write("$ " + " ".join(str(c) for c in cmd) + "\n")
        out.flush()
        proc = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, stdout=out,
                              stderr=subprocess.STDOUT, check=False)
    return proc.returncode


def build_charm(layer_dir, out_dir=None, *, force=False):
    """Build (or reuse) the charm of ``layer_dir``; returns the built charm directory.

    With ``out_dir``, a copy of the cached build is placed at ``out_dir/<name>`` and returned.
    """
    layer_dir = Path(layer_dir).resolve()
    name = _charm_name(layer_dir)
    digest = inputs_hash(layer_dir)[:16]
    base = CACHE / "charms" / f"{name}-{digest}"
    charm = base / "out" / name
    base.mkdir(parents=True, exist_ok=True)
    with open(base / ".lock", "w") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        if force or not (base / "ok").exists():
            _build(layer_dir, base, charm)
    ensure_charm_venv(charm)
    if out_dir is None:
        return charm
    dest = Path(out_dir) / name
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(charm, dest, symlinks=True)
    return dest


def _build(layer_dir, base, charm):
    for leftover in ("out", "src", "ok", "build.log"):
        p = base / leftover
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    log = base / "build.log"
    layers = dict(LAYERS)
    layers[layer_dir.name] = layer_dir
    env = dict(os.environ)
    env.update({
        "PATH": f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}",
        "CHARM_LAYERS_DIR": str(_link_dir(base / "src" / "layers", layers)),
        "CHARM_INTERFACES_DIR": str(_link_dir(base / "src" / "interfaces", _interfaces())),
        "CHARM_CACHE_DIR": str(base / "cache"),
        "CHARM_BUILD_DIR": str(base / "out"),
    })
    for var in ("LAYER_PATH", "INTERFACE_PATH", "JUJU_REPOSITORY", "PYTHONPATH"):
        env.pop(var, None)
    cmd = [VENV_BIN / "charm-build", "--binary-wheels", "-i", NO_INDEX, "--hide-metrics",
           "--no-report", "-o", base / "out", layer_dir]
    if _run(cmd, env, log) != 0 or not (charm / "metadata.yaml").exists():
        raise BuildError(f"charm-build failed for {layer_dir}; see {log}:\n{_tail(log)}")
    proof = subprocess.run([str(VENV_BIN / "charm-proof"), str(charm)], env=env,
                           capture_output=True, text=True, check=False)
    with open(log, "a", encoding="utf-8") as out:
        out.write("$ charm-proof\n" + proof.stdout + proof.stderr)
    bad = [line for line in (proof.stdout + proof.stderr).splitlines()
           if line.startswith(("W:", "E:"))]
    if proof.returncode not in (0, 100) or bad:
        raise BuildError(f"charm proof of {charm} reported problems:\n"
                         + (proof.stdout + proof.stderr))
    (base / "ok").write_text("built\n")


def _tail(path, lines=40):
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


def ensure_charm_venv(charm_dir):
    """One venv per wheelhouse (what layer:basic would build per unit at install); for an
    ops charm (a ``requirements.txt`` and no wheelhouse), one per requirements file (what
    charmcraft would pack into the charm's ``venv/``)."""
    requirements = Path(charm_dir) / "requirements.txt"
    wheelhouse = Path(charm_dir) / "wheelhouse"
    if requirements.is_file() and not wheelhouse.is_dir():
        text = requirements.read_text()
        digest = hashlib.sha256((text + sys.version).encode()).hexdigest()[:16]
        return _cached_venv(f"req-{digest}", text, ["-r", requirements])
    wheels = sorted(p.name for p in wheelhouse.iterdir()) if wheelhouse.is_dir() else []
    digest = hashlib.sha256(("\n".join(wheels) + sys.version).encode()).hexdigest()[:16]
    return _cached_venv(digest, "\n".join(wheels) + "\n",
                        ["--no-index", "--find-links", wheelhouse,
                         *[wheelhouse / w for w in wheels]] if wheels else None)


def _cached_venv(name, stamp, pip_args):
    """``build/venvs/<name>``: a venv of this Python with ``pip install <pip_args>`` (none
    when None), built once under a lock; its ``ok`` file (holding ``stamp``) marks it done."""
    venv = CACHE / "venvs" / name
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(str(venv) + ".lock", "w") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        if (venv / "ok").exists():
            return venv
        if venv.exists():
            shutil.rmtree(venv)
        log = CACHE / "venvs" / f"{name}.log"
        base_python = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}"
        rc = _run([base_python, "-m", "venv", "--without-pip", venv], dict(os.environ), log)
        if rc == 0 and pip_args is not None:
            rc = _run([VENV_BIN / "python", "-m", "pip", "--python", venv / "bin" / "python",
                       "install", "--quiet", *pip_args], dict(os.environ), log)
        if rc != 0:
            raise BuildError(f"could not build the charm venv {venv}:\n{_tail(log)}")
        (venv / "ok").write_text(stamp)
    return venv


# charmcraft's dispatch (charmcraft/templates: ``dispatch``): ops finds the event in
# JUJU_DISPATCH_PATH. ``python3`` is the charm venv's (first on PATH after the tools, as
# charmcraft's packed ``venv/`` is on PYTHONPATH).
OPS_DISPATCH = """#!/bin/sh
JUJU_DISPATCH_PATH="${JUJU_DISPATCH_PATH:-$0}" PYTHONPATH=lib:venv${PYTHONPATH:+:$PYTHONPATH} \\
    exec python3 ./src/charm.py
"""
METADATA_KEYS = ("name", "title", "summary", "description", "requires", "provides", "peers",
                 "extra-bindings", "assumes", "subordinate", "containers", "resources",
                 "storage", "devices", "links")


def pack_ops_charm(src_dir, out_dir=None):
    """The ops charm at ``src_dir`` laid out as ``charmcraft pack`` makes it (see the module
    docstring), cached under ``build/charms/<name>-<hash>``; returns the charm dir."""
    import yaml

    src = Path(src_dir).resolve()
    spec = yaml.safe_load((src / "charmcraft.yaml").read_text())
    h = hashlib.sha256(OPS_DISPATCH.encode())
    for path in _files(src):
        h.update(str(path.relative_to(src)).encode() + b"\0" + path.read_bytes())
    out = Path(out_dir) if out_dir else CACHE / "charms" / f"{spec['name']}-{h.hexdigest()[:16]}"
    if (out / ".packed").exists():
        return out
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, ignore=shutil.ignore_patterns(*SKIP, "*.pyc"))
    meta = {k: spec[k] for k in METADATA_KEYS if k in spec}
    (tmp / "metadata.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    if spec.get("config"):
        (tmp / "config.yaml").write_text(yaml.safe_dump(spec["config"], sort_keys=False))
    if spec.get("actions"):
        (tmp / "actions.yaml").write_text(yaml.safe_dump(spec["actions"], sort_keys=False))
    (tmp / "dispatch").write_text(OPS_DISPATCH)
    (tmp / "dispatch").chmod(0o755)
    (tmp / "src" / "charm.py").chmod(0o755)
    (tmp / ".packed").write_text("")
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out
