"""ComfyUI-MotionSuite: five motion and video pipelines in one ComfyUI node pack.

ComfyUI imports this file as a package under whatever folder name the pack was cloned into, so
everything inside the pack is imported relatively.
"""

WEB_DIRECTORY = "./web"

if __package__:
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
else:  # loaded as a plain module (pytest collecting a checkout whose folder name is no identifier)
    NODE_CLASS_MAPPINGS: dict = {}
    NODE_DISPLAY_NAME_MAPPINGS: dict = {}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
