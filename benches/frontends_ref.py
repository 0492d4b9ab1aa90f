"""Times the Python reference front-ends for benches/frontends.rs on one wav, N times each.

usage: python benches/frontends_ref.py N WAV_22050 WAV_16000
Prints one JSON line: seconds per clip for A (librosa), B (scipy), C (torchaudio kaldi fbank),
each including the same tiling / log / normalisation as gapscope's front-end, torch on 1 thread.
Needs librosa and torchaudio's compliance module (see tests/fixtures/gen_frontends.py).
"""
import json
import sys
import time
import wave

import numpy as np
import torch

torch.set_num_threads(1)
n = int(sys.argv[1])


def read(path):
    with wave.open(path) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0, w.getframerate()


x22, _ = read(sys.argv[2])
x16, rate = read(sys.argv[3])
result = {}
try:
    import librosa

    def a(x):
        y = np.clip(np.tile(x, -(-66150 // x.size))[:66150], -1, 1)
        return np.log(np.abs(librosa.stft(y, n_fft=512, hop_length=353, pad_mode="reflect")) + 1e-7)

    runs = [("A", a, x22)]
except ImportError:
    runs = []
import scipy.signal


def b(x):
    _, _, s = scipy.signal.spectrogram(np.tile(x, -(-48000 // x.size))[:48000], rate, nperseg=512, noverlap=353)
    s = np.log(s + 1e-7)
    return (s - s.mean()) / (s.std() + 1e-9)


runs.append(("B", b, x16))
try:
    import torchaudio.compliance.kaldi as kaldi

    def c(x):
        w = torch.from_numpy(x)[None]
        f = kaldi.fbank(w - w.mean(), htk_compat=True, sample_frequency=16000, use_energy=False,
                        window_type="hanning", num_mel_bins=128, dither=0.0, frame_shift=10)
        p = 1024 - f.shape[0]
        f = torch.nn.functional.pad(f, (0, 0, 0, p)) if p > 0 else f[:1024]
        return (f + 4.503877) / (5.141276 * 2)

    runs.append(("C", c, x16))
except ImportError:
    pass
for name, f, x in runs:
    f(x)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(n):
            f(x)
        best = min(best, (time.perf_counter() - t) / n)
    result[name] = best
print(json.dumps(result))
