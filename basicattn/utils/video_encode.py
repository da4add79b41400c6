"""Video files out of tools/infer.py: H.264 / H.265 through FFmpeg (PyAV), streamed.

:func:`open_video_sink` returns the writer of a video OUTPUT. Frames go in
one by one (:meth:`PyAVVideoSink.write`) and are encoded at once; the only
frames held are the encoder's own look-ahead (x264: about 40), so a long video
needs no more memory than a short one. What is kept from a video INPUT:

* the frame rate, exactly (30000/1001 stays 30000/1001; ``fps`` overrides it);
* the pixel (sample) aspect ratio: an anamorphic input stays anamorphic, since
  every arch scales both axes alike;
* the first audio stream, copied packet by packet (no re-encoding) where the
  output container takes its codec; re-encoded to AAC where it does not
  (e.g. PCM into .m4v); dropped with one ``warning:`` line where neither
  works, or where ``fps`` changes the video's timing. Audio is interleaved
  with the video as it is written, never gathered first.

Codecs (``--codec``): ``h264`` (libx264, the default for .mp4 .m4v .mov .mkv
.avi), ``h265`` (libx265; tagged ``hvc1`` in .mp4/.mov so that Apple players
open it) and ``mp4v`` (MPEG-4 Part 2, what OpenCV wrote before; quantiser 2,
no CRF). ``--crf`` is x264/x265's constant rate factor, 0 (lossless for
H.264) to 51, lower is better and larger; the defaults, 18 for H.264 and 23
for H.265, look alike (x265's scale sits about five steps above x264's).
Frames are converted from RGB with the BT.601 matrix into limited-range
YUV 4:2:0 (4:4:4 for an odd width or height, which 4:2:0 cannot hold), and
the stream says so, so players do not guess BT.709 for large frames. .webm
outputs stay with OpenCV's VP8 writer, as before.

Why PyAV (``av`` on PyPI, the ``[video]`` extra): both candidate bindings
carry an H.264 encoder (checked: PyAV 18.1.0's wheel lists ``libx264`` and
``libx265`` in ``av.codecs_available``; imageio-ffmpeg 0.8.1 ships an ffmpeg
9.0 binary with ``--enable-libx264 --enable-libx265``). PyAV calls FFmpeg's
libraries in-process: frames go in as arrays, stream properties (rate, aspect
ratio, audio codec) are read as numbers, audio packets are copied and the
container tells which codecs it takes. imageio-ffmpeg drives the ffmpeg
program through a pipe: copying audio and reading stream properties would mean
building command lines and parsing ffmpeg's log text. PyAV's wheel is also
half the size (36 vs 68 MB).

Without PyAV or without the encoder, :func:`open_video_sink` prints one
``warning:`` line and falls back to OpenCV's writer
(:class:`basicattn.data.frame_io.FrameSink`: mp4v, no audio, no CRF).
Frames are read as before (OpenCV, :class:`~basicattn.data.frame_io.FrameSource`,
streamed); PyAV only reads the input's header (:func:`probe_video`) and its
audio packets.

This module imports neither torch nor the datasets: PyAV is imported when a
video is written.
"""

import io
import math
import os
import os.path as osp
import sys
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator, Optional

import numpy as np

from basicattn.errors import DataError, UserError

#: The values of ``--codec``.
CODECS = ('h264', 'h265', 'mp4v')
#: FFmpeg's encoder of each codec.
ENCODERS = {'h264': 'libx264', 'h265': 'libx265', 'mp4v': 'mpeg4'}
#: The default ``--crf`` of each codec that has one.
DEFAULT_CRF = {'h264': 18.0, 'h265': 23.0}
#: The range of ``--crf`` (x264 and x265 alike, 8-bit).
CRF_RANGE = (0.0, 51.0)
#: MPEG-4 Part 2 quantiser of ``mp4v`` (1 best .. 31 worst).
MP4V_QSCALE = 2
#: FFmpeg's container of each extension written through PyAV (.webm: OpenCV).
CONTAINERS = {'.mp4': 'mp4', '.m4v': 'ipod', '.mov': 'mov', '.mkv': 'matroska', '.avi': 'avi'}

