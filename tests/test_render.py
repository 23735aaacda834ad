"""Renderer: exact where nothing moves, the right way where it does, still background."""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from talkinghead.face import regions as R
from talkinghead.face.crop import plan_framing
from talkinghead.face.landmarks import find_face
from talkinghead.face.model import fit_framed
from talkinghead.media import load_image
from talkinghead.render.mouth import between_curves, polygon_mask
from talkinghead.render.prefetch import Prefetch
from talkinghead.render.renderer import Renderer
from talkinghead.render.warp import STILL_PX, Picture, WarpField, delaunay, warp_into


def _renderer(portrait_path, mode: str, size: int | None = None, matte: bool = True) -> Renderer:
    pixels = load_image(portrait_path).pixels
    mesh, _ = find_face(pixels)
    framing = plan_framing(pixels, mesh, mode, size, matte=matte)
    fit = fit_framed(framing, mesh)
    return Renderer(framing, fit)


@pytest.fixture(scope="module")
def crop(portrait_path) -> Renderer:
    return _renderer(portrait_path, "crop", 256)


@pytest.fixture(scope="module")
def full(portrait_path) -> Renderer:
    return _renderer(portrait_path, "full")


def _pose(pitch: float = 0.0, yaw: float = 0.0, roll: float = 0.0, x: float = 0.0) -> np.ndarray:
    return np.array([np.radians(pitch), np.radians(yaw), np.radians(roll), x, 0, 0], np.float32)


def _neutral(r: Renderer) -> np.ndarray:
    return r.fit.source_expression.astype(np.float32)


def test_zero_motion_reproduces_the_picture_exactly(crop):
    frame = crop.render(_neutral(crop), _pose(), 0.0)
    assert frame.dtype == np.uint8 and np.array_equal(frame, crop.framing.image)


def test_same_coefficients_give_identical_frames(crop):
    e = _neutral(crop)
    e[crop.fit.channels.index("jaw_open")] = 0.6
    a, b = crop.render(e, _pose(5, 12, 3), 0.3), crop.render(e, _pose(5, 12, 3), 0.3)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("yaw", [-20.0, 20.0])
def test_yaw_moves_the_nose_pixels_the_way_the_mesh_turns(crop, yaw):
    e = _neutral(crop)
    expected = crop.posed_mesh(e, _pose(yaw=yaw), 0)[R.NOSE_TIP, 0] - crop.fit.mesh[R.NOSE_TIP, 0]
    assert abs(expected) > 2
    frame = crop.render(e, _pose(yaw=yaw), 0.0)
    x, y = np.round(crop.fit.mesh[R.NOSE_TIP, :2]).astype(int)
    half, reach = int(crop.fit.iod * 0.3), int(abs(expected) * 2) + 4
    grey = [cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in (crop.framing.image, frame)]
    patch = grey[0][y - half:y + half, x - half:x + half]
    strip = grey[1][y - half:y + half, x - half - reach:x + half + reach]
    found = int(np.argmax(cv2.matchTemplate(strip, patch, cv2.TM_CCOEFF_NORMED)[0])) - reach
    assert np.sign(found) == np.sign(expected) and abs(found - expected) < 0.35 * abs(expected)


def test_background_far_from_the_person_stays_put(full):
    crop = full
    assert crop.framing.matte is not None
    pose = _pose(5, 15, 3, 0.05)
    frame = crop.render(_neutral(crop), pose, 0.0)
    x0, y0, x1, y1 = crop.framing.roi
    reach = np.abs(crop.posed_mesh(_neutral(crop), pose, 0.0) - crop.fit.mesh)[:, :2].max()
    k = int(reach + 0.6 * crop.fit.iod) * 2 + 1  # head motion plus the soft matte edge
    person = (crop.framing.matte > 0.05).astype(np.uint8)
    far = cv2.dilate(person, np.ones((k, k), np.uint8)) == 0
    assert far.mean() > 0.05, far.mean()  # the window shows background beside the head
    window, source = frame[y0:y1, x0:x1], crop.framing.image[y0:y1, x0:x1]
    assert np.array_equal(window[far], source[far])
    assert not np.array_equal(window, source)


