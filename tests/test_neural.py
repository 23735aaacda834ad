"""The sadtalker backend's networks (talkinghead.neural): faithfulness to the original SadTalker
code on seeded random weights, the checkpoint key table, strict loading, the renderer's inference
fast path (fastconv) against its plain modules.

Fixtures (tests/fixtures/sadtalker_*) were made by benchmarks/sadtalker_fixtures.py running the
original code; they hold only outputs and key → shape layouts. Skipped without torch (CI
installs .[test,eval] only).
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from safetensors.torch import save_file  # noqa: E402

from talkinghead.errors import CheckpointError, UserError  # noqa: E402
from talkinghead.neural import audio  # noqa: E402
from talkinghead.neural.checkpoints import (  # noqa: E402
    MAPPING_TABLE, SAFETENSORS_TABLE, TRAINING_ONLY, SadTalkerNets, load_mapping, load_sadtalker,
    map_state, official_to_ours, ours_to_official, read_safetensors)
from talkinghead.neural.expnet import ExpNet  # noqa: E402
from talkinghead.neural.facevid2vid import Renderer  # noqa: E402
from talkinghead.neural.mapping import MappingNet, transform_keypoints  # noqa: E402
from talkinghead.neural.posevae import PoseVAE  # noqa: E402
from talkinghead.neural.synthetic import random_state  # noqa: E402

from test_reference import reference_video  # noqa: E402,F401  (a fixture)

FIXTURES = Path(__file__).parent / "fixtures"
TOL = 1e-4
TINY_RENDERER = dict(
    kp=dict(base=4, cap=16, blocks=2, depth=4, num_kp=15),
    appearance=dict(base=64, cap=64, downs=2, volume_channels=16, depth=4, residuals=1),
    motion=dict(volume_channels=16, num_kp=15, compress=2, base=4, cap=16, blocks=2, depth=4))

TINIEST_RENDERER = dict(
    kp=dict(base=4, cap=16, blocks=2, depth=4, num_kp=15),
    appearance=dict(base=2, cap=16, downs=2, volume_channels=4, depth=4, residuals=1),
    motion=dict(volume_channels=4, num_kp=15, compress=2, base=4, cap=16, blocks=2, depth=4),
    decoder=dict(out_channels=4, hidden=4, middle=1))


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(FIXTURES / "sadtalker_reference.npz"))


@pytest.fixture(scope="module")
def layouts():
    with gzip.open(FIXTURES / "sadtalker_layouts.json.gz", "rt") as f:
        return json.load(f)


class Part(torch.nn.Module):
    """A container holding one network under the attribute name the key table uses."""

    def __init__(self, name: str, net: torch.nn.Module):
        super().__init__()
        setattr(self, name, net)


def load_part(tmp_path, layouts, stage: str, name: str, net: torch.nn.Module) -> torch.nn.Module:
    """Write the stage's seeded random weights as an official-layout safetensors, load it back."""
    path = tmp_path / f"{stage}.safetensors"
    save_file(random_state(layouts[stage], layouts["seeds"][stage]), str(path))
    part = Part(name, net)
    part.load_state_dict(map_state(read_safetensors(path), part, SAFETENSORS_TABLE, str(path), TRAINING_ONLY))
    return net.eval()


def close(ours: torch.Tensor, theirs: np.ndarray) -> float:
    return float(np.abs(ours.detach().numpy() - theirs).max())


def test_mel_windows_match_original(reference):
    t = np.arange(9000)
    wav = (0.3 * np.sin(t * 0.05) * np.sin(t * 0.0007) + 0.05 * np.cos(t * 0.9)).astype(np.float32)
    ours = audio.speech_windows(wav)
    assert ours.shape == reference["mel_windows"].shape == (14, 80, 16)
    assert np.abs(ours - reference["mel_windows"]).max() <= TOL


def test_expnet_matches_original(tmp_path, layouts, reference):
    net = load_part(tmp_path, layouts, "expnet", "expnet", ExpNet())
    with torch.no_grad():
        out = net(torch.from_numpy(reference["exp_mels"]), torch.from_numpy(reference["exp_ref"]),
                  torch.from_numpy(reference["exp_blink"])[:, None])
    assert out.shape == (3, 64) and close(out, reference["exp_out"]) <= TOL


