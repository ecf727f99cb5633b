"""Juju's rules, written once: hook-tool argument parsing and output formats, relation data
and its caches, leadership, secrets, actions and the commit of a successful hook.

Used by the process model (tests/model: the hook tools on PATH are thin clients of a server
in the simulator holding this state), by the in-memory harness (tests/reactive_harness.py)
and by the benchmarks. See tests/model/README.md for the state's shape and the conformance
table (each rule with its Juju 3.6 source and the test that pins it).
"""
