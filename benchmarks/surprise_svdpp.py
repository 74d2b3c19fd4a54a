"""The plain Surprise script that ``benchmarks/cli_speed.py`` times as a whole process: read a
ratings file (MovieLens ``user item rating timestamp``, tab-separated) and fit SVD++ with its
defaults (``random_state=0``); with ``--test FILE`` also print the test RMSE.

    python benchmarks/surprise_svdpp.py $AEREC_DATA_HOME/ml-100k/u1.base [--test .../u1.test]
"""

import argparse

from surprise import Dataset, Reader, SVDpp, accuracy

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("train")
parser.add_argument("--test", default=None)
args = parser.parse_args()

reader = Reader(line_format="user item rating timestamp", sep="\t", rating_scale=(1, 5))
trainset = Dataset.load_from_file(args.train, reader=reader).build_full_trainset()
algo = SVDpp(random_state=0).fit(trainset)
if args.test:
    test = Dataset.load_from_file(args.test, reader=reader).build_full_trainset().build_testset()
    print(f"SVD++ test RMSE {accuracy.rmse(algo.test(test), verbose=False):.4f}")
