import sys

from symbp.cli.console import main

sys.exit(main())