def test_full_mode_equals_the_photo_outside_the_animated_window(full, portrait_path):
    photo = load_image(portrait_path).pixels
    h, w = full.framing.image.shape[:2]
    assert (w, h) == (photo.shape[1] // 2 * 2, photo.shape[0] // 2 * 2)  # the photo's resolution
    e = _neutral(full)
    e[full.fit.channels.index("jaw_open")] = 0.7
    frame = full.render(e, _pose(8, -20, 4), 1.0)
    x0, y0, x1, y1 = full.framing.roi
    outside = np.ones((h, w), bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(frame[outside], photo[:h, :w][outside])
    assert not np.array_equal(frame[y0:y1, x0:x1], photo[y0:y1, x0:x1])


def test_an_open_jaw_paints_a_mouth_interior_darker_than_the_lips(crop):
    e = _neutral(crop)
    e[crop.fit.channels.index("jaw_open")] = 0.8
    mesh = crop.posed_mesh(e, _pose(), 0.0)
    frame = crop.render(e, _pose(), 0.0)
    inner = mesh[R.inner_mouth_polygon(), :2]
    mask = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(inner).astype(np.int32)], 1)
    mask = cv2.erode(mask, np.ones((3, 3), np.uint8)).astype(bool)
    assert mask.sum() > 20
    lips = crop.look.lip.mean()
    assert frame[mask].mean() < lips + 40  # cavity and teeth, not stretched lip skin only
    assert frame[mask].std() > 10          # shaded, not a flat hole


def test_a_wide_open_mouth_tapers_into_its_corners(crop):
    """The inner lips meet at the corners like a lens (as in the real clips), not along the
    straight sides of a box: beside each corner the opening is under 0.55 of the middle's
    (a box's sides made it 0.62-0.66), and the upper lip there follows the jaw down."""
    closed = crop.posed_mesh(_neutral(crop), _pose(), 0.0)
    e = _neutral(crop)
    e[crop.fit.channels.index("jaw_open")] = 1.0
    mesh = crop.posed_mesh(e, _pose(), 0.0)
    gap = mesh[R.LOWER_INNER, 1] - mesh[R.UPPER_INNER, 1]
    assert gap[5] > 0.3 * crop.fit.iod
    assert gap[1] < 0.55 * gap[5] and gap[-2] < 0.55 * gap[5]
    assert gap[1] > 0.3 * gap[5] and gap[-2] > 0.3 * gap[5]  # still open there
    upper = mesh[R.UPPER_INNER, 1] - closed[R.UPPER_INNER, 1]
    assert upper[1] > 0 and upper[-2] > 0 and upper[5] <= 0


def test_warp_field_without_displacement_is_empty_and_copies():
    angles = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    ring = np.column_stack([30 + 8 * np.cos(angles), 20 + 8 * np.sin(angles)])
    pts = np.concatenate([[[0, 0], [63, 0], [63, 47], [0, 47]], ring, [[30, 20]]]).astype(np.float32)
    field = WarpField(pts, 64, 48, 4)
    m = field.backward_map(np.zeros((len(pts), 2), np.float32))
    assert m.empty
    src = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    out = src.copy()
    warp_into(out, Picture.of(src), m)
    assert np.array_equal(out, src)
    moved = field.backward_map(np.array([[0, 0]] * 12 + [[3, 0]], np.float32))
    x0, y0, x1, y1 = moved.box
    assert 0 < x1 - x0 < 64 and moved.xy.shape == (y1 - y0, x1 - x0, 2)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_triangulation_is_scipys_delaunay(seed):
    """OpenCV's incremental triangulation (no SciPy import at run time) gives SciPy's (Qhull's)
    triangles, hull included, for scattered points with collinear ones along a border."""
    from scipy.spatial import Delaunay

    rng = np.random.default_rng(seed)
    border = np.column_stack([np.linspace(0, 499, 12), np.zeros(12)])
    points = np.concatenate([rng.uniform(0, 500, (300, 2)), border, [[499, 499], [0, 499]]])
    ours = {tuple(sorted(t)) for t in delaunay(points).tolist()}
    assert ours == {tuple(sorted(t)) for t in Delaunay(points).simplices.tolist()}


