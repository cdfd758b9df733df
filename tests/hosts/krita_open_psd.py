"""Run inside Krita by `kritarunner`: open the PSD named in $PSD and write what Krita sees to $OUT
(canvas size, every layer with its bounds, opacity and visibility, and the merged projection)."""
import base64
import json
import os

from krita import Krita


def _layers(node, depth, out):
    for child in node.childNodes():
        if child.type() == "":   # Krita's internal helper nodes
            continue
        bounds = child.bounds()
        out.append({"name": child.name(), "type": child.type(), "depth": depth,
                    "x": bounds.x(), "y": bounds.y(), "w": bounds.width(), "h": bounds.height(),
                    "opacity": child.opacity(), "visible": child.visible()})
        _layers(child, depth + 1, out)


def main(*_args):
    document = Krita.instance().openDocument(os.environ["PSD"])
    report = {"opened": document is not None}
    if document is not None:
        document.waitForDone()
        layers = []
        _layers(document.rootNode(), 0, layers)
        pixels = bytes(document.pixelData(0, 0, document.width(), document.height()))   # BGRA, 8 bit
        report.update(width=document.width(), height=document.height(), layers=layers,
                      projection=base64.b64encode(pixels).decode("ascii"))
        document.close()
    with open(os.environ["OUT"], "w") as f:
        json.dump(report, f)
