"""The Python side of benches/train.rs: the same model (tests/fixtures/torch_models.py) trained
with the warm-up loss (Eq. 10) in the loop the public repos write (a DataLoader over the split,
zero_grad / forward / loss / backward / step, loss.item() each step), with the same batch size,
SGD settings and thread count. Prints {"epoch_s": [...]} for the timed epochs.

    train_ref.py SPLIT.safetensors SPEC_FIRST SPEC_SECOND CLASSES BATCH EPOCHS THREADS
"""
import json
import pathlib
import sys
import time

import torch
from safetensors.torch import load_file
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures"))
from torch_models import TwoModal, warmup_loss  # noqa: E402

path, spec_a, spec_v, classes, batch, epochs, threads = sys.argv[1:8]
torch.set_num_threads(int(threads))
torch.manual_seed(0)
split = load_file(path)
first, second, labels = split["first"], split["second"], split["labels"]
model = TwoModal(["first", "second"], [spec_a, spec_v], [list(first.shape[1:]), list(second.shape[1:])], int(classes))
optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)
loader = DataLoader(TensorDataset(first, second, labels), batch_size=int(batch), shuffle=True)


def epoch():
    model.train()
    total = 0.0
    for a, v, y in loader:
        optimizer.zero_grad()
        loss = warmup_loss(model(a.float(), v.float()), y)
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total


epoch()  # warm-up, untimed (allocator, kernel selection)
times = []
for _ in range(int(epochs)):
    t = time.perf_counter()
    epoch()
    times.append(time.perf_counter() - t)
print(json.dumps({"epoch_s": times}))
