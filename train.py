"""Train a GAN: ``python train.py model=dcgan loss=hinge data=cifar10``. See README.md."""

from ganforge.train import main

if __name__ == "__main__":
    main()
