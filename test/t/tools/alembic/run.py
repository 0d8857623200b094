# usage: run.py SCRIPT_DIR REVISION -- alembic upgrade to REVISION
import sys

from alembic import command
from alembic.config import Config

cfg = Config()
cfg.set_main_option("script_location", sys.argv[1])
command.upgrade(cfg, sys.argv[2])
