"""Translate images with an image -> image checkpoint: ``python translate.py ckpt_path=... input=... out=...``."""

from ganforge.translate import main

if __name__ == "__main__":
    main()
