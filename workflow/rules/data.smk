# Data: the checksummed MNIST download (a local rule: compute nodes often have no internet).
# Its files are inputs of the analyses that read MNIST, only under dataset: mnist (the paper
# preset); digits ships with scikit-learn.
import os


localrules:
    download_mnist,


rule download_mnist:
    output:
        mnist_files(),
    log:
        f"{LOGS}/data/download_mnist.log",
    params:
        settings=json.dumps(config["mnist"], sort_keys=True),
        dest=lambda wildcards, output: os.path.dirname(output[0]),
    shell:
        "gradmatch download-mnist --settings {params.settings:q} "
        "--dest {params.dest:q} > {log:q} 2>&1"
