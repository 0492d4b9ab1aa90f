"""OGM-GE's CREMA-D loading written as the public code writes it (benches/loaders.rs runs
this): librosa.load at 22,050 Hz, tile to 3 s, clip, STFT(512, 353), log; one frame through
RandomResizedCrop(224) + horizontal flip + ImageNet normalisation (done with PIL and numpy, as
torchvision's transforms do on PIL images); a torch DataLoader, batch 16, 1 and 2 workers,
cold (fresh workers, as every epoch of main.py starts), then 2 workers warm.
Prints {"1": samples/s, "2": samples/s, "warm2": samples/s}. Needs librosa and Pillow (see
tests/fixtures/gen_frontends.py)."""
import json
import math
import pathlib
import random
import sys
import time

import librosa
import numpy as np
import torch
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)[:, None, None]
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)[:, None, None]
LABELS = {"NEU": 0, "HAP": 1, "SAD": 2, "FEA": 3, "DIS": 4, "ANG": 5}


def random_resized_crop(img):
    w, h = img.size
    area = w * h
    for _ in range(10):
        target = area * random.uniform(0.08, 1.0)
        ratio = math.exp(random.uniform(math.log(3 / 4), math.log(4 / 3)))
        cw, ch = int(round(math.sqrt(target * ratio))), int(round(math.sqrt(target / ratio)))
        if 0 < cw <= w and 0 < ch <= h:
            top, left = random.randint(0, h - ch), random.randint(0, w - cw)
            return img.resize((224, 224), Image.BILINEAR, box=(left, top, left + cw, top + ch))
    return img.resize((224, 224), Image.BILINEAR)


class Cremad(torch.utils.data.Dataset):
    """OGM-GE's CramedDataset in training mode over the tree at `root` (benches/epoch_ref.py
    trains on it)."""

    def __init__(self, root):
        self.root = pathlib.Path(root)
        rows = [l.strip().split(",") for l in open(self.root / "train.csv") if l.strip()]
        self.items = [(c, LABELS[e]) for c, e in rows]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        clip, label = self.items[i]
        samples, rate = librosa.load(self.root / "AudioWAV" / f"{clip}.wav", sr=22050)
        resamples = np.tile(samples, 3)[:22050 * 3]
        resamples[resamples > 1.0] = 1.0
        resamples[resamples < -1.0] = -1.0
        spectrogram = np.log(np.abs(librosa.stft(resamples, n_fft=512, hop_length=353)) + 1e-7)
        frames = sorted((self.root / "Image-01-FPS" / clip).iterdir())
        img = random_resized_crop(Image.open(frames[0]).convert("RGB"))
        if random.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        x = (np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0 - MEAN) / STD
        return torch.from_numpy(spectrogram[None]).float(), torch.from_numpy(x[:, None]), label


def rate(root, workers):
    best = 0.0
    for _ in range(2):
        loader = torch.utils.data.DataLoader(Cremad(root), batch_size=16, shuffle=True, num_workers=workers)
        t = time.perf_counter()
        n = sum(labels.shape[0] for _, _, labels in loader)
        best = max(best, n / (time.perf_counter() - t))
    return best


if __name__ == "__main__":
    torch.set_num_threads(1)
    root = sys.argv[1]
    cold = {"1": rate(root, 1), "2": rate(root, 2)}
    # Warm: the parent decodes one clip first, so forked workers start with librosa ready (each
    # cold worker's first call costs about 1.5 s, most of a 64-clip pass).
    Cremad(root)[0]
    print(json.dumps({**cold, "warm2": rate(root, 2)}))
