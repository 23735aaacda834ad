"""Mouth interior: the photo's own teeth and cavity colours, painted wherever the opening
grows past what the photo's parted lips can show (its thin interior is never stretched)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from talkinghead import Config, FaceConfig, Pipeline
from talkinghead.face import regions as R
from talkinghead.face.model import CHANNELS
from talkinghead.media import load_image
from talkinghead.render.mouth import (CAVITY_SATURATION, LUMA, MouthLook, added_blur, paint_mouth,
                                     photo_grain, seen_interior)
from talkinghead.render.renderer import Renderer
from talkinghead.types import MotionTrack, Portrait

from conftest import SHARED_DATA, needs_shared_data

IOD = 100.0
XS = np.linspace(20, 100, 9)


def _lips(gap: float) -> tuple[np.ndarray, np.ndarray]:
    """(9, 2) upper and lower inner-lip contours, corner to corner, ``gap`` px apart mid-mouth."""
    bulge = 1 - ((XS - 60) / 40) ** 2
    return np.stack([XS, 50 - 0.1 * gap * bulge], 1), np.stack([XS, 50 + 0.9 * gap * bulge], 1)


def _mouth_picture(upper: np.ndarray, lower: np.ndarray, teeth=(235, 230, 215),
                   cavity=(40, 15, 20)) -> np.ndarray:
    """A red face with, between the lips, pale teeth on top and a dark cavity below."""
    image = np.zeros((100, 120, 3), np.uint8)
    image[:] = (200, 90, 90)
    for x in range(120):
        top = np.interp(x, XS, upper[:, 1])
        bottom = np.interp(x, XS, lower[:, 1])
        mid = int(round((top + bottom) / 2))
        image[int(np.floor(top)):mid, x] = teeth
        image[mid:int(np.ceil(bottom)) + 1, x] = cavity
    return image


def test_teeth_and_cavity_colours_come_from_a_photo_with_parted_lips():
    upper, lower = _lips(12)
    teeth, cavity = seen_interior(_mouth_picture(upper, lower), upper, lower, IOD)
    np.testing.assert_allclose(teeth, (235, 230, 215), atol=8)
    np.testing.assert_allclose(cavity, (40, 15, 20), atol=8)
    thin_upper, thin_lower = _lips(1.5)
    assert seen_interior(_mouth_picture(thin_upper, thin_lower), thin_upper, thin_lower,
                         IOD) == (None, None)
    # teeth in shadow: dim, but pale and far brighter than the cavity
    shaded, _ = seen_interior(_mouth_picture(upper, lower, (70, 66, 62), (6, 4, 5)), upper, lower, IOD)
    np.testing.assert_allclose(shaded, (70, 66, 62), atol=8)
    dim, _ = seen_interior(_mouth_picture(upper, lower, (70, 66, 62), (40, 30, 30)), upper, lower, IOD)
    assert dim is None


def test_a_red_shadow_between_the_lips_is_muted_into_a_cavity_colour():
    """The darkest pixels of a photo's opening can be its red lips' shadowed edges: the cavity
    keeps their brightness and hue but no more than CAVITY_SATURATION; a dull one is kept."""
    upper, lower = _lips(12)
    red = np.array([85, 16, 22], np.float32)
    _, cavity = seen_interior(_mouth_picture(upper, lower, cavity=tuple(red)), upper, lower, IOD)
    assert (cavity.max() - cavity.min()) / cavity.max() == pytest.approx(CAVITY_SATURATION, abs=1e-3)
    assert float(cavity @ LUMA) == pytest.approx(float(red @ LUMA), abs=0.5)
    assert cavity[0] > cavity[2] > cavity[1]
    _, dull = seen_interior(_mouth_picture(upper, lower, cavity=(30, 24, 24)), upper, lower, IOD)
    np.testing.assert_allclose(dull, (30, 24, 24), atol=0.5)


def test_the_painted_interior_is_as_soft_as_the_photo_around_it(portrait_path):
    """A soft photo gets a soft mouth interior, not crisp teeth pasted into it: the added blur
    is ~0 for a sharp photo and recovers a known extra blur; the painted teeth and cavity lose
    high frequencies accordingly."""
    gray = cv2.cvtColor(load_image(portrait_path).pixels, cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    box = (w // 4, h // 4, 3 * w // 4, 3 * h // 4)
    assert added_blur(gray, box) < 0.6
    assert 1.2 < added_blur(cv2.GaussianBlur(gray, (0, 0), 1.5), box) < 1.9
    upper, lower = _lips(20)
    frames = []
    for blur in (0.0, 1.5):
        frame = np.full((100, 120, 3), (200, 90, 90), np.uint8)
        look = MouthLook(lip=np.array([180.0, 70, 70]), skin=np.array([200.0, 150, 130]), iod=IOD,
                         blur=blur)
        paint_mouth(frame, upper, lower, look)
        frames.append(cv2.Laplacian(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())
    assert frames[1] < 0.5 * frames[0]


def _renderer(image: np.ndarray) -> tuple[Renderer, np.ndarray]:
    """Renderer of a photo at 256² and the (C,) expression that reproduces the photo."""
    empty = MotionTrack(25.0, (), np.zeros((1, 0), np.float32), np.zeros((1, 6), np.float32),
                        np.zeros(1, np.float32))
    prepared = Pipeline(Config(face=FaceConfig(size=256))).prepare(image, None, motion=empty)
    return Renderer(prepared.framing, prepared.fit), prepared.fit.source_expression


def _opacity(renderer: Renderer, expression: np.ndarray) -> float:
    return renderer._interior_opacity(renderer.posed_mesh(expression, np.zeros(6, np.float32), 0))


def test_a_closed_mouth_photo_gets_its_interior_painted_as_soon_as_the_lips_part(portrait_path):
    renderer, _ = _renderer(load_image(portrait_path))
    jaw = np.zeros(len(CHANNELS), np.float32)
    jaw[CHANNELS.index("jaw_open")] = 0.5
    assert _opacity(renderer, np.zeros(len(CHANNELS), np.float32)) == 0.0
    assert _opacity(renderer, jaw) == 1.0


def test_an_open_mouth_is_painted_out_towards_the_commissures(portrait_path):
    """The mesh's inner lip corners stop short of the photo's lip line; opening the jaw must
    not stretch what lies between into lip-coloured slivers beside the painted opening: a third
    of the way from each posed inner corner to its commissure, the frame shows the cavity."""
    renderer, _ = _renderer(load_image(portrait_path))
    jaw = np.zeros(len(CHANNELS), np.float32)
    jaw[CHANNELS.index("jaw_open")] = 0.6
    mesh = renderer.posed_mesh(jaw, np.zeros(6, np.float32), 0.0)
    frame = renderer.render(jaw, np.zeros(6, np.float32), 0.0).astype(np.float32)
    for inner, commissure in ((78, 61), (308, 291)):
        x, y = mesh[inner, :2] + (mesh[commissure, :2] - mesh[inner, :2]) / 3
        assert abs(frame[round(y), round(x)].mean() - renderer.look.cavity.mean()) < 15


@needs_shared_data
def test_parted_lips_show_their_own_interior_until_it_would_stretch():
    renderer, source = _renderer(load_image(SHARED_DATA / "portraits" / "art_16.png"))
    assert renderer.source_gap > 0.03 * renderer.fit.iod
    assert renderer.look.seen_cavity is not None and renderer.look.seen_cavity.mean() < 60
    assert _opacity(renderer, source) == 0.0            # the photo as it is: its own teeth
    wide = source.copy()
    wide[CHANNELS.index("jaw_open")] += 0.6
    assert _opacity(renderer, wide) == 1.0              # far wider: painted, not stretched


def test_a_photo_with_visible_teeth_shows_them_unstretched_at_a_wider_opening(portrait_path):
    """A photo whose parted lips show teeth (here: a rendered open mouth whose teeth are given
    stripes) keeps showing those teeth when the jaw opens further: the row just below the upper
    lip repeats the photo's stripes, instead of painted teeth of their mean colour."""
    first, _ = _renderer(load_image(portrait_path))
    jaw = np.zeros(len(CHANNELS), np.float32)
    jaw[CHANNELS.index("jaw_open")] = 0.5
    photo = first.render(jaw, np.zeros(6, np.float32), 0.0)
    mesh = first.posed_mesh(jaw, np.zeros(6, np.float32), 0.0)
    upper, lower = mesh[R.UPPER_INNER, :2], mesh[R.LOWER_INNER, :2]
    for x in range(int(upper[0, 0]) + 2, int(upper[-1, 0]) - 1):
        top, bottom = np.interp(x, upper[:, 0], upper[:, 1]), np.interp(x, lower[:, 0], lower[:, 1])
        photo[int(np.ceil(top)):int(top + 0.4 * (bottom - top)), x] = 250 if x // 3 % 2 else 170
    renderer, source = _renderer(Portrait(photo))
    assert renderer.look.own_teeth is not None
    wider = source.copy()
    wider[CHANNELS.index("jaw_open")] += 0.5
    frame = renderer.render(wider, np.zeros(6, np.float32), 0.0).astype(np.float32)
    posed = renderer.posed_mesh(wider, np.zeros(6, np.float32), 0.0)
    stripes = []
    for picture, contour in ((photo.astype(np.float32), renderer.fit.mesh), (frame, posed)):
        lip = contour[R.UPPER_INNER, :2]
        xs = np.linspace(lip[0, 0], lip[-1, 0], 60)[15:45]   # the middle half, same share of the width
        ys = np.interp(xs, lip[:, 0], lip[:, 1]) + 3
        stripes.append(picture[np.round(ys).astype(int), np.round(xs).astype(int)].mean(axis=1))
    assert np.corrcoef(*stripes)[0, 1] > 0.7


