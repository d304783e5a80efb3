"""Import one Lambda handler the way Lambda does, in an interpreter of its own.

Run by tests/infra/test_asset_imports.py as `python -I -S lambda_probe.py CONFIG`: no
site processing (so no editable install), no repository root, no PYTHONPATH. The path
holds the function's asset (/var/task), the layers (/opt/python) and the site-packages
directories as plain folders; a finder refuses every top-level module that neither the
asset, nor a layer, nor the libraries Lambda provides (the runtime's boto3, the
Powertools layer and, for the functions that get it, the deps layer) would supply.
Prints one JSON line: {"ok": true} or {"ok": false, "error": "..."}.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import json
import os
import sys
import traceback


class LambdaLibrariesOnly:
    """A meta path finder that refuses top-level modules Lambda would not have."""

    def __init__(self, own_paths: list[str], allowed: set[str]) -> None:
        self.own_paths = own_paths  # the asset, the layers and the interpreter's standard library
        self.allowed = allowed

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if "." in name or name in sys.stdlib_module_names or name in self.allowed:
            return None
        if importlib.machinery.PathFinder.find_spec(name, self.own_paths) is not None:
            return None
        raise ModuleNotFoundError(
            f"No module named {name!r} in this function's asset, its layers or the Lambda runtime", name=name
        )


def main() -> None:
    config = json.loads(sys.argv[1])
    code_paths: list[str] = config["code_paths"]
    standard_library = list(sys.path)  # with -S, nothing but the interpreter's own
    sys.path[:0] = code_paths
    sys.path.extend(config["site_packages"])
    sys.meta_path.insert(0, LambdaLibrariesOnly(code_paths + standard_library, set(config["allowed_modules"])))
    os.environ.update(config["environment"])
    os.chdir(code_paths[0])  # Lambda's working directory is the asset (/var/task)
    module_name, attribute = config["handler"].rsplit(".", 1)
    try:
        handler = getattr(importlib.import_module(module_name), attribute)
        if not callable(handler):
            raise TypeError(f"{config['handler']} is not callable")
        for lazy in config.get("also_import", []):  # what the handler imports on first use (the senders)
            importlib.import_module(lazy)
    except Exception as exc:  # noqa: BLE001 - every failure is the answer
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}))
        return
    print(json.dumps({"ok": True}))


if __name__ == "__main__":
    main()
