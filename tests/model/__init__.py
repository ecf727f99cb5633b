"""The simulated Juju model for the model tests (see README.md)."""
from .build import BuildError, build_charm, ensure_charm_venv, pack_ops_charm
from .sim import SIM_PERMITTED_NAMES, Hook, HookFailed, HookRun, Model, SettleStats, SettleTimeout

__all__ = ["BuildError", "Hook", "HookFailed", "HookRun", "Model", "SIM_PERMITTED_NAMES",
           "SettleStats", "SettleTimeout", "build_charm", "ensure_charm_venv",
           "pack_ops_charm"]
