"""Make the faithfulness fixtures for the sadtalker backend by running the ORIGINAL SadTalker
code (not part of this repository) on seeded random weights and fixed inputs.

    python benchmarks/sadtalker_fixtures.py --sadtalker /path/to/SadTalker   # repo root
        [--out tests/fixtures/sadtalker_reference.npz]

Needs, in the running environment: torch, librosa 0.9.2, yacs, scipy, pyyaml (SadTalker's own
requirements). Only outputs (small arrays) and layouts (key → shape) are written; no weights,
no code. tests/test_neural.py regenerates the same weights from the layouts and seeds
(talkinghead.neural.synthetic) and compares every stage.
"""
from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from talkinghead.neural.synthetic import random_state  # noqa: E402

SEEDS = {"expnet": 11, "posevae": 12, "mapping": 13, "renderer": 14}
TINY_KP = dict(block_expansion=4, feature_channel=16, num_kp=15, image_channel=3, max_features=16,
               reshape_channel=64, reshape_depth=4, num_blocks=2, temperature=0.1, scale_factor=0.25)
TINY_GEN = dict(image_channel=3, feature_channel=16, num_kp=15, block_expansion=64, max_features=64,
                num_down_blocks=2, reshape_channel=16, reshape_depth=4, num_resblocks=1,
                estimate_occlusion_map=True,
                dense_motion_params=dict(block_expansion=4, max_features=16, num_blocks=2,
                                         reshape_depth=4, compress=2))


def layout(module: torch.nn.Module, prefix: str = "") -> dict[str, list[int]]:
    return {prefix + k: list(v.shape) for k, v in module.state_dict().items()}


def load(module: torch.nn.Module, state: dict, prefix: str) -> None:
    module.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    module.eval()


def test_wave() -> np.ndarray:
    """The fixed 0.56 s test signal (the tests rebuild it with the same formula)."""
    t = np.arange(9000)
    return (0.3 * np.sin(t * 0.05) * np.sin(t * 0.0007) + 0.05 * np.cos(t * 0.9)).astype(np.float32)


def mel_stage(out: dict) -> None:
    import src.utils.audio as audio
    from src.generate_batch import crop_pad_audio, parse_audio_length

    wav = test_wave()
    length, frames = parse_audio_length(len(wav), 16000, 25)
    mel = audio.melspectrogram(crop_pad_audio(wav, length)).T
    windows = []
    for i in range(frames):
        start = int(80. * ((i - 2) / float(25)))
        seq = [min(max(k, 0), mel.shape[0] - 1) for k in range(start, start + 16)]
        windows.append(mel[seq, :].T)
    out.update(mel_windows=np.asarray(windows, dtype=np.float32))


def expnet_stage(out: dict, layouts: dict) -> None:
    from src.audio2exp_models.networks import SimpleWrapperV2

    net = SimpleWrapperV2()
    layouts["expnet"] = layout(net, "audio2exp.")
    load(net, random_state(layouts["expnet"], SEEDS["expnet"]), "audio2exp.")
    gen = torch.Generator().manual_seed(1)
    mels = torch.randn(1, 3, 1, 80, 16, generator=gen)
    ref = torch.randn(1, 3, 64, generator=gen)
    blink = torch.rand(1, 3, generator=gen)
    with torch.no_grad():
        exp = net(mels.view(-1, 1, 80, 16), ref, blink)
    out.update(exp_mels=mels[0].numpy(), exp_ref=ref[0].numpy(), exp_blink=blink[0].numpy(),
               exp_out=exp[0].numpy())


def posevae_stage(out: dict, layouts: dict, root: Path) -> None:
    from yacs.config import CfgNode

    from src.audio2pose_models.audio2pose import Audio2Pose

    cfg = CfgNode.load_cfg(open(root / "src" / "config" / "auido2pose.yaml"))
    net = Audio2Pose(cfg, None, device="cpu")
    layouts["posevae"] = layout(net, "audio2pose.")
    load(net, random_state(layouts["posevae"], SEEDS["posevae"]), "audio2pose.")
    gen = torch.Generator().manual_seed(2)
    frames = 40
    mels = torch.randn(1, frames, 1, 80, 16, generator=gen)
    ref = torch.randn(1, 1, 70, generator=gen)
    torch.manual_seed(5)
    with torch.no_grad():
        pose = net.test({"ref": ref, "class": torch.LongTensor([7]), "indiv_mels": mels,
                         "num_frames": frames})["pose_pred"]
    out.update(pose_ref=ref[0, 0, -6:].numpy(), pose_style=7,
               pose_seed=5, pose_out=pose[0].numpy())


def mapping_stage(out: dict, layouts: dict) -> None:
    from src.facerender.modules.make_animation import keypoint_transformation
    from src.facerender.modules.mapping import MappingNet

    net = MappingNet(coeff_nc=70, descriptor_nc=1024, layer=3, num_kp=15, num_bins=66)
    layouts["mapping"] = layout(net)
    load(net, random_state(layouts["mapping"], SEEDS["mapping"]), "")
    gen = torch.Generator().manual_seed(3)
    windows = torch.randn(2, 70, 27, generator=gen)
    canonical = torch.rand(2, 15, 3, generator=gen) * 2 - 1
    with torch.no_grad():
        motion = net(windows)
        kp = keypoint_transformation({"value": canonical}, {k: v.clone() for k, v in motion.items()})
        yaw_in = torch.tensor([10.0, -20.0])
        free = keypoint_transformation({"value": canonical},
                                       {**{k: v.clone() for k, v in motion.items()}, "yaw_in": yaw_in})
    out.update(map_windows=windows.numpy(), map_canonical=canonical.numpy(), map_yaw_in=yaw_in.numpy(),
               map_kp=kp["value"].numpy(), map_kp_free=free["value"].numpy(),
               **{f"map_{k}": v.numpy() for k, v in motion.items()})


