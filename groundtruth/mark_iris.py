"""The marking tool: put points on an eye's pupil edge, limbus and lids by hand, and keep
the fitted marks in a marks file.

    python -m groundtruth.mark_iris serve IMAGE... [--marks FILE] [--port N]
        a page to click on (open the address it prints): keys 1-4 pick the pupil, the
        limbus, the upper or the lower lid; a click adds a point, a right click takes the
        part's last one off; "save" fits and writes the image's marks.
    python -m groundtruth.mark_iris grid IMAGE --out PNG [--crop X0 Y0 X1 Y1] [--zoom N]
        the image enlarged with a labelled grid, to read points off by eye.
    python -m groundtruth.mark_iris add IMAGE --pupil "X,Y X,Y ..." --limbus "..."
        [--upper-lid "..."] [--lower-lid "..."] [--marks FILE]
        the same marks typed as the points read off a grid picture.
    python -m groundtruth.mark_iris draw IMAGE... --out DIR [--marks FILE] [--assess]
        each image with its marks (green) and, with --assess, the assessor's finding (magenta).

Circles need at least five points spread round the boundary (on the visible part: a
limbus under a lid is marked where it shows); a lid at least three along its margin,
across the iris. Bad input (an unreadable image, too few points) is one line on stderr and
exit 2.
"""

from __future__ import annotations

import argparse
import http.server
import json
import sys
import urllib.parse
from pathlib import Path

import cv2
import numpy as np

from groundtruth.draw_iris import draw_eye, grid_picture
from groundtruth.iris_marks import IITD_MARKS, EyeMarks, MarksError, Point, load_marks, save_marks
from kitd.capture.iris_quality import assess_iris

ABOUT = (
    "Hand marks on IIT Delhi Iris Database v1.0 eyes (../shared/fixtures/iitd-iris): points on the "
    "pupil edge, the limbus and the lid margins, made with python -m groundtruth.mark_iris; circles "
    "and lid heights (y at the iris centre and +-0.5 iris radius) fitted to them. Points were read "
    "by eye off enlarged, gridded crops (the grid command), typed in with the add command, and each "
    "fit was checked on its drawing; the upper lid is the lid's margin (the bottom of the solid lash "
    "root band where there is one), not single lashes hanging below it. "
    "Portions of the work tested on the IITD Iris Database version 1.0."
)


class UsageError(Exception):
    """A bad argument or input, said in one line."""


