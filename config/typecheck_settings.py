"""Settings for mypy's django-stubs plugin, which imports the settings to learn the models.

config.settings refuses to start without a SECRET_KEY unless DEBUG is on; type checking needs
neither a real key nor debug behaviour, so it gets a placeholder and the production defaults.
"""

import os

os.environ.setdefault("SECRET_KEY", "typecheck-only-not-a-secret")

from config.settings import *  # noqa: E402, F403