def test_posevae_matches_original(tmp_path, layouts, reference):
    net = load_part(tmp_path, layouts, "posevae", "posevae", PoseVAE())
    gen = torch.Generator().manual_seed(2)
    mels = torch.randn(1, 40, 1, 80, 16, generator=gen)[0]
    ref = torch.from_numpy(reference["pose_ref"])
    with torch.no_grad():
        pose = net(mels, ref, int(reference["pose_style"]),
                   torch.Generator().manual_seed(int(reference["pose_seed"])))
    assert pose.shape == (40, 6) and close(pose, reference["pose_out"]) <= TOL


def test_mapping_and_keypoint_transform_match_original(tmp_path, layouts, reference):
    path = tmp_path / "mapping_00229-model.pth.tar"
    torch.save({"mapping": random_state(layouts["mapping"], layouts["seeds"]["mapping"]), "epoch": 229}, path)
    net = load_mapping(path)
    canonical = torch.from_numpy(reference["map_canonical"])
    with torch.no_grad():
        motion = net(torch.from_numpy(reference["map_windows"]))
        kp = transform_keypoints(canonical, motion)
        free = transform_keypoints(canonical, motion, {"yaw": torch.from_numpy(reference["map_yaw_in"])})
    for key in ("yaw", "pitch", "roll", "t", "exp"):
        assert close(motion[key], reference[f"map_{key}"]) <= TOL, key
    assert kp.shape == (2, 15, 3) and close(kp, reference["map_kp"]) <= TOL
    assert close(free, reference["map_kp_free"]) <= TOL


def test_renderer_matches_original(tmp_path, layouts, reference):
    net = load_part(tmp_path, layouts, "renderer", "renderer", Renderer(**TINY_RENDERER))
    image = torch.from_numpy(reference["ren_image"])
    with torch.no_grad():
        canonical, volume = net.encode(image)
        frame = net(volume, canonical, torch.from_numpy(reference["ren_kp_driving"]))
    assert close(canonical, reference["ren_canonical"]) <= TOL
    assert frame.shape == (1, 3, 16, 16) and close(frame, reference["ren_frame"]) <= TOL


def _fold_names(keys):
    """Official keys as they look after spectral-norm folding."""
    out = set()
    for key in keys:
        if key.endswith(("weight_u", "weight_v")):
            continue
        out.add(key[:-len("_orig")] if key.endswith("weight_orig") else key)
    return out


def test_release_layout_maps_onto_our_networks(layouts):
    """Every tensor of the real release files (layout from the original classes) maps onto ours."""
    release = layouts["official_release"]
    with torch.device("meta"):
        ours = SadTalkerNets().state_dict()
        mappings = {n: MappingNet(coeffs=n).state_dict() for n in (70, 73)}
    keys = [k for k in _fold_names(release["safetensors"]) if not k.startswith(tuple(TRAINING_ONLY))]
    mapped = {official_to_ours(k): k for k in keys}
    assert None not in mapped and set(mapped) == set(ours)
    for mine, official in mapped.items():
        shape = release["safetensors"].get(official, release["safetensors"].get(official + "_orig"))
        assert list(ours[mine].shape) == shape, official
    for n, state in mappings.items():
        table = {official_to_ours(k, MAPPING_TABLE): v for k, v in release[f"mapping_{n}"].items()}
        assert {k: list(v.shape) for k, v in state.items()} == table


def test_key_table_round_trips():
    with torch.device("meta"):
        keys = list(SadTalkerNets().state_dict())
        mapping_keys = list(MappingNet().state_dict())
    assert all(official_to_ours(ours_to_official(k)) == k for k in keys)
    assert all(official_to_ours(ours_to_official(k, MAPPING_TABLE), MAPPING_TABLE) == k for k in mapping_keys)
    assert official_to_ours("audio2exp.something.weight") is None


def _tiny_nets() -> SadTalkerNets:
    return SadTalkerNets(expnet=dict(width=2), posevae=dict(width=2, filters=(2, 2, 2, 2), hidden=8),
                         renderer=TINIEST_RENDERER, recon=dict(base=2, layers=(1, 1, 1, 1)))


def _official_file(nets: SadTalkerNets, path: Path) -> dict:
    """Our random weights written under the official names, SPADE convs as spectral-norm triples
    (W_orig, u, v); ``nets``' own copy of each such weight becomes the folded W_orig / (u·W_orig v)."""
    tensors = {}
    for key, value in nets.state_dict().items():
        official = ours_to_official(key)
        if ".decoder." in key and ".conv_" in key and key.endswith("weight"):
            u, v = torch.rand(value.shape[0]) + 0.5, torch.rand(value[0].numel()) + 0.5
            u, v = u / u.norm(), v / v.norm()
            tensors |= {official + "_orig": value.clone(), official + "_u": u, official + "_v": v}
            with torch.no_grad():
                value /= torch.dot(u, value.reshape(value.shape[0], -1) @ v)
        else:
            tensors[official] = value.clone()
    tensors["audio2pose.netD_motion.seq.0.conv.weight"] = torch.zeros(2, 6, 4)
    save_file(tensors, str(path))
    return tensors


