"""ComfyUI-MotionSuite: five motion and video pipelines in one ComfyUI node pack.

ComfyUI imports this file as a package under whatever folder name the pack was cloned into, so
everything inside the pack is imported relatively.
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
