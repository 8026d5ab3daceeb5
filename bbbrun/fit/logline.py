"""A history row as the one line `bbbrun train` and a sweep's run.log print."""

from __future__ import annotations

from typing import Any

# History columns every run has; any other column (a likelihood's own, like noise_std) is shown after them.
COMMON_COLUMNS = ("epoch", "loss", "val_loss", "nll", "val_nll_1sample", "kl", "kl_weight", "lr", "seconds")


def format_log_line(row: dict[str, Any]) -> str:
    extra = "".join(f" | {k} {v:.4f}" for k, v in row.items() if k not in COMMON_COLUMNS)
    return (
        f"epoch {int(row['epoch']):>6d} | loss {row['loss']:.4f} | val_loss {row['val_loss']:.4f} | "
        f"nll {row['nll']:.4f} | kl {row['kl']:.4f} | kl_weight {row['kl_weight']:.3g}{extra} | "
        f"{row['seconds']:.1f}s"
    )
