"""Stateless constant-velocity Kalman filter over box centre and size.

State ``x = [cx, cy, w, h, vcx, vcy, vw, vh]``. Functions take and return (mean, covariance)
instead of hiding them in an object, so the tracker owns all state and tests can drive the
filter directly (the design of ByteTrack's filter, without its global counters). Noise scales
with box height: a 200-px face jitters more in pixels than a 20-px one.
"""

from __future__ import annotations

import numpy as np

_DIM = 4
_F = np.eye(2 * _DIM)
_F[:_DIM, _DIM:] = np.eye(_DIM)  # position += velocity each frame
_H = np.eye(_DIM, 2 * _DIM)
_STD_POS = 1.0 / 20
_STD_VEL = 1.0 / 160


def xyxy_to_z(xyxy: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])


def z_to_xyxy(z: np.ndarray) -> np.ndarray:
    cx, cy, w, h = z[:4]
    w, h = max(float(w), 1.0), max(float(h), 1.0)
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32)


def initiate(xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = xyxy_to_z(xyxy)
    mean = np.concatenate([z, np.zeros(_DIM)])
    s = max(z[3], 1.0)
    std = np.array([2 * _STD_POS * s] * 4 + [10 * _STD_VEL * s] * 4)
    return mean, np.diag(std**2)


def predict(mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = max(mean[3], 1.0)
    q = np.diag(np.array([_STD_POS * s] * 4 + [_STD_VEL * s] * 4) ** 2)
    return _F @ mean, _F @ cov @ _F.T + q


def update(mean: np.ndarray, cov: np.ndarray, xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = xyxy_to_z(xyxy)
    s = max(mean[3], 1.0)
    r = np.diag(np.array([_STD_POS * s] * 4) ** 2)
    proj_cov = _H @ cov @ _H.T + r
    gain = np.linalg.solve(proj_cov, _H @ cov).T
    mean = mean + gain @ (z - _H @ mean)
    cov = cov - gain @ proj_cov @ gain.T
    return mean, cov
