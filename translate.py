"""Translate images with an image -> image checkpoint: ``python translate.py ckpt_path=... input=...``."""

from ganforge.translate import main

if __name__ == "__main__":
    main()