def test_load_tiny_release_and_run(tmp_path):
    torch.manual_seed(0)
    source = _tiny_nets().eval()
    path = tmp_path / "SadTalker_V0.0.2_256.safetensors"
    _official_file(source, path)
    nets = load_sadtalker(path, _tiny_nets())
    for key, value in source.state_dict().items():
        assert torch.allclose(nets.state_dict()[key].float(), value.float(), atol=1e-6), key
    with torch.no_grad():
        exp = nets.expnet(torch.randn(2, 1, 80, 16), torch.randn(2, 64), torch.zeros(2, 1))
        pose = nets.posevae(torch.randn(5, 1, 80, 16), torch.zeros(6), 3, torch.Generator().manual_seed(0))
        coeffs = nets.recon(torch.rand(1, 3, 64, 64))
        canonical, volume = nets.renderer.encode(torch.rand(1, 3, 16, 16))
        frame = nets.renderer(volume, canonical, canonical)
    assert exp.shape == (2, 64) and pose.shape == (5, 6) and coeffs.shape == (1, 257)
    assert canonical.shape == (1, 15, 3) and frame.shape == (1, 3, 16, 16)


def test_missing_unexpected_and_misshaped_keys_are_named(tmp_path):
    source = _tiny_nets()
    path = tmp_path / "SadTalker_V0.0.2_256.safetensors"
    tensors = _official_file(source, path)
    del tensors["audio2exp.mapping1.bias"]
    tensors["audio2exp.extra.weight"] = torch.zeros(1)
    tensors["generator.fourth.weight"] = torch.zeros(3, 3, 1, 1)
    save_file(tensors, str(path))
    with pytest.raises(CheckpointError) as info:
        load_sadtalker(path, _tiny_nets())
    message = str(info.value)
    assert str(path) in message and "audio2exp.mapping1.bias" in message
    assert "audio2exp.extra.weight" in message and "generator.fourth.weight" in message


def test_broken_spectral_triple_and_missing_files(tmp_path):
    path = tmp_path / "x.safetensors"
    save_file({"generator.decoder.fc.weight_orig": torch.zeros(2, 2)}, str(path))
    with pytest.raises(CheckpointError, match="generator.decoder.fc"):
        load_sadtalker(path, _tiny_nets())
    with pytest.raises(CheckpointError, match="not found"):
        load_mapping(tmp_path / "mapping_00229-model.pth.tar")
    torch.save({"epoch": 1}, tmp_path / "bad.pth.tar")
    with pytest.raises(CheckpointError, match="mapping"):
        load_mapping(tmp_path / "bad.pth.tar")


# ---- the sadtalker backend end to end (tiny random networks in the official file layout) ----

#: Tiny widths everywhere; the renderer downsamples 16× so it draws 64×64 frames (the backend
#: resizes them to the 256 output), which keeps a frame well under a second on two cores.
TINY_ARCHITECTURE = dict(
    expnet=dict(width=2), posevae=dict(width=2, filters=(2, 2, 2, 2), hidden=8),
    renderer=TINIEST_RENDERER | dict(appearance=TINIEST_RENDERER["appearance"] | dict(downs=4)),
    recon=dict(base=2, layers=(1, 1, 1, 1)))


@pytest.fixture
def tiny_checkpoints(tmp_path, monkeypatch) -> Path:
    """A checkpoint folder with the official file names and key layout, tiny widths (the
    backend builds its networks from ``ARCHITECTURE``, patched here to match)."""
    from talkinghead.neural import backend
    from talkinghead.neural.checkpoints import MAPPING_NAMES

    monkeypatch.setattr(backend, "ARCHITECTURE", TINY_ARCHITECTURE)
    torch.manual_seed(0)
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    _official_file(SadTalkerNets(**TINY_ARCHITECTURE).eval(), folder / "SadTalker_V0.0.2_256.safetensors")
    for coeffs, name in MAPPING_NAMES.items():
        state = MappingNet(coeffs=coeffs, width=16).state_dict()
        torch.save({"mapping": {ours_to_official(k, MAPPING_TABLE): v for k, v in state.items()}},
                   folder / name)
    return folder


