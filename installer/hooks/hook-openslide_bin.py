"""openslide-bin loads ``libopenslide`` from its own package folder with ctypes at import.

PyInstaller's binary analysis cannot see a ctypes load, so collect the library (and keep it
inside ``openslide_bin/`` where ``importlib.resources`` looks for it).
"""
from PyInstaller.utils.hooks import collect_dynamic_libs, copy_metadata

binaries = collect_dynamic_libs("openslide_bin", search_patterns=["*.dll", "*.dylib", "lib*.so*"])
datas = copy_metadata("openslide-bin")
