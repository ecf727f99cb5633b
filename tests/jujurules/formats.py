"""What the hook tools print (--format json|yaml|smart, as Juju's cmd/output.go) and how
they read settings files (relation-set / leader-set / secret-* ``--file``)."""
import json
import os
import re
import sys

from .args import run_error

# Extra sys.path entries where yaml lives, for a client that runs with ``python -I -S``.
YAML_PATH = []


def go_json(value):
    """Go's json.Marshal: compact, sorted keys, <>& escaped, non-ASCII kept."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


_PLAIN = re.compile(r"^[A-Za-z0-9_./][A-Za-z0-9_./ -]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _yaml_scalar(value):
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if (_PLAIN.match(text) and text.lower() not in _YAML_WORDS and not text.endswith(" ")
            and not re.match(r"^[-+.]?[0-9]", text)):
        return text
    return json.dumps(text)  # a JSON string is a valid YAML double-quoted scalar


def yaml_dump(value, indent=0):
    """Block-style YAML for str/int/float/bool/None/list/dict (what the tools print)."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return pad + "{}\n"
        out = []
        for key in sorted(value):
            item = value[key]
            if isinstance(item, (dict, list)) and item:
                out.append(f"{pad}{_yaml_scalar(key)}:\n{yaml_dump(item, indent + 2)}")
            else:
                out.append(f"{pad}{_yaml_scalar(key)}: {yaml_dump(item).strip()}\n")
        return "".join(out)
    if isinstance(value, list):
        if not value:
            return pad + "[]\n"
        out = []
        for item in value:
            if isinstance(item, (dict, list)) and item:
                body = yaml_dump(item, indent + 2)
                out.append(pad + "- " + body[indent + 2:])
            else:
                out.append(f"{pad}- {yaml_dump(item).strip()}\n")
        return "".join(out)
    return pad + _yaml_scalar(value) + "\n"


def render(value, fmt):
    if fmt == "json":
        return go_json(value) + "\n"
    if fmt == "yaml":
        return "" if value is None else yaml_dump(value)
    # smart
    if value is None:
        return ""
    if isinstance(value, bool):
        return ("True" if value else "False") + "\n"
    if isinstance(value, str):
        return value + "\n"
    if isinstance(value, list):
        return "".join(f"{v}\n" for v in value)
    if isinstance(value, dict):
        return yaml_dump(value)
    return f"{value}\n"


def load_yaml_text(text):
    """relation-set/secret --file content (charmhelpers writes it with yaml.safe_dump)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    for path in YAML_PATH:
        if path not in sys.path:
            sys.path.append(path)
    import yaml  # lazy: only --file needs it

    return yaml.safe_load(text)


def open_in(cwd, path, mode, **kw):
    """open() of ``path`` relative to ``cwd`` (the calling hook's directory, not the
    server's), errors naming ``path`` as the hook gave it."""
    if not cwd or os.path.isabs(path):
        return open(path, mode, **kw)
    dir_fd = os.open(cwd, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return open(path, mode, opener=lambda p, flags: os.open(p, flags, dir_fd=dir_fd), **kw)
    finally:
        os.close(dir_fd)


def read_settings_file(path, call):
    """A --file's key/values (``-``: the hook's stdin), values made strings as Juju does."""
    if path == "-":
        text = call.stdin()
    else:
        try:
            with open_in(call.cwd, path, "r", encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise run_error(f"cannot read settings file: {e}") from None
    data = load_yaml_text(text) if text.strip() else {}
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise run_error("expected YAML map in settings file")
    out = {}
    for k, v in data.items():
        if v is None:
            out[str(k)] = ""
        elif isinstance(v, bool):
            out[str(k)] = "true" if v else "false"
        else:
            out[str(k)] = str(v)
    return out
