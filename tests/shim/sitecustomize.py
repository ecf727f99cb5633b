"""Applies the test-only charmhelpers Debian shim in hook processes of the model tests."""
import charmhelpers_debian_shim  # noqa: F401
