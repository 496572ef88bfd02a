# Data: the checksummed MNIST download (a local rule: compute nodes often have no internet).
# Used only with dataset: mnist (the paper preset); digits ships with scikit-learn.
import os

from gradmatch.data.mnist import SHA256 as MNIST_SHA256

MNIST_DIR = "data/raw/mnist"
MNIST_FILES = [f"{MNIST_DIR}/{name}" for name in sorted(MNIST_SHA256)]


# the downloaded files are inputs of the training rules only when the config asks for MNIST
MNIST_INPUTS = MNIST_FILES if config["dataset"] == "mnist" else []


localrules:
    download_mnist,


rule download_mnist:
    output:
        MNIST_FILES,
    log:
        "data/logs/download_mnist.log",
    params:
        settings=lambda wildcards: section_json("mnist"),
        dest=lambda wildcards, output: os.path.dirname(output[0]),
    shell:
        "gradmatch download-mnist --settings {params.settings:q} "
        "--dest {params.dest:q} > {log:q} 2>&1"
