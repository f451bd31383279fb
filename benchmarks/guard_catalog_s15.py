"""Issue #29, session 15: the benign-sentence part of data/guard/heldout_s15 -- pt-BR sentences from the system's
gettext message catalogs, picked by session 12's fixed filter with seed 15 (benchmarks/guard_catalog_s13.py). Every
sentence already in data/guard (heldout_s12-s14 catalogs included) or within 0.5 word 3-gram Jaccard
of one is dropped.

    for f in /usr/share/locale/pt_BR/LC_MESSAGES/*.mo; do msgunfmt "$f" -o DIR/$(basename $f .mo).po; done
    python benchmarks/guard_catalog_s15.py DIR data/guard/heldout_s15/catalog.tsv
"""

from guard_catalog_s13 import main

if __name__ == "__main__":
    main(15)
