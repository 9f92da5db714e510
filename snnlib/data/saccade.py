"""N-MNIST-style conversion of a still image into events by simulated saccades.

N-MNIST (Orchard, Jayawant, Cohen and Thakor, "Converting static image datasets to
spiking neuromorphic datasets using saccades", Front. Neurosci. 2015) was recorded by
an ATIS event camera on a pan-tilt unit making three saccades, about 100 ms each and
300 ms in all, along a triangle in front of a still MNIST digit on a monitor; samples
are 34x34 pixels with the 28x28 digit inside. Here the camera motion is replaced by
moving the image over a simulated sensor and a ``DVSSimulator`` makes the events.

Path (our choice; the paper gives the triangle, not its exact vertices): the image,
centred on the sensor, is offset by ``(dx, dy)`` pixels (x right, y down) moving at
constant speed through the vertices ``(0, -A) -> (A, A) -> (-A, A) -> (0, -A)``,
``A = amplitude_px``, one saccade per third of ``duration_us``: a down-right diagonal,
a leftward horizontal and an up-right diagonal saccade.

Rendering: sensor pixel ``(r, c)`` sees the image at the sub-pixel point
``(v, u) = (r - oy - dy, c - ox - dx)`` (``ox, oy`` centre the image), by bilinear
interpolation with zeros outside the image:
``frame[r, c] = sum_ij hat(v - i) hat(u - j) image[i, j]``, ``hat(z) = max(0, 1 - |z|)``.
The shift is the same for every pixel, so each frame is ``Wy @ image @ Wx.T``.
"""

import numpy as np

SACCADE_DURATION_US = 300_000
SACCADE_N_FRAMES = 61  # a frame every 5 ms: under half a pixel of motion per frame for A = 3
SACCADE_AMPLITUDE_PX = 3.0


def _sensor_hw(sensor_size):
    """``(H, W)`` from a sensor size ``(W, H)`` or tonic's ``(W, H, P)``."""
    if len(sensor_size) not in (2, 3) or any(int(s) != s or s < 1 for s in sensor_size[:2]):
        raise ValueError(f"sensor_size must be (W, H) or (W, H, P) with positive ints, got {sensor_size!r}")
    return int(sensor_size[1]), int(sensor_size[0])


def saccade_path(duration_us=SACCADE_DURATION_US, n_frames=SACCADE_N_FRAMES, amplitude_px=SACCADE_AMPLITUDE_PX):
    """Frame times ``[F]`` (µs, float) and image offsets ``[F, 2]`` (dx, dy in pixels) of the triangle."""
    if int(n_frames) != n_frames or n_frames < 2:
        raise ValueError(f"n_frames must be an integer >= 2, got {n_frames!r}")
    if not duration_us > 0 or not amplitude_px >= 0:
        raise ValueError(f"need duration_us > 0 and amplitude_px >= 0, got {duration_us}, {amplitude_px}")
    a = float(amplitude_px)
    vertices = np.array([(0.0, -a), (a, a), (-a, a), (0.0, -a)])
    times = np.linspace(0.0, float(duration_us), int(n_frames))
    phase = times / duration_us * 3  # saccade index + fraction done
    leg = np.minimum(phase.astype(int), 2)
    frac = (phase - leg)[:, None]
    return times, (1 - frac) * vertices[leg] + frac * vertices[leg + 1]


def _hat_weights(coords, size):
    """Bilinear weights ``[..., size]``: ``max(0, 1 - |coords - j|)`` for image index ``j``."""
    return np.maximum(0.0, 1.0 - np.abs(coords[..., None] - np.arange(size)))


def render_shifted(images, offsets, sensor_size):
    """Images ``[N, h, w]`` seen through the sensor at each offset ``[F, 2]``: ``[F, N, H, W]`` (time-first).

    Each image is centred on the sensor, moved by ``(dx, dy)`` and sampled bilinearly.
    """
    height, width = _sensor_hw(sensor_size)
    _, h, w = images.shape
    oy, ox = (height - h) / 2, (width - w) / 2
    rows = np.arange(height)[None, :] - oy - offsets[:, 1:2]  # [F, H] image row seen by each sensor row
    cols = np.arange(width)[None, :] - ox - offsets[:, 0:1]  # [F, W]
    wy, wx = _hat_weights(rows, h), _hat_weights(cols, w)
    return (wy[:, None] @ images[None]) @ wx.transpose(0, 2, 1)[:, None]


def _check_fits(image_hw, sensor_hw, amplitude_px):
    """Raise ``ValueError`` if the moving image would leave the sensor."""
    for axis, (size, sensor) in zip("hw", zip(image_hw, sensor_hw)):
        if size + 2 * amplitude_px > sensor:
            raise ValueError(
                f"an image of {axis} = {size} moving by +-{amplitude_px} px leaves a sensor of {sensor} px; "
                f"use a sensor of at least {size + 2 * amplitude_px:g} px or a smaller amplitude_px"
            )


def saccade_frames(image, sensor_size=(34, 34), duration_us=SACCADE_DURATION_US, n_frames=SACCADE_N_FRAMES,
                   amplitude_px=SACCADE_AMPLITUDE_PX):
    """The movie a sensor sees during the three saccades over ``image``.

    ``image`` is ``[h, w]`` (or a batch ``[N, h, w]``) of intensities in [0, 1];
    ``sensor_size`` is ``(W, H)`` or ``(W, H, P)``. Returns ``(frames, times_us)`` with
    ``frames [F, H, W]`` (``[F, N, H, W]`` for a batch, time-first) and ``times_us [F]``.
    """
    images = np.asarray(image, dtype=np.float64)
    if images.ndim not in (2, 3):
        raise ValueError(f"image must be [h, w] or [N, h, w], got shape {images.shape}")
    _check_fits(images.shape[-2:], _sensor_hw(sensor_size), amplitude_px)
    times, offsets = saccade_path(duration_us, n_frames, amplitude_px)
    frames = render_shifted(images.reshape(-1, *images.shape[-2:]), offsets, sensor_size)
    return (frames[:, 0] if images.ndim == 2 else frames), times


def saccade_events(image, simulator, *, sensor_size=(34, 34), duration_us=SACCADE_DURATION_US,
                   n_frames=SACCADE_N_FRAMES, amplitude_px=SACCADE_AMPLITUDE_PX, rng=None):
    """Events (``EVENT_DTYPE``, time-sorted, t in [0, duration_us]) of ``simulator`` over the saccade movie.

    ``rng`` seeds the simulator's noise (see ``DVSSimulator.simulate``).
    """
    if np.ndim(image) != 2:
        raise ValueError(f"saccade_events takes one image [h, w], got shape {np.shape(image)}; for a batch use "
                         "saccade_frames and DVSSimulator.simulate_batch")
    frames, times = saccade_frames(image, sensor_size, duration_us, n_frames, amplitude_px)
    return simulator.simulate(frames, times, rng=rng)
