"""Caption cleaning (``clean_caption=True`` on the Open-Sora text encoders) against upstream's output.

``tests/fixtures/opensora/captions.json`` holds example captions and what upstream produced for them:
hpcaitech/Open-Sora ``opensora/v1.2`` (bde3c42), ``opensora/models/text_encoder/t5.py``
``clean_caption`` (one pass) and ``text_preprocessing`` (two passes, what inference uses), run in a
scratch venv with ftfy 6.3.1 and beautifulsoup4 4.15.0. Ours uses only the standard library.
"""

from __future__ import annotations

import json

import pytest
from conftest import ROOT
from motionsuite.pipelines.opensora import captions, text

CASES = json.loads((ROOT / "tests" / "fixtures" / "opensora" / "captions.json").read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["input"][:24] for c in CASES])
def test_cleaning_matches_upstream(case):
    assert captions.clean_caption(case["input"]) == case["clean_once"]
    assert captions.clean(case["input"]) == case["expected"]


def test_score_suffixes_survive_cleaning_unchanged():
    prompt = text.add_scores("A cat on a mat", 6.5, 5, "pan left")
    assert (
        captions.clean(prompt)
        == "a cat on a mat aesthetic score: 6.5. motion score: 5.0. camera motion: pan left."
    )
    assert captions.clean(captions.clean(prompt)) == captions.clean(prompt)


def test_html_and_width_helpers():
    assert captions.html_to_text("<p>a &amp; b</p><script>x()</script>") == "a & b"
    assert captions.fix_text("ﬁne ＡＢＣ\u3000“q”\x07") == 'fine ABC "q"'
