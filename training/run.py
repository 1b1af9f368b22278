"""python -m training.run CONFIG.yaml [key=value ...]: train one method (see training/configs/)."""

from __future__ import annotations

import argparse
import sys

from pose.models import CheckpointError
from training.config import ConfigError, help_text, load_config
from training.trainer import Trainer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.run",
        description="Train a pose model with one of the paper's methods (detection, ipr, debiased). "
        "Settings: the defaults below, then the YAML file, then key=value overrides.",
        epilog="keys (key=default  meaning):\n" + help_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", nargs="?", help="YAML file of settings (optional)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="settings that override the file")
    args = parser.parse_args(argv)
    config_path = args.config
    overrides = list(args.overrides)
    if config_path is not None and "=" in config_path:  # no file, only overrides
        overrides.insert(0, config_path)
        config_path = None
    try:
        config = load_config(config_path, overrides)
        config.validate()  # every key and the data paths, before any model or data is built
        trainer = Trainer(config)
    except (ConfigError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    trainer.fit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
