"""Handler modules and fake PEM text for the interface-tls tests (no crypto needed)."""
