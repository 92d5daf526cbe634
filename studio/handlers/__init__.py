"""Studio logic as plain functions (being split by concern; see the modules of this package)."""
from studio.handlers.path_edits import *  # noqa: F401,F403
