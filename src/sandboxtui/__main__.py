import sys

from sandboxtui.cli import main

sys.exit(main())