_ALIASES = {'hevc': 'h265', 'avc': 'h264', 'x264': 'h264', 'x265': 'h265', 'mpeg4': 'mp4v'}
_FFMPEG_NAMES = {'h264': 'h264', 'h265': 'hevc', 'mp4v': 'mpeg4'}
_SPC_SMPTE170M = 6  # AVCOL_SPC_SMPTE170M: the BT.601 matrix
_RANGE_MPEG = 1  # AVCOL_RANGE_MPEG: limited (16-235) range
INSTALL_HINT = "pip install -e '.[video]'"


def warn(message: str) -> None:
    """Print one ``warning: ...`` line on stderr."""
    print(f'warning: {message}', file=sys.stderr, flush=True)


def parse_codec(value: Optional[str]) -> Optional[str]:
    """``--codec``: one of :data:`CODECS` (``hevc`` ... accepted as aliases), or None.

    Raises:
        UserError: An unknown codec, naming the ones there are.
    """
    if value is None:
        return None
    name = str(value).strip().lower()
    name = _ALIASES.get(name, name)
    if name not in CODECS:
        raise UserError(f'--codec {value}: unknown codec; choose one of {", ".join(CODECS)}')
    return name


def parse_crf(value, codec: Optional[str]) -> Optional[float]:
    """``--crf`` as a number in :data:`CRF_RANGE`, or None for the codec's default.

    Args:
        value (str | float | None): What was given.
        codec (str | None): The parsed ``--codec`` (None: h264 or OpenCV, by extension).

    Raises:
        UserError: Not a number, outside 0..51, or given with ``mp4v`` (no CRF).
    """
    if value is None:
        return None
    lo, hi = CRF_RANGE
    try:
        crf = float(value)
    except (TypeError, ValueError):
        crf = math.nan
    if not (math.isfinite(crf) and lo <= crf <= hi):
        raise UserError(
            f'--crf {value}: the constant rate factor must be a number from {lo:g} to {hi:g} '
            f'(lower is better and larger; default {DEFAULT_CRF["h264"]:g} for h264, '
            f'{DEFAULT_CRF["h265"]:g} for h265)'
        )
    if codec == 'mp4v':
        raise UserError(
            f'--crf {value}: mp4v (MPEG-4 Part 2) has no constant rate factor; '
            'drop --crf or choose --codec h264 or h265'
        )
    return crf


def encoder_available(codec: str) -> bool:
    """Whether PyAV is installed and its FFmpeg has the encoder of ``codec``."""
    try:
        import av
    except ImportError:
        return False
    return ENCODERS[codec] in av.codecs_available


def _missing_reason(codec: str) -> str:
    try:
        import av
    except ImportError:
        return f'PyAV is not installed: {INSTALL_HINT}'
    return f"PyAV {av.__version__}'s FFmpeg has no {ENCODERS[codec]} encoder"


@dataclass
class VideoInfo:
    """What :func:`probe_video` read from a video file's header.

    Attributes:
        rate (Fraction | None): Frames per second of the first video stream.
        sample_aspect_ratio (Fraction | None): Its pixel aspect ratio (None: unknown or 1:1).
        audio_codec (str | None): FFmpeg's name of the first audio stream's codec.
    """

    rate: Optional[Fraction] = None
    sample_aspect_ratio: Optional[Fraction] = None
    audio_codec: Optional[str] = None


def probe_video(path: str) -> Optional[VideoInfo]:
    """Frame rate, pixel aspect ratio and audio codec of a video file (PyAV).

    Reads the header only. Returns None when PyAV is missing or cannot open
    ``path`` (OpenCV then reads the frames or reports the problem).
    """
    try:
        import av
    except ImportError:
        return None
    try:
        with av.open(path) as container:
            info = VideoInfo()
            if container.streams.video:
                stream = container.streams.video[0]
                rate = stream.average_rate or stream.guessed_rate or stream.base_rate
                info.rate = Fraction(rate) if rate and rate > 0 else None
                sar = stream.sample_aspect_ratio
                info.sample_aspect_ratio = Fraction(sar) if sar and sar > 0 and sar != 1 else None
            if container.streams.audio:
                info.audio_codec = container.streams.audio[0].codec_context.name
            return info
    except (av.FFmpegError, OSError):
        return None


