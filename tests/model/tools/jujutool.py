#!/usr/bin/env python3
"""Fake Juju hook tools: one script, installed once per model and symlinked per tool name.

Called as ``relation-get``, ``leader-set``, ... (argv[0] picks the tool), or as
``jujutool.py TOOL ARGS...``. The rules live in the ``jujurules`` package (tests/jujurules);
this entry only loads the state, runs the tool there and prints what it returns. Keep imports
minimal: the tools run on every hook's hot path with ``python -I -S`` (no site-packages).
"""
import os
import sys

# Replaced when the model installs this script into its bin dir (see install_tools()).
BAKED = {}


def main(argv):
    name = os.path.basename(argv[0])
    if name.endswith(".py"):
        name = argv[1] if len(argv) > 1 else ""
        argv = argv[1:]
    sys.path[:0] = BAKED.get("package_path", [])
    from jujurules import formats, store, tools

    formats.YAML_PATH[:] = BAKED.get("yaml_path", [])
    state_path = BAKED.get("state") or os.environ.get("JUJU_SIM_STATE")
    ctx_id = os.environ.get("JUJU_CONTEXT_ID") if state_path else None
    call = tools.Call(os.getcwd(), sys.stdin.read)
    if name not in tools.TOOLS or not ctx_id:
        rc, out, err = tools.run_tool({}, ctx_id, name, argv[1:], call)
    else:
        with store.Locked(state_path) as locked:
            rc, out, err = tools.run_tool(locked.data, ctx_id, name, argv[1:], call)
            locked.dirty = rc == 0
    sys.stdout.write(out)
    sys.stderr.write(err)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
