"""Evaluate a checkpoint: ``python eval.py ckpt_path=... metrics=[fid,kid,is]``. See README.md."""

from ganforge.eval import main

if __name__ == "__main__":
    main()