def _rate_of(fps: Optional[float]) -> Fraction:
    """A frame rate as a fraction: 29.97 -> 2997/100, 30000/1001 stays as it is."""
    return Fraction(fps).limit_denominator(1001)


def _pixel_format(codec: str, height: int, width: int) -> str:
    if height % 2 == 0 and width % 2 == 0:
        return 'yuv420p'
    if codec == 'mp4v':
        raise DataError(
            f'mp4v needs an even frame size, the output is {width}x{height}; '
            'use --codec h264 or h265 (they take odd sizes as YUV 4:4:4)'
        )
    return 'yuv444p'


class PyAVVideoSink:
    """Encode RGB uint8 frames into a video file with PyAV, one frame at a time.

    The video is written to a hidden file beside ``path`` (``.<name>.part-<pid><ext>``)
    and renamed over ``path`` by :meth:`close`; :meth:`abort` removes it, so
    ``path`` is never half-written. Same interface as
    :class:`basicattn.data.frame_io.FrameSink`.

    Args:
        path (str): The video file; its extension picks the container (:data:`CONTAINERS`).
        codec (str): One of :data:`CODECS`.
        rate (Fraction): Frames per second.
        crf (float, optional): Constant rate factor (h264, h265). Default: :data:`DEFAULT_CRF`.
        sample_aspect_ratio (Fraction, optional): Pixel aspect ratio to record.
        audio_source (str, optional): A video file whose first audio stream is
            copied or re-encoded.
        audio (str): What happens to that stream: ``'copy'``, ``'aac'`` or
            ``'drop'`` (:func:`audio_plan`). Default: ``'copy'``.
        overwrite (bool): Replace an existing ``path``. Default: False.
    """

    def __init__(
        self,
        path: str,
        codec: str,
        rate: Fraction,
        crf: Optional[float] = None,
        sample_aspect_ratio: Optional[Fraction] = None,
        audio_source: Optional[str] = None,
        audio: str = 'copy',
        overwrite: bool = False,
    ):
        if osp.exists(path) and not overwrite:
            raise FileExistsError(f'{path} exists; pass --overwrite to replace it')
        ext = osp.splitext(path)[1].lower()
        self.path, self.codec, self.rate = path, codec, Fraction(rate)
        self.crf = DEFAULT_CRF.get(codec) if crf is None else float(crf)
        self.sample_aspect_ratio = sample_aspect_ratio
        self.audio_source = audio_source if audio != 'drop' else None
        self.audio = audio
        self.count = 0
        self._format = CONTAINERS[ext]
        folder = osp.dirname(osp.abspath(path))
        self._tmp = osp.join(folder, f'.{osp.basename(path)}.part-{os.getpid()}{ext}')
        self._out = self._video = self._size = None
        self._audio_in = self._audio_packets = self._pending = None

    # -- opening -----------------------------------------------------------
    def _open(self, height: int, width: int) -> None:
        import av

        os.makedirs(osp.dirname(self._tmp), exist_ok=True)
        self._out = av.open(self._tmp, 'w', format=self._format)
        options = {}
        if self.codec in DEFAULT_CRF:
            options['crf'] = f'{self.crf:g}'
        if self.codec == 'h265':
            options['x265-params'] = 'log-level=error'  # x265 prints its settings otherwise
        video = self._out.add_stream(ENCODERS[self.codec], rate=self.rate, options=options)
        video.width, video.height = width, height
        video.pix_fmt = _pixel_format(self.codec, height, width)
        ctx = video.codec_context
        ctx.time_base = 1 / self.rate
        ctx.colorspace, ctx.color_range = _SPC_SMPTE170M, _RANGE_MPEG
        if self.codec == 'mp4v':
            ctx.qscale = MP4V_QSCALE
        if self.codec == 'h265' and self._format in ('mp4', 'mov'):
            ctx.codec_tag = 'hvc1'
        if self.sample_aspect_ratio:
            ctx.sample_aspect_ratio = self.sample_aspect_ratio
        self._video, self._size = video, (height, width)
        if self.audio_source:
            self._open_audio()

    def _open_audio(self) -> None:
        import av

        plan = self.audio
        self._audio_in = av.open(self.audio_source)
        src = self._audio_in.streams.audio[0]
        if plan == 'copy':
            out = self._out.add_stream_from_template(src)
        else:
            rate = src.codec_context.sample_rate
            out = self._out.add_stream('aac', rate=rate, layout=_aac_layout(src))
        videos = self._audio_in.streams.video
        start = videos[0].start_time if videos else None  # our video starts where it did
        start_s = start * videos[0].time_base if start is not None else Fraction(0)
        self._audio_packets = self._read_audio(src, out, plan, start_s)

    # -- audio ---------------------------------------------------------------
    @staticmethod
    def _read_audio(src, out, plan: str, start_s: Fraction) -> Iterator:
        """The output's audio packets, in order: copied, or decoded and encoded."""
        for packet in src.container.demux(src):
            if packet.dts is None and packet.pts is None:
                continue  # the demuxer's end-of-stream packet
            shift = round(start_s / packet.time_base) if start_s else 0
            if plan == 'copy':
                packet.pts = None if packet.pts is None else packet.pts - shift
                packet.dts = None if packet.dts is None else packet.dts - shift
                packet.stream = out
                yield packet
                continue
            for frame in packet.decode():
                if frame.pts is not None and start_s:
                    frame.pts -= round(start_s / frame.time_base)
                yield from out.encode(frame)
        if plan == 'aac':
            yield from out.encode(None)

    def _mux_audio_until(self, seconds: Optional[Fraction]) -> None:
        """Mux the audio packets that start before ``seconds`` (all: None)."""
        while self._audio_packets is not None:
            if self._pending is None:
                self._pending = next(self._audio_packets, None)
                if self._pending is None:
                    self._audio_packets = None
                    return
            packet = self._pending
            stamp = packet.dts if packet.dts is not None else packet.pts
            if seconds is not None and stamp is not None and stamp * packet.time_base > seconds:
                return
            self._out.mux(packet)
            self._pending = None

    def _mux_video(self, packets) -> None:
        for packet in packets:
            stamp = packet.dts if packet.dts is not None else packet.pts
            if stamp is not None:
                self._mux_audio_until(stamp * packet.time_base)
            self._out.mux(packet)

    # -- the sink interface --------------------------------------------------
    def write(self, frame: np.ndarray, name: Optional[str] = None) -> str:
        """Encode one RGB uint8 frame (H, W, 3); returns ``path`` (``name`` is ignored)."""
        import av
        from av.video.reformatter import ColorRange, Colorspace

        height, width = frame.shape[:2]
        if self._out is None:
            self._guarded(lambda: self._open(height, width))
        elif (height, width) != self._size:
            raise DataError(
                f'{self.path}: frame {self.count} is {width}x{height}, the video is '
                f'{self._size[1]}x{self._size[0]}; a video holds frames of one size'
            )
        image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format='rgb24')
        image = image.reformat(
            format=self._video.pix_fmt,
            dst_colorspace=Colorspace.ITU601,
            dst_color_range=ColorRange.MPEG,
        )
        image.pts, image.time_base = self.count, 1 / self.rate
        self._guarded(lambda: self._mux_video(self._video.encode(image)))
        self.count += 1
        return self.path

    def _guarded(self, step) -> None:
        """Run an FFmpeg step; a disk error names ``path``, any other is a DataError."""
        import av

        try:
            step()
        except av.FFmpegError as err:
            number = getattr(err, 'errno', None)
            if isinstance(err, OSError) and number:
                raise OSError(number, os.strerror(number), self.path) from err
            raise DataError(f'{self.path}: FFmpeg could not encode the video: {err}') from err

    def close(self) -> None:
        """Flush the encoder and the rest of the audio, then rename the file into place."""
        if self._out is None:
            return

        def finish():
            self._mux_video(self._video.encode(None))
            self._mux_audio_until(None)
            self._out.close()

        self._guarded(finish)
        self._out = None
        self._close_audio()
        os.replace(self._tmp, self.path)

    def _close_audio(self) -> None:
        self._audio_packets = self._pending = None
        if self._audio_in is not None:
            self._audio_in.close()
            self._audio_in = None

    def abort(self) -> None:
        """Drop the temporary file; ``path`` is left as it was."""
        if self._out is not None:
            try:
                self._out.close()
            except Exception:  # noqa: BLE001  (the file is removed below anyway)
                pass
            self._out = None
        self._close_audio()
        if osp.exists(self._tmp):
            os.remove(self._tmp)


