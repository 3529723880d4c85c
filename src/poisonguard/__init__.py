"""poisonguard: red-team, scan, harden, trace and monitor training data against poisoning."""

from poisonguard.dataset import Dataset
from poisonguard.errors import DependencyError, InputError, IntegrityError, PoisonguardError

__version__ = "0.1.0"

__all__ = ["Dataset", "DependencyError", "InputError", "IntegrityError", "PoisonguardError",
           "__version__"]
