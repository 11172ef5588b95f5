"""Sample a checkpoint: ``python generate.py ckpt_path=... n=64 class=3 out=grid.png``. See README.md."""

from ganforge.generate import main

if __name__ == "__main__":
    main()
