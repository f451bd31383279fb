"""Issue #29, session 16: the benign-sentence part of data/guard/heldout_s16 -- pt-BR sentences from gettext message
catalogs this machine's system does not have (sessions 12-15 used its own up): the pt_BR catalogs of 15 Debian desktop
packages fetched with ``apt-get download`` (aisleriot, evince-common, gedit-common, gnome-calculator, gnome-calendar,
gnome-chess, gnome-clocks, gnome-contacts, gnome-maps, gnome-mines, gnome-sudoku, gnome-weather, rhythmbox-data,
shotwell-common, totem-common), picked by session 12's fixed filter with seed 16. Every sentence already in data/guard
or within 0.5 word 3-gram Jaccard of one is dropped.

    for d in *.deb; do dpkg-deb -x "$d" X; done
    for f in X/usr/share/locale/pt_BR/LC_MESSAGES/*.mo; do msgunfmt "$f" -o DIR/$(basename $f .mo).po; done
    python benchmarks/guard_catalog_s16.py DIR data/guard/heldout_s16/catalog.tsv
"""

from guard_catalog_s13 import main

if __name__ == "__main__":
    main(16)