def _container_takes(fmt: str, add_stream) -> bool:
    """Whether FFmpeg writes a header of ``fmt`` with the stream ``add_stream`` adds.

    Tried on an in-memory container: ``supported_codecs`` alone says yes to
    pairs whose header then fails (Opus in .mov).
    """
    import av

    container = av.open(io.BytesIO(), 'w', format=fmt)
    try:
        add_stream(container)
        container.start_encoding()
        return True
    except (av.FFmpegError, ValueError):
        return False
    finally:
        try:
            container.close()
        except (av.FFmpegError, ValueError):
            pass


def _aac_layout(src) -> str:
    """The channel layout of the AAC stream that replaces ``src`` (same channel count).

    A stream without a named layout (PCM in Matroska: ``1 channels``) gets
    FFmpeg's usual layout for its channel count.
    """
    layout = src.codec_context.layout
    if layout is not None and not layout.name.endswith('channels'):
        return layout.name
    count = src.codec_context.channels
    return {1: 'mono', 2: 'stereo', 3: '2.1', 4: 'quad', 5: '5.0', 6: '5.1', 8: '7.1'}.get(
        count, 'stereo'
    )


def audio_plan(source: str, fmt: str, label: Optional[str] = None) -> str:
    """What happens to ``source``'s first audio stream in a container ``fmt``.

    Returns:
        str: ``'copy'`` (packets remuxed as they are), ``'aac'`` (re-encoded)
        or ``'drop'`` (no audio stream, or nothing that ``fmt`` takes; a
        warning says which). ``label`` names the container in the warnings
        (default: ``fmt``).
    """
    import av

    label = label or fmt
    with av.open(source) as container:
        if not container.streams.audio:
            return 'drop'
        src = container.streams.audio[0]
        name = src.codec_context.name
        if _container_takes(fmt, lambda c: c.add_stream_from_template(src)):
            return 'copy'
        rate = src.codec_context.sample_rate
        if 'aac' in av.codecs_available and _container_takes(
            fmt, lambda c: c.add_stream('aac', rate=rate, layout=_aac_layout(src))
        ):
            warn(f'{source}: {name} audio cannot go into {label}; re-encoding it to AAC')
            return 'aac'
    warn(f'{source}: {name} audio cannot go into {label}, nor AAC; the output has no audio')
    return 'drop'


