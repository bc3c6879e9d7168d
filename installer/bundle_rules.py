"""What goes into the Latent bundle and what stays out: one place for the spec, build.py and tests.

Nothing here imports PyInstaller, so the rules can be unit-tested and reused by
``installer/build.py`` to audit a finished bundle.
"""
from __future__ import annotations

import fnmatch
import re
from pathlib import PurePath

#: resources/ sub-folders bundled under ``<bundle>/_internal/resources``.
RESOURCE_DIRS = ("models", "samples", "icons", "noise")

#: Qt modules the app uses (PySide6-Essentials ships many more): pyqtgraph needs Core/Gui/
#: Widgets, optionally Svg (SVG export) and OpenGL/OpenGLWidgets (fast curves); superqt
#: needs Core/Gui/Widgets; QtDBus comes with the xcb platform plugin.
QT_MODULES_USED = ("QtCore", "QtGui", "QtWidgets", "QtSvg", "QtOpenGL", "QtOpenGLWidgets", "QtDBus")

#: Qt modules excluded (Python bindings and, via FORBIDDEN_QT_LIBS, their libraries).
QT_MODULES_EXCLUDED = (
    "QtWebEngineCore", "QtWebEngineWidgets", "QtWebEngineQuick", "QtWebChannel", "QtWebSockets",
    "QtWebView", "Qt3DCore", "Qt3DRender", "Qt3DInput", "Qt3DLogic", "Qt3DAnimation", "Qt3DExtras",
    "QtMultimedia", "QtMultimediaWidgets", "QtSpatialAudio", "QtTextToSpeech",
    "QtQml", "QtQuick", "QtQuick3D", "QtQuickWidgets", "QtQuickControls2", "QtQuickTest",
    "QtCharts", "QtDataVisualization", "QtGraphs", "QtGraphsWidgets", "QtPdf", "QtPdfWidgets",
    "QtNetwork", "QtNetworkAuth", "QtHttpServer", "QtSql", "QtTest", "QtBluetooth", "QtNfc",
    "QtPositioning", "QtLocation", "QtSensors", "QtSerialPort", "QtSerialBus", "QtRemoteObjects",
    "QtScxml", "QtStateMachine", "QtHelp", "QtDesigner", "QtUiTools", "QtXml", "QtConcurrent",
    "QtPrintSupport", "QtAxContainer", "QtAsyncio",
)

#: Python modules never bundled: other Qt bindings, notebooks, test frameworks, compilers and
#: hubs the app does not use. (matplotlib ships: the DICOM Secondary Capture export colours its
#: overlay with it; dask/distributed ship: `python -m engine batch` runs on them.)
EXCLUDES = [
    *(f"PySide6.{m}" for m in QT_MODULES_EXCLUDED),
    "PyQt5", "PyQt6", "PySide2", "shiboken2", "sip",
    "tkinter", "_tkinter", "turtle", "turtledemo", "idlelib",
    "IPython", "ipykernel", "ipywidgets", "jupyter_client",
    "jupyter_core", "notebook", "nbformat", "traitlets",
    "pytest", "_pytest", "pytestqt", "pytest_qt", "pytest_timeout", "hypothesis", "py.test",
    "sphinx", "docutils", "numpydoc",
    # torch.testing._internal stays: torch.utils.checkpoint imports it when torch loads.
    "torch.utils.tensorboard", "tensorboard", "torchvision",
    "torchaudio", "triton",
    "mne.gui", "mne.commands", "mne_qt_browser", "pyvista", "pyvistaqt", "vtk", "vtkmodules",
    "numba", "llvmlite", "cupy", "jax", "tensorflow", "onnx",
    "onnxruntime", "h5py", "tables", "pyarrow", "sqlalchemy", "openpyxl", "xlrd",
    "boto3", "botocore", "s3fs", "gcsfs", "black", "pylint", "mypy", "ruff",
]

#: Only for the cpu variant: the CUDA runtime packages (the cpu build venv should not
#: have them at all; this makes sure).
CPU_EXCLUDES = ["nvidia"]

