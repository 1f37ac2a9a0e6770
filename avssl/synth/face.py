"""Faces: a person's facial parameters and an OpenCV renderer for talking face tracks.

A face is a set of continuous shape and colour parameters (face width and length, jaw, skin, hair
colour and style, eyes, brows, nose, mouth, lips, glasses, beard), drawn once per identity, so that
faces, like voices, form a population with near neighbours. The renderer draws the static parts once
per utterance, then per frame the eyes (with blinks) and the mouth, whose opening follows the voiced
energy of the utterance's own speech (:func:`mouth_openness`), and moves the head slightly. The
session's look (light, colour cast, background, clothing, framing, blur, noise) is applied last.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from avssl.synth.session import LookParams

_SHIFT = 4  # OpenCV drawing with 1/16-pixel precision: smooth shapes on small frames
_ONE = 1 << _SHIFT
_NOMINAL = 112  # blur and noise of a look are given for 112x112 frames
_SKIN_LIGHT = np.array([242, 208, 182])
_SKIN_DARK = np.array([92, 60, 44])
_HAIR = np.array([[25, 20, 18], [70, 45, 30], [120, 80, 45], [200, 165, 100], [150, 60, 30], [150, 150, 150]])
_IRIS = np.array([[70, 45, 25], [60, 110, 160], [70, 110, 70], [110, 115, 120]])


@dataclass(frozen=True)
class FaceParams:
    """What makes a face recognisable; drawn once per identity (see :func:`sample_face`)."""

    width: float  # half-width / half-height
    length: float  # half-height relative to the nominal face
    jaw: float  # 0 round .. 1 square
    chin: float  # narrowing of the lower face
    skin_r: int
    skin_g: int
    skin_b: int
    hair_r: int
    hair_g: int
    hair_b: int
    hair_style: int  # 0 short, 1 long, 2 shaved, 3 fringe, 4 side part, 5 curly
    hairline: float  # height of the hairline above the face centre, in half-heights
    eye_spacing: float  # eye centre distance from the midline, in half-widths
    eye_size: float  # eye half-width, in half-heights
    eye_y: float  # eye height (negative = above centre), in half-heights
    iris_r: int
    iris_g: int
    iris_b: int
    brow_thickness: float
    brow_raise: float
    brow_tilt: float
    nose_length: float
    nose_width: float
    mouth_width: float  # in half-widths
    mouth_y: float
    lip_r: int
    lip_g: int
    lip_b: int
    lip_thickness: float
    glasses: bool
    beard: bool


def sample_face(rng: np.random.Generator, sex: str) -> FaceParams:
    """Draw a face; sex shifts some distributions (beards, long hair, face width) but does not fix them."""
    male = sex == "m"
    skin = (_SKIN_LIGHT + (_SKIN_DARK - _SKIN_LIGHT) * rng.uniform(0, 1) + rng.normal(0, 8, 3)).clip(0, 255)
    grey = rng.random() < 0.1
    hair = _HAIR[5] if grey else _HAIR[rng.integers(5)]
    hair = (hair + rng.normal(0, 12, 3)).clip(0, 255)
    iris = (_IRIS[rng.integers(len(_IRIS))] + rng.normal(0, 10, 3)).clip(0, 255)
    lip = (skin * np.array([0.85, 0.55, 0.55]) + rng.normal(0, 10, 3) + np.array([25, 0, 0])).clip(0, 255)
    style_p = [0.4, 0.08, 0.15, 0.12, 0.15, 0.1] if male else [0.1, 0.45, 0.02, 0.18, 0.1, 0.15]
    return FaceParams(
        width=float(rng.uniform(0.72, 0.9) if male else rng.uniform(0.66, 0.84)),
        length=float(rng.uniform(0.9, 1.1)),
        jaw=float(rng.uniform(0.3, 1.0) if male else rng.uniform(0.0, 0.7)),
        chin=float(rng.uniform(0.05, 0.35)),
        skin_r=int(skin[0]),
        skin_g=int(skin[1]),
        skin_b=int(skin[2]),
        hair_r=int(hair[0]),
        hair_g=int(hair[1]),
        hair_b=int(hair[2]),
        hair_style=int(rng.choice(6, p=style_p)),
        hairline=float(rng.uniform(0.45, 0.7)),
        eye_spacing=float(rng.uniform(0.33, 0.46)),
        eye_size=float(rng.uniform(0.1, 0.16)),
        eye_y=float(rng.uniform(-0.25, -0.08)),
        iris_r=int(iris[0]),
        iris_g=int(iris[1]),
        iris_b=int(iris[2]),
        brow_thickness=float(rng.uniform(0.03, 0.08) if male else rng.uniform(0.02, 0.05)),
        brow_raise=float(rng.uniform(0.12, 0.22)),
        brow_tilt=float(rng.uniform(-0.06, 0.06)),
        nose_length=float(rng.uniform(0.2, 0.4)),
        nose_width=float(rng.uniform(0.08, 0.17)),
        mouth_width=float(rng.uniform(0.3, 0.52)),
        mouth_y=float(rng.uniform(0.42, 0.6)),
        lip_r=int(lip[0]),
        lip_g=int(lip[1]),
        lip_b=int(lip[2]),
        lip_thickness=float(rng.uniform(0.025, 0.06)),
        glasses=bool(rng.random() < 0.2),
        beard=bool(male and rng.random() < 0.35),
    )


def mouth_openness(speech: np.ndarray, n_frames: int, sr: int = 16000, fps: int = 25) -> np.ndarray:
    """Per video frame, how far the mouth is open (0..1): the voiced (< 1.2 kHz) energy of the 40 ms of
    speech around the frame's centre, on a 25 dB scale below the utterance's loud vowels.

    Driving the mouth from the audio itself is what makes audio and video of an utterance synchronous."""
    spec = np.fft.rfft(speech)
    spec[np.fft.rfftfreq(speech.size, 1.0 / sr) > 1200] = 0
    low = np.fft.irfft(spec, n=speech.size)
    energy = np.concatenate([[0.0], np.cumsum(low**2)])
    centres = ((np.arange(n_frames) + 0.5) * sr / fps).astype(int)
    half = int(0.02 * sr)
    lo = np.clip(centres - half, 0, speech.size)
    hi = np.clip(centres + half, 0, speech.size)
    rms = np.sqrt((energy[hi] - energy[lo]) / np.maximum(hi - lo, 1))
    db = 20 * np.log10(rms / (np.percentile(rms, 95) + 1e-12) + 1e-12)
    return np.clip((db + 25.0) / 25.0, 0.0, 1.0)


class _Canvas:
    """Anti-aliased drawing on an RGBA image with float coordinates (sub-pixel via OpenCV's shift)."""

    def __init__(self, image: np.ndarray) -> None:
        self.image = image

    @staticmethod
    def _pt(x: float, y: float) -> tuple[int, int]:
        return int(round(x * _ONE)), int(round(y * _ONE))

    def ellipse(
        self, cx: float, cy: float, ax: float, ay: float, colour, angle: float = 0.0, thickness: int = -1
    ) -> None:
        axes = (max(int(round(ax * _ONE)), 1), max(int(round(ay * _ONE)), 1))
        cv2.ellipse(self.image, self._pt(cx, cy), axes, angle, 0, 360, colour, thickness, cv2.LINE_AA, _SHIFT)

    def poly(self, points: np.ndarray, colour) -> None:
        cv2.fillPoly(self.image, [np.round(points * _ONE).astype(np.int32)], colour, cv2.LINE_AA, _SHIFT)

    def line(self, x0: float, y0: float, x1: float, y1: float, colour, thickness: float) -> None:
        cv2.line(
            self.image,
            self._pt(x0, y0),
            self._pt(x1, y1),
            colour,
            max(1, int(round(thickness))),
            cv2.LINE_AA,
            _SHIFT,
        )


def _rgba(rgb, factor: float = 1.0) -> tuple[int, int, int, int]:
    return (*(int(min(255.0, max(0.0, c * factor))) for c in rgb), 255)


def _arc(cx: float, cy: float, ax: float, ay: float, start: float, stop: float, n: int = 24) -> np.ndarray:
    t = np.linspace(start, stop, n)
    return np.stack([cx + ax * np.cos(t), cy + ay * np.sin(t)], axis=1)


@dataclass(frozen=True)
class _Geometry:
    """Pixel geometry of one face in one session's framing."""

    cx: float
    cy: float
    rx: float  # face half-width
    ry: float  # face half-height


def _geometry(face: FaceParams, look: LookParams, size: int) -> _Geometry:
    ry = 0.3 * size * look.face_scale * face.length
    return _Geometry(size * (0.5 + look.offset_x), size * (0.47 + look.offset_y), ry * face.width, ry)


def mouth_centre(face: FaceParams, look: LookParams, size: int) -> tuple[float, float]:
    """Pixel (x, y) where the mouth of ``face`` sits in a ``size`` frame of ``look``, before head motion
    (a few pixels): lets diagnostics and tests look at the mouth of a rendered or decoded video."""
    g = _geometry(face, look, size)
    return g.cx, g.cy + face.mouth_y * g.ry


def _outline(face: FaceParams, g: _Geometry, grow: float = 1.0) -> np.ndarray:
    """Face contour: an ellipse on top, a superellipse (square jaw) narrowing to the chin below."""
    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    n = np.where(s > 0, 2.0 + 2.5 * face.jaw, 2.0)
    x = np.sign(c) * np.abs(c) ** (2 / n)
    y = np.sign(s) * np.abs(s) ** (2 / n)
    x = x * (1 - face.chin * np.clip(y, 0, 1) ** 2)
    return np.stack([g.cx + grow * g.rx * x, g.cy + grow * g.ry * y], axis=1)


def _static_layer(face: FaceParams, look: LookParams, g: _Geometry, size: int) -> np.ndarray:
    """Everything that does not move relative to the head: body, hair, ears, face, brows, nose, beard."""
    layer = np.zeros((size, size, 4), np.uint8)
    cv = _Canvas(layer)
    skin = (face.skin_r, face.skin_g, face.skin_b)
    hair = (face.hair_r, face.hair_g, face.hair_b)
    cx, cy, rx, ry = g.cx, g.cy, g.rx, g.ry
    cv.ellipse(cx, cy + 2.0 * ry, 2.1 * rx, 0.9 * ry, _rgba((look.shirt_r, look.shirt_g, look.shirt_b)))
    cv.poly(
        np.array(
            [
                [cx - 0.45 * rx, cy + 0.5 * ry],
                [cx + 0.45 * rx, cy + 0.5 * ry],
                [cx + 0.5 * rx, cy + 1.3 * ry],
                [cx - 0.5 * rx, cy + 1.3 * ry],
            ]
        ),
        _rgba(skin, 0.8),
    )
    if face.hair_style == 1:  # long hair falls behind the face and onto the shoulders
        cv.ellipse(cx, cy - 0.05 * ry, 1.3 * rx, 1.15 * ry, _rgba(hair))
        cv.poly(
            np.array(
                [
                    [cx - 1.3 * rx, cy],
                    [cx + 1.3 * rx, cy],
                    [cx + 1.2 * rx, cy + 1.3 * ry],
                    [cx - 1.2 * rx, cy + 1.3 * ry],
                ]
            ),
            _rgba(hair),
        )
    if face.hair_style == 5:  # curly volume
        for a in np.linspace(np.pi * 1.05, np.pi * 1.95, 7):
            cv.ellipse(
                cx + 1.05 * rx * np.cos(a),
                cy - 0.05 * ry + 1.0 * ry * np.sin(a),
                0.35 * rx,
                0.3 * ry,
                _rgba(hair),
            )
    for side in (-1, 1):
        cv.ellipse(cx + side * 0.98 * rx, cy - 0.05 * ry, 0.14 * ry, 0.22 * ry, _rgba(skin, 0.9))
    cv.poly(_outline(face, g), _rgba(skin))
    _hair_cap(cv, face, g, hair, skin)

    ey = cy + face.eye_y * ry
    brow = _rgba(hair, 0.7)
    for side in (-1, 1):
        ex = cx + side * face.eye_spacing * rx
        by = ey - face.brow_raise * ry
        tilt = face.brow_tilt * ry
        cv.line(
            ex - side * 0.14 * ry, by + tilt, ex + side * 0.16 * ry, by - tilt, brow, face.brow_thickness * ry
        )
    ny = ey + face.nose_length * ry + 0.1 * ry
    cv.poly(
        np.array([[cx, ey + 0.03 * ry], [cx + face.nose_width * ry, ny], [cx - face.nose_width * ry, ny]]),
        _rgba(skin, 0.85),
    )
    for side in (-1, 1):
        cv.ellipse(
            cx + side * 0.45 * face.nose_width * ry, ny - 0.01 * ry, 0.035 * ry, 0.02 * ry, _rgba(skin, 0.45)
        )
    if face.beard:
        contour = _outline(face, g)
        lower = contour[contour[:, 1] > cy + 0.15 * ry]
        lower = lower[np.argsort(np.arctan2(lower[:, 1] - cy, lower[:, 0] - cx))]
        my = cy + face.mouth_y * ry
        top = _arc(cx, my - 0.02 * ry, face.mouth_width * rx * 1.4, 0.14 * ry, 0, np.pi)[::-1]
        cv.poly(np.concatenate([lower, top[::-1]]), _rgba(hair, 0.85))
    return layer


def _hair_cap(cv: _Canvas, face: FaceParams, g: _Geometry, hair, skin) -> None:
    """Hair on top of the head, closed by a style-specific hairline."""
    cx, cy, rx, ry = g.cx, g.cy, g.rx, g.ry
    grow = 1.2 if face.hair_style == 5 else 1.07
    top = _arc(cx, cy, grow * rx, 1.07 * ry, np.pi * 1.04, np.pi * 1.96)
    h = cy - face.hairline * ry
    if face.hair_style == 3:  # fringe: low, ragged hairline
        xs = np.linspace(cx + 0.95 * rx, cx - 0.95 * rx, 9)
        ys = cy - 0.3 * ry + 0.06 * ry * (np.arange(9) % 2)
        line = np.stack([xs, ys], axis=1)
    elif face.hair_style == 4:  # side part: asymmetric hairline
        line = np.array(
            [
                [cx + 0.97 * rx, cy - 0.2 * ry],
                [cx + 0.3 * rx, h + 0.12 * ry],
                [cx - 0.4 * rx, h - 0.05 * ry],
                [cx - 0.97 * rx, cy - 0.25 * ry],
            ]
        )
    else:
        line = np.array(
            [
                [cx + 0.97 * rx, cy - 0.22 * ry],
                [cx + 0.55 * rx, h],
                [cx, h - 0.05 * ry],
                [cx - 0.55 * rx, h],
                [cx - 0.97 * rx, cy - 0.22 * ry],
            ]
        )
    colour = (
        tuple(int(0.35 * a + 0.65 * b) for a, b in zip(hair, skin, strict=True))
        if face.hair_style == 2
        else hair
    )
    cv.poly(np.concatenate([top, line]), _rgba(colour))


_SCLERA = (240, 240, 235)
_PUPIL = (15, 10, 10)
_INSIDE = (55, 18, 22)
_TEETH = (232, 226, 215)
_FRAME = (30, 30, 35)


def _palette(face: FaceParams, g: _Geometry, light: np.ndarray) -> dict[str, tuple]:
    """Colours of the per-frame parts, lit like the spot of the frame where each part sits (the static
    layer is lit as a whole before it moves, so both stay consistent). Eye colours are (left, right)."""
    size = light.shape[0]

    def gain(x: float, y: float) -> np.ndarray:
        return light[min(max(int(y), 0), size - 1), min(max(int(x), 0), size - 1)]

    def lit(rgb, k: np.ndarray, factor: float = 1.0) -> tuple[int, int, int, int]:
        return (*(int(min(255.0, c * factor * float(m))) for c, m in zip(rgb, k, strict=True)), 255)

    ey = g.cy + face.eye_y * g.ry
    eyes = [gain(g.cx + side * face.eye_spacing * g.rx, ey) for side in (-1, 1)]
    mouth = gain(g.cx, g.cy + face.mouth_y * g.ry)
    skin = (face.skin_r, face.skin_g, face.skin_b)
    lip = (face.lip_r, face.lip_g, face.lip_b)
    iris = (face.iris_r, face.iris_g, face.iris_b)
    return {
        "sclera": tuple(lit(_SCLERA, k) for k in eyes),
        "iris": tuple(lit(iris, k) for k in eyes),
        "pupil": tuple(lit(_PUPIL, k) for k in eyes),
        "lid": tuple(lit(skin, k, 0.6) for k in eyes),
        "closed": tuple(lit(skin, k, 0.55) for k in eyes),
        "glasses": tuple(lit(_FRAME, k) for k in eyes),
        "lip": lit(lip, mouth),
        "lip_line": lit(lip, mouth, 0.6),
        "inside": lit(_INSIDE, mouth),
        "teeth": lit(_TEETH, mouth),
    }


def _draw_moving(
    cv: _Canvas,
    face: FaceParams,
    g: _Geometry,
    openness: float,
    eyes_open: float,
    gaze: tuple[float, float],
    colours: dict[str, tuple],
) -> None:
    """Per-frame parts: eyes (blinking), mouth (opening with the speech), glasses over the eyes."""
    cx, cy, rx, ry = g.cx, g.cy, g.rx, g.ry
    ey = cy + face.eye_y * ry
    ew = face.eye_size * ry
    eh = 0.55 * ew * eyes_open
    for k, side in enumerate((-1, 1)):
        ex = cx + side * face.eye_spacing * rx
        if eyes_open < 0.25:
            cv.line(ex - ew, ey, ex + ew, ey, colours["closed"][k], 0.04 * ry)
        else:
            cv.ellipse(ex, ey, ew, eh, colours["sclera"][k])
            ir = min(0.45 * ew, eh)
            ix, iy = ex + gaze[0] * 0.3 * ew, ey + gaze[1] * 0.2 * eh
            cv.ellipse(ix, iy, ir, ir, colours["iris"][k])
            cv.ellipse(ix, iy, 0.45 * ir, 0.45 * ir, colours["pupil"][k])
            cv.ellipse(ex, ey - eh, ew * 1.02, 0.02 * ry + 1.0 / _ONE, colours["lid"][k])
        if face.glasses:
            cv.ellipse(
                ex, ey, 1.5 * ew, 1.15 * ew, colours["glasses"][k], thickness=max(1, round(0.035 * ry))
            )
    if face.glasses:
        inner = face.eye_spacing * rx - 1.5 * ew
        cv.line(cx - inner, ey, cx + inner, ey, colours["glasses"][0], max(1.0, 0.035 * ry))
    my = cy + face.mouth_y * ry
    mw = face.mouth_width * rx
    oh = openness * 0.2 * ry
    cv.ellipse(cx, my, mw, face.lip_thickness * ry + oh, colours["lip"])
    if oh > 0.02 * ry:
        cv.ellipse(cx, my, 0.8 * mw, oh, colours["inside"])
        if oh > 0.06 * ry:
            cv.ellipse(cx, my - 0.6 * oh, 0.55 * mw, 0.3 * oh, colours["teeth"])
    else:
        cv.line(cx - mw, my, cx + mw, my, colours["lip_line"], 0.015 * ry)


def _smooth_noise(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """Unit-variance, slowly varying random track (head motion)."""
    x = np.convolve(rng.standard_normal(n + width), np.hanning(width), mode="valid")[:n]
    return x / (x.std() + 1e-9)


def _blinks(rng: np.random.Generator, n: int, fps: int) -> np.ndarray:
    """Eye openness per frame: open, with a 4-frame blink every 2-6 seconds."""
    eyes = np.ones(n)
    t = int(rng.uniform(0.2, 3.0) * fps)
    while t < n:
        shape = np.array([0.5, 0.05, 0.3, 0.8])[: n - t]
        eyes[t : t + shape.size] = shape
        t += int(rng.uniform(2.0, 6.0) * fps)
    return eyes


def background(look: LookParams, size: int) -> np.ndarray:
    """The session's backdrop (float32 RGB, 0-255), the same for every utterance of the session."""
    rng = np.random.default_rng(look.seed)
    base = np.array([look.bg_r, look.bg_g, look.bg_b], np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.broadcast_to(base, (size, size, 3)).copy()
    img += (30 * (yy - 0.5))[..., None] * rng.uniform(-1, 1)
    if look.bg_texture == 1:
        angle, freq = rng.uniform(0, np.pi), rng.uniform(3, 9)
        stripes = np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)))
        img += (28 * stripes)[..., None] * rng.uniform(0.5, 1.0, 3).astype(np.float32)
    elif look.bg_texture == 2:
        for _ in range(6):
            colour = tuple(float(c) for c in rng.integers(0, 256, 3))
            cv2.circle(
                img,
                (int(rng.integers(size)), int(rng.integers(size))),
                int(rng.uniform(0.08, 0.3) * size),
                colour,
                -1,
                cv2.LINE_AA,
            )
        img = cv2.GaussianBlur(img, (0, 0), size / 25)
    elif look.bg_texture == 3:
        for _ in range(4):
            x0, y0 = rng.integers(0, size, 2)
            w, h = rng.integers(size // 8, size // 2, 2)
            shade = base * rng.uniform(0.5, 1.5)
            cv2.rectangle(
                img, (int(x0), int(y0)), (int(x0 + w), int(y0 + h)), tuple(float(c) for c in shade), -1
            )
    elif look.bg_texture == 4:
        coarse = rng.normal(0, 25, (6, 6, 3)).astype(np.float32)
        img += cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(img, 0, 255)


def light_map(look: LookParams, size: int) -> np.ndarray:
    """Multiplicative (size, size, 3) map: exposure x directional gradient x colour cast."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    ramp = 1 + look.light_slope * (xx * np.cos(look.light_angle) + yy * np.sin(look.light_angle)) * 2
    cast = np.array([look.cast_r, look.cast_g, look.cast_b], np.float32)
    return (look.brightness * np.clip(ramp, 0.1, None))[..., None] * cast


def render_video(
    face: FaceParams,
    look: LookParams,
    openness: np.ndarray,
    rng: np.random.Generator,
    size: int,
    backdrop: np.ndarray,
    light: np.ndarray,
    fps: int = 25,
) -> np.ndarray:
    """Frames (T, size, size, 3) uint8 RGB of ``face`` talking with per-frame ``openness`` in ``look``.

    ``backdrop`` and ``light`` are the session's :func:`background` and :func:`light_map`, computed
    once per session by the caller. The face layer is premultiplied RGBA (what anti-aliased drawing on
    transparent black produces), so compositing over the backdrop is one multiply-add per frame."""
    n = openness.size
    g = _geometry(face, look, size)
    static = _static_layer(face, look, g, size)
    static[..., :3] = np.clip(static[..., :3] * light, 0, 255).astype(np.uint8)
    backdrop_lit = np.clip(backdrop * light, 0, 255).astype(np.uint8)
    colours = _palette(face, g, light)
    eyes = _blinks(rng, n, fps)
    gaze = (float(rng.uniform(-1, 1)), float(rng.uniform(-1, 1)))
    angle = look.rotation_deg + 2.5 * look.motion * _smooth_noise(rng, n, 21)
    shift_x = 0.012 * size * look.motion * _smooth_noise(rng, n, 25)
    shift_y = 0.008 * size * look.motion * _smooth_noise(rng, n, 25)
    scale = 1 + 0.01 * look.motion * _smooth_noise(rng, n, 31)
    sigma = look.blur * size / _NOMINAL
    if look.noise_std > 0:  # a small bank of noise fields cycled with random offsets: sensor noise, cheaply
        bank = np.round(rng.standard_normal((4, size, 2 * size, 3)) * look.noise_std).astype(np.int16)
        picks, offsets = rng.integers(0, 4, n), rng.integers(0, size, n)
    frames = np.empty((n, size, size, 3), np.uint8)
    work = np.empty_like(static)
    moved = np.empty_like(static)
    canvas = _Canvas(work)
    for i in range(n):
        np.copyto(work, static)
        _draw_moving(canvas, face, g, float(openness[i]), float(eyes[i]), gaze, colours)
        m = cv2.getRotationMatrix2D((g.cx, g.cy + 0.5 * g.ry), float(angle[i]), float(scale[i]))
        m[:, 2] += (shift_x[i], shift_y[i])
        cv2.warpAffine(
            work, m, (size, size), dst=moved, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
        )
        behind = cv2.cvtColor(cv2.bitwise_not(cv2.extractChannel(moved, 3)), cv2.COLOR_GRAY2RGB)
        cv2.add(
            cv2.cvtColor(moved, cv2.COLOR_RGBA2RGB),
            cv2.multiply(backdrop_lit, behind, scale=1 / 255),
            dst=frames[i],
        )
        if sigma > 0.2:  # optics blur first, sensor noise after
            cv2.GaussianBlur(frames[i], (0, 0), sigma, dst=frames[i])
        if look.noise_std > 0:
            cv2.add(
                frames[i], bank[picks[i]][:, offsets[i] : offsets[i] + size], dst=frames[i], dtype=cv2.CV_8U
            )
    return frames