@pytest.fixture
def one_second_wav(tmp_path, short_speech_wav) -> Path:
    """The first second of the synthetic speech (25 frames), 16 kHz 16-bit wav."""
    from talkinghead.media import load_audio, write_wav
    from talkinghead.types import Waveform

    speech = load_audio(short_speech_wav)
    return write_wav(tmp_path / "one_second.wav", Waveform(speech.samples[:16000], 16000))


def _generate(portrait_path, wav, out, checkpoints, *extra) -> int:
    from talkinghead.cli import main

    return main(["generate", "--backend", "sadtalker", "--checkpoints", str(checkpoints),
                 "--image", str(portrait_path), "--audio", str(wav), "-o", str(out), "--quiet", *extra])


def _probe(path: Path) -> tuple[int, int, int, bool]:
    """(frames, width, height, has audio) of an mp4."""
    import av

    with av.open(str(path)) as container:
        has_audio = any(s.type == "audio" for s in container.streams)
        frames = [f for f in container.decode(video=0)]
    return len(frames), frames[0].width, frames[0].height, has_audio


def test_sadtalker_backend_end_to_end(tmp_path, tiny_checkpoints, portrait_path, one_second_wav):
    out = tmp_path / "out.mp4"
    assert _generate(portrait_path, one_second_wav, out, tiny_checkpoints, "--pose-style", "3") == 0
    assert _probe(out) == (25, 256, 256, True)


