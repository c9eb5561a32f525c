"""The plugin's options in mkdocs.yml, generated from the one declaration in `settings.Options`.

Each option validates its value through the options model, so MkDocs reports exactly the message
the CLI (and the Sphinx extension) give for the same value. The help of every option is its
declaration's; the README's table lists the same options (a test compares them).
"""

from __future__ import annotations

import copy
import types
from typing import TYPE_CHECKING, Any

from mkdocs.config import base

from mkdocs_cfpurge.errors import ConfigError
from mkdocs_cfpurge.settings import OPTION_NAMES, Options, check_option, option_info


class ModelOption(base.BaseConfigOption[Any]):
    """One option of `settings.Options`, validated by the model."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        # An option its variable fills stays unset (None) when mkdocs.yml leaves it out: the
        # options model then takes the variable, else its own default.
        self.from_env = bool(option_info(name)[1].get("env"))
        default = None if self.from_env else Options.model_fields[name].default
        self.default = copy.deepcopy(default)
        self.__doc__ = Options.model_fields[name].description

    def run_validation(self, value: object) -> Any:
        if value is None and self.from_env:
            return None
        try:
            return check_option(self.name, value)
        except ConfigError as exc:
            raise base.ValidationError(exc.problem) from None


def _body(namespace: dict[str, Any]) -> None:
    namespace.update({name: ModelOption(name) for name in OPTION_NAMES})
    namespace["__doc__"] = "The options of `plugins: [cfpurge: {...}]` (see settings.Options)."
    namespace["__module__"] = __name__


if TYPE_CHECKING:

    class CfPurgeConfig(base.Config):
        """The options of `plugins: [cfpurge: {...}]` (see settings.Options)."""

else:
    # Built with types.new_class so that MkDocs' Config.__init_subclass__ sees every option.
    CfPurgeConfig = types.new_class("CfPurgeConfig", (base.Config,), {}, _body)
