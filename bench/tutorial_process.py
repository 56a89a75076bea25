"""One timed run of a tutorial's own loop, in a process of its own, as its script would run.

``bench.run`` starts this with ``python -m bench.tutorial_process``: the process imports torch
and torchvision only, never Lightning (whose import switches torch to the NVML-based CUDA check,
which a CUDA build of torch without NVIDIA drivers pays for on every optimizer step), and leaves
torch's thread count alone unless ``--threads`` is given. It prints one JSON line: the seconds of
each epoch and the test accuracy after them.
"""

from __future__ import annotations

import argparse
import json

import torch
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

from bench.tutorials import TUTORIALS, test_accuracy, tutorial_epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", required=True, choices=sorted(TUTORIALS))
    parser.add_argument("--root", required=True, help="the folder holding MNIST/raw/")
    parser.add_argument("--indices", required=True,
                        help="a torch file with the training split's image indices")
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--drop-last", action="store_true")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads; default: torch's own (one per core)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tutorial = TUTORIALS[args.preset]
    indices = torch.load(args.indices).tolist()
    train = Subset(datasets.MNIST(args.root, train=True, transform=transforms.ToTensor()),
                   indices)
    test = datasets.MNIST(args.root, train=False)
    torch.manual_seed(args.seed)
    model = tutorial.network()
    optimizer = tutorial.optimizer(model.parameters(), lr=tutorial.lr)
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True,
                        drop_last=args.drop_last)
    seconds = [tutorial_epoch(tutorial, model, optimizer, loader) for _ in range(args.epochs)]
    accuracy = test_accuracy(model, test.data.unsqueeze(1).float().div_(255), test.targets,
                             tutorial.flatten)
    print(json.dumps({"seconds": seconds, "accuracy": accuracy,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
