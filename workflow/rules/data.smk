# Data: the checksummed MNIST download (a local rule: compute nodes often have no internet).
# Used only with dataset: mnist (the paper preset); digits ships with scikit-learn.
from gradmatch.data.mnist import SHA256 as MNIST_SHA256

MNIST_DIR = "data/raw/mnist"
MNIST_FILES = [f"{MNIST_DIR}/{name}" for name in sorted(MNIST_SHA256)]


def mnist_inputs(wildcards=None):
    """The downloaded MNIST files when the config asks for MNIST, else nothing."""
    return MNIST_FILES if config["dataset"] == "mnist" else []


localrules:
    download_mnist,


rule download_mnist:
    output:
        MNIST_FILES,
    log:
        "data/logs/download_mnist.log",
    params:
        settings=lambda wildcards: section_json("mnist"),
        dest=MNIST_DIR,
    shell:
        "gradmatch download-mnist --settings {params.settings:q} "
        "--dest {params.dest:q} > {log:q} 2>&1"