def test_the_painted_interior_has_the_grain_of_a_grainy_photo():
    """Painted teeth and cavity in a grainy photo carry grain of about the same strength
    relative to their brightness as the photo's (not a smooth plastic patch); a clean photo
    gets none."""
    rng = np.random.default_rng(1)
    upper, lower = _lips(30)
    inside = cv2.erode((_mouth_picture(upper, lower)[..., 0] != 200).astype(np.uint8),
                       np.ones((5, 5), np.uint8)) > 0
    clean = np.full((100, 120), 150, np.uint8)
    grainy = np.clip(150 + rng.normal(0, 6, (100, 120)), 0, 255).astype(np.uint8)
    assert photo_grain(clean, (0, 0, 120, 100), 1.0) is None
    painted = []
    for grain in (None, photo_grain(grainy, (0, 0, 120, 100), 1.0)):
        frame = np.full((100, 120, 3), (200, 90, 90), np.uint8)
        paint_mouth(frame, upper, lower, MouthLook(lip=np.array([180.0, 70, 70]),
                                                   skin=np.array([200.0, 150, 130]), iod=IOD,
                                                   grain=grain))
        painted.append(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32))
    added = painted[1] - painted[0]
    relative = np.sqrt(np.mean(added[inside] ** 2) / np.mean(painted[0][inside] ** 2))
    assert 0.8 < relative / (grainy.std() / grainy.mean()) < 1.25


