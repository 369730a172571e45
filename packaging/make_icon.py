"""Render packaging/caw.png (256 px) from the same shapes as caw.svg, with Pillow only (no SVG renderer needed).

    python packaging/make_icon.py
"""

from pathlib import Path

from PIL import Image, ImageDraw

NAVY, BLUE, WHITE, ORANGE = "#1f2a44", "#3a7bd5", "#e8eefc", "#f5a623"
SCALE = 4  # draw at 4x and downsample for smooth edges


def render(size: int = 256) -> Image.Image:
    s = SCALE * size / 256
    big = Image.new("RGBA", (int(256 * s), int(256 * s)), (0, 0, 0, 0))
    d = ImageDraw.Draw(big)
    p = lambda *xy: [v * s for v in xy]  # noqa: E731
    d.rounded_rectangle(p(8, 8, 248, 248), radius=48 * s, fill=NAVY)
    shield = [(128, 36), (204, 64), (204, 124), (196, 160), (170, 196), (128, 222), (86, 196), (60, 160), (52, 124),
              (52, 64)]
    d.polygon([(x * s, y * s) for x, y in shield], fill=BLUE, outline=WHITE, width=int(8 * s))
    eye = [(76 + 104 * t / 20, 128 - 30 * (1 - (2 * t / 20 - 1) ** 2)) for t in range(21)]
    eye += [(x, 256 - y) for x, y in reversed(eye)]
    d.polygon([(x * s, y * s) for x, y in eye], fill=WHITE)
    d.ellipse(p(106, 106, 150, 150), fill=NAVY)
    d.pieslice(p(106, 106, 150, 150), start=-90, end=0, fill=ORANGE)
    d.ellipse(p(121, 121, 135, 135), fill=WHITE)
    return big.resize((size, size), Image.LANCZOS)


if __name__ == "__main__":
    out = Path(__file__).with_name("caw.png")
    render().save(out, optimize=True)
    print(f"wrote {out}")
