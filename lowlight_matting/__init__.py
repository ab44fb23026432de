"""lowlight_matting: adapt a CV-UNet image-matting model (RGB in, alpha out, no trimap) to low-light photos.

The package behind the course in ``notebooks/``: every function a chapter uses lives here.
"""

__version__ = "0.1.0"
