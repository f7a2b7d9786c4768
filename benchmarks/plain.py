"""The exercise as a plain script: the reference that ``python -m benchmarks.bench`` times
the framework's whole process against (``python benchmarks/plain.py``).

It is what the exercise teaches, written straight down: ``TensorDataset``,
``DataLoader(batch_size=8, shuffle=True)`` (one ``dataset[i]`` per sample, then a collate),
the logreg layer, sigmoid and ``nn.BCELoss``, ``torch.optim.SGD``, a validation phase, and
the best epoch's state dict kept and saved. No Hydra, no TensorBoard. The points come from
the framework's numpy generator, so both train on data of the same distribution and size.
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from logreg_exp.data.gaussian2d import make_gaussian2d
from logreg_exp.data.loaders import split_train_val_test


class LogRegLayer(nn.Module):
    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(n_features, 1))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x @ self.w + self.bias).squeeze(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-samples", type=int, default=5000)
    parser.add_argument("--n-features", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--val-batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="best.pt", help="where the best state dict is saved")
    args = parser.parse_args()

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x, y = make_gaussian2d(args.n_samples, args.n_features, 0.1, rng)
    (x_train, y_train), (x_val, y_val), _ = split_train_val_test(x, y, 0.5, rng)
    train_set = TensorDataset(torch.tensor(x_train).float(), torch.tensor(y_train).float())
    val_set = TensorDataset(torch.tensor(x_val).float(), torch.tensor(y_val).float())
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    val_loader = DataLoader(val_set, batch_size=args.val_batch_size, shuffle=False)

    device = torch.device(args.device)
    model = LogRegLayer(args.n_features).to(device)
    loss_fn = nn.BCELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)

    best_loss, best_epoch, best_state = float("inf"), 0, None
    for epoch in range(1, args.epochs + 1):
        model.train()
        train_loss, train_correct = 0.0, 0
        for xb, yb in train_loader:
            xb, yb = xb.to(device), yb.to(device)
            optimizer.zero_grad()
            prob = model(xb)
            loss = loss_fn(prob, yb)
            loss.backward()
            optimizer.step()
            train_loss += loss.item() * len(yb)
            train_correct += ((prob > 0.5).float() == yb).sum().item()

        model.eval()
        val_loss, val_correct = 0.0, 0
        with torch.no_grad():
            for xb, yb in val_loader:
                xb, yb = xb.to(device), yb.to(device)
                prob = model(xb)
                val_loss += loss_fn(prob, yb).item() * len(yb)
                val_correct += ((prob > 0.5).float() == yb).sum().item()
        val_loss /= len(val_set)
        print(
            f"epoch {epoch}: train_loss {train_loss / len(train_set):.4f} "
            f"train_acc {train_correct / len(train_set):.4f} "
            f"val_loss {val_loss:.4f} val_acc {val_correct / len(val_set):.4f}"
        )
        if val_loss < best_loss:
            best_loss, best_epoch = val_loss, epoch
            best_state = copy.deepcopy(model.state_dict())

    torch.save(best_state, args.out)
    print(f"best epoch {best_epoch}: val_loss {best_loss:.4f}")


if __name__ == "__main__":
    main()
