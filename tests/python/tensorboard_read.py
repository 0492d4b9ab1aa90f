"""Reads a run folder's TensorBoard events with the tensorboard package's own reader
(EventAccumulator, as `tensorboard --logdir` loads runs) and prints what it found as JSON:
scalars by tag, histograms by tag, text by tag. Also re-checks every record's masked CRC32C
with tensorboard's implementation.

    python tests/python/tensorboard_read.py RUN_DIR
"""
import glob
import json
import os
import struct
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

run = sys.argv[1]
files = glob.glob(os.path.join(run, "*tfevents*"))
assert len(files) == 1, files
records = 0
with open(files[0], "rb") as f:
    data = f.read()
at = 0
while at < len(data):
    header = data[at:at + 8]
    (length,) = struct.unpack("<Q", header)
    (header_crc,) = struct.unpack("<I", data[at + 8:at + 12])
    payload = data[at + 12:at + 12 + length]
    (payload_crc,) = struct.unpack("<I", data[at + 12 + length:at + 16 + length])
    assert header_crc == masked_crc32c(header), f"record {records}: length CRC"
    assert payload_crc == masked_crc32c(payload), f"record {records}: payload CRC"
    at += 16 + length
    records += 1

ea = EventAccumulator(run, size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
ea.Reload()
tags = ea.Tags()
out = {
    "records": records,
    "scalars": {t: [[e.step, e.value] for e in ea.Scalars(t)] for t in tags["scalars"]},
    "histograms": {
        t: [{"step": e.step, "num": e.histogram_value.num, "min": e.histogram_value.min, "max": e.histogram_value.max,
             "counts": list(e.histogram_value.bucket)} for e in ea.Histograms(t)]
        for t in tags["histograms"]
    },
    "text": {t: [e.tensor_proto.string_val[0].decode() for e in ea.Tensors(t)] for t in tags["tensors"]},
}
print(json.dumps(out))