def _random_field(width: int = 96, height: int = 72, step: int = 4) -> tuple[WarpField, np.ndarray]:
    """A field over a ring of points and the window border, and a smooth random displacement."""
    rng = np.random.default_rng(1)
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    ring = np.column_stack([48 + 20 * np.cos(angles), 36 + 16 * np.sin(angles)])
    border = [[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]]
    pts = np.concatenate([border, ring, [[48, 36]]]).astype(np.float32)
    disp = np.concatenate([np.zeros((4, 2)), rng.normal(0, 2.5, (17, 2))]).astype(np.float32)
    return WarpField(pts, width, height, step), disp


def test_pixel_map_is_the_bilinear_interpolation_of_the_grid():
    field, disp = _random_field()
    back, s = field.grid_backward(disp), field.step
    m = field.maps_within(disp, [(0, 0, field.width, field.height)])[0]
    # node (i, j) sits at pixel (j·s + (s-1)/2, i·s + (s-1)/2); beyond the last node, clamp
    u = np.clip((np.arange(field.width) - (s - 1) / 2) / s, 0, back.shape[1] - 1)
    v = np.clip((np.arange(field.height) - (s - 1) / 2) / s, 0, back.shape[0] - 1)
    j, i = np.minimum(u.astype(int), back.shape[1] - 2), np.minimum(v.astype(int), back.shape[0] - 2)
    fu, fv = (u - j)[None, :, None], (v - i)[:, None, None]
    top = back[i][:, j] * (1 - fu) + back[i][:, j + 1] * fu
    bottom = back[i + 1][:, j] * (1 - fu) + back[i + 1][:, j + 1] * fu
    pix = np.stack(np.meshgrid(np.arange(field.width), np.arange(field.height)), axis=-1)
    expected = top * (1 - fv) + bottom * fv + pix
    assert m.xy.shape == expected.shape and np.abs(m.xy - expected).max() < 1e-3


def test_only_the_spans_move_and_every_moving_pixel_is_in_one(crop):
    e = _neutral(crop)
    e[crop.fit.channels.index("jaw_open")] = 0.5
    pose = _pose(3, 8, 2)
    mesh = crop.posed_mesh(e, pose, 0.0)
    local, rigid = crop._displacement(mesh, pose)
    m = crop.field.backward_map(local, smooth=rigid)
    h, w = crop.window.shape[:2]
    in_span = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in m.spans:
        assert not in_span[y0:y1, x0:x1].any()  # spans do not overlap
        in_span[y0:y1, x0:x1] = True
    dense = crop.field.maps_within(local, [(0, 0, w, h)], smooth=rigid)[0].xy
    pix = np.stack(np.meshgrid(np.arange(w), np.arange(h)), axis=-1)
    assert np.abs(dense - pix)[~in_span].max() <= STILL_PX
    out = crop.window.copy()
    warp_into(out, crop.source, m)
    assert np.array_equal(out[~in_span], crop.window[~in_span])
    assert not np.array_equal(out[in_span], crop.window[in_span])


def test_spans_resample_like_a_dense_remap(crop):
    """Band by band, exactly as one resampling of the whole window would."""
    pose = _pose(4, -10, 2)
    mesh = crop.posed_mesh(_neutral(crop), pose, 0.0)
    local, rigid = crop._displacement(mesh, pose)
    m = crop.field.backward_map(local, smooth=rigid)
    out = crop.window.copy()
    warp_into(out, crop.source, m)
    x0, y0, x1, y1 = m.box
    dense = _dense(crop.window, m.xy)
    assert len(m.spans) > 1
    for sx0, sy0, sx1, sy1 in m.spans:
        assert np.array_equal(out[sy0:sy1, sx0:sx1], dense[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0])