def renderer_stage(out: dict, layouts: dict) -> None:
    from src.facerender.modules.generator import OcclusionAwareSPADEGenerator
    from src.facerender.modules.keypoint_detector import KPDetector

    kp_net, gen_net = KPDetector(**TINY_KP), OcclusionAwareSPADEGenerator(**TINY_GEN)
    layouts["renderer"] = layout(kp_net, "kp_extractor.") | layout(gen_net, "generator.")
    state = random_state(layouts["renderer"], SEEDS["renderer"])
    load(kp_net, state, "kp_extractor.")
    load(gen_net, state, "generator.")
    gen = torch.Generator().manual_seed(4)
    image = torch.rand(1, 3, 16, 16, generator=gen)
    kp_driving = torch.rand(1, 15, 3, generator=gen) * 2 - 1
    with torch.no_grad():
        canonical = kp_net(image)["value"]
        frame = gen_net(image, kp_source={"value": canonical}, kp_driving={"value": kp_driving})
    out.update(ren_image=image.numpy(), ren_kp_driving=kp_driving.numpy(),
               ren_canonical=canonical.numpy(), ren_frame=frame["prediction"].numpy())


ALIGN_POINTS = np.array([[101.1, 113.0], [160.4, 110.7], [133.8, 150.8], [108.3, 175.2], [158.3, 172.6]])


def align_picture() -> np.ndarray:
    """A fixed smooth 256×256 RGB test picture, uint8 (the tests rebuild it with this formula)."""
    y, x = np.mgrid[0:256, 0:256].astype(np.float64)
    channels = (x * 0.9 + 20 * np.sin(y / 9), y * 0.8 + 30 * np.cos(x / 13), (x + y) / 2)
    return np.stack([c % 256 for c in channels], axis=-1).astype(np.uint8)


def align_stage(root: Path) -> dict:
    """Deep3DFaceRecon's align_img on the test picture and five points (y flipped first, as
    SadTalker's preprocess does) → the 224×224 face and (W, H, scale, t_x, t_y)."""
    from PIL import Image

    if not hasattr(np, "VisibleDeprecationWarning"):  # the module names it at import (numpy < 2)
        np.VisibleDeprecationWarning = np.exceptions.VisibleDeprecationWarning
    import src.face3d.util.preprocess as prep
    from src.face3d.util.load_mats import load_lm3d

    pos = prep.POS
    # new numpy refuses float() of 1-element arrays: hand align_img 0-d translations (same numbers)
    prep.POS = lambda xp, x: (lambda t, s: (t[:, 0], s))(*pos(xp, x))
    lm = ALIGN_POINTS.astype(np.float32).copy()
    lm[:, 1] = 256 - 1 - lm[:, 1]
    params, face, _, _ = prep.align_img(Image.fromarray(align_picture()), lm,
                                        load_lm3d(str(root / "src" / "config")))
    return {"align_face": np.asarray(face), "align_params": np.asarray(params, dtype=np.float32).ravel()}


def full_layouts(root: Path) -> dict:
    """Key → shape of the real release files, from the original classes at full size."""
    import yaml
    from yacs.config import CfgNode

    from src.audio2exp_models.networks import SimpleWrapperV2
    from src.audio2pose_models.audio2pose import Audio2Pose
    from src.face3d.models import networks
    from src.facerender.modules.generator import OcclusionAwareSPADEGenerator
    from src.facerender.modules.keypoint_detector import KPDetector
    from src.facerender.modules.mapping import MappingNet

    with torch.device("meta"):
        cfg = yaml.safe_load(open(root / "src" / "config" / "facerender.yaml"))["model_params"]
        pose_cfg = CfgNode.load_cfg(open(root / "src" / "config" / "auido2pose.yaml"))
        parts = {"kp_extractor.": KPDetector(**cfg["kp_detector_params"], **cfg["common_params"]),
                 "generator.": OcclusionAwareSPADEGenerator(**cfg["generator_params"], **cfg["common_params"]),
                 "audio2exp.": SimpleWrapperV2(),
                 "audio2pose.": Audio2Pose(pose_cfg, None, device="cpu"),
                 "face_3drecon.": networks.define_net_recon(net_recon="resnet50", use_last_fc=False, init_path="")}
        result = {"safetensors": {}}
        for prefix, module in parts.items():
            result["safetensors"].update(layout(module, prefix))
        for n in (70, 73):
            result[f"mapping_{n}"] = layout(MappingNet(coeff_nc=n, descriptor_nc=1024, layer=3, num_kp=15, num_bins=66))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sadtalker", type=Path, required=True, help="root of a SadTalker checkout")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "tests" / "fixtures")
    args = parser.parse_args()
    sys.path.insert(0, str(args.sadtalker))
    torch.set_num_threads(1)
    out, layouts = {}, {}
    mel_stage(out)
    expnet_stage(out, layouts)
    posevae_stage(out, layouts, args.sadtalker)
    mapping_stage(out, layouts)
    renderer_stage(out, layouts)
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out / "sadtalker_reference.npz", **out)
    np.savez_compressed(args.out / "sadtalker_align.npz", **align_stage(args.sadtalker))
    layouts["seeds"] = SEEDS
    layouts["official_release"] = full_layouts(args.sadtalker)
    with gzip.open(args.out / "sadtalker_layouts.json.gz", "wt") as f:
        json.dump(layouts, f, sort_keys=True)


if __name__ == "__main__":
    main()
