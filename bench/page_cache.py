"""Puts an events file in the page cache as a read from disk leaves it, and prints how
fast read(2) copies it and a second file out of the cache (bench/compare-python.sh).

Usage: page_cache.py READ_BACK [AS_IS...]

READ_BACK is written back (fsync), dropped from the page cache (POSIX_FADV_DONTNEED)
and read once, so that the kernel's readahead caches it in large folios where the
kernel and the file system have them; the AS_IS files are left as they are cached.
"""

import os
import sys
import time

BUFFER = bytearray(1 << 20)


def read_back(path):
    fd = os.open(path, os.O_RDONLY)
    with os.fdopen(fd, "rb", buffering=0) as file:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        while file.readinto(BUFFER):
            pass


def copy_rate(path):
    """The best of three reads of the whole file, 1 MiB at a time, in GB/s."""
    best = 0.0
    for _ in range(3):
        start, total = time.perf_counter(), 0
        with open(path, "rb", buffering=0) as file:
            while read := file.readinto(BUFFER):
                total += read
        best = max(best, total / (time.perf_counter() - start) / 1e9)
    return best


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: page_cache.py READ_BACK [AS_IS...]")
    read_back(sys.argv[1])
    rates = [f"{path} (read back from disk) {copy_rate(path):.1f} GB/s" for path in sys.argv[1:2]]
    rates += [f"{path} (as cached) {copy_rate(path):.1f} GB/s" for path in sys.argv[2:]]
    print("  read(2) from the page cache, 1 MiB at a time:\n    " + "\n    ".join(rates))


if __name__ == "__main__":
    main()
