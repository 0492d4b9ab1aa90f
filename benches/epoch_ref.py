"""The Python side of benches/epoch.rs: one training epoch of OGM-GE as its main.py runs it, on a
CREMA-D tree on disk. Its dataset class (benches/loaders_ref.py's Cremad: librosa.load at
22,050 Hz, STFT, a PIL frame with RandomResizedCrop + flip), a DataLoader with batch 64 and
shuffle, and main.py's train_epoch: zero_grad, forward, the fused and unimodal cross-entropies,
backward of the fused one, the softmax scores of the true class per modality, OGM-GE's
coefficients, each encoder's 4-d gradients modulated with Gaussian noise of their own std,
SGD step, loss.item() three times. The model is the ResNet-18 pair gapscope builds
(tests/fixtures/torch_models.py), SGD(lr 1e-3, momentum 0.9, weight decay 1e-4) as main.py.

    epoch_ref.py ROOT THREADS AUDIO_SHAPE VISUAL_SHAPE WORKERS...   (shapes as 1x257x188)

Prints {"decode_s": s, "decode_warm_s": s, "step_s": s, "epoch_s": {"W": s, ...}}: a pass of
the DataLoader alone (2 workers; cold, then warm), the epoch's steps over batches already in memory (after one untimed step), and a
whole epoch from disk with each number of DataLoader workers named (main.py sets 32).
"""
import json
import pathlib
import sys
import time

import torch
import torch.nn as nn

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "fixtures"))
from loaders_ref import Cremad  # noqa: E402
from torch_models import TwoModal  # noqa: E402

ALPHA = 0.8  # OGM-GE's CREMA-D setting in its README


def ogm_ge_epoch(model, loader, optimizer):
    """main.py's train_epoch with --modulation OGM_GE, --fusion_method concat, on the CPU."""
    criterion = nn.CrossEntropyLoss()
    softmax = nn.Softmax(dim=1)
    relu = nn.ReLU(inplace=True)
    tanh = nn.Tanh()
    model.train()
    _loss = _loss_a = _loss_v = 0.0
    for spec, image, label in loader:
        optimizer.zero_grad()
        out, out_a, out_v = model(spec.float(), image.float())
        loss = criterion(out, label)
        loss_v = criterion(out_v, label)
        loss_a = criterion(out_a, label)
        loss.backward()
        score_v = sum([softmax(out_v)[i][label[i]] for i in range(out_v.size(0))])
        score_a = sum([softmax(out_a)[i][label[i]] for i in range(out_a.size(0))])
        ratio_v = score_v / score_a
        ratio_a = 1 / ratio_v
        if ratio_v > 1:
            coeff_v = 1 - tanh(ALPHA * relu(ratio_v))
            coeff_a = 1
        else:
            coeff_a = 1 - tanh(ALPHA * relu(ratio_a))
            coeff_v = 1
        for name, parms in model.named_parameters():
            layer = str(name).split(".")[0]
            if "audio" in layer and len(parms.grad.size()) == 4:
                parms.grad = parms.grad * coeff_a + torch.zeros_like(parms.grad).normal_(0, parms.grad.std().item() + 1e-8)
            if "visual" in layer and len(parms.grad.size()) == 4:
                parms.grad = parms.grad * coeff_v + torch.zeros_like(parms.grad).normal_(0, parms.grad.std().item() + 1e-8)
        optimizer.step()
        _loss += loss.item()
        _loss_a += loss_a.item()
        _loss_v += loss_v.item()
    return _loss / len(loader)


def main():
    root, threads = sys.argv[1], int(sys.argv[2])
    shapes = [[int(d) for d in s.split("x")] for s in sys.argv[3:5]]
    workers = [int(w) for w in sys.argv[5:]]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    # The parent never decodes a clip (as main.py's does not), so every epoch's fresh workers
    # start cold: librosa's first call in a process costs about 1.5 s here.
    data = Cremad(root)
    model = TwoModal(["audio", "visual"], ["resnet18", "resnet18"], shapes, 6)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)

    def loader(n):
        # main.py: batch_size 64, shuffle, num_workers 32, pin_memory True (a no-op without CUDA).
        return torch.utils.data.DataLoader(data, batch_size=64, shuffle=True, num_workers=n, pin_memory=torch.cuda.is_available())

    t = time.perf_counter()
    batches = list(loader(2))
    decode = time.perf_counter() - t
    ogm_ge_epoch(model, batches[:1], optimizer)  # untimed: kernel choice, allocator
    t = time.perf_counter()
    ogm_ge_epoch(model, batches, optimizer)
    step = time.perf_counter() - t
    epochs = {}
    for n in workers:
        t = time.perf_counter()
        ogm_ge_epoch(model, loader(n), optimizer)
        epochs[str(n)] = time.perf_counter() - t
    # Last, the loader warm: the parent decodes one clip, so forked workers start with librosa
    # ready (what a persistent or pre-warmed DataLoader would give; main.py has neither).
    data[0]
    t = time.perf_counter()
    list(loader(2))
    warm = time.perf_counter() - t
    print(json.dumps({"decode_s": decode, "decode_warm_s": warm, "step_s": step, "epoch_s": epochs}))


if __name__ == "__main__":
    main()
