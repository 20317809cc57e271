"""The shared runtime: weights, memory/OOM, images, video, progress."""

from __future__ import annotations

import pytest
import torch
from motionsuite.pipelines.core import comfy, images, memory, progress, video, weights
from motionsuite.pipelines.core.errors import (
    InputError,
    MissingWeightsError,
    OutOfMemory,
    WeightsMismatchError,
)

SPEC = weights.WeightSpec(
    "tiny.pth.tar", "ms_test", repo_id="someone/tiny", size="1 KB", description="test net"
)


def _net() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))


def test_find_and_load_pth_tar_weights_only(tmp_path):
    net = _net()
    torch.save({"model": net.state_dict(), "epoch": 3}, tmp_path / "tiny.pth.tar")
    weights.add_search_dir("ms_test", tmp_path)
    path = weights.resolve(SPEC)
    assert path == tmp_path / "tiny.pth.tar"
    assert "tiny.pth.tar" in weights.list_files("ms_test")
    sd = weights.load_state_dict(path)
    other = _net()
    weights.load_into(other, sd["model"], "test net")
    for k, v in net.state_dict().items():
        assert torch.equal(other.state_dict()[k], v)


def test_load_safetensors_and_key_helpers(tmp_path):
    from safetensors.torch import save_file

    save_file({"module.a.weight": torch.ones(2), "module.b": torch.zeros(1)}, str(tmp_path / "w.safetensors"))
    sd = weights.load_state_dict(tmp_path / "w.safetensors")
    assert set(weights.strip_prefix(sd, "module.")) == {"a.weight", "b"}
    assert set(weights.select(sd, "module.a.")) == {"weight"}
    renamed = weights.rename_keys(sd, [(r"^module\.a\.", "x."), (r"\.weight$", ".w")])
    assert set(renamed) == {"x.w", "module.b"}


def test_pickle_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(WeightsMismatchError, match="weights-only"):
        weights.load_state_dict(tmp_path / "evil.pt")


def test_mismatch_message_is_readable():
    sd = _net().state_dict()
    sd.pop("0.bias")
    sd["extra.weight"] = torch.zeros(1)
    sd["1.weight"] = torch.zeros(5)
    with pytest.raises(WeightsMismatchError) as err:
        weights.load_into(_net(), sd, "test net")
    msg = str(err.value)
    assert "1 missing keys (0.bias)" in msg and "1 unexpected keys (extra.weight)" in msg
    assert "1.weight: file (5,) vs model (4,)" in msg


def test_missing_file_names_file_folder_and_source(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = weights.WeightSpec("absent.pth", "ms_absent", repo_id="org/repo", size="700 MB")
    with pytest.raises(MissingWeightsError) as err:
        weights.resolve(spec)
    msg = str(err.value)
    assert "absent.pth" in msg and "700 MB" in msg and "huggingface.co/org/repo" in msg
    assert "ms_absent" in msg


def test_failed_download_gives_one_clear_error(tmp_path, monkeypatch):
    import huggingface_hub

    def boom(**kwargs):
        raise OSError("no network")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", boom)
    spec = weights.WeightSpec("gone.pth", "ms_gone", repo_id="org/repo")
    with pytest.raises(MissingWeightsError, match="download failed .*no network"):
        weights.download(spec, tmp_path)


def test_download_places_file_in_folder(tmp_path, monkeypatch):
    import huggingface_hub

    def fake(repo_id, filename, local_dir):
        p = tmp_path / "dl" / filename
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
        return str(p)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake)
    spec = weights.WeightSpec("file.pth", "ms_dl", repo_id="org/repo", repo_path="sub/file.pth")
    got = weights.download(spec, tmp_path / "dl")
    assert got.name == "file.pth" and got.exists()


def _oom():
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")


def test_run_batched_halves_batch_on_oom():
    seen = []

    def fn(a, b):
        if b - a > 2:
            _oom()
        seen.append((a, b))
        return b - a

    counts = []
    out = memory.run_batched(fn, 7, 4, on_batch=counts.append)
    assert sum(out) == 7 and sum(counts) == 7
    assert seen == [(0, 2), (2, 4), (4, 6), (6, 7)]


def test_run_batched_second_oom_is_clear():
    with pytest.raises(OutOfMemory, match="Lower the batch size"):
        memory.run_batched(lambda a, b: _oom(), 4, 4)


