"""Built-in taggers. Every submodule is imported so its `@TAGGERS.register` classes are known.

Submodules must stay cheap to import: heavy libraries (fastText, presidio) are loaded in `setup()`.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
