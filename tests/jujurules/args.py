"""Argument parsing of the hook tools, as Juju's gnuflag does it, and the tools' errors.

A ``ToolError`` carries the exit code: 2 for a usage error (cmd/supercommand: flag and argument
errors exit 2), 1 for a run error."""


class ToolError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def usage_error(message):
    return ToolError(2, message)


def run_error(message):
    return ToolError(1, message)


def parse_args(argv, spec):
    """spec: {"-r": ("relation", True), "--app": ("app", False), ...} -> (opts, positionals)."""
    opts, pos = {}, []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            pos.extend(argv[i:])
            break
        if arg == "-" or not arg.startswith("-") or len(arg) == 1:
            pos.append(arg)
            continue
        name, eq, val = arg.partition("=")
        if name not in spec:
            raise usage_error(f"option provided but not defined: {name}")
        key, takes_value = spec[name]
        if takes_value:
            if not eq:
                if i >= len(argv):
                    raise usage_error(f"option needs an argument: {name}")
                val = argv[i]
                i += 1
            opts[key] = val
        else:
            if eq:
                if val.lower() not in ("true", "false", "1", "0"):
                    raise usage_error(f'invalid boolean value "{val}" for option {name}')
                opts[key] = val.lower() in ("true", "1")
            else:
                opts[key] = True
    return opts, pos


FORMAT = {"--format": ("format", True)}
RELATION = {"-r": ("relation", True), "--relation": ("relation", True)}
APP = {"--app": ("app", False)}


def out_format(opts, default="smart"):
    fmt = opts.get("format", default)
    if fmt not in ("json", "yaml", "smart"):
        raise usage_error(f'invalid value "{fmt}" for option --format: unknown format')
    return fmt
