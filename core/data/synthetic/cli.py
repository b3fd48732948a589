"""``handpose-data``: synthetic datasets and the demo recording.

    handpose-data synth --n N --out DIR [--size 224] [--seed S] [--views V] [--depth-noise]
                        [--backgrounds DIR] [--hands right|left|both] [--workers W] ...
    handpose-data demo  [--out assets/demo] [--seed S] [--force]

``synth`` is resumable: re-run the same command to continue an interrupted run (or with a
larger ``--n`` to extend a dataset). ``demo`` writes the 10-second demo session.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


def _pair(text: str) -> tuple[float, float]:
    parts = text.replace(",", " ").split()
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected two numbers 'LO,HI'; got {text!r}")
    try:
        lo, hi = float(parts[0]), float(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers 'LO,HI'; got {text!r}") from None
    return lo, hi


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="handpose-data", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("synth", help="render a synthetic dataset (FreiHAND layout, resumable)")
    s.add_argument("--n", type=int, required=True, help="number of hands")
    s.add_argument("--out", type=Path, required=True, help="dataset folder")
    s.add_argument("--size", type=int, default=224, help="image side in pixels (224)")
    s.add_argument("--seed", type=int, default=0, help="dataset seed (0)")
    s.add_argument("--views", type=int, default=1, help="cameras per hand (1)")
    s.add_argument("--depth-noise", action="store_true", help="sensor-like depth")
    s.add_argument("--backgrounds", type=str, default=None,
                   help="folder of background images (default procedural)")
    s.add_argument("--hands", choices=("right", "left", "both"), default="right",
                   help="handedness of the hands (right, FreiHAND's convention)")
    s.add_argument("--fill", type=_pair, default=(0.4, 0.8),
                   help="hand box side / image side, 'LO,HI' (0.4,0.8)")
    s.add_argument("--fov", type=_pair, default=(50.0, 80.0),
                   help="camera field of view in degrees, 'LO,HI' (50,80)")
    s.add_argument("--jpeg-quality", type=int, default=95)
    s.add_argument("--chunk-size", type=int, default=32, help="hands per resumable chunk")
    s.add_argument("--workers", type=int, default=1, help="rendering processes (1)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    d = sub.add_parser("demo", help="write the demo recording (a session folder)")
    d.add_argument("--out", type=Path, default=None,
                   help="session folder (default: the package's assets/demo)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--force", action="store_true", help="replace an existing demo")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``handpose-data``; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "synth":
        from .writer import SynthConfig, write_synth

        try:
            cfg = SynthConfig(n=args.n, size=args.size, seed=args.seed, views=args.views,
                              depth_noise=args.depth_noise,
                              backgrounds=(None if args.backgrounds is None
                                           else str(Path(args.backgrounds).resolve())),
                              hands=args.hands, fill=args.fill, fov_deg=args.fov,
                              jpeg_quality=args.jpeg_quality, chunk_size=args.chunk_size)
            res = write_synth(args.out, cfg, workers=args.workers, progress=not args.quiet)
        except (ValueError, FileExistsError) as e:
            print(f"handpose-data synth: error: {e}", file=sys.stderr)
            return 2
        print(f"{res.out}: {res.samples} samples ({res.counts}); made {res.chunks_made} of "
              f"{res.chunks_total} chunks in {res.seconds:.1f} s "
              f"({res.samples_per_s:.1f} samples/s)")
        return 0
    from .demo import make_demo

    try:
        info = make_demo(args.out, seed=args.seed, force=args.force)
    except (ValueError, FileExistsError) as e:
        print(f"handpose-data demo: error: {e}", file=sys.stderr)
        return 2
    print(f"{info['path']}: {info['frames']} frames, {info['bytes'] / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
