"""One module per ``lowlight-matting`` subcommand (see :mod:`lowlight_matting.cli`)."""