def open_video_sink(
    path: str,
    fps: Optional[float] = None,
    codec: Optional[str] = None,
    crf=None,
    source: Optional[str] = None,
    source_fps: Optional[float] = None,
    overwrite: bool = False,
    opencv_sink=None,
):
    """The writer of a video OUTPUT ``path`` (checks everything before writing anything).

    Args:
        path (str): The video file (.mp4 .m4v .mov .mkv .avi: PyAV; .webm: OpenCV VP8).
        fps (float, optional): ``--fps``: the output's frame rate, overriding the input's.
        codec (str, optional): ``--codec`` (default h264 where the container takes it).
        crf (str | float, optional): ``--crf`` (default :data:`DEFAULT_CRF`).
        source (str, optional): The input video, whose rate, pixel aspect
            ratio and audio are kept (None for image inputs).
        source_fps (float, optional): The input's rate as OpenCV read it
            (used where PyAV cannot read it).
        overwrite (bool): Replace an existing ``path``.
        opencv_sink (callable, optional): ``(path, fps, overwrite) -> writer``,
            OpenCV's writer (``basicattn.data.frame_io.FrameSink``, which the
            caller passes: this module stays below the data layer), used for
            .webm and when no encoder is available. None: those cases are refused.

    Returns:
        PyAVVideoSink | the ``opencv_sink`` writer.

    Raises:
        UserError: A bad ``--codec``/``--crf``, or a codec the container cannot hold.
    """
    ext = osp.splitext(path)[1].lower()
    codec = parse_codec(codec)
    crf = parse_crf(crf, codec)
    if osp.exists(path) and not overwrite:
        raise FileExistsError(f'{path} exists; pass --overwrite to replace it')
    if codec is not None and ext not in CONTAINERS:
        raise UserError(
            f'--codec {codec}: {ext} outputs are written by OpenCV (VP8); '
            f'choose {" ".join(CONTAINERS)} for {codec}'
        )
    info = probe_video(source) if source else None
    if fps is not None:
        rate = _rate_of(fps)
    elif info is not None and info.rate:
        rate = info.rate
    else:
        rate = _rate_of(source_fps or 25.0)
    audio = info is not None and info.audio_codec is not None
    if ext not in CONTAINERS:  # .webm: OpenCV's VP8 writer, as before
        if crf is not None:
            raise UserError(f'--crf {crf:g}: {ext} outputs are written by OpenCV (VP8), no CRF')
        if audio:
            warn(f'{path}: OpenCV writes {ext} without audio; the audio of {source} is dropped')
        return _opencv_sink(opencv_sink, path, rate, overwrite)
    codec = codec or 'h264'
    if not encoder_available(codec):
        dropped = '; the audio is dropped' if audio else ''
        warn(
            f'{path}: no {codec} encoder ({_missing_reason(codec)}); '
            f"writing it with OpenCV's writer instead (MPEG-4 Part 2 or MJPEG by extension, "
            f'no --crf{dropped})'
        )
        return _opencv_sink(opencv_sink, path, rate, overwrite)
    _check_container(path, codec, CONTAINERS[ext])
    if audio and fps is not None and info.rate and abs(rate / info.rate - 1) > 1e-3:
        warn(
            f'{path}: --fps {fps:g} changes the timing of {source} ({float(info.rate):g} fps); '
            'its audio would no longer match and is dropped'
        )
        audio = False
    plan = audio_plan(source, CONTAINERS[ext], f'a {ext} file') if audio else 'drop'
    return PyAVVideoSink(
        path,
        codec,
        rate,
        crf=crf,
        sample_aspect_ratio=info.sample_aspect_ratio if info else None,
        audio_source=source,
        audio=plan,
        overwrite=overwrite,
    )


def _check_container(path: str, codec: str, fmt: str) -> None:
    """Refuse a codec that the container of ``path`` cannot hold (H.265 in .m4v)."""
    if _FFMPEG_NAMES[codec] in _supported_codecs(fmt):
        return
    fits = [e for e, f in CONTAINERS.items() if _FFMPEG_NAMES[codec] in _supported_codecs(f)]
    raise UserError(
        f'--codec {codec}: a {osp.splitext(path)[1]} file ({path}) cannot hold {codec}; '
        f'give OUTPUT one of {" ".join(fits)} or choose another --codec'
    )


def _supported_codecs(fmt: str) -> set:
    import av

    container = av.open(io.BytesIO(), 'w', format=fmt)
    try:
        return set(container.supported_codecs)
    finally:
        container.close()


def _opencv_sink(make, path: str, rate: Fraction, overwrite: bool):
    if make is None:
        raise UserError(
            f'{path}: no PyAV encoder for this output and no OpenCV writer given; '
            'install the video extra (pip install "basicattn[video]")'
        )
    return make(path, float(rate), overwrite)
