"""weightfab: compile a neural network into a mask-ROM chip layout."""
__version__ = "0.1.0"

from .errors import WeightfabError  # noqa: E402
from .flow.compile import CompileResult, compile  # noqa: E402

__all__ = ["compile", "CompileResult", "WeightfabError", "__version__"]
