"""Open-Sora 1.2 output sizes and frame counts.

Sizes come from upstream's bucket tables (``opensora/datasets/aspect.py``): for each resolution a
pixel budget, and for each aspect ratio the (height, width) the model was trained on. Upstream
keys ratios as height/width ("9:16" meaning *landscape*); the labels here are written width:height
as users read them, with the orientation spelled out.
"""

from __future__ import annotations

from ..core.errors import InputError

#: resolution → {height/width ratio key: (height, width)}
SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "144p": {
        "0.38": (117, 312),
        "0.43": (125, 291),
        "0.48": (133, 277),
        "0.50": (135, 270),
        "0.53": (139, 262),
        "0.54": (141, 260),
        "0.56": (144, 256),
        "0.62": (151, 241),
        "0.67": (156, 234),
        "0.75": (166, 221),
        "1.00": (192, 192),
        "1.33": (221, 165),
        "1.50": (235, 156),
        "1.78": (256, 144),
        "1.89": (263, 139),
        "2.00": (271, 135),
        "2.08": (277, 132),
    },
    "240p": {
        "0.38": (196, 522),
        "0.43": (210, 490),
        "0.48": (222, 462),
        "0.50": (226, 452),
        "0.53": (232, 438),
        "0.54": (236, 436),
        "0.56": (240, 426),
        "0.62": (252, 404),
        "0.67": (262, 393),
        "0.75": (276, 368),
        "1.00": (320, 320),
        "1.33": (370, 278),
        "1.50": (392, 262),
        "1.78": (426, 240),
        "1.89": (440, 232),
        "2.00": (452, 226),
        "2.08": (462, 222),
    },
    "360p": {
        "0.38": (294, 784),
        "0.43": (314, 732),
        "0.48": (332, 692),
        "0.50": (340, 680),
        "0.53": (350, 662),
        "0.54": (352, 652),
        "0.56": (360, 640),
        "0.62": (380, 608),
        "0.67": (392, 588),
        "0.75": (416, 554),
        "1.00": (480, 480),
        "1.33": (554, 416),
        "1.50": (588, 392),
        "1.78": (640, 360),
        "1.89": (660, 350),
        "2.00": (678, 340),
        "2.08": (692, 332),
    },
    "480p": {
        "0.38": (392, 1046),
        "0.43": (420, 980),
        "0.48": (444, 925),
        "0.50": (452, 904),
        "0.53": (466, 880),
        "0.54": (470, 870),
        "0.56": (480, 854),
        "0.62": (506, 810),
        "0.67": (522, 784),
        "0.75": (554, 738),
        "1.00": (640, 640),
        "1.33": (740, 555),
        "1.50": (784, 522),
        "1.78": (854, 480),
        "1.89": (880, 466),
        "2.00": (906, 454),
        "2.08": (924, 444),
    },
    "720p": {
        "0.38": (588, 1568),
        "0.43": (628, 1466),
        "0.48": (666, 1388),
        "0.50": (678, 1356),
        "0.53": (698, 1318),
        "0.54": (706, 1306),
        "0.56": (720, 1280),
        "0.62": (758, 1212),
        "0.67": (784, 1176),
        "0.75": (832, 1110),
        "1.00": (960, 960),
        "1.33": (1108, 832),
        "1.50": (1176, 784),
        "1.78": (1280, 720),
        "1.89": (1320, 698),
        "2.00": (1358, 680),
        "2.08": (1386, 666),
    },
    "1080p": {
        "0.38": (882, 2352),
        "0.43": (942, 2198),
        "0.48": (998, 2080),
        "0.50": (1018, 2036),
        "0.53": (1048, 1980),
        "0.54": (1058, 1958),
        "0.56": (1080, 1920),
        "0.62": (1138, 1820),
        "0.67": (1176, 1764),
        "0.75": (1248, 1664),
        "1.00": (1440, 1440),
        "1.33": (1662, 1246),
        "1.50": (1764, 1176),
        "1.78": (1920, 1080),
        "1.89": (1980, 1048),
        "2.00": (2036, 1018),
        "2.08": (2078, 998),
    },
}

#: upstream ratio names (height:width) → table key
_HW_RATIOS = {
    "3:8": "0.38", "9:21": "0.43", "12:25": "0.48", "1:2": "0.50", "9:17": "0.53", "27:50": "0.54",
    "9:16": "0.56", "5:8": "0.62", "2:3": "0.67", "3:4": "0.75", "1:1": "1.00", "4:3": "1.33",
    "3:2": "1.50", "16:9": "1.78", "17:9": "1.89", "2:1": "2.00", "50:27": "2.08",
}  # fmt: skip


def _label(hw_name: str) -> str:
    h, w = (int(v) for v in hw_name.split(":"))
    kind = "square" if h == w else ("landscape" if w > h else "portrait")
    return f"{w}:{h} {kind}"


#: user-facing label "W:H orientation" → table key, common choices first
ASPECT_RATIOS: dict[str, str] = {
    _label(n): _HW_RATIOS[n] for n in ("9:16", "16:9", "1:1", "3:4", "4:3", "2:3", "3:2", "1:2", "2:1")
}
ASPECT_RATIOS.update({_label(n): k for n, k in _HW_RATIOS.items() if _label(n) not in ASPECT_RATIOS})
RESOLUTIONS = tuple(SIZES)

#: upstream duration names → frame counts (51 = 3 chunks of 17 frames = 15 latents)
DURATIONS = {"2s": 51, "4s": 102, "8s": 204, "16s": 408}


def image_size(resolution: str, aspect: str) -> tuple[int, int]:
    """(height, width) in pixels for a resolution name and an aspect label or H/W key."""
    if resolution not in SIZES:
        raise InputError(f"resolution {resolution!r} is not one of {list(SIZES)}.")
    key = ASPECT_RATIOS.get(aspect, aspect)
    if key not in SIZES[resolution]:
        raise InputError(f"aspect ratio {aspect!r} is not one of {list(ASPECT_RATIOS)}.")
    return SIZES[resolution][key]


def frame_count(value: str | int) -> int:
    """A duration name ("4s") or a frame count → frames."""
    if isinstance(value, str) and value in DURATIONS:
        return DURATIONS[value]
    try:
        frames = int(value)
    except ValueError as exc:
        raise InputError(f"frames {value!r} is neither a number nor one of {list(DURATIONS)}.") from exc
    if frames < 1:
        raise InputError(f"frames must be at least 1, got {frames}.")
    return frames


def latent_index(frame: int) -> int:
    """Latent frame holding pixel frame ``frame`` (17-frame chunks, 3 front-padding frames each)."""
    chunk, rest = divmod(frame, 17)
    return chunk * 5 + (rest + 3) // 4
