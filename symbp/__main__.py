import sys

from symbp.console import main

sys.exit(main())
