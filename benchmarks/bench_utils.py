"""Helpers shared by the benchmark scripts in this folder."""

import ctypes


def tune_malloc() -> bool:
    """Keep large freed blocks in the heap (glibc ``mallopt``).

    Column-sized and high-resolution temporaries then reuse memory instead of
    page-faulting in fresh ``mmap``s on every call (what jemalloc / tcmalloc
    do anyway). Returns whether glibc accepted the settings.
    """
    try:
        libc = ctypes.CDLL('libc.so.6')
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    ok = libc.mallopt(m_mmap_threshold, 1 << 30)
    ok &= libc.mallopt(m_trim_threshold, (1 << 31) - 1)
    return bool(ok)
