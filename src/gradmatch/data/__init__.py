"""gradmatch.data: datasets. Image data through ``load_images(name, split, root)``.

Names are imported lazily, so ``import gradmatch.data`` does not import torch.
"""

_LAZY = {
    "load_images": "gradmatch.data.images",
    "train_val_indices": "gradmatch.data.images",
    "download_mnist": "gradmatch.data.mnist",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gradmatch.data' has no attribute {name!r}")
