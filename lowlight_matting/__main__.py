import sys

from lowlight_matting.cli import main

sys.exit(main())