#: Packages that load submodules lazily (lazy_loader reads their ``.pyi`` stubs): collect
#: every non-test submodule and the data files named in PACKAGE_DATA.
LAZY_PACKAGES = ("mne", "skimage", "lazy_loader")

#: Data file patterns per lazy package (default: ``**/*.pyi``). mne needs its data folder
#: (channel layouts, montages, coil definitions), HTML templates and stubs.
PACKAGE_DATA = {
    "mne": ["**/*.pyi", "data/**", "channels/data/**", "html_templates/**", "io/**/resources/**",
            "icons/**", "report/**", "**/*.json", "**/*.csv", "**/*.txt"],
}

#: Modules found only through entry points or importlib strings.
PLUGIN_MODULES = [
    "libjpeg", "openjpeg", "rle",  # pylibjpeg decoders (found by pydicom via entry points)
    "pylibjpeg", "pylibjpeg.utils",
    "pydicom.pixels.decoders.pylibjpeg", "pydicom.pixels.decoders.pillow",
    "pydicom.pixels.decoders.rle",
    "openslide", "openslide_bin", "tifffile", "zarr", "numcodecs",
    "wfdb", "wfdb.processing", "edfio", "pybv", "eeglabio", "pywt", "safetensors",
    "safetensors.torch", "superqt", "superqt.utils", "pyqtgraph",
]

#: Packages whose every (non-test) submodule ships: imagecodecs loads one extension module
#: per codec on demand (tifffile asks for whichever a TIFF needs).
ALL_SUBMODULES = ("imagecodecs",)

#: Distributions whose metadata (and entry points) must ship with the bundle.
METADATA = [
    "latent", "pydicom", "pylibjpeg", "pylibjpeg-libjpeg", "pylibjpeg-openjpeg",
    "pylibjpeg-rle", "imagecodecs", "openslide-python", "openslide-bin", "mne", "wfdb",
    "scikit-image", "scikit-learn", "scipy", "numpy", "torch", "safetensors", "tifffile",
    "zarr", "numcodecs", "PySide6-Essentials", "shiboken6", "pyqtgraph", "superqt",
    "edfio", "PyWavelets", "pillow", "lazy_loader", "opencv-python-headless",
]

#: Data file patterns never collected (in addition to test folders).
DATA_EXCLUDES = ["**/tests/**", "**/test_files/**", "**/testdata/**", "**/test_data/**",
                 "**/*.py", "**/*.pyc", "**/__pycache__/**"]

_TEST_PARTS = {"tests", "test", "test_files", "testdata", "test_data", "testing_data", "conftest"}
_TEST_MODULE = re.compile(r"(^|\.)(tests?|conftest)(\.|$)")

#: Qt shared libraries of excluded modules, by basename (Linux .so, Windows .dll).
FORBIDDEN_QT_LIBS = tuple(
    pat for m in QT_MODULES_EXCLUDED if m not in ("QtAxContainer", "QtAsyncio")
    for pat in (f"libQt6{m[2:]}.so*", f"Qt6{m[2:]}.dll", f"{m}.abi3.so", f"{m}.pyd")
) + ("libQt6QuickControls2*.so*", "libQt6QmlModels*.so*", "libQt6ShaderTools*.so*",
     "libQt6VirtualKeyboard*.so*", "QtWebEngineProcess*")

#: Qt plugin folders that belong to excluded modules.
FORBIDDEN_QT_PLUGIN_DIRS = (
    "sqldrivers", "multimedia", "qmltooling", "position", "sensors", "texttospeech", "webview",
    "networkinformation", "tls", "geoservices", "canbus", "designer", "scenegraph", "renderers",
    "sceneparsers", "geometryloaders", "qmllint", "qmlls", "assetimporters", "virtualkeyboard",
    "renderplugins", "printsupport",
)
#: Single plugins that need an excluded module: the PDF image format (QtPdf), the VNC platform
#: and TUIO touch input (QtNetwork).
FORBIDDEN_QT_PLUGINS = ("libqpdf.so", "qpdf.dll", "libqvnc.so", "qvnc.dll",
                        "libqtuiotouchplugin.so", "qtuiotouchplugin.dll")