def test_sadtalker_backend_full_mode_still_free_view(tmp_path, tiny_checkpoints, portrait_path,
                                                     one_second_wav):
    from PIL import Image

    out = tmp_path / "full.mp4"
    code = _generate(portrait_path, one_second_wav, out, tiny_checkpoints, "--preprocess", "full",
                     "--still", "--yaw", "-10", "10", "--expression-scale", "1.5")
    assert code == 0
    frames, width, height, has_audio = _probe(out)
    w, h = Image.open(portrait_path).size
    assert frames == 25 and has_audio and (width, height) == (w // 2 * 2, h // 2 * 2)


@pytest.mark.parametrize("flags", [["--emotion", "happy"], ["--gaze", "camera"], ["--transcript", "Hi."]])
def test_sadtalker_backend_refuses_what_it_cannot_apply(tmp_path, tiny_checkpoints, portrait_path,
                                                        one_second_wav, capsys, flags):
    out = tmp_path / "refused.mp4"
    assert _generate(portrait_path, one_second_wav, out, tiny_checkpoints, *flags) == 2
    assert flags[0] in capsys.readouterr().err and not out.exists()


def test_sadtalker_backend_names_a_missing_checkpoint(tmp_path, tiny_checkpoints, portrait_path,
                                                      short_speech_wav, capsys):
    (tiny_checkpoints / "mapping_00229-model.pth.tar").unlink()
    out = tmp_path / "missing.mp4"
    assert _generate(portrait_path, short_speech_wav, out, tiny_checkpoints) == 2
    assert "mapping_00229-model.pth.tar" in capsys.readouterr().err and not out.exists()


def test_alignment_matches_original():
    """align_img of Deep3DFaceRecon (run by benchmarks/sadtalker_fixtures.py) on a fixed picture
    and five points: the same 224×224 pixels and parameters."""
    import sys

    from talkinghead.neural.align import align_face

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    from sadtalker_fixtures import ALIGN_POINTS, align_picture

    expected = np.load(FIXTURES / "sadtalker_align.npz")
    face, params = align_face(align_picture(), ALIGN_POINTS)
    assert np.abs(params - expected["align_params"]).max() <= TOL * np.abs(expected["align_params"]).max()
    assert np.array_equal(face, expected["align_face"])


def test_blink_signal_and_free_view():
    from talkinghead.neural.backend import free_view
    from talkinghead.neural.coefficients import BLINK_SHAPE, blink_signal

    a, b = (blink_signal(300, np.random.default_rng(7)) for _ in range(2))
    assert np.array_equal(a, b) and a.max() == 1.0 and blink_signal(20, np.random.default_rng(0)).max() == 0
    starts = [i for i in range(300) if a[i] == 0.5 and (i == 0 or a[i - 1] == 0)]
    assert all(np.array_equal(a[s:s + 5], BLINK_SHAPE) for s in starts)
    gaps = np.diff([0] + [s + 5 for s in starts])
    assert len(starts) >= 4 and all(10 <= g - 5 < 70 for g in gaps[1:])
    assert np.allclose(free_view((-10.0, 10.0), 5), [-10, -5, 0, 5, 10])
    assert free_view((), 5) is None and np.allclose(free_view((3.0,), 4), 3)


def test_sadtalker_backend_without_torch_names_the_extra(tmp_path, monkeypatch, portrait_path,
                                                         one_second_wav, capsys):
    import sys

    import talkinghead.neural

    for name in [m for m in sys.modules if m.startswith("talkinghead.neural.")]:
        monkeypatch.delitem(sys.modules, name)
        monkeypatch.delattr(talkinghead.neural, name.rsplit(".", 1)[1], raising=False)
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch → ModuleNotFoundError
    code = _generate(portrait_path, one_second_wav, tmp_path / "x.mp4", tmp_path)
    assert code == 2 and "pip install 'talkinghead[sadtalker]'" in capsys.readouterr().err


def test_reference_pose_adds_relative_motion_and_reference_blink_drives_only_the_blink_input():
    from talkinghead.neural.coefficients import BLINK_SHAPE, motion_coefficients

    torch.manual_seed(0)
    nets = _tiny_nets().eval()
    rng = np.random.default_rng(0)
    mels = rng.standard_normal((30, 80, 16)).astype(np.float32)
    source = (0.1 * rng.standard_normal(70)).astype(np.float32)
    pose = (0.1 * rng.standard_normal((30, 6))).astype(np.float32)
    blink = np.zeros(30, np.float32)
    blink[10:15] = BLINK_SHAPE

    def run(**kw):
        return motion_coefficients(nets.expnet, nets.posevae, mels, source, seed=3, blink=False, **kw)

    base, both = run(), run(ref_pose=pose, ref_blink=blink)
    assert np.allclose(both[:, 64:70], base[:, 64:70] + pose - pose[:1], atol=1e-6)
    assert np.array_equal(both[:10, :64], base[:10, :64])   # no blink: ExpNet's output unchanged
    assert not np.allclose(both[12, :64], base[12, :64])
    still = run(ref_pose=pose, still=True)
    assert np.allclose(still[:, 64:70], source[64:70] + pose - pose[:1], atol=1e-6)


def test_sadtalker_backend_with_reference_pose_and_blink(tmp_path, tiny_checkpoints, portrait_path,
                                                         one_second_wav, reference_video):  # noqa: F811
    out = tmp_path / "ref.mp4"
    assert _generate(portrait_path, one_second_wav, out, tiny_checkpoints, "--ref-pose",
                     str(reference_video), "--ref-blink", str(reference_video)) == 0
    assert _probe(out) == (25, 256, 256, True)


def test_sadtalker_backend_at_another_fps_interpolates_the_25_fps_motion(tiny_checkpoints, portrait_path,
                                                                        one_second_wav):
    from talkinghead.config import Config, VideoConfig
    from talkinghead.face.landmarks import find_face
    from talkinghead.media import load_audio, load_image
    from talkinghead.neural.backend import SadTalkerBackend

    pixels = load_image(portrait_path).pixels
    mesh, _ = find_face(pixels)
    samples = load_audio(one_second_wav).samples
    backend = SadTalkerBackend(tiny_checkpoints, 256)

    def frames(fps: float) -> list[np.ndarray]:
        config = Config(backend="sadtalker", checkpoints=str(tiny_checkpoints), seed=2,
                        video=VideoConfig(fps=fps))
        plan = backend.prepare(pixels, mesh, samples, config)
        return list(backend.frames(plan))

    at25, at50 = frames(25.0), frames(50.0)
    assert len(at25) == 25 and len(at50) == 50
    for k in range(25):  # the 50 fps frames on the 25 fps instants are those frames
        assert np.array_equal(at50[2 * k], at25[k]), k
    between = [np.abs(at50[2 * k + 1].astype(int) - at25[k]).mean() for k in range(24)]
    moved = [np.abs(at25[k + 1].astype(int) - at25[k]).mean() for k in range(24)]
    assert 0 < np.median(between) < np.median(moved)  # half-way frames lie between their neighbours


def test_sadtalker_backend_writes_30_fps(tmp_path, tiny_checkpoints, portrait_path, one_second_wav):
    out = tmp_path / "thirty.mp4"
    assert _generate(portrait_path, one_second_wav, out, tiny_checkpoints, "--fps", "30") == 0
    assert _probe(out) == (30, 256, 256, True)


def test_eval_measures_the_sadtalker_backend(tmp_path, tiny_checkpoints, portrait_path, one_second_wav,
                                             capsys):
    import json

    pytest.importorskip("dlib")
    from talkinghead.cli import main

    clips = tmp_path / "clips"
    clips.mkdir()  # a "real" clip: the embedded backend's video of the portrait, with its speech
    assert main(["generate", "--image", str(portrait_path), "--audio", str(one_second_wav),
                 "-o", str(clips / "talk.mp4"), "--size", "256", "--quiet"]) == 0
    report = tmp_path / "eval.json"
    assert main(["eval", str(clips), "--backend", "sadtalker", "--checkpoints", str(tiny_checkpoints),
                 "--json", str(report), "--quiet"]) == 0
    rows = {r["kind"]: r for r in json.loads(report.read_text())["rows"]}
    assert rows["generated"]["frames"] == rows["real"]["frames"] == 25
    assert rows["generated"]["generate_seconds"] > 0 and "talk" in capsys.readouterr().out
    assert main(["eval", "--synthetic", "--backend", "sadtalker", "--checkpoints",
                 str(tiny_checkpoints)]) == 2
    assert "evaluate clips only" in capsys.readouterr().err


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_upsampled_conv_equals_upsample_then_conv(scale):
    from talkinghead.neural.facevid2vid import upsampled_conv3x3

    gen = torch.Generator().manual_seed(scale)
    x = torch.randn(2, 5, 6, 7, generator=gen)
    weight, bias = torch.randn(4, 5, 3, 3, generator=gen), torch.randn(4, generator=gen)
    want = torch.nn.functional.conv2d(torch.nn.functional.interpolate(x, scale_factor=scale), weight,
                                      bias, padding=1)
    got = upsampled_conv3x3(x, weight, bias, scale)
    assert got.shape == want.shape and float((got - want).abs().max()) <= 1e-5


def test_renderer_bf16_runs_close_to_fp32_and_fp32_stays_exact(tmp_path, layouts, reference):
    net = load_part(tmp_path, layouts, "renderer", "renderer", Renderer(**TINY_RENDERER))
    image = torch.from_numpy(reference["ren_image"])
    kp_driving = torch.from_numpy(reference["ren_kp_driving"])
    with torch.inference_mode():
        canonical, volume = net.encode(image)
        assert net.precision == "fp32"
        fp32 = net(volume, canonical, kp_driving)
        net.precision = "bf16"
        bf16 = net(volume, canonical, kp_driving)
        net.precision = "fp32"
        again = net(volume, canonical, kp_driving)
    assert bf16.dtype == torch.float32 and bf16.shape == fp32.shape
    # seeded random weights are ill-conditioned (outputs mostly saturated, steep in between): a
    # loose bound (here mean 0.012, a few pixels flip); on the full-size random renderer bf16
    # moves pixels ~9 grey levels on average
    diff = (bf16 - fp32).abs()
    assert float(diff.mean()) <= 0.03 and float((diff <= 0.05).float().mean()) >= 0.9
    assert close(fp32, reference["ren_frame"]) <= TOL and close(again, reference["ren_frame"]) <= TOL
    net.precision = "fp16"
    with pytest.raises(ValueError, match="precision"):
        net(volume, canonical, kp_driving)


def test_precision_choice(monkeypatch):
    from talkinghead.errors import UserError
    from talkinghead.neural import backend, facevid2vid

    cpu = torch.device("cpu")
    monkeypatch.delenv(backend.PRECISION_ENV, raising=False)
    assert backend.resolve_precision(None, cpu) == backend.DEFAULT_PRECISION == "fp32"
    assert backend.resolve_precision("fp32", cpu) == "fp32"
    monkeypatch.setattr(backend, "bf16_supported", lambda device: True)
    assert backend.resolve_precision("auto", cpu) == backend.resolve_precision("BF16", cpu) == "bf16"
    monkeypatch.setenv(backend.PRECISION_ENV, "bf16")
    assert backend.resolve_precision(None, cpu) == "bf16" and backend.resolve_precision("fp32", cpu) == "fp32"
    monkeypatch.setattr(backend, "bf16_supported", lambda device: False)
    assert backend.resolve_precision(None, cpu) == "fp32"  # no native bf16: fall back
    monkeypatch.setenv(backend.PRECISION_ENV, "half")
    with pytest.raises(UserError, match="TALKINGHEAD_PRECISION"):
        backend.resolve_precision(None, cpu)
    assert isinstance(facevid2vid.bf16_supported("cpu"), bool)


def test_sadtalker_backend_bf16_frames(tmp_path, tiny_checkpoints, portrait_path, one_second_wav, monkeypatch):
    from talkinghead.neural import backend

    used = []
    forward = Renderer.forward
    monkeypatch.setattr(Renderer, "forward", lambda self, *a: used.append(self.precision) or forward(self, *a))
    monkeypatch.setattr(backend, "bf16_supported", lambda device: True)
    monkeypatch.setenv(backend.PRECISION_ENV, "bf16")
    out = tmp_path / "bf16.mp4"
    assert _generate(portrait_path, one_second_wav, out, tiny_checkpoints) == 0
    assert _probe(out) == (25, 256, 256, True) and used == ["bf16"] * 25


# ---- the renderer's inference fast path (fastconv): exact up to float rounding ----

@pytest.mark.parametrize("tile", [2, 4])
@pytest.mark.parametrize("shape", [(1, 6, 8, 8), (2, 5, 7, 10), (1, 4, 3, 5, 9), (2, 3, 4, 12, 4)])
def test_winograd_conv_equals_direct(shape, tile):
    from talkinghead.neural.fastconv import Scratch, winograd_conv, winograd_weight

    gen = torch.Generator().manual_seed(len(shape) * 10 + shape[-1])
    x = torch.randn(*shape, generator=gen)
    three_d = x.dim() == 5
    weight = torch.randn(7, shape[1], *((3,) if three_d else ()), 3, 3, generator=gen)
    bias = torch.randn(7, generator=gen)
    conv = torch.nn.functional.conv3d if three_d else torch.nn.functional.conv2d
    scratch = Scratch()
    for b in (bias, None):
        want = conv(x.double(), weight.double(), None if b is None else b.double(), padding=1)
        got = winograd_conv(x, winograd_weight(weight, tile), b, scratch)
        assert got.shape == want.shape and float((got - want).abs().max()) <= 1e-5 * float(want.abs().max())


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_upsampled_conv_3d_relu(scale):
    from talkinghead.neural.fastconv import UpsampledConv

    gen = torch.Generator().manual_seed(scale)
    x = torch.randn(2, 3, 4, 5, 6, generator=gen)
    weight, bias = torch.randn(4, 3, 3, 3, 3, generator=gen), torch.randn(4, generator=gen)
    up = torch.nn.functional.interpolate(x.double(), scale_factor=(1, scale, scale))
    want = torch.relu(torch.nn.functional.conv3d(up, weight.double(), bias.double(), padding=1))
    got = UpsampledConv(weight, bias, scale)(x, relu=True)
    assert got.shape == want.shape and float((got - want).abs().max()) <= 1e-6 * float(want.abs().max())


def test_fourier_conv_equals_direct():
    from talkinghead.neural.fastconv import FourierConv

    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 5, 6, 9, 11, generator=gen)
    weight, bias = torch.randn(3, 5, 7, 5, 7, generator=gen), torch.randn(3, generator=gen)
    want = torch.nn.functional.conv3d(x.double(), weight.double(), bias.double(), padding=(3, 2, 3))
    got = FourierConv(weight, bias, 11)(x)
    assert got.shape == want.shape and float((got - want).abs().max()) <= 1e-6 * float(want.abs().max())


