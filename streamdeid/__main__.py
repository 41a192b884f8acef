import sys

from streamdeid.cli import main

sys.exit(main())