#: System libraries the bundle may miss on purpose: optional Qt plugins load them when present
#: (Wayland sessions, the GTK3 platform theme) and are skipped otherwise; the NVIDIA driver's
#: own libraries come with the driver, never with an application (cuda variant).
OPTIONAL_SYSTEM_LIBS = ("libwayland-cursor.so.0", "libwayland-egl.so.1", "libwayland-client.so.0",
                        "libgtk-3.so.0", "libgdk-3.so.0", "libcuda.so.1", "libnvidia-ml.so.1")


def debian_package(soname: str) -> str:
    """The Debian package that ships *soname* (``libxcb-icccm.so.4`` -> ``libxcb-icccm4``).

    The one rule lives in ``desktop/startup_check.py`` (the app's start-up check prints the
    ``apt-get install`` line with it); loaded by path, as it imports only the standard library.
    Best effort: used here to recognise libraries the .deb declares in ``Depends``.
    """
    return _startup_check().debian_package(soname)


def _startup_check():
    import importlib.util
    import sys
    from pathlib import Path

    name = "_latent_startup_check"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "desktop" / "startup_check.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def declared_packages(control: str) -> set[str]:
    """Package names in the ``Depends:`` line of a Debian control text (versions and ``|`` split off)."""
    for line in control.splitlines():
        if line.startswith("Depends:"):
            alts = re.split(r"[,|]", line.split(":", 1)[1])
            return {a.split("(")[0].strip() for a in alts if a.strip()}
    return set()


_CUDA_LIB = re.compile(
    r"(cudart|cublas|cublasLt|cudnn|cufft|curand|cusolver|cusparse|cusparseLt|nccl|nvrtc|"
    r"nvJitLink|nvToolsExt|cupti|cufile|nvshmem|torch_cuda|c10_cuda|caffe2_nvrtc|nvperf)",
    re.IGNORECASE)


def _parts(path: str) -> tuple[str, ...]:
    return PurePath(path.replace("\\", "/")).parts


def keep_module(name: str) -> bool:
    """False for test packages (``*.tests.*``, ``conftest``) and excluded modules."""
    if _TEST_MODULE.search(name):
        return False
    return not any(name == ex or name.startswith(ex + ".") for ex in EXCLUDES)


def is_forbidden_qt(path: str) -> bool:
    """A library or plugin of a Qt module the app does not use."""
    parts = _parts(path)
    base = parts[-1] if parts else ""
    if any(fnmatch.fnmatch(base, pat) for pat in FORBIDDEN_QT_LIBS + FORBIDDEN_QT_PLUGINS):
        return True
    if "plugins" in parts:
        i = parts.index("plugins")
        if i + 1 < len(parts) and parts[i + 1] in FORBIDDEN_QT_PLUGIN_DIRS:
            return True
    if "PySide6" in parts and ("qml" in parts or "libexec" in parts):
        return True
    if "translations" in parts and base.startswith("qtwebengine"):
        return True
    return False


def is_test_data(path: str) -> bool:
    """Anything in a test folder, pydicom's test files, or a test module."""
    parts = _parts(path)
    return any(p.lower() in _TEST_PARTS for p in parts[:-1]) or parts[-1] == "conftest.py"


def is_cuda_lib(path: str) -> bool:
    """A CUDA runtime library (must not be in the cpu variant)."""
    parts = _parts(path)
    base = parts[-1] if parts else ""
    if "nvidia" in parts or "triton" in parts:
        return True
    return bool(_CUDA_LIB.search(base)) and (".so" in base or base.endswith(".dll"))


def keep_file(dest: str) -> bool:
    """Whether a collected data file or binary (destination path in the bundle) is kept."""
    parts = _parts(dest)
    if parts[:2] == ("resources", "icons") and dest.endswith(".py"):
        return False
    return not (is_test_data(dest) or is_forbidden_qt(dest))
