"""The benchmark runners: what the library costs and buys, measured and saved as Markdown tables.

Floor 6, above :mod:`attnlab.study`: a runner builds modules, networks, CAM methods, training runs or a study's
runs from every floor below and times them with the instruments of :mod:`attnlab.benchtools` (floor 1). One module per
``attnlab bench`` target and per script in the repository's ``benchmarks/`` folder:

* :mod:`attnlab.benchmarks.modules`: every attention module at ResNet-50 shapes, against a copy and the
  naive references;
* :mod:`attnlab.benchmarks.models`: the ResNets with each attention module, against the vanilla network;
* :mod:`attnlab.benchmarks.cam`: every CAM method, against captum and torchcam (optional packages);
* :mod:`attnlab.benchmarks.train`: accuracy after a stated budget and seconds per epoch of one training run;
* :mod:`attnlab.benchmarks.data`: generation speed of Cluttered Fashion-MNIST;
* :mod:`attnlab.benchmarks.loop`: the training loop's images/s against the bare training step's, with the
  batches made on the host and on the device;
* :mod:`attnlab.benchmarks.jobs`: a study's runs on a CPU, serial or in processes at once (``attnlab study --jobs``);
* :mod:`attnlab.benchmarks.scoring`: the five localisation metrics on N maps, against the frozen reference.

Each has a ``run(...)`` that measures, prints the table and writes it as Markdown, by default to
``benchmarks/results/<name>.md`` under the current directory; ``attnlab bench <name>`` calls it.
"""
