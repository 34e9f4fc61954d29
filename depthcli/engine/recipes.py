"""The training recipes by name: what `depthcli train` and `depthcli pretrain` look up."""

from __future__ import annotations

from depthcli.engine.pretrain import PRETRAIN_RECIPE
from depthcli.engine.runner import Recipe
from depthcli.engine.selfsup import SELFSUP_RECIPE
from depthcli.engine.supervised import SUPERVISED_RECIPE
from depthcli.errors import DepthcliError

RECIPES: dict[str, Recipe] = {recipe.name: recipe for recipe in (SELFSUP_RECIPE, SUPERVISED_RECIPE, PRETRAIN_RECIPE)}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise DepthcliError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return RECIPES[name]
