"""pylibjpeg finds its decoders (libjpeg, openjpeg, rle) through entry points at run time.

Ship each plugin's distribution metadata (its ``entry_points.txt``) and the plugin modules,
or pydicom cannot decode JPEG / JPEG 2000 / RLE compressed CT series in the bundle.
"""
from PyInstaller.utils.hooks import collect_submodules, copy_metadata

datas = []
hiddenimports = []
for dist, module in (("pylibjpeg", "pylibjpeg"), ("pylibjpeg-libjpeg", "libjpeg"),
                     ("pylibjpeg-openjpeg", "openjpeg"), ("pylibjpeg-rle", "rle")):
    try:
        datas += copy_metadata(dist)
        hiddenimports += collect_submodules(module, filter=lambda n: ".tests" not in n)
    except Exception:  # an optional plugin that is not installed
        pass
