"""Glasses: the frame's top bars are found in the photo, and a blink leaves them still."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from conftest import SHARED_DATA, needs_shared_data

from talkinghead.face import regions as R
from talkinghead.face.crop import plan_framing
from talkinghead.face.glasses import find_rims
from talkinghead.face.landmarks import find_face
from talkinghead.face.model import fit_framed
from talkinghead.media import load_image
from talkinghead.motion.expression import BROW_MAX
from talkinghead.render.renderer import Renderer

# of ../shared/data/portraits: art_6's thick frame; art_15's thin wire frame traces as a line
# (over one eye its lid crease), not a bar, and is left to bend slightly with the lid
WITH_GLASSES = {"art_6"}


@pytest.fixture(scope="module")
def hopper(portrait_path):
    """The demo portrait (Grace Hopper, dark browline glasses) and its mesh."""
    pixels = load_image(portrait_path).pixels
    return pixels, find_face(pixels)[0]


def test_the_demo_portraits_glasses_are_found_between_lids_and_brows(hopper):
    pixels, mesh = hopper
    rims = find_rims(pixels, mesh)
    assert rims is not None
    iod = np.linalg.norm(np.subtract(*R.eye_centers(mesh))[:2])
    for edge, lid, brow in zip(rims, (R.LEFT_UPPER_LID, R.RIGHT_UPPER_LID),
                               (R.LEFT_BROW[:5], R.RIGHT_BROW[:5])):
        assert np.all(np.diff(edge[:, 0]) > 0)
        inside = (edge[:, 0] > mesh[lid, 0].min()) & (edge[:, 0] < mesh[lid, 0].max())
        lid_y = np.interp(edge[inside, 0], *mesh[lid][np.argsort(mesh[lid, 0]), :2].T)
        brow_y = np.interp(edge[inside, 0], *mesh[brow][np.argsort(mesh[brow, 0]), :2].T)
        assert np.all(edge[inside, 1] < lid_y) and np.all(edge[inside, 1] > brow_y)
        assert np.ptp(edge[:, 0]) > np.ptp(mesh[lid, 0]) + 0.1 * iod   # reaches past the eye


def test_a_face_without_a_bar_over_the_eyes_has_no_rims(hopper):
    """The same face with the band between lids and brows smoothed over has no glasses."""
    pixels, mesh = hopper
    plain = pixels.copy()
    top = int(mesh[np.concatenate([R.LEFT_BROW, R.RIGHT_BROW]), 1].min())
    bottom = int(mesh[np.concatenate([R.LEFT_UPPER_LID, R.RIGHT_UPPER_LID]), 1].max())
    plain[top:bottom] = np.median(pixels[top:bottom], axis=0).astype(np.uint8)
    assert find_rims(plain, mesh) is None


def test_a_thin_line_over_the_eyes_is_not_a_bar(hopper):
    """The demo's frame thinned to a 2 px line at its lower edge (a wire frame, or the look of
    a lid crease) is not held: only a dark band is."""
    pixels, mesh = hopper
    fx, fy = np.round(mesh[151, :2]).astype(int)                # mid-forehead
    skin = np.median(pixels[fy - 5:fy + 5, fx - 5:fx + 5].reshape(-1, 3), axis=0)
    thin = pixels.copy()
    for edge in find_rims(pixels, mesh):
        for x, y in np.round(edge).astype(int):
            thin[y - 30:y - 2, x] = skin                        # skin over the bar, but its edge
    assert find_rims(thin, mesh) is None


def test_rims_are_found_the_same_at_every_working_size(hopper):
    pixels, mesh = hopper
    edges = [plan_framing(pixels, mesh, "crop", size, matte=False) for size in (256, 512)]
    assert all(f.rims is not None for f in edges)
    small, large = (f.rims[0] for f in edges)
    np.testing.assert_allclose(small * 2, large, atol=0.5)


def _blink_change(framing, mesh: np.ndarray, edge: np.ndarray) -> tuple[float, float]:
    """Largest per-pixel change a full blink makes on a rim's bar (3 px above the middle half of
    its lower ``edge``, working pixels) and the median change just under the left upper lid."""
    fit = fit_framed(framing, mesh)
    renderer = Renderer(framing, fit)
    rest, pose = fit.source_expression.astype(np.float32), np.zeros(6, np.float32)
    opened, closed = (renderer.render(rest, pose, b).astype(int) for b in (0.0, 1.0))
    change = np.abs(opened - closed).max(axis=-1)
    middle = edge[len(edge) // 4: 3 * len(edge) // 4]
    bar = change[np.round(middle[:, 1] - 3).astype(int), np.round(middle[:, 0]).astype(int)]
    lid = fit.mesh[R.LEFT_UPPER_LID[3:6], :2].round().astype(int)
    return float(bar.max()), float(np.median(change[lid[:, 1] + 1, lid[:, 0]]))


def test_a_blink_leaves_the_glasses_frame_still(hopper):
    """With the rims known the bar does not move while the lid closes; without them (as the
    renderer was before it looked for glasses) the lid skin dragged the bar down."""
    pixels, mesh = hopper
    found = plan_framing(pixels, mesh, "crop", 512, matte=False)
    edge = found.rims[0]
    bar, lid = _blink_change(found, mesh, edge)
    bar_before, lid_before = _blink_change(replace(found, rims=None), mesh, edge)
    assert lid > 40 and lid_before > 40       # the lid closes either way
    assert bar_before > 40                    # the bar used to bend
    assert bar <= 8                           # now it stays (within a few grey levels)


@needs_shared_data
def test_glasses_are_found_on_the_shared_portraits_that_wear_them():
    found = set()
    for path in sorted((SHARED_DATA / "portraits").glob("*.*")):
        pixels = load_image(path).pixels
        if find_rims(pixels, find_face(pixels)[0]) is not None:
            found.add(path.stem)
    assert found == WITH_GLASSES


def _bar_lift(framing, mesh: np.ndarray, edge: np.ndarray) -> float:
    """Median upward shift (working pixels) that speech's highest brow raise gives the
    middle half of a rim's lower ``edge``: how far up the frame fetches the photo there."""
    fit = fit_framed(framing, mesh)
    renderer = Renderer(framing, fit)
    raised, pose = fit.source_expression.astype(np.float32), np.zeros(6, np.float32)
    raised[fit.channels.index("brow_raise")] += BROW_MAX
    backward, _ = renderer.frame_map(renderer.posed_mesh(raised, pose, 0.0), pose)
    x0, y0 = (np.array(backward.box[:2]) + renderer.origin).round().astype(int)
    middle = np.round(edge[len(edge) // 4: 3 * len(edge) // 4]).astype(int)
    fetched = backward.xy[middle[:, 1] - y0, middle[:, 0] - x0, 1] + renderer.origin[1]
    return float(np.median(fetched - middle[:, 1]))


def test_raised_brows_bend_a_glasses_frame_far_less(hopper):
    """Brows rise with speech; behind glasses they rise less, so the frame barely bends."""
    pixels, mesh = hopper
    found = plan_framing(pixels, mesh, "crop", 512, matte=False)
    bent = _bar_lift(replace(found, rims=None), mesh, found.rims[0])
    held = _bar_lift(found, mesh, found.rims[0])
    assert bent > 3 and held < 0.5 * bent


def test_skin_pulled_from_behind_a_rim_continues_the_skin_below_it():
    """What a closing lid pulls down from behind a glasses bar is the photo's own skin from
    below the bar, mirrored upwards: its texture, not one flat colour per column (which showed
    as smooth pink bands under Hopper's frame in every blink), with lens glints toned down."""
    from talkinghead.render.rims import RIM_SKIN, RIM_SKIN_ROWS, Rim

    rng = np.random.default_rng(0)
    window = rng.integers(120, 200, (60, 80, 1)).repeat(3, axis=2).astype(np.uint8)  # pores
    window[:20] = 20                                 # the bar, its lower edge at y = 20
    window[33, 30:50] = 255                          # a glint on the lens
    xs = np.arange(5, 75, dtype=float)
    rim = Rim.under(window, np.stack([xs, np.full(70, 20.0)], 1),
                    np.stack([xs, np.full(70, 50.0)], 1), iod=100.0)
    step = (RIM_SKIN[1] - RIM_SKIN[0]) * 30 / (RIM_SKIN_ROWS - 1)
    points = np.stack([xs[5:-5], np.full(60, 15.0)], 1)
    top = window[int(20 + RIM_SKIN[0] * 30):, 10:70][:2, :, 0].astype(float).mean(axis=0)
    first = rim.skin(points, np.zeros(60))[:, 0]
    assert first.std() > 10 and np.corrcoef(first, top)[0, 1] > 0.9
    for rows, mirrored in ((3, 3), (2 * (RIM_SKIN_ROWS - 1) - 3, 3), (RIM_SKIN_ROWS + 1, RIM_SKIN_ROWS - 3)):
        assert np.allclose(rim.skin(points, np.full(60, rows * step)),
                           rim.skin(points, np.full(60, mirrored * step)), atol=0.5)
    assert rim.skin_rows.max() < 230
