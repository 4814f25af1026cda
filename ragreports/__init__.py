"""ragreports: grounded answers, standard briefs and checked facts from report files.

Importing the package is cheap: nothing connects, downloads or loads a model at import time.
"""

__version__ = "0.1.0"