def _conditioned_renderer(dtype=torch.float32, config: dict = TINY_RENDERER) -> Renderer:
    """The test-size renderer, default init plus random batch-norm statistics and affines (so
    folding them matters): its outputs spread around 0.5, so rounding differences stay ~1e-6.
    (On the seeded fixture weights the outputs saturate and are steep in between: one ulp of
    relative noise on the source volume moves a pixel by 4e-5, the order of TOL.)"""
    torch.manual_seed(0)
    net = Renderer(**config)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(n, generator=gen))
                m.weight.copy_(1 + 0.1 * torch.randn(n, generator=gen))
                m.bias.copy_(0.1 * torch.randn(n, generator=gen))
    return net.eval().to(dtype)


def _force_winograd(monkeypatch, tile: int) -> None:
    """Test sizes are below the thresholds: make every eligible convolution Winograd F(tile, 3)."""
    from talkinghead.neural import facevid2vid

    monkeypatch.setattr(facevid2vid, "WINOGRAD_MIN_PIXELS", 0)
    monkeypatch.setattr(facevid2vid, "WINOGRAD_MIN_CHANNELS", 0)
    monkeypatch.setattr(facevid2vid, "WINOGRAD_TILE", tile)


def _two_samples(net: Renderer):
    gen = torch.Generator().manual_seed(5)
    canonical, volume = net.encode(torch.rand(2, 3, 16, 16, generator=gen))
    return volume, canonical, canonical + 0.1 * torch.randn(canonical.shape, generator=gen)