def _dense(picture: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """One resampling of the whole (h, w, 2) map, as the spans are (``Picture.sample``)."""
    out = np.empty((*xy.shape[:2], 3), np.uint8)
    Picture.of(picture).sample(xy, out)
    return out


def test_sharp_resampling_is_as_sharp_as_bicubic():
    """Bilinear sampling of the doubled, slightly sharpened picture (``Picture.sample``) keeps
    texture as bicubic sampling does, at full and half scale, where bilinear sampling of the
    picture itself loses a third of its Laplacian variance; pixel by pixel it stays close to
    bicubic."""
    rng = np.random.default_rng(5)
    height, width = 48, 64
    grey = cv2.GaussianBlur(rng.integers(0, 255, (height, width)).astype(np.float32), (0, 0), 1.0)
    grey = (grey - grey.mean()) / grey.std() * 40 + 128
    hue = np.linspace(0, 1, width, dtype=np.float32)[None, :, None] * np.array([60, -30, -50], np.float32)
    picture = np.clip(grey[..., None] * 0.6 + 50 + hue, 0, 255).astype(np.uint8)
    gx, gy = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    xy = np.dstack([gx + 0.37 + 0.8 * np.sin(gy / 7), gy - 0.61]).astype(np.float32)
    got = _dense(picture, xy)
    cubic = cv2.remap(picture, xy, None, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    linear = cv2.remap(picture, xy, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inner = (slice(3, -3), slice(3, -3))

    def texture(image: np.ndarray, scale: float) -> float:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)[inner]
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        return float(cv2.Laplacian(grey, cv2.CV_64F).var())

    for scale in (1.0, 0.5):
        assert 0.95 < texture(got, scale) / texture(cubic, scale) < 1.12
    assert texture(linear, 1.0) / texture(cubic, 1.0) < 0.75
    error = np.abs(got.astype(int) - cubic)[inner]
    assert error.mean() < 0.5 * np.abs(linear.astype(int) - cubic)[inner].mean() and error.max() <= 6


def test_prefetch_keeps_order_and_passes_errors_on():
    with Prefetch(iter(range(50)), depth=2) as items:
        assert list(items) == list(range(50))

    def broken():
        yield 1
        raise RuntimeError("boom")

    with Prefetch(broken()) as items, pytest.raises(RuntimeError, match="boom"):
        list(items)


def test_lid_skin_replaces_only_positions_inside_the_eye_opening():
    from talkinghead.render.renderer import LID_SKIN_BAND, _lid_skin

    xs = np.linspace(0, 40, 9)
    upper = np.stack([xs, 20 - 6 * np.sin(np.pi * xs / 40)], 1)     # opening 12 px mid-eye
    lower = np.stack([xs, 20 + 6 * np.sin(np.pi * xs / 40)], 1)
    xy = np.array([[[20, 15.5], [20, 24.5], [20, 8.0], [20, 30.0], [-3, 20]]], np.float32)
    depth, skin = _lid_skin(xy, upper, lower)
    assert depth[0, 0] == depth[0, 1] == 1 and depth[0, 2] == depth[0, 3] == depth[0, 4] == 0
    near, far = LID_SKIN_BAND
    assert 14 - far * 12 <= skin[0, 0, 1] < skin[0, 1, 1] <= 14 - near * 12   # above the lid
    assert np.all(skin[0, :, 0] == xy[0, :, 0])


def test_a_blink_brings_the_lash_band_down_with_the_lid_and_leaves_the_brows(portrait_path):
    """At full closure the mesh vertices just above the upper lid (its lashes) drop as far as
    the lid does, so the lashes end at the closed lid's margin instead of being smeared over
    it (with a falloff from the lid itself they dropped ~70 %); the brows barely move. (As on
    a face without glasses: the demo portrait's are ignored here.)"""
    from talkinghead.face.model import LID_SKIN_HOLD

    pixels = load_image(portrait_path).pixels
    mesh, _ = find_face(pixels)
    framing = replace(plan_framing(pixels, mesh, "crop", 256), rims=None)
    crop = Renderer(framing, fit_framed(framing, mesh))
    e, pose = _neutral(crop), _pose()
    drop = crop.posed_mesh(e, pose, 1.0)[:, 1] - crop.posed_mesh(e, pose, 0.0)[:, 1]
    iod, mesh = crop.fit.iod, crop.fit.mesh
    brows = np.concatenate([R.RIGHT_BROW, R.LEFT_BROW])
    for upper in (R.RIGHT_UPPER_LID, R.LEFT_UPPER_LID):
        lid = mesh[upper, :2]
        gap = np.linalg.norm(mesh[:468, None, :2] - lid[None], axis=-1)
        nearest = gap.argmin(axis=1)
        band = [j for j in range(468) if j not in brows and j not in upper
                and gap[j, nearest[j]] < LID_SKIN_HOLD * iod and mesh[j, 1] < lid[nearest[j], 1]
                and drop[upper[nearest[j]]] > 0.05 * iod]
        assert len(band) >= 2
        assert np.all(drop[band] > 0.9 * drop[upper[nearest[band]]])
    assert np.abs(drop[brows]).max() < 0.04 * iod


def test_behind_glasses_a_blink_stretches_the_skin_between_rim_and_lid(crop):
    """Under a glasses frame's bar the skin does not follow the closing lid past the bar's
    lower edge: nothing above it moves, and below it the skin drops in proportion to its
    height between the edge and the lid (a stretch, not skin pulled out from behind the bar)."""
    e, pose = _neutral(crop), _pose()
    drop = crop.posed_mesh(e, pose, 1.0)[:, 1] - crop.posed_mesh(e, pose, 0.0)[:, 1]
    mesh = crop.fit.mesh
    for rim, upper in zip(crop.framing.rims, (R.LEFT_UPPER_LID, R.RIGHT_UPPER_LID)):
        inside = (mesh[:468, 0] > rim[0, 0]) & (mesh[:468, 0] < rim[-1, 0])
        top = np.interp(mesh[:468, 0], rim[:, 0], rim[:, 1])
        lid_y = np.interp(mesh[:468, 0], *mesh[upper][np.argsort(mesh[upper, 0]), :2].T)
        above = inside & (mesh[:468, 1] <= top)
        between = inside & (mesh[:468, 1] > top + 1) & (mesh[:468, 1] < lid_y - 1)
        assert above.sum() > 5 and between.sum() >= 2
        assert np.abs(drop[:468][above]).max() < 1e-3
        share = (mesh[:468, 1] - top) / (lid_y - top)            # 0 at the rim, 1 at the lid
        high = between & (share < 0.5)
        assert high.sum() >= 2 and drop[:468][high].max() < 0.6 * drop[upper].max()
        assert drop[:468][between].max() > 0


def test_a_closing_lid_carries_its_strip_down_and_hangs_its_lashes_below():
    from talkinghead.render.renderer import LASH_HANG, _lid_layers

    xs = np.linspace(10, 50, 9)
    opened = np.column_stack([xs, 20 - 6 * np.sin(np.pi * (xs - 10) / 40)])
    closing = opened + [0, 5] * np.sin(np.pi * (xs - 10) / 40)[:, None]   # drops 5 px mid-eye
    h, w = 40, 60
    grid = np.stack(np.meshgrid(np.arange(w), np.arange(h)), axis=-1).astype(np.float32)
    layers = _lid_layers(closing, opened, grid, 6.0, 3.0, 1.0)
    lid = 19  # the closing lid at x = 30 (20 - 6 + 5)
    assert np.all(layers.strip[lid - 6:lid, 30] == 1)
    assert layers.strip[lid + 1:, 30].max() == 0 and layers.strip[:lid - 9, 30].max() == 0
    np.testing.assert_allclose(layers.strip_xy[10:19, 30, 1], np.arange(10, 19) - 5, atol=1e-4)
    np.testing.assert_allclose(layers.strip_xy[..., 0], grid[..., 0], atol=1e-4)
    hang = int(LASH_HANG * 6)
    assert np.all(np.diff(layers.lashes[lid + 1:lid + hang + 1, 30]) < 0)  # fading downwards
    assert layers.lashes[:lid + 1, 30].max() == 0 and layers.lashes[lid + hang:, 30].max() == 0
    # a row k below the lid shows the open lid k rows above its margin: mirrored
    np.testing.assert_allclose(layers.lashes_xy[lid + 1:lid + 4, 30, 1], 14 - np.arange(1, 4), atol=1e-4)
    for cover in (layers.strip, layers.lashes):
        assert cover[:, :10].max() == 0 and cover[:, 51:].max() == 0   # beyond the corners
    assert _lid_layers(closing, opened, grid, 6.0, 3.0, 0.0).lashes.max() == 0


def test_a_closed_lid_shows_the_open_lids_lashes_just_above_it(crop):
    """At full closure the few pixels above the closed upper lid are those above the open lid
    (its lashes), not the eye opening squeezed under them: the coarse warp alone left the lash
    line short of the closed lid, 17-40 grey levels off there."""
    e, pose = _neutral(crop), _pose()
    grey = [cv2.cvtColor(crop.render(e, pose, b), cv2.COLOR_RGB2GRAY).astype(np.float32) for b in (1.0, 0.0)]
    meshes = [crop.posed_mesh(e, pose, b) for b in (1.0, 0.0)]
    rows = np.arange(1, int(0.06 * crop.fit.iod) + 1, dtype=np.float32)
    for upper in (R.RIGHT_UPPER_LID, R.LEFT_UPPER_LID):
        lids = [m[upper, :2][np.argsort(m[upper, 0])] for m in meshes]
        x0, x1 = lids[0][0, 0], lids[0][-1, 0]
        off = []
        for x in np.arange(np.ceil(x0 + 0.3 * (x1 - x0)), x1 - 0.3 * (x1 - x0)):
            above = [cv2.remap(g, np.full((len(rows), 1), x, np.float32),
                               (np.interp(x, *lid.T) - rows)[:, None].astype(np.float32),
                               cv2.INTER_LINEAR)[:, 0] for g, lid in zip(grey, lids)]
            off.append(np.abs(above[0] - above[1]).mean())
        assert np.mean(off) < 8


def test_folds_are_relaxed_except_where_eyes_and_lips_must_close():
    from talkinghead.render.warp import UNFOLD_MIN_AREA, fold_measure, unfolded

    rows, cols = 20, 20
    smooth = np.zeros((rows, cols, 2), np.float32)
    smooth[..., 0] = 0.3 * np.sin(np.arange(cols) / 5.0)[None, :]
    np.testing.assert_array_equal(unfolded(smooth), smooth)      # no fold: untouched
    folding = np.zeros((rows, cols, 2), np.float32)
    folding[:, 10:, 0] = -3.0                                    # the right half slides over the left
    assert fold_measure(folding).min() < 0
    relaxed = unfolded(folding)
    assert fold_measure(relaxed).min() > fold_measure(folding).min()
    assert fold_measure(relaxed)[:, 3:17].min() >= UNFOLD_MIN_AREA - 0.05
    keep = np.zeros((rows, cols), bool)
    keep[:, 8:12] = True
    np.testing.assert_array_equal(unfolded(folding, keep)[:, 8:12], folding[:, 8:12])


@pytest.mark.parametrize("yaw", [20, -20])
def test_a_large_head_turn_stretches_the_face_without_a_saw_tooth(crop, yaw):
    """At ±20° yaw the head's rigid field is smooth across the mesh's triangles (away from the
    eyes and lips, which the mesh poses exactly): the source column each output pixel fetches
    bends gently from row to row. Interpolated linearly per triangle, it bent at every
    triangle edge, a saw-tooth along the stretched cheek: the 99.9th percentile was 1.0–1.8 %
    of the inter-ocular distance there, 0.4 % now."""
    pose = _pose(yaw=yaw)
    mesh = crop.posed_mesh(_neutral(crop), pose, 0.0)
    local, rigid = crop._displacement(mesh, pose)
    folds = crop._folding_cells(mesh)
    h, w = crop.window.shape[:2]
    x = crop.field.maps_within(local, [(0, 0, w, h)], folds=folds, smooth=rigid)[0].xy[..., 0]
    bend = np.abs(x[2:] - 2 * x[1:-1] + x[:-2])
    near = cv2.dilate(folds.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    rows, cols = np.mgrid[1:h - 1, 0:w] // crop.field.step
    assert np.percentile(bend[~near[rows, cols]], 99.9) < 0.006 * crop.fit.iod


@pytest.mark.parametrize("blink", [0.4, 0.6])
def test_both_eyeballs_keep_their_shape_under_a_closing_lid(crop, blink):
    """Inside each eye's half-closed opening the frame shows the eye as it is open: the lid
    slides over the eyeball (the left eye was once squashed, 13–17 grey levels off)."""
    e, pose = _neutral(crop), _pose()
    shut, opened = crop.render(e, pose, blink), crop.render(e, pose, 0.0)
    mesh = crop.posed_mesh(e, pose, blink)
    for upper, lower in ((R.RIGHT_UPPER_LID, R.RIGHT_LOWER_LID), (R.LEFT_UPPER_LID, R.LEFT_LOWER_LID)):
        opening = np.concatenate([mesh[upper, :2], mesh[lower[-2:0:-1], :2]])
        inside = polygon_mask(opening, shut.shape[:2], 1.0) > 0.99
        assert inside.sum() > 20
        assert np.abs(shut.astype(float) - opened.astype(float))[inside].mean() < 1.0


def test_a_closed_eye_opening_covers_no_pixel():
    """Lids that meet leave no opening, so no line of eyeball shows along a closed eye (an
    anti-aliased polygon of no area still covered its outline, up to 1 per pixel); an open
    one is covered as its polygon is."""
    xs = np.linspace(10, 50, 9)
    upper = np.column_stack([xs, 20 - 6 * np.sin(np.pi * (xs - 10) / 40)])
    shut = upper.copy()
    opened = np.column_stack([xs, 20 + 6 * np.sin(np.pi * (xs - 10) / 40)])
    outline = polygon_mask(np.concatenate([upper, shut[-2:0:-1]]), (40, 60))
    assert outline.max() > 0.5
    assert between_curves(upper, shut, (40, 60)).max() == 0.0
    mask = between_curves(upper, opened, (40, 60))
    polygon = polygon_mask(np.concatenate([upper, opened[-2:0:-1]]), (40, 60))
    assert np.abs(mask - polygon)[:, 15:46].max() < 1e-6


def test_the_eyelid_layers_fade_in_without_a_pop(crop):
    """As a blink (or a lid following the eyes down) begins, the eyeball and lid layers take
    over from the plain warp: a closure just past EYEBALL_MIN_CLOSURE looks like one just
    before it (before they faded in, some 60 pixels of the lash line jumped by up to 75 grey
    levels), and so does a step across EYEBALL_FULL_CLOSURE."""
    from talkinghead.render.renderer import EYEBALL_FULL_CLOSURE, EYEBALL_MIN_CLOSURE

    e, pose = _neutral(crop), _pose()
    for edge in (EYEBALL_MIN_CLOSURE, EYEBALL_FULL_CLOSURE):
        before, after = (crop.render(e, pose, edge + d).astype(int) for d in (-0.001, 0.001))
        assert np.sum(np.abs(before - after).max(axis=-1) > 8) <= 3   # a pixel of the rim's hold
