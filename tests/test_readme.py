"""The README's statements about the code that the code can confirm."""
import os
import re

from minigrad.kernels import vectorized

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def readme_text():
    with open(README, encoding="utf-8") as file:
        return " ".join(file.read().split())            # line breaks as spaces


def test_the_per_image_threshold_of_1x1_convolutions_is_the_codes():
    stated = re.search(r"on maps of (\d+) pixels or more \(`PER_IMAGE_MIN_PIXELS`\)", readme_text())
    assert stated and int(stated.group(1)) == vectorized.PER_IMAGE_MIN_PIXELS