def read_grey(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise UsageError(f"{path}: not a readable image")
    return image


def parse_points(text: str | None, part: str) -> list[Point]:
    """'X,Y X,Y ...' -> points; the part is named when one is not a pair of numbers."""
    points: list[Point] = []
    for item in (text or "").replace(";", " ").split():
        try:
            x, y = (float(v) for v in item.split(","))
        except ValueError:
            raise UsageError(f"{part}: '{item}' is not a point X,Y") from None
        points.append((x, y))
    return points


def _load(path: Path) -> dict[str, EyeMarks]:
    return load_marks(path) if path.exists() else {}


def store(marks_file: Path, image: Path, points: dict[str, list[Point]]) -> EyeMarks:
    """Fit the points and put them in the marks file under the image's name."""
    marks = EyeMarks(points)
    try:
        marks.to_json()
    except MarksError as error:
        raise UsageError(f"{image.name}: {error}") from None
    all_marks = _load(marks_file)
    all_marks[image.name] = marks
    save_marks(marks_file, all_marks, ABOUT)
    return marks


def summary(name: str, marks: EyeMarks) -> str:
    data = marks.to_json()
    return (
        f"{name}: pupil {data['pupil']['circle']} limbus {data['limbus']['circle']} "
        f"upper lid {data['upper_lid']['heights']} lower lid {data['lower_lid']['heights']}"
    )


PAGE = """<!doctype html><meta charset="utf-8"><title>mark iris</title>
<style>body{font:14px sans-serif;margin:8px}canvas{cursor:crosshair;image-rendering:pixelated}</style>
<div><b id="name"></b> part: <b id="part"></b> (1 pupil, 2 limbus, 3 upper lid, 4 lower lid;
right click: undo) <button id="save">save</button> <button id="next">next</button>
<span id="said"></span></div>
<canvas id="c"></canvas>
<script>
const images = %s, zoom = %d, parts = ["pupil", "limbus", "upper_lid", "lower_lid"];
const colours = ["#f0f", "#0f0", "#0ff", "#ff0"];
let at = 0, part = 0, points = {}, img = new Image();
const c = document.getElementById("c"), ctx = c.getContext("2d");
function load() {
  points = {pupil: [], limbus: [], upper_lid: [], lower_lid: []};
  img.onload = () => { c.width = img.width * zoom; c.height = img.height * zoom; draw(); };
  img.src = "/image/" + encodeURIComponent(images[at]);
  document.getElementById("name").textContent = images[at];
}
function draw() {
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(img, 0, 0, c.width, c.height);
  parts.forEach((p, i) => { ctx.fillStyle = colours[i];
    points[p].forEach(([x, y]) => ctx.fillRect((x + 0.5) * zoom - 2, (y + 0.5) * zoom - 2, 4, 4)); });
  document.getElementById("part").textContent = parts[part];
}
c.addEventListener("click", e => { const r = c.getBoundingClientRect();
  points[parts[part]].push([(e.clientX - r.left) / zoom - 0.5, (e.clientY - r.top) / zoom - 0.5]); draw(); });
c.addEventListener("contextmenu", e => { e.preventDefault(); points[parts[part]].pop(); draw(); });
document.addEventListener("keydown", e => { if ("1234".includes(e.key)) { part = +e.key - 1; draw(); } });
document.getElementById("save").onclick = async () => {
  const r = await fetch("/marks", {method: "POST", body: JSON.stringify({image: images[at], points})});
  document.getElementById("said").textContent = await r.text(); };
document.getElementById("next").onclick = () => { at = (at + 1) %% images.length; load(); };
load();
</script>"""


def serve(images: list[Path], marks_file: Path, port: int, zoom: int = 3) -> None:
    by_name = {image.name: image for image in images}

    class Page(http.server.BaseHTTPRequestHandler):
        def _reply(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            path = urllib.parse.unquote(self.path)
            if path == "/":
                page = PAGE % (json.dumps(sorted(by_name)), zoom)
                self._reply(200, page.encode(), "text/html; charset=utf-8")
            elif path.startswith("/image/") and path[7:] in by_name:
                ok, png = cv2.imencode(".png", read_grey(by_name[path[7:]]))
                self._reply(200, png.tobytes(), "image/png")
            else:
                self._reply(404, b"not found\n", "text/plain")

        def do_POST(self) -> None:  # noqa: N802
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                image = by_name[body["image"]]
                points = {
                    part: parse_points(" ".join(f"{x},{y}" for x, y in v), part)
                    for part, v in body["points"].items()
                }
                marks = store(marks_file, image, points)
            except (UsageError, KeyError, ValueError, TypeError) as error:
                self._reply(400, f"not saved: {error}\n".encode(), "text/plain; charset=utf-8")
                return
            self._reply(200, (summary(image.name, marks) + "\n").encode(), "text/plain; charset=utf-8")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Page)
    print(f"marking {len(images)} images at http://127.0.0.1:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m groundtruth.mark_iris", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    p_serve = commands.add_parser("serve", help="a page to click points on")
    p_serve.add_argument("images", nargs="+", type=Path)
    p_serve.add_argument("--port", type=int, default=8765)
    p_grid = commands.add_parser("grid", help="an enlarged picture with a labelled grid")
    p_grid.add_argument("image", type=Path)
    p_grid.add_argument("--out", type=Path, required=True)
    p_grid.add_argument("--crop", type=int, nargs=4, metavar=("X0", "Y0", "X1", "Y1"))
    p_grid.add_argument("--zoom", type=int, default=4)
    p_add = commands.add_parser("add", help="marks typed as points")
    p_add.add_argument("image", type=Path)
    for part in ("pupil", "limbus", "upper-lid", "lower-lid"):
        p_add.add_argument(f"--{part}", required=part in ("pupil", "limbus"), metavar='"X,Y X,Y ..."')
    p_draw = commands.add_parser("draw", help="images with their marks and the assessor's finding")
    p_draw.add_argument("images", nargs="+", type=Path)
    p_draw.add_argument("--out", type=Path, required=True)
    p_draw.add_argument("--assess", action="store_true")
    p_draw.add_argument("--zoom", type=int, default=3)
    for sub in (p_serve, p_add, p_draw):
        sub.add_argument("--marks", type=Path, default=IITD_MARKS, help=f"marks file (default {IITD_MARKS})")
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            serve(args.images, args.marks, args.port)
        elif args.command == "grid":
            cv2.imwrite(str(args.out), grid_picture(read_grey(args.image), args.crop, args.zoom))
            print(args.out)
        elif args.command == "add":
            read_grey(args.image)
            points = {
                part: parse_points(getattr(args, part), part)
                for part in ("pupil", "limbus", "upper_lid", "lower_lid")
            }
            print(summary(args.image.name, store(args.marks, args.image, points)))
        else:
            all_marks = _load(args.marks)
            args.out.mkdir(parents=True, exist_ok=True)
            for image in args.images:
                grey = read_grey(image)
                found = assess_iris(grey).metrics if args.assess else None
                picture = draw_eye(grey, all_marks.get(image.name), found, args.zoom, image.name)
                cv2.imwrite(str(args.out / f"{image.stem}.png"), picture)
            print(f"{len(args.images)} drawings in {args.out}")
    except (UsageError, MarksError, OSError) as error:
        print(f"mark_iris: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