def test_retry_on_oom_uses_fallback_once():
    assert memory.retry_on_oom(_oom, lambda: 5, "sampling", "lower it") == 5
    with pytest.raises(OutOfMemory, match="sampling.*lower it"):
        memory.retry_on_oom(_oom, _oom, "sampling", "lower it")
    with pytest.raises(ZeroDivisionError):
        memory.retry_on_oom(lambda: 1 / 0, lambda: 5, "x", "y")


def test_on_device_offloads_even_on_error(monkeypatch):
    net = _net()
    moves = []
    orig = net.to

    def spy(*a, **k):
        moves.append(a or k)
        return orig(*a, **k)

    monkeypatch.setattr(net, "to", spy)
    monkeypatch.setattr(memory, "get_offload_device", lambda: torch.device("meta"))
    with pytest.raises(RuntimeError, match="inside"), memory.on_device(net, device=torch.device("cpu")):
        raise RuntimeError("inside")
    assert moves[-1] == (torch.device("meta"),)


def test_crop_paste_roundtrip_and_fit():
    x = torch.rand(1, 3, 40, 60)
    box = images.square_box(40, 60, center=(20, 55))
    assert box == images.CropBox(0, 20, 40, 40)
    sq = images.crop_resize(x, box, 40)
    back = images.paste_back(sq.expand(2, -1, -1, -1), x, box)
    assert back.shape == (2, 3, 40, 60)
    assert torch.allclose(back[0], x[0])
    pbox = images.pad_box(40, 60)
    padded = images.crop(x, pbox)
    assert padded.shape[-2:] == (60, 60) and padded[..., :10, :].abs().max() == 0
    assert images.fit(x, (32, 32), "crop").shape == (1, 3, 32, 32)
    assert images.fit(x, (32, 32), "pad").shape == (1, 3, 32, 32)
    img = images.to_bhwc(images.to_bchw(torch.rand(2, 8, 8, 4)))
    assert img.shape == (2, 8, 8, 3)
    with pytest.raises(InputError, match=r"\(B, H, W, C\)"):
        images.to_bchw(torch.rand(8, 8, 3))


def test_video_and_frame_folder_roundtrip(tmp_path):
    frames = torch.rand(5, 30, 34, 3)
    folder = video.write_frames(frames, tmp_path / "frames")
    back, _ = video.read_frames(folder)
    assert back.shape == frames.shape
    assert (back - frames).abs().max() <= 1 / 255 + 1e-6
    mp4 = video.write_frames(frames, tmp_path / "clip.mp4", fps=12)
    got, fps = video.read_frames(mp4)
    assert got.shape[0] == 5 and abs(fps - 12) < 1e-6
    with pytest.raises(InputError, match="does not exist"):
        video.read_frames(tmp_path / "nope.mp4")


def test_write_frames_to_image_names(tmp_path):
    """Image models (PixArt) write to ``out.png``; several frames get numbered names beside it."""
    one = torch.rand(1, 12, 10, 3)
    path = video.write_frames(one, tmp_path / "out.png")
    assert (video.read_image(path) - one).abs().max() <= 1 / 255 + 1e-6
    video.write_frames(torch.rand(3, 12, 10, 3), tmp_path / "many.png")
    assert sorted(p.name for p in tmp_path.glob("many_*.png")) == [f"many_{i:05d}.png" for i in range(3)]


def test_progress_checks_interrupt():
    bar = progress.Progress(3, quiet=True)
    bar.update()
    comfy.request_interrupt()
    with pytest.raises(KeyboardInterrupt):
        bar.update(preview=torch.rand(1, 8, 8, 3))
    bar.update()
    assert bar.value == 2  # the interrupted update did not count


def test_url_download_from_local_server(tmp_path):
    """A WeightSpec with a plain URL downloads completely (served here from 127.0.0.1)."""
    import functools
    import http.server
    import threading

    served = tmp_path / "srv"
    served.mkdir()
    (served / "w.pth").write_bytes(b"0123456789" * 1000)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        spec = weights.WeightSpec("w.pth", "ms_url", url=f"http://127.0.0.1:{port}/w.pth")
        got = weights.download(spec, tmp_path / "dl")
        assert got.read_bytes() == (served / "w.pth").read_bytes()
        bad = weights.WeightSpec("x.pth", "ms_url", url=f"http://127.0.0.1:{port}/missing.pth")
        with pytest.raises(MissingWeightsError, match="404"):
            weights.download(bad, tmp_path / "dl")
        assert not (tmp_path / "dl" / "x.pth").exists()
    finally:
        server.shutdown()