def _painted(gap: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A grey frame with a painted opening ``gap`` px wide mid-mouth; and the lip contours."""
    upper, lower = _lips(gap)
    frame = np.full((100, 120, 3), 128, np.uint8)
    paint_mouth(frame, upper, lower, MouthLook(lip=np.array([190.0, 110, 110]),
                                               skin=np.array([210.0, 170, 150]), iod=IOD))
    return frame.astype(np.float32), upper, lower


def test_a_wide_opening_shows_a_pink_tongue_on_the_lower_lip_and_a_thin_one_none():
    """Above the lower lip's middle lies the tongue, redder and brighter than the cavity
    above it; it rises with the opening, and a slit shows only teeth and shadow."""
    frame, upper, lower = _painted(30)
    top, bottom = upper[4, 1], lower[4, 1]
    tongue = frame[int(bottom) - 4, 58:63].mean(axis=0)
    cavity = frame[int(top + 0.45 * (bottom - top)), 58:63].mean(axis=0)
    assert tongue[0] > cavity[0] + 60 and tongue[0] > tongue[1] + 30  # red, not grey or white
    def tongue_rows(picture: np.ndarray, low: float) -> int:
        column = picture[:int(low), 60]
        return int(np.sum((column[:, 0] > 90) & (column[:, 0] > column[:, 1] + 25)))
    assert tongue_rows(frame, bottom) > tongue_rows(_painted(18)[0], _lips(18)[1][4, 1]) > 0
    slit, _, slit_lower = _painted(4)
    assert tongue_rows(slit, slit_lower[4, 1]) == 0
