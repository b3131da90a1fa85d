"""mvcore: plugin-based config flavors with hot reload, and the music-video API that uses them."""

from mvcore.config.hookspecs import hookimpl

__all__ = ["hookimpl"]
__version__ = "0.1.0"
