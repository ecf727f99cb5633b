"""charms.layer: a namespace shared by every layer's lib/charms/layer (stand-in layer:basic)."""
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