@pytest.mark.parametrize("winograd", [None, 2, 4])
def test_optimized_renderer_equals_plain(monkeypatch, winograd):
    """The fast path (BN folded, phase and FFT convolutions, Winograd where large — or, forced,
    everywhere) against the plain one and float64 arithmetic, batch of two."""
    if winograd:
        _force_winograd(monkeypatch, winograd)
    net = _conditioned_renderer()
    with torch.no_grad():
        volume, canonical, driving = _two_samples(net)
        fast = net(volume, canonical, driving)
        net.optimized = False
        plain = net(volume, canonical, driving)
        exact = _conditioned_renderer(torch.float64)(volume.double(), canonical.double(), driving.double())
    assert fast.shape == plain.shape == (2, 3, 16, 16)
    assert float((fast - plain).abs().max()) <= TOL and float((fast - exact).abs().max()) <= TOL


def test_optimized_renderer_follows_weight_changes_and_autograd(monkeypatch):
    _force_winograd(monkeypatch, 4)
    net = _conditioned_renderer(config=TINIEST_RENDERER)
    with torch.inference_mode():
        volume, canonical, driving = _two_samples(net)
        before = net(volume, canonical, driving)
        state = {k: v.clone() for k, v in net.state_dict().items()}
        net.load_state_dict({k: v * 1.1 if v.is_floating_point() else v for k, v in state.items()})
        fast = net(volume, canonical, driving)  # every derived (folded, transformed) weight is stale
        net.optimized = False
        plain = net(volume, canonical, driving)
        net.optimized = True
    assert float((fast - plain).abs().max()) <= TOL and float((fast - before).abs().max()) > 100 * TOL
    net.load_state_dict(state)
    with torch.no_grad():  # caches built under inference mode serve outside it too
        assert float((net(volume, canonical, driving) - before).abs().max()) <= TOL
    volume = volume.clone().requires_grad_()
    net(volume, canonical, driving).sum().backward()  # autograd on: the plain path
    assert volume.grad is not None and torch.isfinite(volume.grad).all()


