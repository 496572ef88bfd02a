# Data: the checksummed MNIST download (a local rule: compute nodes often have no internet).
# Its files are inputs of the analyses that read MNIST, only under dataset: mnist (the paper
# preset); digits ships with scikit-learn. With mnist.dir set (a folder the site already
# keeps), the analyses take verify_mnist's record instead, and nothing is downloaded.
import os


localrules:
    download_mnist,
    verify_mnist,


rule download_mnist:
    output:
        mnist_files(),
    log:
        f"{LOGS}/data/download_mnist.log",
    params:
        # mnist.dir is left out: pointing the workflow at a folder must not rerun a download
        settings=json.dumps(
            {key: value for key, value in config["mnist"].items() if key != "dir"},
            sort_keys=True,
        ),
        dest=lambda wildcards, output: os.path.dirname(output[0]),
    shell:
        "gradmatch download-mnist --settings {params.settings:q} "
        "--dest {params.dest:q} > {log:q} 2>&1"


rule verify_mnist:
    input:
        mnist_source_files,
    output:
        MNIST_STAMP,
    log:
        f"{LOGS}/data/verify_mnist.log",
    params:
        folder=MNIST_SOURCE or "",
    shell:
        "gradmatch verify-mnist --dir {params.folder:q} --stamp {output:q} > {log:q} 2>&1 "
        "|| (tail -n 5 {log:q} >&2; exit 1)"
