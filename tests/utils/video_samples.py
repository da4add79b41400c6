"""Small video files for the video-encoding tests, made with PyAV (frames and audio streamed).

Not a test module: tests/utils/test_video_encode.py and tests/tools/test_infer_video.py
import it (the latter after putting this folder on ``sys.path``).
"""

from fractions import Fraction
from typing import Iterator, Optional, Tuple

import numpy as np

AV_MISSING = "PyAV not installed: pip install -e '.[video]' (tools/setup_env.sh does)"


def moving_frames(
    count: int, size: Tuple[int, int], seed: int = 0, noise: float = 6.0
) -> Iterator[np.ndarray]:
    """``count`` RGB uint8 frames (H, W, 3): a smooth pattern that moves, plus
    Gaussian noise of standard deviation ``noise`` (detail for the encoder to spend bits on).

    Generated one at a time, so a long sample never sits in memory.
    """
    h, w = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for i in range(count):
        base = np.stack(
            [
                128 + 100 * np.sin((xx + 2 * i) / 7.0),
                128 + 100 * np.cos((yy - i) / 5.0),
                128 + 60 * np.sin((xx + yy + 3 * i) / 11.0),
            ],
            axis=-1,
        )
        grain = rng.normal(0, noise, base.shape) if noise else 0
        yield np.clip(np.rint(base + grain), 0, 255).astype(np.uint8)


def make_video(
    path: str,
    count: int = 12,
    size: Tuple[int, int] = (24, 32),
    rate: Fraction = Fraction(30000, 1001),
    sample_aspect_ratio: Optional[Fraction] = None,
    audio: Optional[str] = 'aac',
    sample_rate: int = 48000,
) -> str:
    """Write an H.264 video of ``count`` frames with a 440 Hz sine track.

    Args:
        path: The file (.mp4, .mkv ...: the extension picks the container).
        count: Number of frames.
        size: (height, width).
        rate: Frames per second.
        sample_aspect_ratio: Pixel aspect ratio to record (None: square).
        audio: FFmpeg encoder of the audio track (``aac``, ``pcm_s16le`` ...) or None.
        sample_rate: Audio samples per second.

    Returns:
        str: ``path``.
    """
    import av

    container = av.open(path, 'w')
    video = container.add_stream('libx264', rate=rate, options={'preset': 'ultrafast'})
    video.height, video.width = size
    video.pix_fmt = 'yuv420p'
    if sample_aspect_ratio:
        video.codec_context.sample_aspect_ratio = sample_aspect_ratio
    sound = None
    if audio:
        sound = container.add_stream(audio, rate=sample_rate, layout='mono')
    samples = int(round(sample_rate * count / rate))
    done = 0

    def add_audio(until, chunk=1024):
        nonlocal done
        while done < until:
            n = min(chunk, until - done)
            t = (done + np.arange(n)) / sample_rate
            wave = (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)[None]
            piece = av.AudioFrame.from_ndarray(wave, format='s16', layout='mono')
            piece.sample_rate, piece.pts = sample_rate, done
            for packet in sound.encode(piece):
                container.mux(packet)
            done += n

    for i, frame in enumerate(moving_frames(count, size)):
        image = av.VideoFrame.from_ndarray(frame, format='rgb24')
        image.pts = i
        for packet in video.encode(image):
            container.mux(packet)
        if sound is not None:  # the audio up to the last full chunk before this frame's end
            end = int(round(sample_rate * (i + 1) / rate))
            add_audio(end - end % 1024 if i + 1 < count else samples)
    for packet in video.encode(None):
        container.mux(packet)
    if sound is not None:
        for packet in sound.encode(None):
            container.mux(packet)
    container.close()
    return path


def read_back(path: str) -> dict:
    """What a reader finds in ``path``: codecs, frame count (decoded), rate, aspect, audio.

    Returns:
        dict: ``codec``, ``frames``, ``rate``, ``sar``, ``size`` (h, w),
        ``audio_codec`` (or None), ``audio_payload`` (the audio packets' bytes
        joined, None without audio), ``audio_seconds``.
    """
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        found = {
            'codec': stream.codec_context.name,
            'rate': stream.average_rate,
            'sar': stream.sample_aspect_ratio,
            'audio_codec': None,
            'audio_payload': None,
            'audio_seconds': 0.0,
        }
        frames = 0
        for frame in container.decode(stream):
            frames += 1
            found['size'] = (frame.height, frame.width)
        found['frames'] = frames
    with av.open(path) as container:
        if container.streams.audio:
            sound = container.streams.audio[0]
            found['audio_codec'] = sound.codec_context.name
            payload = []
            seconds = 0.0
            for packet in container.demux(sound):
                if packet.size:
                    payload.append(bytes(packet))
                    seconds += float(packet.duration * packet.time_base)
            found['audio_payload'] = b''.join(payload)
            found['audio_seconds'] = seconds
    return found
