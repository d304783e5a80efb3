"""The mypy settings in pyproject.toml follow every CDK module the project's code imports."""

from __future__ import annotations

import ast
import importlib.util
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def followed_cdk_modules() -> set[str]:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    followed: set[str] = set()
    for override in config["overrides"]:
        if override.get("follow_imports") == "normal":
            followed.update(override["module"])
    return followed


def imported_cdk_modules(source: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "aws_cdk")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "aws_cdk":
            found.add(node.module)
            if node.module == "aws_cdk":  # `from aws_cdk import aws_lambda` names a module
                found.update(
                    f"aws_cdk.{alias.name}"
                    for alias in node.names
                    if alias.name.islower() and importlib.util.find_spec(f"aws_cdk.{alias.name}") is not None
                )
    return found


def test_every_cdk_module_the_checked_code_imports_is_followed_by_mypy() -> None:
    checked = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["files"]
    imported: dict[str, str] = {}
    for root in checked:
        for path in sorted((REPO_ROOT / root).rglob("*.py")):
            for module in imported_cdk_modules(path.read_text()):
                imported.setdefault(module, str(path.relative_to(REPO_ROOT)))
    assert "aws_cdk.aws_lambda" in imported  # the walk found the CDK app
    missing = {module: path for module, path in imported.items() if module not in followed_cdk_modules()}
    assert not missing, f"add these to the follow_imports = normal override in pyproject.toml: {missing}"


def test_the_check_sees_a_cdk_module_imported_either_way() -> None:
    source = "from aws_cdk import Duration, aws_ec2\nimport aws_cdk.aws_rds\nfrom aws_cdk.aws_efs import FileSystem\n"
    assert imported_cdk_modules(source) == {"aws_cdk", "aws_cdk.aws_ec2", "aws_cdk.aws_rds", "aws_cdk.aws_efs"}
