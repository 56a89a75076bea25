"""`python -m mnistlab.data`: obtain and verify a dataset's files before any run needs them.

The files land where train.py reads them: MNISTLAB_DATA_DIR, or data/ in the current folder.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from mnistlab.data import DataNotFoundError, FashionMNISTDataModule, MNISTDataModule

DATASETS = {"mnist": MNISTDataModule, "fashion_mnist": FashionMNISTDataModule}


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=list(DATASETS), default="mnist")
    parser.add_argument("--data-dir", default=os.environ.get("MNISTLAB_DATA_DIR", "data"),
                        help="folder that holds <Dataset>/raw/ (default: $MNISTLAB_DATA_DIR "
                             "or data/)")
    args = parser.parse_args()
    datamodule = DATASETS[args.dataset](data_dir=args.data_dir)
    try:
        datamodule.prepare_data()
    except DataNotFoundError as err:
        print(f"Error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"{args.dataset}: verified files in {datamodule.files.raw_dir(args.data_dir)}")


if __name__ == "__main__":
    main()