def test_the_networks_make_no_tensor_on_the_cpu_inside(monkeypatch):
    """With ``--device cuda`` every input and weight lives on the GPU, and a tensor made on the
    CPU inside a network (a coordinate grid, a constant) stops the run. PyTorch's meta device
    raises the same way, so the 3DMM network, the keypoint and appearance encoders, MappingNet,
    the keypoint transform and the generator are run on it here (meta has no autocast: it is
    turned off, as the fp32 default does on a GPU)."""
    import contextlib

    monkeypatch.setattr(torch, "autocast", lambda *args, **kwargs: contextlib.nullcontext())
    meta = torch.device("meta")
    torch.manual_seed(0)
    nets = SadTalkerNets(**TINY_ARCHITECTURE).eval()
    renderer, recon = nets.renderer.to(meta), nets.recon.to(meta)
    mapping = MappingNet(coeffs=70, width=16).eval().to(meta)
    with torch.inference_mode():
        assert recon(torch.rand(1, 3, 224, 224, device=meta)).shape == (1, 257)
        canonical, volume = renderer.encode(torch.rand(1, 3, 256, 256, device=meta))
        motion = mapping(torch.rand(1, 70, 27, device=meta))
        kp = transform_keypoints(canonical, motion, {"yaw": torch.tensor([5.0], device=meta)})
        frame = renderer(volume, transform_keypoints(canonical, motion), kp)
    assert frame.device == meta and frame.shape[:2] == (1, 3)


def test_device_choice():
    from talkinghead.config import Config
    from talkinghead.neural.backend import resolve_device

    assert resolve_device("cpu") == "cpu"
    if torch.cuda.is_available():
        assert resolve_device("auto") == resolve_device("cuda") == "cuda"
    else:
        assert resolve_device("auto") == "cpu"
        with pytest.raises(UserError, match="no CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="device must be one of"):
        Config(device="tpu")
